"""Shared fixtures: small HTS-AT shapes that build in milliseconds, and seeded synthetic loops."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SR = 48_000
# A 4-stage HTS-AT small enough for CPU tests (hidden = 16 * 2^3 = 128).
SMALL_AUDIO = {
    "patch_embeds_hidden_size": 16,
    "hidden_size": 128,
    "depths": [1, 1, 1, 1],
    "num_attention_heads": [1, 2, 2, 2],
}


def small_config(enable_fusion: bool = False, **kwargs):
    from loop_svdd import LoopSVDDConfig

    kwargs.setdefault("hidden_dims", [32, 8])
    return LoopSVDDConfig(audio_config={**SMALL_AUDIO, "enable_fusion": enable_fusion}, **kwargs)


def small_model(enable_fusion: bool = False, seed: int = 0, **kwargs):
    import torch

    from loop_svdd import LoopSVDDModel

    torch.manual_seed(seed)
    return LoopSVDDModel(small_config(enable_fusion, **kwargs)).eval()


def synth_loop(seconds: float, seed: int = 0, freq: float = 110.0, sr: int = SR) -> np.ndarray:
    """A bass-like loop: a decaying tone every beat plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    env = np.exp(-6.0 * (t % 0.5))
    tone = np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(2 * np.pi * 2 * freq * t)
    return (0.4 * env * tone + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(params=[False, True], ids=["unfused", "fused"])
def fusion(request) -> bool:
    return request.param


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """An audiofolder corpus: 20 'bass' loops (low tones) and 10 'keys' loops (high tones), 1.5 s to 13.5 s."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("corpus")
    rows = ["file_name,instrument,bars"]
    for i in range(30):
        inst = "bass" if i < 20 else "keys"
        freq = (55.0 if inst == "bass" else 440.0) * (1 + 0.03 * (i % 4))
        sf.write(root / f"loop{i:02d}.flac", synth_loop(1.5 + (i % 5) * 3, seed=i, freq=freq), SR)
        rows.append(f"loop{i:02d}.flac,{inst},{1 + i % 4}")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="session")
def encoder_dir(tmp_path_factory):
    """A small-encoder LoopSVDD folder, usable as `--encoder` (its weights are reused, the head is new)."""
    from loop_svdd import LoopSVDDFeatureExtractor
    from loop_svdd.models.model_io import save_detector

    model = small_model()
    path = tmp_path_factory.mktemp("encoder")
    save_detector(model, LoopSVDDFeatureExtractor.from_model_config(model.config), path)
    return path


def private_mounts_work() -> bool:
    """Whether `unshare -rm` can make a private mount namespace here (to mount a small tmpfs in a test)."""
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0
