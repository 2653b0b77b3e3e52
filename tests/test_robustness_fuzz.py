"""Corpus-level fuzz: seeded random folders mixing good, silent, huge, partly truncated (decodable, but shorter
than their header promises: named and skipped), empty, header-truncated and wrong-format files. Each run must
either finish with every good file used and every bad one named with a plain reason, or stop with one clear line
(exit 2) and no output; never a traceback. Also: `embed` killed with SIGKILL and rerun gives byte-identical
output."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, synth_loop
from test_robustness_entrypoints import TRAIN, run_cli

GOOD_KINDS = ("good", "silent", "huge")
BAD_KINDS = ("truncated-data", "empty", "truncated-header", "truncated-mid-sample", "wrong-format")
PLAIN_REASONS = (
    "empty file",
    "no audio samples",
    "cannot decode audio: ",
    "the audio contains NaN",
    "truncated WAV file: the header promises ",
)
OUTPUTS = {"embed": ("nff.npy", "index.csv", "skipped.csv"), "train": ("config.json", "model.safetensors")}


def _fuzz_file(folder: Path, i: int, kind: str, rng: np.random.Generator, huge_s: float) -> Path:
    ext = str(rng.choice([".wav", ".flac", ".ogg"]))
    path = folder / f"f{i:02d}-{kind}{ext}"
    sr = int(rng.choice([8000, 22050, 44100, SR]))
    if kind in ("good", "truncated-data", "truncated-header", "truncated-mid-sample"):
        wave = synth_loop(float(rng.uniform(0.5, 4.0)), seed=i, freq=float(rng.uniform(50, 200)), sr=sr)
        if kind != "good":
            path = path.with_suffix(".wav")  # cut 16-bit WAVs: shorter than the header promises, or a cut sample
        sf.write(path, wave, sr)
        if kind != "good":
            data = path.read_bytes()
            cut = 2 * int(len(data) * rng.uniform(0.25, 0.45))  # even: whole 16-bit samples after the 44-byte header
            cut = {"truncated-header": int(rng.integers(1, 40)), "truncated-mid-sample": cut + 1}.get(kind, cut)
            path.write_bytes(data[:cut])
    elif kind == "silent":
        sf.write(path, np.zeros(int(sr * rng.uniform(0.5, 3.0)), np.float32), sr)
    elif kind == "huge":
        path = path.with_suffix(".flac")
        sf.write(path, np.tile(synth_loop(1.0, seed=i, sr=8000), int(huge_s)), 8000, "PCM_16")
    elif kind == "empty":
        path.write_bytes(b"")
    else:  # wrong-format: text, an image, or random bytes under an audio extension
        png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")
        path.write_bytes([b"not audio\n" * 30, png, rng.bytes(int(rng.integers(1, 3000)))][i % 3])
    return path


def fuzz_corpus(
    root: Path, seed: int, n_min: int = 2, n_max: int = 8, huge_s: float = 150.0, only_bad: bool = False
) -> tuple[set[str], set[str]]:
    """A random folder of n_min..n_max files (only bad ones with `only_bad`); returns (good names, bad names)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    choices = BAD_KINDS if only_bad else GOOD_KINDS + BAD_KINDS
    weights = None if only_bad else [0.3, 0.1, 0.05, 0.1, 0.1, 0.1, 0.1, 0.15]
    kinds = rng.choice(choices, size=int(rng.integers(n_min, n_max + 1)), p=weights)
    if "huge" in kinds[1:]:
        kinds[1:][kinds[1:] == "huge"] = "good"  # at most one huge file per folder keeps the run short
    files = [_fuzz_file(root, i, str(k), rng, huge_s) for i, k in enumerate(kinds)]
    good = {f.name for f, k in zip(files, kinds, strict=True) if k in GOOD_KINDS}
    return good, {f.name for f in files} - good


def check_run(command: str, out: Path, code: int, stderr: str, good: set[str], bad: set[str], need: int) -> dict:
    """The run's outcome against the folder's truth; returns counts for the tally."""
    assert "Traceback" not in stderr, stderr
    if len(good) < need:
        line = stderr.strip().splitlines()[-1]
        assert code == 2 and line.startswith(f"loop-svdd {command}: error: ") and f"need at least {need}" in line
        assert not any((out / name).exists() for name in OUTPUTS[command]), "half-written output"
        return {"good": len(good), "bad": len(bad), "used": 0, "named": len(bad), "stopped": 1, "held": len(good)}
    assert code == 0, stderr
    named = {}
    for line in stderr.splitlines():
        if line.startswith(f"loop-svdd {command}: skipped "):
            file, reason = line.removeprefix(f"loop-svdd {command}: skipped ").split(": ", 1)
            named[Path(file).name] = reason
    assert set(named) == bad and all(r.startswith(PLAIN_REASONS) for r in named.values()), named
    if command == "embed":
        with open(out / "index.csv", newline="") as f:
            used = {r["file"] for r in csv.DictReader(f)}
        with open(out / "skipped.csv", newline="") as f:
            assert {Path(r["file"]).name for r in csv.DictReader(f)} == bad
    else:
        summary = json.loads((out / "training_summary.json").read_text())
        used = set(summary["train_files"]) | set(summary["heldout_files"])
        assert {Path(s["file"]).name for s in summary["skipped_files"]} == bad
    assert used == good
    return {"good": len(good), "bad": len(bad), "used": len(used), "named": len(named), "stopped": 0, "held": 0}


def tally(name: str, counts: list[dict]) -> None:
    total = {k: sum(c[k] for c in counts) for k in counts[0]}
    lost = total["good"] - total["used"] - total["held"] + total["bad"] - total["named"]  # held: too few to run
    n_files = total["good"] + total["bad"]
    print(
        f"\n{name}: {len(counts)} runs, {n_files} files ({total['good']} good, {total['bad']} bad):"
        f" {total['used']} used, {total['named']} named with a reason, {total['stopped']} run(s) stopped with a"
        f" one-line error ({total['held']} good file(s) in them, too few to run), lost: {lost}"
    )
    assert lost == 0


def test_fuzzed_folders_through_embed(encoder_dir, tmp_path):
    counts = []
    for seed in range(7):
        good, bad = fuzz_corpus(tmp_path / f"c{seed}", seed, only_bad=seed == 6)
        out = tmp_path / f"out{seed}"
        code, _, stderr = run_cli(
            ["embed", tmp_path / f"c{seed}", "--output-dir", out, "--encoder", encoder_dir, "--no-progress"]
        )
        counts.append(check_run("embed", out, code, stderr, good, bad, need=1))
    tally("embed fuzz (seeds 0-6, 6: only bad files)", counts)


@pytest.mark.slow
def test_fuzzed_folders_through_train(encoder_dir, tmp_path):
    counts = []
    for seed in range(100, 105):
        good, bad = fuzz_corpus(tmp_path / f"c{seed}", seed, n_min=9, n_max=14, huge_s=60.0, only_bad=seed == 104)
        out = tmp_path / f"out{seed}"
        args = ["train", tmp_path / f"c{seed}", "--output-dir", out, "--encoder", encoder_dir, "--holdout", "0"]
        code, _, stderr = run_cli([*args, *TRAIN])
        counts.append(check_run("train", out, code, stderr, good, bad, need=4))
    tally("train fuzz (seeds 100-104, 104: only bad files)", counts)


@pytest.mark.slow
def test_embed_killed_with_sigkill_reruns_to_identical_output(encoder_dir, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(16):
        sf.write(corpus / f"loop{i:02d}.flac", synth_loop(8.0, seed=i, freq=60.0 + 7 * i), SR)
    (corpus / "broken.wav").write_bytes(b"RIFF" + bytes(20))

    def command(out: Path, cache: Path) -> tuple[list[str], dict]:
        args = [sys.executable, "-m", "loop_svdd.cli", "embed", str(corpus), "--output-dir", str(out)]
        env = {**os.environ, "HF_DATASETS_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        return [*args, "--encoder", str(encoder_dir), "--batch-size", "2", "--no-progress"], env

    args, env = command(tmp_path / "ref", tmp_path / "cache-ref")
    ref = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]
    out, cache = tmp_path / "run", tmp_path / "cache-run"
    args, env = command(out, cache)
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed, deadline = False, time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        # the embedding map writes its Arrow file under a temporary name while it runs
        if any(p.name.startswith("tmp") for p in cache.rglob("*")) if cache.exists() else False:
            time.sleep(0.5)  # a few batches in
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    proc.wait(timeout=30)
    if not killed or proc.returncode != -signal.SIGKILL:
        pytest.skip("embed finished before it could be killed (machine too fast for this corpus)")
    present = [name for name in OUTPUTS["embed"] if (out / name).exists()]
    if present:  # the kill landed after the last atomic rename, while the process was exiting: outputs are whole
        assert sorted(present) == sorted(OUTPUTS["embed"]), present  # never a part of them (nothing half-written)
        for name in present:
            assert (out / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    for name in OUTPUTS["embed"]:
        assert (out / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    assert "skipped" in again.stderr and "broken.wav" in again.stderr
