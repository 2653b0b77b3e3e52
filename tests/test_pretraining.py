"""Self-supervised encoder pretraining: views, NT-Xent, resumable training, the CLI and the shipped encoder."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SR, synth_loop

from loop_svdd import LoopSVDDFeatureExtractor
from loop_svdd.pretraining import PretrainConfig, ViewConfig, make_pair_batch, nt_xent, pretrain_encoder
from loop_svdd.pretraining.augment import SILENCE_DB, crop_and_fill
from loop_svdd.pretraining.trainer import initial_model

TINY = {"patch_embeds_hidden_size": 8, "hidden_size": 16, "depths": [1, 1], "num_attention_heads": [1, 2]}


@pytest.fixture(scope="module")
def mels() -> list[torch.Tensor]:
    extractor = LoopSVDDFeatureExtractor()
    loops = [synth_loop(1.5 + 0.7 * i, seed=i, freq=55.0 * (1 + i % 3)) for i in range(6)]
    return [extractor.log_mel(torch.from_numpy(x)[None], "slaney")[0] for x in loops]


def _config(**kw) -> PretrainConfig:
    base = dict(audio_config=TINY, steps=4, batch_size=2, warmup_steps=1, checkpoint_every=2, lr=3e-3, seed=3)
    return PretrainConfig(**{**base, **kw})


def test_views_are_seeded_and_shaped(mels):
    a = make_pair_batch(mels, [0, 1, 2], 1001, ViewConfig(), torch.Generator().manual_seed(0))
    b = make_pair_batch(mels, [0, 1, 2], 1001, ViewConfig(), torch.Generator().manual_seed(0))
    assert a[0].shape == (3, 1, 1001, 64)
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    assert not torch.equal(a[0], a[1])  # two different views of the same loops
    assert torch.isfinite(a[0]).all() and a[0].min() >= SILENCE_DB


def test_short_crops_are_repeat_padded_with_silence():
    mel = torch.zeros(300, 64)
    out = crop_and_fill(mel, 1001, ViewConfig(min_crop=1.0, stretch=1.0), torch.Generator().manual_seed(0))
    assert (out[:900] == 0).all() and (out[900:] == SILENCE_DB).all()


def test_nt_xent_prefers_matching_views():
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    same = nt_xent(z, z + 0.01 * torch.randn_like(z))
    shuffled = nt_xent(z, z[torch.randperm(8, generator=torch.Generator().manual_seed(1))])
    assert torch.isfinite(same) and same < shuffled


def test_pretraining_runs_and_resumes_bit_exactly(mels, tmp_path):
    config = _config()
    full = pretrain_encoder(mels, tmp_path / "full", config, progress=False)
    assert all(np.isfinite(full.history["loss"])) and len(full.history["loss"]) == 4
    assert full.model.config.encoder_pretrained
    assert (tmp_path / "full" / "model.safetensors").is_file() and (tmp_path / "full" / "pretraining.json").is_file()

    class Interrupt(Exception):
        pass

    def stop(info):
        if info["step"] == 3:  # after the checkpoint of step 2: step 3 is lost and replayed
            raise Interrupt

    with pytest.raises(Interrupt):
        pretrain_encoder(mels, tmp_path / "resumed", config, progress=False, on_step_end=stop)
    resumed = pretrain_encoder(mels, tmp_path / "resumed", config, progress=False)
    assert resumed.history == full.history
    after = resumed.model.encoder.state_dict()
    for name, tensor in full.model.encoder.state_dict().items():
        torch.testing.assert_close(after[name], tensor, rtol=0, atol=0, msg=name)
    with pytest.raises(ValueError, match="another config"):
        pretrain_encoder(mels, tmp_path / "resumed", _config(seed=4), progress=False)


def _audiofolder(root, n=4):
    (root / "data").mkdir(parents=True)
    with open(root / "metadata.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file_name", "instrument", "source"])
        for i in range(n):
            sf.write(root / "data" / f"{i}.wav", synth_loop(1.0 + 0.5 * i, seed=i), SR)
            w.writerow([f"data/{i}.wav", "bass" if i % 2 else "keys", "synth"])
    return root


def test_cli(tmp_path, capsys):
    from loop_svdd.cli import main

    corpus = _audiofolder(tmp_path / "corpus")
    out = tmp_path / "enc"
    args = ["pretrain-encoder", str(corpus), "--output-dir", str(out), "--steps", "1", "--batch-size", "2"]
    assert main([*args, "--no-progress"]) == 0
    assert "encoder saved to" in capsys.readouterr().out
    assert main([*args, "--size", "huge"]) == 2
    assert main([*args, "--where", "instrument=drums"]) == 2
    assert "no loop has instrument=drums; values of 'instrument':" in capsys.readouterr().err


def test_shipped_default_encoder():
    from loop_svdd.embedding import embed_waveforms
    from loop_svdd.encoders import DEFAULT_ENCODER, DEFAULT_ENCODER_DIR, build_model

    assert DEFAULT_ENCODER == "default" and (DEFAULT_ENCODER_DIR / "model.safetensors").is_file()
    assert (DEFAULT_ENCODER_DIR / "model.safetensors").stat().st_size < 10e6
    model, extractor = build_model(DEFAULT_ENCODER)
    assert model.config.encoder_pretrained and "pretrain-encoder" in model.config.encoder_name_or_path
    random = initial_model(PretrainConfig(size="small"))
    loops = [synth_loop(2.0, seed=0), synth_loop(3.0, seed=1, freq=220.0)]
    trained, _ = embed_waveforms(model, extractor, loops, SR)
    untrained, _ = embed_waveforms(random.eval(), extractor, loops, SR)
    assert trained.shape == untrained.shape and torch.isfinite(trained).all()
    assert not torch.allclose(trained, untrained, atol=1e-3)
