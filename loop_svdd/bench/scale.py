"""How `curate` grows with the library: a library built from real audio, curated end to end at each size.

    loop-svdd benchmark scale --source DIR --sizes 1000 10000 --work DIR --json OUT.json [--pack-size 100]
        [--jobs auto|N] [--processes N]

For each size n, ``numpy.random.default_rng(seed)`` builds a library of n loops in packs of ``--pack-size``
under ``WORK/library-<n>``: each pack draws a quarter of its size of real loops from ``--source`` (any folder of
audio, e.g. the quickstart's corpus) and adds, for each, transformed copies made by FFmpeg (pitch and tempo,
tempo alone, gain, trim, MP3 and Ogg Vorbis), so packs hold loops of many kinds and the library holds the
near-duplicates a real one does. Then ``loop-svdd curate LIBRARY --packs 1`` runs in a fresh process, timed.
Stages are the seconds ``curate`` writes into ``ranking.json`` (summed over packs): ``hash`` (content hashes),
``decode`` (FFmpeg, in a background thread beside the encoder),
``encode`` (front end and encoder), ``rank`` (fit and score: the cross-fitted detectors and verdicts),
``duplicates``, ``report``. With several processes (curate's ``--jobs``, default auto: one per core; or
``--processes N`` under torch's launcher) each curates every N-th pack (:mod:`loop_svdd.curation.sharding`): the
pack stages are then process-seconds summed over them, ``embed_loops_per_s`` is the rate of all of them together
(per process times processes), the wall time is the whole run's and peak RSS is that of all its processes
together (sampled every 0.25 s; the largest single process's is beside it). The growth exponent
of a stage between two sizes is log(t2 / t1) / log(n2 / n1); ``projected_minutes_100k`` extends each stage from
the largest size with its last exponent (at least 1).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.decode import find_audio_files
from ..settings import CURATE
from .duplicates import _ffmpeg, make_copy
from .report import BenchmarkError, BenchResult, add_report_options

NAME = "scale"
DESCRIPTION = "curate a library built from real audio at several sizes: seconds per stage, peak RSS, growth"
SETTINGS = ("source", "sizes", "pack_size", "encoder", "repeats", "seed", "processes", "jobs")
COPIES = ("pitch", "tempo", "gain", "trim", "mp3", "ogg")
STAGES = {  # report name -> the key in ranking.json's seconds
    "hash": "packs.embedding.hash",
    "decode": "packs.embedding.decode",
    "encode": "packs.embedding.encode",
    "embedding": "packs.embedding",
    "rank": "packs.rank",
    "duplicates": "duplicates",
    "report": "report",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, help="a folder of real audio loops the library is made from")
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000], help="library sizes (default: 1000 10000)")
    p.add_argument("--pack-size", type=int, default=100, help="loops per pack (default: 100)")
    p.add_argument("--work", required=True, help="where libraries and outputs are written (outside the source)")
    p.add_argument("--encoder", help="encoder for curate (default: curate's own choice)")
    p.add_argument("--repeats", type=int, default=CURATE.repeats, help="curate's --repeats (default: curate's own)")
    p.add_argument("--seed", type=int, default=0, help="seed of the library (default: 0)")
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="curate under torch's launcher with this many processes, each curating a share of the packs (default: 1)",
    )
    p.add_argument("--jobs", default="auto", help="curate's --jobs: processes on this machine (default: curate's auto)")
    add_report_options(p)


def _pitch_or_tempo(src: Path, stem: Path, kind: str, rng: np.random.Generator) -> Path:
    """A copy of ``src`` a few semitones up or down (pitch and tempo, as a sampler plays it) or 5-15 % faster or
    slower at the same pitch, as FLAC."""
    step = float(rng.choice([-1, 1]) * rng.uniform(1, 3))
    if kind == "pitch":
        options = ["-filter:a", f"aresample=48000,asetrate=48000*{2 ** (step / 12):.5f},aresample=48000"]
    else:
        options = ["-filter:a", f"atempo={1 + step * 0.05:.4f}"]
    dst = stem.with_suffix(".flac")
    _ffmpeg(src, dst, *options, "-ar", "48000", "-c:a", "flac")
    return dst


def build_library(sources: list[Path], root: Path, n: int, pack_size: int, seed: int) -> int:
    """Write a library of ``n`` loops (packs of ``pack_size``) into ``root``; returns the number written."""
    rng, written = np.random.default_rng(seed), 0
    for p in range(math.ceil(n / pack_size)):
        pack = root / f"pack{p:05d}"
        pack.mkdir(parents=True, exist_ok=True)
        size = min(pack_size, n - written)
        for k in range(size):
            src = sources[int(rng.integers(len(sources)))]
            stem = pack / f"loop{k:03d}"
            kind = COPIES[int(rng.integers(len(COPIES)))] if k % 4 else "original"
            if kind == "original":
                shutil.copyfile(src, stem.with_suffix(src.suffix))
            elif kind in ("pitch", "tempo"):
                _pitch_or_tempo(src, stem, kind, rng)
            else:
                make_copy(src, stem, kind, rng)
        written += size
    return written


def pack_seconds(out: Path) -> dict[str, float]:
    """The stages of every pack's ``ranking.json`` under ``out/packs``, summed as ``packs.<stage>`` (what a
    library's ranking.json sums; here also the packs that processes of a sharded run curated)."""
    total: dict[str, float] = {}
    for ranking in (out / "packs").rglob("ranking.json"):
        for key, value in json.loads(ranking.read_text()).get("seconds", {}).items():
            total[f"packs.{key}"] = total.get(f"packs.{key}", 0.0) + float(value)
    return total


def tree_rss_mb(pid: int) -> float:
    """Resident memory of process `pid` and all its descendants, in MB (0 once it has gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for proc in tree:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:  # ended between the listing and the reading
            pass
    return total / 2**20


def watch_tree_rss(pid: int, peak: list[float], every_s: float = 0.25) -> threading.Thread:
    """A thread that keeps ``peak[0]`` at the largest :func:`tree_rss_mb` of `pid` seen while it runs."""

    def sample() -> None:
        while (mb := tree_rss_mb(pid)) > 0:
            peak[0] = max(peak[0], mb)
            time.sleep(every_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    return thread


def curate_command(library: Path, out: Path, encoder: str | None, repeats: int, processes: int, jobs: str) -> list:
    cmd = [sys.executable, "-c", "import sys; from loop_svdd.cli import main; sys.exit(main())"]
    if processes > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "-m", "loop_svdd.cli"]
    cmd += ["curate", str(library), "--output-dir", str(out), "--packs", "1", "--repeats", str(repeats)]
    cmd += ["--jobs", str(jobs), "--no-progress"]
    return cmd + (["--encoder", encoder] if encoder else [])


def curate_timed(
    library: Path, out: Path, encoder: str | None, repeats: int, processes: int = 1, jobs: str = "auto"
) -> dict[str, Any]:
    """Run ``loop-svdd curate`` on ``library`` in a fresh process (``processes`` > 1: under torch's launcher;
    ``jobs``: curate's own processes): its wall seconds, peak RSS (of all its processes together, sampled, and of
    its largest) and stages."""
    start, peak = time.perf_counter(), [0.0]
    with open(out.with_suffix(".log"), "w") as log:
        proc = subprocess.Popen(curate_command(library, out, encoder, repeats, processes, jobs), stdout=log, stderr=log)
        watcher = watch_tree_rss(proc.pid, peak)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    watcher.join(timeout=5)
    if os.waitstatus_to_exitcode(status) != 0:
        raise BenchmarkError(f"curate failed on {library} (see {out.with_suffix('.log')})")
    summary = json.loads((out / "ranking.json").read_text())
    seconds = {**summary["seconds"], **pack_seconds(out)}
    stages = {name: float(seconds.get(key, 0.0)) for name, key in STAGES.items()}
    largest = usage.ru_maxrss / 1024
    return {
        "wall_s": wall,
        "peak_rss_mb": max(peak[0], largest),
        "peak_rss_mb_largest_process": largest,
        "stages": stages,
        "n_loops": summary["n_loops"],
    }


def growth(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per stage: seconds at each size and the exponent between the last two sizes (None with one size)."""
    out = {}
    for stage in [*STAGES, "wall_s"]:
        secs = [r["wall_s"] if stage == "wall_s" else r["stages"][stage] for r in runs]
        exponent = None
        if len(runs) > 1 and min(secs[-2:]) > 0:
            exponent = math.log(secs[-1] / secs[-2]) / math.log(runs[-1]["n"] / runs[-2]["n"])
        out[stage] = {"seconds": secs, "exponent": exponent}
    return out


PACK_STAGES = ("embedding", "rank")  # run in every process of a parallel run; the others in one
GROWN_STAGES = (*PACK_STAGES, "duplicates", "report")


def parallel_processes(args: argparse.Namespace, n_packs: int) -> int:
    """How many processes curated packs side by side: the launcher's, else curate's own ``--jobs``."""
    from ..curation.processes import resolve_jobs

    return args.processes if args.processes > 1 else resolve_jobs(args.jobs, False, n_packs)


def projected_minutes(runs: list[dict[str, Any]], stages: dict[str, dict[str, Any]], n: int = 100_000) -> float:
    """Minutes at ``n`` loops: each stage from the largest size, grown with its exponent (at least 1); the pack
    stages' seconds (summed over processes) count as wall time divided by the processes that shared them."""
    last = runs[-1]
    wall_of = {s: last["stages"][s] / (last.get("parallel", 1) if s in PACK_STAGES else 1) for s in GROWN_STAGES}
    total = last["wall_s"] - sum(wall_of.values())
    for s in GROWN_STAGES:
        total += wall_of[s] * (n / last["n"]) ** max(stages[s]["exponent"] or 1.0, 1.0)
    return total / 60


def _table(runs: list[dict[str, Any]], stages: dict[str, dict[str, Any]]) -> str:
    head = "| stage | " + " | ".join(f"{r['n']} loops (s)" for r in runs) + " | exponent |"
    lines = [head, "|---" * (len(runs) + 2) + "|"]
    for name, st in stages.items():
        exponent = "-" if st["exponent"] is None else f"{st['exponent']:.2f}"
        lines.append(f"| {name} | " + " | ".join(f"{s:.1f}" for s in st["seconds"]) + f" | {exponent} |")
    lines.append("| peak RSS, all processes (MB) | " + " | ".join(f"{r['peak_rss_mb']:.0f}" for r in runs) + " | |")
    largest = " | ".join(f"{r['peak_rss_mb_largest_process']:.0f}" for r in runs)
    lines.append(f"| peak RSS, largest process (MB) | {largest} | |")
    lines.append("| processes curating packs | " + " | ".join(str(r["parallel"]) for r in runs) + " | |")
    lines.append("| loops embedded / s | " + " | ".join(f"{r['embed_loops_per_s']:.1f}" for r in runs) + " | |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> BenchResult:
    sources, work = find_audio_files([args.source]), Path(args.work)
    if not sources:
        raise BenchmarkError(f"{args.source}: no audio files to build a library from")
    if min(args.sizes) < args.pack_size or args.pack_size < 20 or args.processes < 1:
        raise BenchmarkError("--pack-size must be at least 20, every size at least one pack, --processes >= 1")
    start, runs = time.perf_counter(), []
    for n in sorted(args.sizes):
        library, out = work / f"library-{n}", work / f"curated-{n}"
        for folder in (library, out):  # from scratch: a cache left by an earlier run would hide the cost
            shutil.rmtree(folder, ignore_errors=True)
        t0 = time.perf_counter()
        written = build_library(sources, library, n, args.pack_size, args.seed)
        print(f"  library of {written} loops built in {time.perf_counter() - t0:.0f} s", flush=True)
        result = {"n": written, **curate_timed(library, out, args.encoder, args.repeats, args.processes, args.jobs)}
        result["parallel"] = parallel_processes(args, math.ceil(written / args.pack_size))
        per_process = result["n_loops"] / max(result["stages"]["embedding"], 1e-9)
        result["embed_loops_per_s"] = per_process * result["parallel"]
        result["embed_loops_per_s_per_process"] = per_process
        runs.append(result)
        rss = result["peak_rss_mb"]
        print(f"  n={written}: curated in {result['wall_s']:.0f} s, peak RSS {rss:.0f} MB", flush=True)
    stages = growth(runs)
    payload = {
        "sizes": [r["n"] for r in runs],
        "runs": runs,
        "stages": stages,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "embed_loops_per_s": runs[-1]["embed_loops_per_s"],
        "projected_minutes_100k": projected_minutes(runs, stages),
        "settings": {k: getattr(args, k) for k in SETTINGS},
    }
    table = _table(runs, stages) + f"\nprojected minutes at 100,000 loops: {payload['projected_minutes_100k']:.0f}\n"
    return BenchResult(NAME, payload["settings"], table, payload, "# Scale\n\n", time.perf_counter() - start)
