"""The embedding caches: the encoder is frozen, so a loop is embedded once. Both are keyed by
`encoder_fingerprint` (the encoder weights and the extractor settings) and fill through the embedding core.

- corpora (`embed_dataset`, `embed_decodable`): a `datasets` map whose fingerprint is made of the dataset's, the
  encoder's and the extractor's; a second call with the same three loads the cached Arrow file;
- files (`embed_files`, curation's packs and libraries): keyed by each file's content hash
  ([`loop_svdd.engine.content_hash`]), so a loop is embedded once per content whatever its name or folder, a
  rerun or a library with new files embeds only what is new, and a changed file is embedded again. Loops are
  embedded in chunks of `CHUNK_SIZE`, each written atomically as safetensors + JSON as it finishes, so an
  interrupted run resumes where it stopped. It keeps every window's embedding (curation's time-resolved scores
  need them), where the corpus cache keeps clip embeddings only.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from ..audio.corpora import audio_column, quiet_datasets, waveform_of, with_decoding
from ..audio.decoding import CorpusDecoding, Decoded, decode_file, decode_files
from ..errors import safetensors_write_errors_as_oserror
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel
from ..models.model_io import write_json_atomic
from ..settings import CURATE
from .content_hash import ContentHashes
from .embedding import clip_embeddings, embed_waveforms
from .stopwatch import Stopwatch

__all__ = [
    "CHUNK_SIZE",
    "CacheFolder",
    "FileEmbeddings",
    "embed_dataset",
    "embed_decodable",
    "embed_files",
    "encoder_fingerprint",
    "open_cache",
]

CHUNK_SIZE = 16  # loops per cache file: what an interruption can cost at most
DECODE_AHEAD = 2  # chunks decoded ahead of the encoder


def encoder_fingerprint(model: LoopSVDDModel, extractor: LoopSVDDFeatureExtractor) -> str:
    """A hash of the encoder weights and the extractor settings (what an embedding depends on)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.encoder.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    # Settings that do not change an embedding are left out: the batch size, and what saving adds (`auto_map`,
    # so that a model saved and reloaded keeps the cache of the corpus it was trained on).
    ignored = ("max_windows_per_batch", "auto_map", "processor_class")
    settings = {k: v for k, v in extractor.to_dict().items() if k not in ignored}
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


# -- corpora: a fingerprinted `datasets` map ---------------------------------------------------------------------
def embed_dataset(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    dataset: datasets.Dataset,
    batch_size: int = 8,
    progress: bool = True,
) -> np.ndarray:
    """`(len(dataset), D)` clip embeddings of every row, cached by a fingerprinted `datasets` map."""
    column = audio_column(dataset)
    decoded = with_decoding(dataset, extractor.sampling_rate)
    fingerprint = hashlib.sha256(f"{decoded._fingerprint}-{encoder_fingerprint(model, extractor)}".encode())

    def embed_batch(batch: dict) -> dict:
        waves = [waveform_of({column: a}, column) for a in batch[column]]
        return {"embedding": clip_embeddings(model, extractor, waves)}

    with quiet_datasets(not progress):
        embedded = decoded.map(
            embed_batch,
            batched=True,
            batch_size=batch_size,
            remove_columns=decoded.column_names,
            features=datasets.Features({"embedding": datasets.Sequence(datasets.Value("float32"))}),
            new_fingerprint=fingerprint.hexdigest()[:32],
            desc="Embedding loops",
        )
    return np.asarray(embedded.with_format("numpy")["embedding"], dtype=np.float32).reshape(len(dataset), -1)


def embed_decodable(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    dataset: datasets.Dataset,
    decoding: CorpusDecoding,
    batch_size: int = 8,
    progress: bool = True,
) -> np.ndarray:
    """`(len(dataset), D)` embeddings of the decodable rows ([`embed_dataset`]); skipped rows are NaN."""
    if len(decoding.rows) == decoding.n_rows:
        return embed_dataset(model, extractor, dataset, batch_size, progress)
    out = np.full((decoding.n_rows, model.config.embedding_dim), np.nan, dtype=np.float32)
    if len(decoding.rows):
        out[decoding.rows] = embed_dataset(
            model, extractor, dataset.select(decoding.rows.tolist()), batch_size, progress
        )
    return out


# -- files: resumable chunks of safetensors ----------------------------------------------------------------------
@dataclass
class FileEmbeddings:
    """Embeddings of the files that decoded, in file order, and the files that did not."""

    files: list[Path]
    clip: np.ndarray  # (n, D)
    windows: list[np.ndarray]  # per loop: (w_i, D)
    window_start_s: list[np.ndarray]  # per loop: (w_i,)
    durations_s: np.ndarray  # (n,)
    errors: list[dict[str, str]] = field(default_factory=list)  # {"file", "error"}
    seconds: Stopwatch = field(default_factory=Stopwatch)  # hash, decode (in the background), encode, cache
    n_embedded: int = 0  # loops embedded now (the others were in the cache)


def _chunk_key(hashes: list[str], fingerprint: str) -> str:
    """A chunk's name: its encoder and its loops' contents (the same loops embed to the same chunk anywhere)."""
    return hashlib.sha256("|".join([fingerprint, *hashes]).encode()).hexdigest()[:24]


def _decoded_ahead(
    chunks: list[list[tuple[str, Path]]], sr: int, watch: Stopwatch
) -> Iterator[tuple[list, list[Decoded]]]:
    """Each chunk of (content hash, file) with its files decoded, the next :data:`DECODE_AHEAD` chunks decoding
    in a background thread meanwhile (FFmpeg releases the GIL, so decoding overlaps the encoder; memory holds
    at most that many decoded chunks)."""

    def decode(chunk: list[tuple[str, Path]]) -> list[Decoded]:
        with watch("decode"):
            return list(decode_files([f for _, f in chunk], sr, longest_s=CURATE.longest_loop_s))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append((chunk, pool.submit(decode, chunk)))
            if len(pending) > DECODE_AHEAD:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def _embed_chunk(
    model: LoopSVDDModel, extractor: LoopSVDDFeatureExtractor, todo: list[tuple[str, Path]], decoded: list[Decoded]
) -> tuple[dict, dict]:
    """(arrays, metadata) of one chunk of (content hash, file) and its decoded files: the good ones embedded
    together, the others listed with the reason."""
    sr = extractor.sampling_rate
    good, waves, errors = [], [], []
    for (h, _), outcome in zip(todo, decoded, strict=True):
        if outcome.ok:  # the package's one decoding path (plain reasons for bad files)
            waves.append(outcome.waveform)
            good.append(h)
        else:
            errors.append({"hash": h, "file": outcome.path, "error": outcome.reason})
    arrays: dict[str, np.ndarray] = {}
    if waves:
        clip, win = embed_waveforms(model, extractor, waves, sr)
        arrays = {
            "clip": clip.float().cpu().numpy(),
            "windows": win["window_embeddings"].float().cpu().numpy(),
            "window_clip_index": win["window_clip_index"].cpu().numpy().astype(np.int64),
            "window_start_s": win["window_start_s"].cpu().numpy().astype(np.float64),
            "durations_s": np.array([len(w) / sr for w in waves], dtype=np.float64),
        }
    return arrays, {"hashes": good, "errors": errors}


def _store_chunk(cache: Path, fingerprint: str, arrays: dict, meta: dict) -> dict[str, tuple[Path, int] | str]:
    """Write one chunk, its arrays first and its JSON last (its presence means the chunk is complete); returns
    its entries of the cache index ([`_stored`])."""
    key = _chunk_key(meta["hashes"] + [e["hash"] for e in meta["errors"]], fingerprint)
    path = cache / f"chunk-{key}.safetensors"
    if arrays:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # processes of a sharded run never share one
        with safetensors_write_errors_as_oserror(tmp):  # e.g. a full disk: no half-written chunk to fill it further
            save_file(arrays, tmp)
            os.replace(tmp, path)
    write_json_atomic(cache / f"chunk-{key}.json", meta)
    return {**{h: (path, j) for j, h in enumerate(meta["hashes"])}, **{e["hash"]: e["error"] for e in meta["errors"]}}


def _stored(cache: Path) -> dict[str, tuple[Path, int] | str]:
    """Content hash -> (chunk arrays, row) of every loop in the cache, or the reason it could not be embedded."""
    index: dict[str, tuple[Path, int] | str] = {}
    for meta_path in sorted(cache.glob("chunk-*.json")):
        try:
            meta = json.loads(meta_path.read_text())
            arrays = meta_path.with_suffix(".safetensors")
            if meta["hashes"] and not arrays.is_file():
                continue
            index.update({h: (arrays, j) for j, h in enumerate(meta["hashes"])})
            index.update({e["hash"]: e["error"] for e in meta["errors"]})
        except (OSError, ValueError, KeyError, TypeError):  # damaged or of an older layout: embedded again
            continue
    return index


def _loop_arrays(path: Path, rows: set[int]) -> dict[int, dict[str, np.ndarray]]:
    """Per row of the chunk at `path` that is wanted: its clip, windows, window starts and duration."""
    arrays = load_file(path)
    return {
        j: {
            "clip": arrays["clip"][j],
            "windows": arrays["windows"][arrays["window_clip_index"] == j],
            "window_start_s": arrays["window_start_s"][arrays["window_clip_index"] == j],
            "durations_s": arrays["durations_s"][j],
        }
        for j in rows
    }


def _first_of_each(files: list[Path], hashes: list[str | None], index: dict) -> list[tuple[str, Path]]:
    """(hash, file) of the first file of each content that the cache does not hold yet, in file order."""
    todo: dict[str, Path] = {}
    for f, h in zip(files, hashes, strict=True):
        if h is not None and h not in index and h not in todo:
            todo[h] = f
    return list(todo.items())


def _gather(files: list[Path], hashes: list[str | None], index: dict, sr: int) -> FileEmbeddings:
    """The embeddings of `files` in their order, read from the cache `index` (unreadable files listed)."""
    wanted: dict[Path, set[int]] = {}
    for h in hashes:
        if isinstance(index.get(h), tuple):
            wanted.setdefault(index[h][0], set()).add(index[h][1])
    loops = {(p, j): a for p, rows in wanted.items() for j, a in _loop_arrays(p, rows).items()}
    out = FileEmbeddings([], np.zeros((0, 0), np.float32), [], [], np.zeros(0))
    clips, durations = [], []
    for f, h in zip(files, hashes, strict=True):
        entry = index.get(h) if h is not None else decode_file(f, sr).reason or "cannot read the file"
        if isinstance(entry, str):
            out.errors.append({"file": str(f), "error": entry})
            continue
        loop = loops[entry]
        out.files.append(f)
        out.windows.append(loop["windows"])
        out.window_start_s.append(loop["window_start_s"])
        clips.append(loop["clip"])
        durations.append(loop["durations_s"])
    if clips:
        out.clip, out.durations_s = np.stack(clips), np.array(durations, dtype=np.float64)
    return out


class CacheFolder:
    """A file cache folder read once: its content hashes, and per encoder fingerprint the index of its chunks
    ([`_stored`]), kept up to date as chunks are stored. A library hands one to all its packs, so the folder is
    not read again for each; `process` names the hash log a process of a sharded run appends to."""

    def __init__(self, path: str | Path, process: int | None = None) -> None:
        self.path = Path(path)
        self.hashes = ContentHashes(self.path, process)
        self._indexes: dict[str, dict[str, tuple[Path, int] | str]] = {}

    def chunks(self, fingerprint: str) -> Path:
        """The folder of the chunks embedded by the encoder `fingerprint` (created)."""
        folder = self.path / fingerprint
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def index(self, fingerprint: str) -> dict[str, tuple[Path, int] | str]:
        """Content hash -> (chunk, row) or the reason it could not be embedded, for the encoder `fingerprint`."""
        if fingerprint not in self._indexes:
            self._indexes[fingerprint] = _stored(self.chunks(fingerprint))
        return self._indexes[fingerprint]


def open_cache(cache: str | Path | CacheFolder) -> CacheFolder:
    """`cache` as a [`CacheFolder`] (a path is read now)."""
    return cache if isinstance(cache, CacheFolder) else CacheFolder(cache)


@torch.inference_mode()
def embed_files(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    files: list[Path],
    cache_dir: str | Path | CacheFolder,
    chunk_size: int = CHUNK_SIZE,
    progress: bool = True,
) -> FileEmbeddings:
    """Embed every file's content once: what `cache_dir` holds for this encoder is read back, the rest is embedded
    in chunks of `chunk_size` that are stored as they finish; undecodable files are listed with the reason."""
    from tqdm.auto import tqdm

    fingerprint = encoder_fingerprint(model, extractor)
    files, watch = [Path(f) for f in files], Stopwatch()
    with watch("hash"):
        cache = open_cache(cache_dir)
        hashes = cache.hashes.of(files)
        index, folder = cache.index(fingerprint), cache.chunks(fingerprint)
    todo = _first_of_each(files, hashes, index)
    chunks = [todo[i : i + chunk_size] for i in range(0, len(todo), chunk_size)]
    decoding = _decoded_ahead(chunks, extractor.sampling_rate, watch)
    for chunk, decoded in tqdm(decoding, total=len(chunks), desc="Embedding loops", disable=not progress):
        with watch("encode"):
            arrays, meta = _embed_chunk(model, extractor, chunk, decoded)
        with watch("cache"):
            index.update(_store_chunk(folder, fingerprint, arrays, meta))
    with watch("cache"):
        out = _gather(files, hashes, index, extractor.sampling_rate)
    out.seconds, out.n_embedded = watch, len(todo)
    return out
