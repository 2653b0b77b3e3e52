"""`loop-svdd train CORPUS --normal COLUMN=VALUE --output-dir DIR`: train a detector on a loop corpus."""

from __future__ import annotations

import argparse
import sys

from ..settings import DEEP_SVDD, TRAIN
from .common import ENCODER_HELP, CLIError, one_line


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a detector on the normal loops of a corpus",
        description="Train a Deep SVDD detector on the loops of a `datasets` corpus (Hub id, audiofolder or "
        "save_to_disk folder) that match --normal. The encoder pass (embedding the loops) runs on the CPU; the "
        "Deep SVDD heads train on the device Accelerate picks (a GPU when one is visible, several with "
        "`accelerate launch`). Interrupted runs resume from the checkpoints in OUTPUT_DIR.",
    )
    p.add_argument("corpus", help="Hub dataset id, local audiofolder directory, or save_to_disk folder")
    p.add_argument(
        "--normal",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="select the normal loops (repeat to AND filters), e.g. --normal instrument=bass",
    )
    p.add_argument("--output-dir", required=True, help="where the model folder is written")
    p.add_argument(
        "--encoder",
        default=None,
        help=ENCODER_HELP
        + " (default: laion/larger_clap_music when it is in the local Hugging Face cache - or on the Hub, with "
        "LOOP_SVDD_ASK_HUB=1 - else the embedded 'default'; one line on stderr names the one used)",
    )
    _add_training_arguments(p)
    p.add_argument("--log-with", default=None, help="an Accelerate tracker (tensorboard, wandb, ...)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _add_training_arguments(p: argparse.ArgumentParser) -> None:
    """The split, the head's training settings (None: the preset's), the encoder batch and the holdout."""
    p.add_argument("--split", default="train")
    p.add_argument("--head-type", choices=("ae", "residual_ae"), default=None)
    p.add_argument("--objective", choices=("one-class", "soft-boundary"), default=None)
    p.add_argument("--nu", type=float, default=None)
    p.add_argument("--hidden-dims", type=int, nargs="+", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--pretrain-epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--train-batch-size", type=int, default=None, help="head training batch size")
    p.add_argument(
        "--batch-size", type=int, default=TRAIN.encoder_batch_size, help="loops per encoder batch when embedding"
    )
    p.add_argument("--threshold-quantile", type=float, default=None)
    p.add_argument(
        "--holdout", type=float, default=TRAIN.holdout_fraction, help="fraction of normal loops kept out for evaluation"
    )
    p.add_argument(
        "--preset",
        choices=("tuned", "paper"),
        default="tuned",
        help="training settings the other flags override: tuned (what ships: 512-256 head, L2, lr 1e-4) or paper "
        "(1024-512-256-128-64-32, no L2, lr 1e-3, 50 + 50 epochs)",
    )
    p.add_argument(
        "--ensemble-size",
        "--ensemble",  # the old name, kept working
        dest="ensemble_size",
        type=int,
        default=None,
        help=f"number of heads (seeds) averaged; 1 = a single head (default: the preset's, {DEEP_SVDD.ensemble_size})",
    )
    p.add_argument("--seed", type=int, default=None)


def training_config_from_args(args: argparse.Namespace):
    from ..detectors.deep_svdd import SVDDTrainingConfig

    overrides = {
        "head_type": args.head_type,
        "objective": args.objective,
        "nu": args.nu,
        "hidden_dims": args.hidden_dims,
        "epochs": args.epochs,
        "pretrain_epochs": args.pretrain_epochs,
        "lr": args.lr,
        "batch_size": args.train_batch_size,
        "threshold_quantile": args.threshold_quantile,
        "seed": args.seed,
        "ensemble_size": args.ensemble_size,
    }
    try:
        return SVDDTrainingConfig.from_preset(args.preset, **{k: v for k, v in overrides.items() if v is not None})
    except ValueError as err:
        raise CLIError(str(err)) from err


def run(args: argparse.Namespace) -> int:
    from ..audio.corpora import RowFilter
    from ..errors import LoopSVDDError
    from ..hub.card import threshold_phrase
    from ..models.encoders import describe_encoder
    from ..training.from_corpus import train_on_corpus

    config = training_config_from_args(args)
    accelerator = None
    try:
        normal = [RowFilter.parse(f) for f in args.normal]
        if args.log_with:
            from accelerate import Accelerator

            accelerator = Accelerator(log_with=args.log_with, project_dir=args.output_dir)
            accelerator.init_trackers("loop-svdd", config=config.to_dict())
        result = train_on_corpus(
            args.corpus,
            normal,
            args.output_dir,
            encoder=args.encoder,
            training=config,
            holdout_fraction=args.holdout,
            batch_size=args.batch_size,
            split=args.split,
            progress=not args.no_progress,
            accelerator=accelerator,
        )
    except (LoopSVDDError, ValueError, OSError) as err:
        raise one_line(err, args.output_dir) from err
    finally:
        if accelerator is not None:
            accelerator.end_training()
    s = result.summary
    from ..audio.decoding import report_skipped

    report_skipped("train", s["skipped_files"])
    print(
        f"trained on {len(s['train_rows'])} normal loops ({', '.join(s['normal_filter']) or 'all'}), "
        f"{len(s['heldout_rows'])} held out for evaluation"
    )
    print(f"encoder: {describe_encoder(result.model.config)}")
    print(f"threshold: {s['threshold']:.4g}, the {threshold_phrase(result.model.config, s)}")
    for warning in s["warnings"]:
        print(f"loop-svdd train: warning: {warning}", file=sys.stderr)
    print(f"model saved to {result.output_dir} (load with LoopSVDDModel.from_pretrained)")
    return 0
