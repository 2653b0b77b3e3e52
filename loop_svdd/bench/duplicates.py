"""The near-duplicate benchmark: copies injected into packs of real audio, found again by
:func:`loop_svdd.curation.duplicates.find_duplicates`?

For each seed s, ``numpy.random.default_rng(s)`` draws ``originals`` files from the source folders (audio files
of at least :data:`MIN_SECONDS`), copies them unchanged into a pack, then gives ``copied`` of them one copy each
made by FFmpeg with one transformation of :data:`TRANSFORMS` (drawn in turn, parameters drawn at random). Other
files of the sources that happen to be near-copies of each other (velocity layers, re-used samples) are not
labelled: they count as false groups if linked. Metrics over all pairs of files: precision and recall of the
pairs put in one group; and per transformation the share of copies grouped with their original.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.decode import audio_duration, find_audio_files
from ..curation.duplicates import THRESHOLD, fingerprint_files, group_links, pair_links
from .report import BenchmarkError, BenchResult, add_report_options

TRANSFORMS = ("mp3", "ogg", "trim", "resample", "gain", "trim_mp3", "gain_ogg")
MIN_SECONDS = 0.5
SOURCE_RATE = 8_000  # the independent source check compares waveforms at this rate ...
SOURCE_SECONDS = 10.0  # ... over their first seconds
SOURCE_MAX_CORR = 0.7  # sources whose waveforms correlate this well (either polarity) count as one


def _ffmpeg(src: Path, dst: Path, *options: str) -> None:
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src), *options, str(dst)]
    subprocess.run(cmd, check=True)


def _trim_options(seconds: float, rng: np.random.Generator) -> list[str]:
    head, tail = rng.uniform(0.0, 0.15, size=2) * seconds
    return ["-ss", f"{head:.4f}", "-t", f"{max(seconds - head - tail, 0.3):.4f}"]


def make_copy(src: Path, out_stem: Path, kind: str, rng: np.random.Generator) -> Path:
    """Write a copy of ``src`` transformed by ``kind``; returns its path (extension chosen by the codec)."""
    seconds = audio_duration(src) or 1.0
    mp3 = ["-c:a", "libmp3lame", "-b:a", f"{int(rng.choice([96, 128, 192]))}k"]
    ogg = ["-c:a", "libvorbis", "-q:a", f"{int(rng.integers(2, 6))}"]
    gain = ["-filter:a", f"volume={float(rng.choice([-1, 1]) * rng.uniform(3, 9)):.2f}dB", "-c:a", "pcm_f32le"]
    plans: dict[str, tuple[str, list[str]]] = {
        "mp3": (".mp3", mp3),
        "ogg": (".ogg", ogg),
        "trim": (".wav", [*_trim_options(seconds, rng), "-c:a", "pcm_f32le"]),
        "resample": (".wav", ["-ar", str(int(rng.choice([22050, 32000, 44100]))), "-c:a", "pcm_s16le"]),
        "gain": (".wav", gain),
        "trim_mp3": (".mp3", [*_trim_options(seconds, rng), *mp3]),
        "gain_ogg": (".ogg", [gain[0], gain[1], *ogg]),
    }
    suffix, options = plans[kind]
    dst = out_stem.with_suffix(suffix)
    _ffmpeg(src, dst, *options)
    return dst


def waveform_correlation(a: np.ndarray, b: np.ndarray, min_overlap: float = 0.5) -> float:
    """Largest |normalised cross-correlation| of two waveforms over alignments sharing ``min_overlap`` of the
    shorter: a sample-level test, independent of the fingerprint under test."""
    from scipy.signal import fftconvolve

    a, b = (a, b) if len(a) >= len(b) else (b, a)
    a, b = a.astype(np.float64), b.astype(np.float64)
    lags = np.arange(-(len(b) - 1), len(a))
    start, stop = np.maximum(0, lags), np.minimum(len(a), len(b) + lags)
    ea, eb = np.concatenate([[0.0], np.cumsum(a * a)]), np.concatenate([[0.0], np.cumsum(b * b)])
    energy = (ea[stop] - ea[start]) * (eb[stop - lags] - eb[start - lags])
    r = np.abs(fftconvolve(a, b[::-1])) / np.sqrt(np.maximum(energy, 1e-20))
    return float(np.max(np.where(stop - start >= min_overlap * len(b), r, 0.0)))


def source_files(folders: Sequence[str | Path]) -> list[Path]:
    """Audio files of at least MIN_SECONDS under the source folders, sorted, keeping one of each set whose
    waveforms correlate above SOURCE_MAX_CORR (a library's own processed variants, e.g. a 'soft' hit made from
    the 'hard' one): unlabelled copies in the sources would otherwise count as false groups."""
    from ..audio.decoding import decode_file

    kept: list[tuple[Path, np.ndarray]] = []
    for p in find_audio_files(list(folders)):
        if (audio_duration(p) or 0.0) < MIN_SECONDS:
            continue
        decoded = decode_file(p, SOURCE_RATE)
        if not decoded.ok:
            continue
        wave = decoded.waveform[: int(SOURCE_SECONDS * SOURCE_RATE)]
        if all(waveform_correlation(wave, w) < SOURCE_MAX_CORR for _, w in kept):
            kept.append((p, wave))
    return [p for p, _ in kept]


def build_pack(sources: list[Path], root: Path, originals: int, copied: int, seed: int) -> dict[str, int]:
    """Write a pack into ``root``; returns file name -> true group (copies share their original's group)."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(sources), size=min(originals, len(sources)), replace=False)
    root.mkdir(parents=True, exist_ok=True)
    truth: dict[str, int] = {}
    for n, i in enumerate(picked):
        name = f"o{n:03d}{sources[i].suffix}"
        shutil.copyfile(sources[i], root / name)
        truth[name] = n
    for c, n in enumerate(rng.choice(len(picked), size=min(copied, len(picked)), replace=False)):
        kind = TRANSFORMS[c % len(TRANSFORMS)]
        dst = make_copy(sources[picked[n]], root / f"c{c:03d}_{kind}", kind, rng)
        truth[dst.name] = int(n)
    return truth


def _pairs(groups: Sequence[Sequence[str]]) -> set[frozenset[str]]:
    return {frozenset(p) for g in groups for p in combinations(g, 2)}


def score_groups(names: list[str], groups: list[dict[str, Any]], truth: dict[str, int]) -> dict[str, Any]:
    """Pair precision / recall of ``groups`` (indices into ``names``) against ``truth``, and per-kind hits."""
    predicted = _pairs([[names[i] for i in g["members"]] for g in groups])
    by_group: dict[int, list[str]] = {}
    for n, g in truth.items():
        by_group.setdefault(g, []).append(n)
    true = _pairs(list(by_group.values()))
    hits: dict[str, list[bool]] = {}
    for n in names:
        if n.startswith("c"):
            original = next(m for m in by_group[truth[n]] if m.startswith("o"))
            hits.setdefault(n.split("_", 1)[1].split(".")[0], []).append(frozenset((n, original)) in predicted)
    return {
        "tp": len(predicted & true),
        "predicted_pairs": len(predicted),
        "true_pairs": len(true),
        "false_pairs": sorted(sorted(p) for p in predicted - true),
        "missed_pairs": sorted(sorted(p) for p in true - predicted),
        "hits": hits,
    }


def _pooled(results: list[dict[str, Any]]) -> dict[str, Any]:
    tp, pred, true = (sum(r[k] for r in results) for k in ("tp", "predicted_pairs", "true_pairs"))
    hits: dict[str, list[bool]] = {}
    for r in results:
        for kind, h in r["hits"].items():
            hits.setdefault(kind, []).extend(h)
    return {
        "precision": tp / pred if pred else 1.0,
        "recall": tp / true if true else 1.0,
        "true_pairs": true,
        "predicted_pairs": pred,
        "recall_by_transform": {k: float(np.mean(v)) for k, v in sorted(hits.items())},
    }


def run_duplicates(
    folders: Sequence[str | Path],
    work: Path,
    seeds: Sequence[int],
    thresholds: Sequence[float] = (THRESHOLD,),
    originals: int = 60,
    copied: int = 14,
) -> dict[str, Any]:
    """Every seed's pack built under ``work`` and searched once; per threshold, pooled pair precision / recall,
    recall per transformation, and each seed's false and missed pairs."""
    sources = source_files(folders)
    if len(sources) < originals:
        raise ValueError(f"only {len(sources)} distinct source files of at least {MIN_SECONDS} s; need {originals}")
    per_threshold: dict[str, list[dict[str, Any]]] = {f"{t:g}": [] for t in thresholds}
    for s in seeds:
        root = work / f"pack-{s}"
        if root.exists():
            shutil.rmtree(root)
        truth = build_pack(sources, root, originals, copied, s)
        names = sorted(truth)
        links = pair_links(fingerprint_files([root / n for n in names]), min(thresholds))
        for t in thresholds:
            result = score_groups(names, group_links(len(names), links, t), truth)
            per_threshold[f"{t:g}"].append({"seed": s, **result})
    return {
        "protocol": "duplicates",
        "results": {t: {**_pooled(rs), "per_seed": rs} for t, rs in per_threshold.items()},
        "settings": {
            "sources": [str(f) for f in folders],
            "n_sources": len(sources),
            "seeds": list(seeds),
            "originals": originals,
            "copied": copied,
            "transforms": list(TRANSFORMS),
        },
    }


# -- the protocol: `loop-svdd benchmark duplicates` --------------------------------------------------------------
NAME = "duplicates"
DESCRIPTION = (
    "Per seed, a pack of real audio files with copies made by FFmpeg (codecs, trims, resampling, gain) injected: "
    "pair precision and recall of the near-duplicate groups, and recall per transformation."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--audio", nargs="+", metavar="DIR", help="folders of real audio the packs are drawn from")
    parser.add_argument("--work", help="where the packs are written (default: a temporary folder, removed after)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="pack seeds (default: 0-4)")
    parser.add_argument("--originals", type=int, default=60, help="distinct files per pack (default: 60)")
    parser.add_argument("--copies", type=int, default=14, help="injected copies per pack (default: 14)")
    parser.add_argument(
        "--thresholds", type=float, nargs="+", help="match thresholds to report (default: the shipped one)"
    )
    add_report_options(parser)


def duplicates_markdown(summary: dict[str, Any]) -> str:
    """One row per threshold: pair precision, recall and recall per transformation."""
    kinds = list(next(iter(summary["results"].values()))["recall_by_transform"])
    lines = ["| threshold | precision | recall | pairs found / true | " + " | ".join(kinds) + " |"]
    lines.append("|---|---|---|---|" + "---|" * len(kinds))
    for t, r in summary["results"].items():
        cells = [f"{r['recall_by_transform'][k]:.2f}" for k in kinds]
        head = f"| {t} | {r['precision']:.3f} | {r['recall']:.3f} | {r['predicted_pairs']} / {r['true_pairs']} | "
        lines.append(head + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> BenchResult:
    if not args.audio:
        raise BenchmarkError("--audio is required for the duplicates protocol (folders of real audio)")
    if args.originals < 2 or not 0 <= args.copies <= args.originals:
        raise BenchmarkError("--originals must be >= 2 and --copies between 0 and --originals")
    thresholds = args.thresholds or [THRESHOLD]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dup-bench-") as tmp:
        try:
            summary = run_duplicates(
                args.audio, Path(args.work or tmp), args.seeds, thresholds, args.originals, args.copies
            )
        except (ValueError, OSError) as err:
            raise BenchmarkError(str(err).strip().splitlines()[0]) from err
    elapsed = time.perf_counter() - start
    summary["settings"]["seconds"] = round(elapsed, 1)
    return BenchResult(NAME, summary["settings"], duplicates_markdown(summary), summary, seconds=elapsed)
