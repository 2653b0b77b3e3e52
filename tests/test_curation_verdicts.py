"""Curation verdicts (calibrated stray rules, reasons in words) and near-duplicates (fingerprints, groups,
the duplicates benchmark protocol)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

RATE = 22_050


def _music(seed: int, seconds: float = 3.0) -> np.ndarray:
    """A distinct little tune per seed: random notes with harmonics and decays, plus a noisy hat."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    wave = np.zeros_like(t)
    beat = 60.0 / rng.uniform(90, 140)
    for k, start in enumerate(np.arange(0.0, seconds, beat / 2)):
        on = t >= start
        f = 110.0 * 2 ** (rng.integers(0, 24) / 12)
        env = np.exp(-rng.uniform(3, 12) * (t - start)) * on
        wave += env * (np.sin(2 * np.pi * f * t) + 0.4 * np.sin(2 * np.pi * 3 * f * t))
        if k % 2:
            wave += 0.2 * rng.standard_normal(t.size) * np.exp(-40 * (t - start)) * on
    return (0.3 * wave / np.abs(wave).max()).astype(np.float32)


def _ffmpeg(src: Path, dst: Path, *options: str) -> Path:
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src), *options, str(dst)]
    subprocess.run(cmd, check=True)
    return dst


@pytest.fixture(scope="module")
def dup_pack(tmp_path_factory) -> Path:
    """6 distinct tunes; tune 0 has an mp3 and a trimmed + quieter copy, tune 1 an ogg, tune 2 a resampled one."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("dups")
    for i in range(6):
        sf.write(root / f"tune{i}.wav", _music(i), RATE)
    _ffmpeg(root / "tune0.wav", root / "tune0_copy.mp3", "-c:a", "libmp3lame", "-b:a", "128k")
    gain_trim = ["-ss", "0.4", "-t", "2.2", "-filter:a", "volume=-6dB", "-c:a", "pcm_f32le"]
    _ffmpeg(root / "tune0.wav", root / "tune0_cut.wav", *gain_trim)
    _ffmpeg(root / "tune1.wav", root / "tune1_copy.ogg", "-c:a", "libvorbis", "-q:a", "3")
    _ffmpeg(root / "tune2.wav", root / "tune2_44k.wav", "-ar", "44100")
    return root


def test_fence_catches_a_loud_stray_and_metrics():
    from loop_svdd.curation.verdicts import RULES, stray_verdicts, verdict_metrics

    rng = np.random.default_rng(0)
    scores = np.exp(rng.normal(0.0, 0.4, 60))
    scores[:3] = 13.0 * np.median(scores)  # the drum loop: 13x the pack's median
    labels = np.zeros(60, int)
    labels[:3] = 1
    stray = stray_verdicts(scores)
    assert stray[:3].all() and stray.sum() <= 5
    m = verdict_metrics(stray, labels)
    assert m["verdict_recall"] == 1.0 and m["verdict_precision"] >= 0.6
    for rule in RULES:  # every rule catches strays this far out and leaves most of the pack alone
        mask = stray_verdicts(scores, rule)
        assert mask[:3].all() and mask.sum() <= 10, rule
    assert verdict_metrics(np.zeros(60, bool), labels) == {
        "verdict_precision": 0.0,
        "verdict_recall": 0.0,
        "verdict_f1": 0.0,
    }
    with pytest.raises(ValueError, match="unknown verdict rule"):
        stray_verdicts(scores, "vibes")


def test_reasons_in_words():
    from loop_svdd.curation.verdicts import neighbour_ratio, reason

    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 16)) * 0.1 + 1.0
    x[0] = -x[0]  # one embedding far from every other
    ratio = neighbour_ratio(x)
    assert ratio[0] > 3 and abs(np.median(ratio) - 1.0) < 1e-9
    said = reason("stray", 13.04, 3.14)
    assert said.startswith("Does not fit") and "13.0x a typical loop" in said and "3.1x further than typical" in said
    assert reason("fits", 1.0, 1.0).startswith("Fits") and "about as close as usual" in reason("fits", 1.0, 1.0)


def test_duplicates_found_in_groups(dup_pack):
    from loop_svdd.curation.duplicates import describe_link, find_duplicates, fingerprint_files

    names = sorted(p.name for p in dup_pack.iterdir())
    groups = find_duplicates(fingerprint_files([dup_pack / n for n in names]))
    found = sorted(sorted(names[i] for i in g["members"]) for g in groups)
    assert found == [
        ["tune0.wav", "tune0_copy.mp3", "tune0_cut.wav"],
        ["tune1.wav", "tune1_copy.ogg"],
        ["tune2.wav", "tune2_44k.wav"],
    ]
    cut = next(link for g in groups for link in g["links"] if names[link["b"]] == "tune0_cut.wav")
    assert names[cut["a"]] in {"tune0.wav", "tune0_copy.mp3"}
    assert cut["offset_s"] == pytest.approx(0.4, abs=0.03) and cut["gain_db"] == pytest.approx(-6.0, abs=1.0)
    said = describe_link(cut, names)
    assert "starting 0.40 s into it" in said and "dB quieter" in said


def test_pairs_already_joined_are_not_compared_and_the_groups_stay(dup_pack, monkeypatch):
    from loop_svdd.curation import duplicates

    fps = duplicates.fingerprint_files(sorted(dup_pack.iterdir()))
    every = duplicates.group_links(len(fps), duplicates.pair_links(fps))
    compared, compare = [], duplicates.compare
    monkeypatch.setattr(duplicates, "compare", lambda a, b: compared.append(1) or compare(a, b))
    monkeypatch.setattr(duplicates, "BATCH_PAIRS", 1)  # look at the joins before every pair
    groups = duplicates.find_duplicates(fps)
    assert [g["members"] for g in groups] == [g["members"] for g in every] and len(groups) == 3
    assert [len(g["links"]) for g in groups] == [2, 1, 1]  # the 3 copies of tune0: 2 links, not 3
    assert len(compared) == len(fps) * (len(fps) - 1) // 2 - 1  # one pair inside tune0's group was skipped


def test_duplicates_benchmark_cli(dup_pack, tmp_path, capsys):
    from loop_svdd.cli import main

    sources = tmp_path / "sources"
    sources.mkdir()
    for p in sorted(dup_pack.glob("tune?.wav")):
        (sources / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "dup.json"
    argv = ["benchmark", "--protocol", "duplicates", "--audio", str(sources), "--json", str(out), "--seeds", "3"]
    assert main([*argv, "--originals", "6", "--copies", "4", "--thresholds", "0.95", "0.5"]) == 0
    result = json.loads(out.read_text())
    strict = result["results"]["0.95"]
    assert result["protocol"] == "duplicates" and result["settings"]["n_sources"] == 6
    assert strict["true_pairs"] == 4 and strict["precision"] == 1.0 and strict["recall"] == 1.0
    assert set(strict["recall_by_transform"]) == {"mp3", "ogg", "trim", "resample"}
    assert result["results"]["0.5"]["recall"] == 1.0
    assert "| 0.95 | 1.000 | 1.000 | 4 / 4 |" in capsys.readouterr().out
    assert main(["benchmark", "--protocol", "duplicates", "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--audio is required" in err and "Traceback" not in err
