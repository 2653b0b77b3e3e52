"""The quickstart's example pack, measured: 92 bass loops of one soundfont and 8 strays of 4 kinds that curate is
not told about (2 bass loops of another soundfont, the subtle kind, and 2 each of three other kinds).

    loop-svdd benchmark quickstart-pack --seeds 0 1 2 [--work-dir DIR] [--encoder E]

Seed s builds the same pack as `loop-svdd quickstart --seed s` (the strays come from its 400-loop corpus) and
runs `curate` on it as the quickstart does; printed per seed and as the mean: stray AUROC, strays in the top 8,
and the verdicts (strays called `stray`, false calls, precision, recall).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from ..audio.corpora import load_corpus
from ..models.encoders import DEFAULT_ENCODER
from .report import BenchResult, add_report_options

NORMAL_INSTRUMENT, NORMAL_SOURCE = "bass", "FluidR3_GM"
PACK_NORMALS = 92  # + 8 strays = 100 loops
STRAYS_PER_KIND = 2
OTHER_KINDS = 3  # besides the subtle kind
CORPUS_LOOPS = 400  # the quickstart's corpus, where the strays come from


def anomaly_kinds(dataset, normal_instrument: str = NORMAL_INSTRUMENT, normal_source: str = NORMAL_SOURCE):
    """Per row: 'normal', '<instrument>' for other instruments, or '<instrument> (<source>)' for the normal
    instrument from another source (the subtle anomaly)."""
    kinds = []
    for inst, src in zip(dataset["instrument"], dataset["source"], strict=True):
        if inst == normal_instrument:
            kinds.append("normal" if src == normal_source else f"{inst} ({src})")
        else:
            kinds.append(str(inst))
    return np.array(kinds)


def build_once(corpus_dir: Path, n_loops: int, seed: int, progress: bool, **filters) -> Path:
    """`build_corpus` into `corpus_dir`, or the corpus already there when it was built with the same settings."""
    from ..corpus import build_corpus

    settings = {"loops": n_loops, "seed": seed, **filters}
    meta = corpus_dir / "quickstart.json"
    if not (meta.is_file() and json.loads(meta.read_text()) == settings):
        build_corpus(corpus_dir, n_loops, seed, progress=progress, overwrite=True, **filters)
        meta.write_text(json.dumps(settings))
    return corpus_dir


def choose_strays(kinds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows of `kinds`: `STRAYS_PER_KIND` of the subtle kind and of `OTHER_KINDS` other kinds (seeded)."""
    subtle = sorted({k for k in kinds.tolist() if "(" in k})
    others = sorted({k for k in kinds.tolist() if k != "normal" and "(" not in k})
    enough = [k for k in others if (kinds == k).sum() >= STRAYS_PER_KIND]
    if not subtle or len(enough) < OTHER_KINDS:
        raise ValueError(f"the stray corpus lacks kinds for the example pack (has: {', '.join(subtle + others)})")
    chosen = [subtle[int(rng.integers(len(subtle)))], *rng.permutation(enough)[:OTHER_KINDS].tolist()]
    return np.concatenate([rng.permutation(np.flatnonzero(kinds == k))[:STRAYS_PER_KIND] for k in chosen])


def audio_paths(dataset) -> list[str]:
    import datasets

    return [a["path"] for a in dataset.cast_column("audio", datasets.Audio(decode=False))["audio"]]


def make_example_pack(stray_corpus: Path, work_dir: Path, pack_dir: Path, seed: int, progress: bool) -> dict:
    """Write the example pack to `pack_dir` (a plain folder of `loop_NNN.ext` files, names that give nothing away)
    and return {file name: kind}. Its normal loops are rendered once into `work_dir/pack-normals`."""
    only = {"instruments": [NORMAL_INSTRUMENT], "sources": [NORMAL_SOURCE]}
    normals_dir = build_once(work_dir / "pack-normals", PACK_NORMALS, seed, progress, **only)
    strays = load_corpus(stray_corpus)
    kinds = anomaly_kinds(strays)
    rng = np.random.default_rng([seed, 0x9ACC])
    chosen = choose_strays(kinds, rng)
    sources = [(p, "normal") for p in audio_paths(load_corpus(normals_dir))]
    stray_paths = audio_paths(strays)
    sources += [(stray_paths[int(i)], str(kinds[i])) for i in chosen]
    if pack_dir.exists():
        shutil.rmtree(pack_dir)
    pack_dir.mkdir(parents=True)
    labels = {}
    for n, j in enumerate(rng.permutation(len(sources))):
        path, kind = sources[int(j)]
        name = f"loop_{n:03d}{Path(path).suffix}"
        shutil.copy2(path, pack_dir / name)
        labels[name] = kind
    return labels


def measure_curation(rows: list[dict[str, Any]], kinds: dict[str, str]) -> dict[str, Any]:
    """How curate's ranking and verdicts of the example pack came out against the known strays."""
    rows = sorted(rows, key=lambda r: r["rank"])
    names = [Path(r["file"]).name for r in rows]
    is_stray = np.array([kinds[n] != "normal" for n in names])
    called = np.array([r["verdict"] == "stray" for r in rows])
    n_strays, hits = int(is_stray.sum()), int((called & is_stray).sum())
    return {
        "n_loops": len(rows),
        "n_strays": n_strays,
        "stray_kinds": sorted({kinds[n] for n in names if kinds[n] != "normal"}),
        "auroc": float(roc_auc_score(is_stray, [r["score"] for r in rows])),
        "strays_in_top": int(is_stray[:n_strays].sum()),
        "strays_called": hits,
        "false_calls": int((called & ~is_stray).sum()),
        "precision": hits / max(int(called.sum()), 1),
        "recall": hits / max(n_strays, 1),
        "flagged": [(r["rank"], n, kinds[n]) for r, n in zip(rows, names, strict=True) if r["verdict"] == "stray"],
    }


def curate_example_pack(
    stray_corpus: Path, output_dir: Path, encoder: str, seed: int, progress: bool
) -> dict[str, Any]:
    """`curate` on the example pack in `output_dir/pack` as a producer runs it; measured against its strays."""
    from ..curation import curate

    kinds = make_example_pack(stray_corpus, output_dir, output_dir / "pack", seed, progress)
    result = curate(
        output_dir / "pack",
        output_dir / "curated",
        seed=seed,
        encoder=encoder,
        train_model=False,  # the quickstart trains its detector next; `loop-svdd curate` writes model/ too
        max_media=20,
        progress=progress,
    )
    figures = measure_curation(result.rows, kinds)
    return {
        "pack": str(output_dir / "pack"),
        "report": str(result.output_dir / "report.html"),
        "warnings": result.summary["warnings"],
        **figures,
    }


# -- the protocol: `loop-svdd benchmark quickstart-pack` ----------------------------------------------------------
NAME = "quickstart-pack"
DESCRIPTION = __doc__.splitlines()[0]
MEANS = ("auroc", "strays_in_top", "strays_called", "false_calls", "precision", "recall")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="pack seeds (default: 0 1 2)")
    parser.add_argument(
        "--work-dir", default="quickstart-pack-bench", help="corpora and packs, reused (default: quickstart-pack-bench)"
    )
    parser.add_argument("--encoder", default=DEFAULT_ENCODER, help=f"curate's encoder (default: {DEFAULT_ENCODER})")
    parser.add_argument("--no-progress", action="store_true")
    add_report_options(parser, json_required=False)


def seed_line(seed: int, m: dict[str, Any]) -> str:
    return (
        f"seed {seed}: {m['n_loops']} loops, {m['n_strays']} strays ({', '.join(m['stray_kinds'])}): stray AUROC "
        f"{m['auroc']:.3f}, {m['strays_in_top']} in the top {m['n_strays']}; called {m['strays_called']} of "
        f"{m['n_strays']} with {m['false_calls']} false (precision {m['precision']:.2f}, recall {m['recall']:.2f})"
    )


def run(args: argparse.Namespace) -> BenchResult:
    per_seed = {}
    for seed in args.seeds:
        work = Path(args.work_dir) / f"seed{seed}"
        corpus = build_once(work / "corpus", CORPUS_LOOPS, seed, not args.no_progress)
        per_seed[seed] = curate_example_pack(corpus, work, args.encoder, seed, not args.no_progress)
    mean = {k: float(np.mean([m[k] for m in per_seed.values()])) for k in MEANS}
    lines = [seed_line(s, m) for s, m in per_seed.items()]
    lines.append(
        f"mean over seeds {' '.join(map(str, args.seeds))}: stray AUROC {mean['auroc']:.3f}, "
        f"{mean['strays_called']:.1f} strays called, {mean['false_calls']:.1f} false calls "
        f"(precision {mean['precision']:.2f}, recall {mean['recall']:.2f})"
    )
    settings = {"seeds": args.seeds, "encoder": args.encoder, "work_dir": str(args.work_dir)}
    payload = {"protocol": NAME, "settings": settings, "per_seed": per_seed, "mean": mean}
    return BenchResult(NAME, settings, "\n".join(lines), payload)
