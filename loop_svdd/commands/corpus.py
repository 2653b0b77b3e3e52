"""`loop-svdd corpus build OUT_DIR` and `loop-svdd corpus push OUT_DIR --repo-id ID`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .common import CLIError


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "corpus",
        help="build (or push) the real-instrument loop corpus",
        description="Build an audiofolder corpus of musical loops from Debian's soundfonts, Hydrogen drum kits "
        "and Sonic Pi recordings, or push one to the Hub.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = actions.add_parser("build", help="render a corpus to OUT_DIR (FLAC + metadata.csv + README.md)")
    b.add_argument("out_dir", metavar="OUT_DIR")
    b.add_argument("--loops", type=int, default=400, help="number of loops (default 400)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--instruments", type=_csv, default=None, help="comma list, e.g. bass,guitar,keys,drums")
    b.add_argument(
        "--sources",
        type=_csv,
        default=None,
        help="comma list of source kinds (soundfont, drumkit, recording) or names (FluidR3_GM, TimGM6mb, "
        "a Hydrogen kit, sonic-pi)",
    )
    b.add_argument("--soundfonts", type=_csv, default=None, help="soundfont names or .sf2 paths")
    b.add_argument("--workers", type=int, default=2, help="parallel renderers (default 2)")
    b.add_argument("--overwrite", action="store_true", help="replace a corpus already in OUT_DIR")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=run_build)
    d = actions.add_parser(
        "build-distillation",
        help="render the broad audio set the default encoder is distilled on (about 2,700 clips, ~5 min)",
        description="Every General MIDI program of four soundfonts, Hydrogen drum grooves, Sonic Pi recordings, "
        "excerpts of six game soundtracks, and processed copies and mixes of them; never the sources kept out for "
        "the leave-sources-out measurement (OPL3 and csound soundfonts; hyperrogue, singularity, asc, drascula).",
    )
    d.add_argument("out_dir", metavar="OUT_DIR")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument(
        "--games", nargs="+", default=None, metavar="GAME",
        help="game soundtracks to excerpt (default: wesnoth planetblupi nexuiz ufoai supertux lincity-ng; never a "
        "held-out one)",
    )  # fmt: skip
    d.add_argument("--overwrite", action="store_true", help="replace a corpus already in OUT_DIR")
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=run_build_distillation)
    h = actions.add_parser("push", help="push a built corpus to the Hub with datasets' push_to_hub")
    h.add_argument("out_dir", metavar="OUT_DIR")
    h.add_argument("--repo-id", required=True)
    h.add_argument("--private", action="store_true")
    h.add_argument("--token", default=None)
    h.set_defaults(func=run_push)


def run_build(args: argparse.Namespace) -> int:
    from ..corpus import CorpusError, build_corpus

    start = time.perf_counter()
    try:
        out = build_corpus(
            args.out_dir,
            args.loops,
            args.seed,
            instruments=args.instruments,
            sources=args.sources,
            soundfonts=args.soundfonts,
            progress=not args.no_progress,
            num_workers=args.workers,
            overwrite=args.overwrite,
        )
    except CorpusError as err:
        raise CLIError(str(err)) from err
    return _report_written(out, "loops", start)


def _report_written(out, what: str, start: float) -> int:
    """Print how many rows the corpus at `out` has (its metadata.csv) and how long it took; exit status 0."""
    n = sum(1 for _ in open(out / "metadata.csv", encoding="utf-8")) - 1
    print(f"wrote {n} {what} to {out} in {time.perf_counter() - start:.1f} s")
    return 0


def run_build_distillation(args: argparse.Namespace) -> int:
    from ..corpus import CorpusError
    from ..pretraining.distill_set import TRAIN_GAMES, build_distillation_corpus

    start = time.perf_counter()
    games = tuple(args.games) if args.games else TRAIN_GAMES
    try:
        out = build_distillation_corpus(
            args.out_dir, args.seed, overwrite=args.overwrite, progress=not args.no_progress, games=games
        )
    except CorpusError as err:
        raise CLIError(str(err)) from err
    return _report_written(out, "clips", start)


def run_push(args: argparse.Namespace) -> int:
    from ..corpus.push import push_corpus

    out = Path(args.out_dir)
    if not (out / "metadata.csv").is_file():
        raise CLIError(f"{out} holds no corpus (no metadata.csv): build one with `loop-svdd corpus build`")
    url = push_corpus(out, args.repo_id, private=args.private, token=args.token)
    print(f"pushed {out} to {url}")
    return 0
