"""Reliability: every kind of bad or odd audio gets a score or a one-line error naming the file; fuzzed
bytes never crash the decoder; a training run killed with SIGKILL resumes to the same result."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from audio_cases import CASES, tone, write
from conftest import SR, small_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from loop_svdd import LoopSVDDFeatureExtractor
from loop_svdd.audio.decode import AudioDecodeError, load_audio
from loop_svdd.audio.decoding import decode_file
from loop_svdd.cli import main
from loop_svdd.engine.scoring import score_files


@pytest.fixture(scope="module")
def model_and_extractor():
    model = small_model()
    model.set_svdd_state(center=torch.full((8,), 0.2), threshold=1.0, calibration_scores=[0.1, 0.5, 1.0])
    return model, LoopSVDDFeatureExtractor.from_model_config(model.config)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_and_odd_audio_matrix(case, tmp_path, model_and_extractor):
    make, expected_error = CASES[case]
    path = make(tmp_path)
    report = score_files(*model_and_extractor, [path])
    if expected_error is None:
        assert not report["errors"], report["errors"]
        (result,) = report["results"]
        assert math.isfinite(result["score"]) and result["verdict"] in ("normal", "anomalous")
        assert all(math.isfinite(w["score"]) for w in result["windows"])
        if case == "10-minutes":
            assert len(result["windows"]) == 60 and result["duration_s"] == pytest.approx(600, abs=0.1)
    else:
        (error,) = report["errors"]
        assert error["file"] == str(path) and expected_error in error["error"] and "\n" not in error["error"]


def test_batch_goes_on_past_bad_files_and_strict_exits_nonzero(tmp_path, model_and_extractor, capsys):
    model, fe = model_and_extractor
    from loop_svdd.models.model_io import save_detector

    save_detector(model, fe, tmp_path / "m")
    files = [CASES[c][0](tmp_path) for c in ("silence", "random-bytes-wav", "clipping", "empty-file")]
    assert main(["score", str(tmp_path / "m"), *map(str, files), "--json"]) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert len(report["results"]) == 2 and len(report["errors"]) == 2
    assert out.err.count("loop-svdd score: skipped ") == 2 and "Traceback" not in out.err
    assert main(["score", str(tmp_path / "m"), *map(str, files), "--strict"]) == 1


def test_files_left_to_stream_are_checked_against_their_header_too(tmp_path):
    """A file over `stream_above_s` is not decoded whole, but a cut one is still named (not streamed)."""
    from audio_cases import cut

    whole = write(tmp_path / "whole.wav", tone(2.0, SR), SR, "PCM_16")
    assert decode_file(whole, stream_above_s=1.0).stream_s == pytest.approx(2.0)
    cut_file = cut(tmp_path / "cut.wav", 44 + 3 * SR)  # 1.5 s of the 2 s
    decoded = decode_file(cut_file, stream_above_s=1.0)
    assert not decoded.ok and decoded.reason == "truncated WAV file: the header promises 2.00 s, the file holds 1.50 s"


def test_calibration_loops_come_through_the_one_decoder(tmp_path, capsys):
    """`export --calibration` and the model's own normal loops (int8 calibration) skip a cut WAV, and say so."""
    from audio_cases import cut
    from model_folders import SUMMARY, build_model_folder

    from loop_svdd.commands.export import _load_calibration
    from loop_svdd.engine.graphs import normal_loops
    from loop_svdd.models.model_io import write_json_atomic

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write(corpus / "good.wav", tone(1.0, SR), SR)
    cut(corpus / "cut.wav", 100)
    extractor = LoopSVDDFeatureExtractor.from_model_config(small_model().config)
    assert [len(w) for w in _load_calibration([str(corpus)], extractor)] == [SR]
    assert capsys.readouterr().err == (
        f"loop-svdd export: calibration: skipped {corpus / 'cut.wav'}: {CASES['truncated-wav'][1]}\n"
    )
    folder = build_model_folder(tmp_path / "m")
    files = {"corpus": str(corpus), "train_files": ["cut.wav", "good.wav"], "heldout_files": []}
    write_json_atomic(folder / "training_summary.json", {**SUMMARY, **files})
    assert [len(w) for w in normal_loops(folder, extractor)] == [SR]


def test_demo_decodes_through_the_one_decoder_under_its_limits(tmp_path, model_and_extractor):
    """The demo's limits sit on top of `decoding.decode_file`: a cut WAV is named as such, like in `score`."""
    from loop_svdd.demo.analysis import Limits, analyse_files

    files = [CASES[c][0](tmp_path) for c in ("truncated-wav", "5-ms", "dc-offset")]
    files.append(write(tmp_path / "long.wav", tone(3.0, SR), SR))
    results, errors = analyse_files(*model_and_extractor, files, Limits(max_seconds=2.5), names=["a", "b", "c", "d"])
    assert [r.name for r in results] == ["c"]
    assert dict(errors) == {
        "a": CASES["truncated-wav"][1],
        "b": CASES["5-ms"][1],
        "d": "the loop is longer than the 2.5 s limit; trim it first",
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(min_value=1, max_value=3 * SR),
    scale=st.floats(min_value=0.0, max_value=1e4, allow_nan=False),
    dtype=st.sampled_from(["float32", "float64", "int16"]),
    poison=st.sampled_from([None, np.nan, np.inf, -np.inf]),
    sr=st.sampled_from([8000, 16000, 44100, 48000]),
)
def test_any_array_scores_or_raises_a_clear_error(n, scale, dtype, poison, sr, model_and_extractor):
    model, fe = model_and_extractor
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n) * scale
    if dtype == "int16":
        x = np.clip(x, -32768, 32767).astype(np.int16)
    else:
        x = x.astype(dtype)
        if poison is not None:
            x[rng.integers(0, n)] = poison
    try:
        feats = fe(x, sampling_rate=sr)
    except ValueError as err:
        assert poison is not None or "too short" in str(err), err
        return
    with torch.inference_mode():
        score = model(**feats).anomaly_score
    assert torch.isfinite(score).all()


def test_fuzzed_bytes_never_crash_the_decoder(tmp_path):
    """A bounded fuzz run: mutations of valid WAV/FLAC files and raw random bytes."""
    rng = np.random.default_rng(1234)
    seeds = [
        write(tmp_path / "s.wav", tone(0.2, SR), SR).read_bytes(),
        write(tmp_path / "s.flac", tone(0.2, SR), SR).read_bytes(),
    ]
    outcomes = {"decoded": 0, "refused": 0, "cut": 0}
    deadline = time.monotonic() + 30
    for i in range(1000):
        if time.monotonic() > deadline:
            break
        base = bytearray(seeds[i % 2])
        kind = i % 3
        if kind == 0:  # flip bytes, header included
            for pos in rng.integers(0, min(len(base), 256), size=8):
                base[pos] = int(rng.integers(0, 256))
        elif kind == 1:  # truncate
            base = base[: int(rng.integers(0, len(base)))]
        else:  # random bytes
            base = bytearray(rng.bytes(int(rng.integers(0, 2048))))
        path = tmp_path / f"fuzz{i}{'.wav' if i % 2 == 0 else '.flac'}"
        path.write_bytes(bytes(base))
        try:
            wave = load_audio(path)
        except AudioDecodeError as err:
            assert str(err).startswith(str(path)) and "\n" not in str(err)
            outcomes["refused"] += 1
        else:
            assert wave.dtype == np.float32 and wave.ndim == 1 and np.isfinite(wave).all()
            outcomes["decoded"] += 1
        decoded = decode_file(path)  # the header check and length floor on top never raise either
        assert decoded.ok != bool(decoded.reason) and "\n" not in (decoded.reason or "")
        outcomes["cut"] += "truncated WAV" in (decoded.reason or "")
    assert sum(outcomes.values()) >= 50 and outcomes["refused"] > 0 and outcomes["cut"] > 0


def test_training_killed_with_sigkill_resumes_to_the_same_result(corpus, encoder_dir, tmp_path):
    args = [
        sys.executable,
        "-m",
        "loop_svdd.cli",
        "train",
        str(corpus),
        "--normal",
        "instrument=bass",
        "--encoder",
        str(encoder_dir),
        "--hidden-dims",
        "32",
        "8",
        "--pretrain-epochs",
        "40",
        "--epochs",
        "60",
        "--seed",
        "3",
        "--no-progress",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    # The uninterrupted reference run.
    ref = subprocess.run([*args, "--output-dir", str(tmp_path / "ref")], env=env, capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr[-2000:]
    # The same run, killed mid-training once a few epochs are checkpointed, then restarted.
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [*args, "--output-dir", str(run_dir)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state_file = run_dir / "checkpoints" / "head0" / "trainer_state.json"
    deadline = time.monotonic() + 120
    killed_at = None
    while time.monotonic() < deadline and proc.poll() is None:
        if state_file.is_file():
            try:
                state = json.loads(state_file.read_text())
            except json.JSONDecodeError:
                state = {}
            if state.get("global_epoch", state.get("epoch", 0)) >= 3:
                proc.send_signal(signal.SIGKILL)
                killed_at = state
                break
        time.sleep(0.02)
    proc.wait(timeout=30)
    if killed_at is None:
        pytest.skip("training finished before it could be killed (machine too fast for this schedule)")
    assert not (run_dir / "config.json").exists()  # no half-written model that loads
    resumed = subprocess.run([*args, "--output-dir", str(run_dir)], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = load_file(tmp_path / "ref" / "model.safetensors"), load_file(run_dir / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    cfg_a = json.loads((tmp_path / "ref" / "config.json").read_text())
    cfg_b = json.loads((run_dir / "config.json").read_text())
    assert cfg_a["threshold"] == cfg_b["threshold"]  # the centres are head buffers, compared above


def test_there_is_one_decoder():
    """One `decode_file` in the package; the raw reader `load_audio` is called only by it (the demo's spectrogram
    and the defect benchmark go through it too)."""
    import ast
    from pathlib import Path

    import loop_svdd

    defs, callers = [], set()
    for path in Path(loop_svdd.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "decode_file":
                defs.append(path.name)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "load_audio":
                callers.add(f"{path.parent.name}/{path.name}")
    assert defs == ["decoding.py"] and callers == {"audio/decoding.py"}, (defs, callers)
