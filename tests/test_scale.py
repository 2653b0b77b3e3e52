"""Scaling past one process: embedding under a 2-process CPU launch, and streamed corpora."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from loop_svdd.cli import main


def _read(out):
    with open(out / "index.csv", newline="") as f:
        return np.load(out / "nff.npy", allow_pickle=False), list(csv.DictReader(f))


def test_embed_single_process_and_streaming_agree(corpus, encoder_dir, tmp_path):
    assert (
        main(
            ["embed", str(corpus), "--encoder", str(encoder_dir), "--output-dir", str(tmp_path / "a"), "--no-progress"]
        )
        == 0
    )
    joined = ["--label-column", "instrument+bars", "--no-progress"]
    embed = ["embed", str(corpus), "--encoder", str(encoder_dir)]
    assert main([*embed, "--output-dir", str(tmp_path / "j"), *joined]) == 0
    assert main([*embed, "--output-dir", str(tmp_path / "js"), "--streaming", *joined]) == 0
    folders = [r["folder"] for r in _read(tmp_path / "j")[1]]
    assert folders[:2] == ["bass@1", "bass@2"] and folders[-1] == "keys@2"
    assert folders == [r["folder"] for r in _read(tmp_path / "js")[1]]
    assert (
        main(
            [
                "embed",
                str(corpus),
                "--encoder",
                str(encoder_dir),
                "--output-dir",
                str(tmp_path / "s"),
                "--streaming",
                "--no-progress",
            ]
        )
        == 0
    )
    (a, index_a), (s, index_s) = _read(tmp_path / "a"), _read(tmp_path / "s")
    assert a.shape == (30, 128) and np.allclose(a, s, atol=1e-6)
    assert [r["folder"] for r in index_a] == [r["folder"] for r in index_s]
    assert index_a[0]["file"] == "loop00.flac"
    # The output is the benchmark's input format.
    assert (
        main(
            [
                "benchmark",
                "one-vs-rest",
                "--embeddings",
                str(tmp_path / "a"),
                "--seeds",
                "0",
                "--detectors",
                "pca",
                "knn",
                "--json",
                str(tmp_path / "bench.json"),
            ]
        )
        == 0
    )


def test_embed_under_two_processes_matches_one(corpus, encoder_dir, tmp_path):
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "true",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    for name, launcher in (("one", []), ("two", ["-m", "torch.distributed.run", "--nproc_per_node", "2"])):
        cmd = [
            sys.executable,
            *launcher,
            *(["-m"] if not launcher else ["-m"]),
            "loop_svdd.cli",
            "embed",
            str(corpus),
            "--encoder",
            str(encoder_dir),
            "--output-dir",
            str(tmp_path / name),
            "--no-progress",
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    (one, index_one), (two, index_two) = _read(tmp_path / "one"), _read(tmp_path / "two")
    assert "from 2 process(es)" in proc.stdout
    assert index_one == index_two and np.allclose(one, two, atol=1e-6)


@pytest.mark.slow
def test_benchmark_scale_curates_growing_libraries(tmp_path, encoder_dir):
    import json

    import soundfile as sf
    from conftest import SR, synth_loop

    source = tmp_path / "source"
    source.mkdir()
    for i in range(6):
        sf.write(source / f"s{i}.wav", synth_loop(2.0 + 0.3 * i, seed=i, freq=55.0 * (1 + i)), SR)
    out, work = tmp_path / "scale.json", tmp_path / "work"
    args = ["benchmark", "scale", "--source", str(source), "--sizes", "20", "40", "--pack-size", "20"]
    args += ["--work", str(work), "--encoder", str(encoder_dir), "--repeats", "1", "--json", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert result["sizes"] == [20, 40] and [r["n_loops"] for r in result["runs"]] == [20, 40]
    assert {"decode", "encode", "embedding", "rank", "duplicates", "report"} <= set(result["stages"])
    assert all(st["exponent"] is not None for st in result["stages"].values())
    assert result["peak_rss_mb"] > 50 and result["embed_loops_per_s"] > 0 and result["projected_minutes_100k"] > 0
    files = [p for p in (work / "library-40").rglob("*") if p.is_file()]
    assert len(files) == 40 and {".mp3", ".ogg", ".flac", ".wav"} <= {p.suffix for p in files}
    cores = min(os.cpu_count() or 1, 2)  # --jobs auto: one process per core, at most one per pack
    assert [r["parallel"] for r in result["runs"]] == [1, cores]
    assert all(r["peak_rss_mb"] >= r["peak_rss_mb_largest_process"] > 50 for r in result["runs"])
    # under torch's launcher: the packs' stages are read from each pack, whichever process curated it
    args = ["benchmark", "scale", "--source", str(source), "--sizes", "40", "--pack-size", "20", "--work", str(work)]
    args += ["--encoder", str(encoder_dir), "--repeats", "1", "--json", str(tmp_path / "launched.json")]
    args += ["--processes", "2"]
    assert main(args) == 0
    launched = json.loads((tmp_path / "launched.json").read_text())["runs"][0]
    assert launched["parallel"] == 2 and launched["n_loops"] == 40 and launched["stages"]["rank"] > 0
