"""`loop-svdd embed CORPUS --output-dir DIR`: precompute clip embeddings of a corpus, in the benchmark's format
(`nff.npy` + `index.csv`), on one process or several (`accelerate launch -m loop_svdd.cli embed ...`)."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from ..cli import ENCODER_HELP, CLIError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed",
        help="precompute embeddings of a corpus (benchmark format)",
        description="Writes OUTPUT_DIR/nff.npy (n, D) and OUTPUT_DIR/index.csv (row,file,folder), "
        "where folder is --label-column: the input of `loop-svdd benchmark --embeddings`. Under "
        "`accelerate launch` every process embeds its shard; --streaming reads corpora larger than "
        "memory or disk as a stream.",
    )
    p.add_argument("corpus")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--encoder", default=None, help=ENCODER_HELP)
    p.add_argument("--label-column", default="instrument")
    p.add_argument("--split", default="train")
    p.add_argument("--streaming", action="store_true")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from accelerate import Accelerator

    from ..data import CorpusError, audio_column, load_corpus, with_decoding
    from ..embedding import embed_dataset, embed_stream
    from ..encoders import DEFAULT_ENCODER, build_model
    from ..training.from_corpus import row_names

    accelerator = Accelerator()
    rank, world = accelerator.process_index, accelerator.num_processes
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        model, extractor = build_model(args.encoder or DEFAULT_ENCODER)
        model = model.to(accelerator.device)
        dataset = load_corpus(args.corpus, split=args.split, streaming=args.streaming)
        if args.streaming:
            from datasets.distributed import split_dataset_by_node

            column = audio_column(dataset)
            stream = with_decoding(split_dataset_by_node(dataset, rank=rank, world_size=world), extractor.sampling_rate)
            rows, embs = [], []
            for meta, emb in embed_stream(model, extractor, stream, column, args.batch_size):
                rows.append(meta)
                embs.append(emb)
            labels = [str(r.get(args.label_column, "")) for r in rows]
            names = [f"stream-{rank}-{i}" for i in range(len(rows))]
            embeddings = np.stack(embs) if embs else np.zeros((0, model.config.embedding_dim), np.float32)
        else:
            if args.label_column not in dataset.column_names:
                raise CorpusError(f"no column {args.label_column!r}; columns: {', '.join(dataset.column_names)}")
            shard = dataset.shard(num_shards=world, index=rank, contiguous=True) if world > 1 else dataset
            embeddings = embed_dataset(model, extractor, shard, args.batch_size, progress=not args.no_progress)
            labels = [str(v) for v in shard[args.label_column]]
            names = row_names(shard)
    except (CorpusError, ValueError, OSError) as err:
        raise CLIError(str(err).splitlines()[0]) from err
    np.save(out / f".rank{rank}.npy", embeddings.astype(np.float32), allow_pickle=False)
    with open(out / f".rank{rank}.csv", "w", newline="") as f:
        csv.writer(f).writerows(zip(names, labels, strict=True))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        parts = [np.load(out / f".rank{r}.npy", allow_pickle=False) for r in range(world)]
        index = [row for r in range(world) for row in csv.reader(open(out / f".rank{r}.csv", newline=""))]
        np.save(out / "nff.npy", np.concatenate(parts), allow_pickle=False)
        with open(out / "index.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["row", "file", "folder"])
            writer.writerows([i, name, label] for i, (name, label) in enumerate(index))
        for r in range(world):
            (out / f".rank{r}.npy").unlink()
            (out / f".rank{r}.csv").unlink()
        print(
            f"{len(index)} embeddings of {parts[0].shape[1] if len(parts[0]) else '?'} dims from {world} "
            f"process(es) -> {out / 'nff.npy'}, {out / 'index.csv'}"
        )
    accelerator.wait_for_everyone()
    return 0
