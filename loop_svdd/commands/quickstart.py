"""`loop-svdd quickstart`: the main job on the embedded default, end to end in a few minutes on a CPU."""

from __future__ import annotations

import argparse

from .common import ENCODER_HELP, CLIError, one_line


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart",
        help="build a small corpus, train, evaluate against baselines, write a model folder",
        description="Builds a real-instrument loop corpus (FluidSynth + Debian soundfonts, Hydrogen kits, "
        "Sonic Pi loops), trains a detector on bass loops from FluidR3_GM, and evaluates it against held-out "
        "bass loops, the other instruments and bass from TimGM6mb, next to Isolation Forest, PCA, k-NN and "
        "OC-SVM on the same embeddings.",
    )
    p.add_argument("--output-dir", default="quickstart-output")
    p.add_argument("--loops", type=int, default=400, help="corpus size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--encoder",
        default=None,
        help=ENCODER_HELP + " (default: always the embedded encoder, so the figures are reproducible offline)",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..audio.corpora import CorpusError
    from ..corpus.sources import CorpusError as BuildError
    from ..models.encoders import DEFAULT_ENCODER
    from ..quickstart import run_quickstart, summary_lines

    if args.loops < 40:
        raise CLIError("--loops must be at least 40 (the evaluation needs every anomaly kind)")
    try:
        result = run_quickstart(
            args.output_dir, args.loops, args.seed, args.encoder or DEFAULT_ENCODER, progress=not args.no_progress
        )
    except (BuildError, CorpusError, ValueError, OSError) as err:
        raise one_line(err, args.output_dir) from err
    print("\n".join(summary_lines(result)))
    return 0
