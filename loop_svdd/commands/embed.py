"""`loop-svdd embed CORPUS --output-dir DIR`: precompute clip embeddings of a corpus, in the benchmark's format
(`nff.npy` + `index.csv`), on one process or several (`accelerate launch -m loop_svdd.cli embed ...`)."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import TYPE_CHECKING

from .common import ENCODER_HELP, CLIError, one_line

if TYPE_CHECKING:
    import numpy as np

LABEL_JOIN, LABEL_SEPARATOR = "+", "@"  # --label-column instrument+source writes folder bass@TimGM6mb


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed",
        help="precompute embeddings of a corpus (benchmark format)",
        description="Writes OUTPUT_DIR/nff.npy (n, D) and OUTPUT_DIR/index.csv (row,file,folder), "
        "where folder is --label-column: the input of `loop-svdd benchmark one-vs-rest --embeddings`. Under "
        "`accelerate launch` every process embeds its shard; --streaming reads corpora larger than "
        "memory or disk as a stream.",
    )
    p.add_argument("corpus")
    p.add_argument("--output-dir", required=True)
    p.add_argument(
        "--encoder",
        default=None,
        help=ENCODER_HELP + "; or musicnn-mtt / musicnn-msd / both: the music-tagging teacher's features "
        "(753-d each; reference rows, not a detector encoder) (default: as for `loop-svdd train`)",
    )
    p.add_argument(
        "--label-column",
        default=None,
        help="column written as `folder`, or columns joined with + (instrument+source writes e.g. bass@TimGM6mb) "
        "(default: instrument, else the subfolder names of an audiofolder, else none)",
    )
    p.add_argument("--split", default="train")
    p.add_argument("--streaming", action="store_true")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from accelerate import Accelerator

    from ..audio.corpora import CorpusError, audio_column, load_corpus
    from ..audio.decoding import decodable_rows, decoded_stream, require_loops
    from ..engine.cache import embed_decodable
    from ..engine.embedding import embed_stream
    from ..models.encoders import build_model, resolve_default_encoder
    from ..pretraining.teacher import is_teacher
    from ..training.from_corpus import row_names

    accelerator = Accelerator()
    skipped: list[dict] = []
    rank, world = accelerator.process_index, accelerator.num_processes
    out = Path(args.output_dir)
    try:
        dataset = load_corpus(args.corpus, split=args.split, streaming=args.streaming)
        out.mkdir(parents=True, exist_ok=True)
        if is_teacher(args.encoder or ""):
            if args.streaming or world > 1:
                raise CLIError(f"--encoder {args.encoder} embeds on one process, without --streaming")
            embeddings, labels, names, skipped = _teacher_embeddings(args, dataset)
            return _write(out, args, embeddings, labels, names, skipped, rank, world, accelerator)
        model, extractor = build_model(args.encoder or resolve_default_encoder())
        model = model.to(accelerator.device)
        if args.streaming:
            import datasets
            from datasets.distributed import split_dataset_by_node

            column = audio_column(dataset)
            raw = dataset.cast_column(column, datasets.Audio(decode=False))
            shard = split_dataset_by_node(raw, rank=rank, world_size=world)
            stream = decoded_stream(shard, column, extractor.sampling_rate, skipped)
            rows, embs = [], []
            for meta, emb in embed_stream(model, extractor, stream, column, args.batch_size):
                rows.append(meta)
                embs.append(emb)
            columns = (args.label_column or "instrument").split(LABEL_JOIN)
            labels = _joined([[str(r.get(c, "")) for r in rows] for c in columns])
            names = [f"stream-{rank}-{i}" for i in range(len(rows))]
            embeddings = np.stack(embs) if embs else np.zeros((0, model.config.embedding_dim), np.float32)
        else:
            shard = dataset.shard(num_shards=world, index=rank, contiguous=True) if world > 1 else dataset
            labels = _labels(shard, args.label_column)
            decoding = decodable_rows(shard, extractor.sampling_rate, progress=not args.no_progress)
            skipped = decoding.skipped
            embeddings = embed_decodable(
                model, extractor, shard, decoding, batch_size=args.batch_size, progress=not args.no_progress
            )[decoding.rows]
            labels, names = labels[decoding.rows].tolist(), [row_names(shard)[i] for i in decoding.rows]
        if world == 1:
            require_loops(len(embeddings), 1, "embedding", skipped)
    except (CorpusError, ValueError, OSError) as err:
        raise one_line(err, args.output_dir) from err
    return _write(out, args, embeddings, labels, names, skipped, rank, world, accelerator)


def _teacher_embeddings(args: argparse.Namespace, dataset):
    """musicnn features (mean over half-overlapping 3 s patches of `max_pool`) of the decodable rows."""
    from ..audio.decoding import decodable_rows, require_loops
    from ..pretraining.teacher import teacher_embeddings
    from ..training.from_corpus import row_names

    labels = _labels(dataset, args.label_column)
    decoding = decodable_rows(dataset, progress=not args.no_progress)
    require_loops(len(decoding.rows), 1, "embedding", decoding.skipped)
    embeddings = teacher_embeddings(args.encoder, dataset, decoding.rows, progress=not args.no_progress)
    names = [row_names(dataset)[i] for i in decoding.rows]
    return embeddings, labels[decoding.rows].tolist(), names, decoding.skipped


def _write(out: Path, args, embeddings, labels, names, skipped, rank: int, world: int, accelerator) -> int:
    """Write this process's part, then (main process) merge the parts into nff.npy and index.csv."""
    import numpy as np

    from ..audio.decoding import report_skipped

    report_skipped("embed", skipped)
    np.save(out / f".rank{rank}.npy", embeddings.astype(np.float32), allow_pickle=False)
    with open(out / f".rank{rank}.csv", "w", newline="") as f:
        csv.writer(f).writerows(zip(names, labels, strict=True))
    with open(out / f".rank{rank}.skipped.csv", "w", newline="") as f:
        csv.writer(f).writerows((s["file"], s["reason"]) for s in skipped)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        n, dims = _merge(out, world)
        print(f"{n} embeddings of {dims} dims from {world} process(es) -> {out / 'nff.npy'}, {out / 'index.csv'}")
    accelerator.wait_for_everyone()
    return 0


def _labels(dataset, column: str | None) -> np.ndarray:
    """The values of `column` (of each of `a+b`, joined as `va@vb`); by default `instrument`, else the subfolder
    names (`label`), else empty."""
    import numpy as np

    from ..audio.corpora import column_values

    if column is None:
        column = next((c for c in ("instrument", "label") if c in dataset.column_names), None)
        if column is None:
            return np.array([""] * len(dataset))
    return np.array(_joined([column_values(dataset, c, "label the rows with") for c in column.split(LABEL_JOIN)]))


def _joined(parts: list) -> list[str]:
    """Per row, the values of each labelling column joined as `va@vb` (one column: its values)."""
    return [LABEL_SEPARATOR.join(values) for values in zip(*parts, strict=True)]


def _merge(out: Path, world: int) -> tuple[int, object]:
    """Join the per-process parts into nff.npy, index.csv and skipped.csv, each written atomically."""
    import os

    import numpy as np

    parts = [np.load(out / f".rank{r}.npy", allow_pickle=False) for r in range(world)]
    index, skipped = [], []
    for r in range(world):
        with open(out / f".rank{r}.csv", newline="") as f:
            index += list(csv.reader(f))
        with open(out / f".rank{r}.skipped.csv", newline="") as f:
            skipped += list(csv.reader(f))
    with open(out / ".nff.npy.tmp", "wb") as f:
        np.save(f, np.concatenate(parts), allow_pickle=False)
    for name, header, rows in (
        ("index.csv", ["row", "file", "folder"], [[i, name, label] for i, (name, label) in enumerate(index)]),
        ("skipped.csv", ["file", "reason"], skipped),
    ):
        with open(out / f".{name}.tmp", "w", newline="") as f:
            csv.writer(f).writerows([header, *rows])
    for name in ("index.csv", "skipped.csv", "nff.npy"):  # nff.npy last: it marks a finished run
        os.replace(out / f".{name}.tmp", out / name)
    for r in range(world):
        for suffix in (".npy", ".csv", ".skipped.csv"):
            (out / f".rank{r}{suffix}").unlink()
    return len(index), parts[0].shape[1] if len(parts[0]) else "?"
