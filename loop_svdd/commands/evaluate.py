"""`loop-svdd evaluate MODEL CORPUS`: AUROC / AUPRC / pAUC / F1 on held-out normals vs anomalies."""

from __future__ import annotations

import argparse
import sys

from ..settings import TRAIN
from .common import CLIError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a detector against labelled anomalies of a corpus",
        description="Held-out normal loops (the training filter, minus the training rows) vs "
        "anomalies (--anomaly filters, default every other loop), with the baselines fitted on "
        "the same training embeddings.",
    )
    p.add_argument("model", help="model folder (from `loop-svdd train`) or Hub id")
    p.add_argument("corpus", help="Hub dataset id, audiofolder directory or save_to_disk folder")
    p.add_argument("--normal", action="append", default=None, metavar="COLUMN=VALUE")
    p.add_argument("--anomaly", action="append", default=None, metavar="COLUMN=VALUE")
    p.add_argument("--by", default=None, help="metadata column giving the anomaly kinds (e.g. instrument)")
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument("--split", default="train")
    p.add_argument("--batch-size", type=int, default=TRAIN.encoder_batch_size)
    p.add_argument("--json", default=None, metavar="OUT", help="also write the report as JSON")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..audio.corpora import CorpusError, RowFilter
    from ..models.model_io import ModelLoadError
    from ..training.evaluation import BASELINES, evaluate_on_corpus, format_table

    try:
        report = evaluate_on_corpus(
            args.model,
            args.corpus,
            normal=[RowFilter.parse(f) for f in args.normal] if args.normal else None,
            anomaly=[RowFilter.parse(f) for f in args.anomaly] if args.anomaly else None,
            by=args.by,
            baselines=() if args.no_baselines else BASELINES,
            batch_size=args.batch_size,
            split=args.split,
            progress=not args.no_progress,
        )
    except (CorpusError, ModelLoadError, ValueError) as err:
        raise CLIError(str(err).splitlines()[0]) from err
    from ..audio.decoding import report_skipped

    report_skipped("evaluate", report["skipped_files"])
    for warning in report["warnings"]:
        print(f"loop-svdd evaluate: warning: {warning}", file=sys.stderr)
    print(f"{report['n_normal_test']} held-out normal loops vs {report['n_anomaly_test']} anomalies")
    print(format_table(report))
    if args.json:
        from ..models.model_io import write_json_atomic

        write_json_atomic(args.json, report)
    return 0
