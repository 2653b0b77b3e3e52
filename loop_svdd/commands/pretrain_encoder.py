"""`loop-svdd pretrain-encoder CORPUS --output-dir DIR`: self-supervised pretraining of the HTS-AT encoder."""

from __future__ import annotations

import argparse
import sys

from .common import CLIError, one_line


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain-encoder",
        help="pretrain an HTS-AT encoder on loops (distilled from musicnn, or self-supervised SimCLR)",
        description="Train the HTS-AT audio encoder on the clips of a corpus without labels. With --teacher "
        "(how the shipped default was made): the encoder learns to predict a pretrained music model's features "
        "of each clip (musicnn, shipped in the package; teacher outputs cached in OUTPUT_DIR/teacher). Without: "
        "two augmented views of a loop (crop, time shift, time stretch, pitch shift, gain, mixing with another "
        "loop, masking) are pulled together by NT-Xent. Writes a LoopSVDD model folder whose encoder "
        "`--encoder DIR` reuses. Runs on CPU or a GPU; interrupted runs resume from OUTPUT_DIR/checkpoints. "
        "Defaults of the numeric options are those of the chosen objective (PretrainConfig / DistillConfig).",
    )
    p.add_argument("corpus", help="Hub dataset id, local audiofolder directory, or save_to_disk folder")
    p.add_argument("--output-dir", required=True, help="where the model folder and checkpoints are written")
    p.add_argument(
        "--size", default="small", help="HTS-AT shape when starting from random weights: small|small-deep|tiny|base"
    )
    p.add_argument(
        "--init",
        default="random",
        help="'random' (seeded) or an encoder to adapt: CLAP Hub id or folder, LAION .pt, LoopSVDD folder",
    )
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="keep only matching loops (repeat to AND; COLUMN!=VALUE excludes), e.g. --where source!=TimGM6mb",
    )
    p.add_argument(
        "--hold-out-source",
        action="append",
        default=[],
        metavar="SOURCE",
        help="leave out every loop whose source or source kind is SOURCE (repeat), for the leave-sources-out "
        "measurement (loop-svdd benchmark encoder-transfer); recorded in pretraining.json",
    )
    p.add_argument(
        "--teacher",
        default=None,
        choices=["musicnn-mtt", "musicnn-msd", "both"],
        help="distil this music model (MagnaTagATune or Million Song Dataset musicnn, or both) instead of SimCLR",
    )
    p.add_argument("--tag-weight", type=float, default=None, help="with --teacher: weight of the tag loss (0)")
    p.add_argument("--split", default="train")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps (SimCLR 90, distillation 600)")
    p.add_argument("--batch-size", type=int, default=None, help="loops per step (16)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (2e-3)")
    p.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay (0.05 / 0.01)")
    p.add_argument("--warmup-steps", type=int, default=None, help="linear warm-up steps (SimCLR 8, distillation 20)")
    p.add_argument("--temperature", type=float, default=None, help="SimCLR: NT-Xent temperature (0.2)")
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints (20 / 25)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-with", default=None, help="an Accelerate tracker (tensorboard, wandb, ...)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..audio.corpora import CorpusError

    _check_options(args)
    try:
        config = _config(args)
    except ValueError as err:
        raise CLIError(str(err)) from err
    try:
        dataset, rows, skipped, where, provenance = _pretraining_rows(args)
        if args.teacher is not None:
            return _distil(args, dataset, rows, config, skipped, where, provenance)
        result, description = _simclr(args, dataset, rows, config, skipped, where, provenance)
    except (CorpusError, ValueError, OSError, FloatingPointError) as err:
        raise one_line(err, args.output_dir) from err
    s = result.summary
    print(
        f"pretrained on {description}: {s['steps']} steps in {s['elapsed_s']:.0f} s, final loss {s['final_loss']:.4f}"
    )
    print(f"encoder saved to {result.output_dir} (use it with --encoder {result.output_dir})")
    return 0


def _check_options(args: argparse.Namespace) -> None:
    """Refuse option combinations that make no sense, before anything is loaded."""
    from ..pretraining.trainer import PRETRAIN_SIZES

    if args.init == "random" and args.size not in PRETRAIN_SIZES:
        raise CLIError(f"--size must be one of {', '.join(PRETRAIN_SIZES)}, got {args.size!r}")
    if args.teacher is None and args.tag_weight is not None:
        raise CLIError("--tag-weight needs --teacher")
    if args.teacher is not None and args.temperature is not None:
        raise CLIError("--temperature is a SimCLR option; it has no effect with --teacher")


def _pretraining_rows(args: argparse.Namespace):
    """(dataset, decodable rows matching --where without the held-out sources, skipped files, the selection in
    words, provenance); refuses fewer than 2 loops."""
    from ..audio.corpora import RowFilter, load_corpus, select
    from ..audio.decoding import decodable_rows, report_skipped, require_loops

    filters = [RowFilter.parse(f) for f in args.where]
    dataset = load_corpus(args.corpus, split=args.split)
    matching = select(dataset, filters)
    matching, provenance = hold_out(dataset, matching, args.hold_out_source)
    decoding = decodable_rows(dataset, progress=not args.no_progress)
    rows, skipped = decoding.restrict(matching), decoding.skipped_among(matching)
    report_skipped("pretrain-encoder", skipped)
    where = f" where {' and '.join(map(str, filters))}" if filters else ""
    if args.hold_out_source:
        where += f" without {', '.join(args.hold_out_source)}"
    require_loops(len(rows), 2, f"pretraining (the loops of {args.corpus}{where})", skipped)
    return dataset, rows, skipped, where, provenance


def _simclr(args: argparse.Namespace, dataset, rows, config, skipped: list, where: str, provenance: dict):
    """SimCLR pretraining on the rows' mels (with an Accelerate tracker under --log-with); (result, description)."""
    from ..audio.decoding import require_loops
    from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
    from ..pretraining import corpus_mels, pretrain_encoder

    mels = corpus_mels(dataset, LoopSVDDFeatureExtractor(), rows, progress=not args.no_progress)
    if len(mels) < len(rows):
        short = len(rows) - len(mels)
        print(f"loop-svdd pretrain-encoder: left out {short} loop(s) too short to frame", file=sys.stderr)
    require_loops(len(mels), 2, "pretraining (loops long enough to frame)", skipped)
    undecodable = f", {len(skipped)} undecodable file(s) skipped" if skipped else ""
    description = f"{len(mels)} loops of {args.corpus}{where}{undecodable}"
    accelerator = None
    try:
        if args.log_with:
            import torch
            from accelerate import Accelerator

            accelerator = Accelerator(
                log_with=args.log_with,
                project_dir=args.output_dir,
                mixed_precision="bf16" if torch.cuda.is_available() else "no",
            )
            accelerator.init_trackers("loop-svdd-pretrain", config=config.to_dict())
        result = pretrain_encoder(
            mels,
            args.output_dir,
            config,
            accelerator,
            progress=not args.no_progress,
            description=description,
            provenance=provenance,
        )
    finally:
        if accelerator is not None:
            accelerator.end_training()
    return result, description


OPTIONS = ("steps", "batch_size", "lr", "weight_decay", "warmup_steps", "temperature", "checkpoint_every", "tag_weight")


def _config(args: argparse.Namespace):
    """The objective's config from the options given (the others keep the config's defaults)."""
    from ..pretraining import PretrainConfig
    from ..pretraining.distill import DistillConfig

    given = {k: getattr(args, k) for k in OPTIONS if getattr(args, k) is not None}
    common = {"size": args.size, "init": args.init, "seed": args.seed}
    if args.teacher is not None:
        return DistillConfig(teacher=args.teacher, **common, **given)
    return PretrainConfig(**common, **given)


def _distil(args: argparse.Namespace, dataset, rows, config, skipped: list, where: str, provenance: dict) -> int:
    from ..pretraining.distill import distill_encoder

    undecodable = f", {len(skipped)} undecodable file(s) skipped" if skipped else ""
    description = f"{len(rows)} clips of {args.corpus}{where}{undecodable}"
    s = distill_encoder(
        dataset, [int(r) for r in rows], args.output_dir, config, not args.no_progress, description, provenance
    )
    print(
        f"distilled {config.teacher} on {s['n_clips']} clips: teacher {s['teacher_s']:.0f} s, {s['steps']} steps "
        f"in {s['elapsed_s']:.0f} s, feature MSE {s['first_feature_mse']:.3f} -> {s['final_feature_mse']:.3f}"
    )
    print(f"encoder saved to {args.output_dir} (use it with --encoder {args.output_dir})")
    return 0


def hold_out(dataset, rows, sources: list[str]):
    """`rows` without the loops whose `source` or `source_kind` is one of `sources` (case-insensitive), and the
    provenance to record: the sources and source kinds kept, and those held out."""
    import numpy as np

    def column(name: str) -> np.ndarray:
        values = dataset[name] if name in dataset.column_names else [""] * len(dataset)
        return np.array([str(v) for v in values], dtype=object)[rows]

    source, kind = column("source"), column("source_kind")
    held = {s.lower() for s in sources}
    keep = np.array(
        [s.lower() not in held and k.lower() not in held for s, k in zip(source, kind, strict=True)], dtype=bool
    )
    if sources and len(keep) and keep.all():
        raise CLIError(f"no loop has source or source kind {', '.join(sources)}: nothing to hold out")
    provenance = {
        "sources": sorted(set(source[keep]) - {""}),
        "source_kinds": sorted(set(kind[keep]) - {""}),
        "held_out_sources": list(sources),
    }
    return np.asarray(rows)[keep], provenance
