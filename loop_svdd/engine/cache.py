"""The embedding caches: the encoder is frozen, so a loop is embedded once. Both are keyed by
`encoder_fingerprint` (the encoder weights and the extractor settings) and fill through the embedding core.

- corpora (`embed_dataset`, `embed_decodable`): a `datasets` map whose fingerprint is made of the dataset's, the
  encoder's and the extractor's; a second call with the same three loads the cached Arrow file;
- files (`embed_files`, curation's packs): chunks of `CHUNK_SIZE` loops, each written atomically as safetensors +
  JSON and named by the encoder fingerprint and by the names, sizes and modification times of its files, so an
  interrupted run resumes where it stopped and a changed file is embedded again. It keeps every window's
  embedding (curation's time-resolved scores need them), where the corpus cache keeps clip embeddings only.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from ..audio.corpora import audio_column, quiet_datasets, waveform_of, with_decoding
from ..audio.decoding import CorpusDecoding, decode_files
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel
from ..models.model_io import write_json_atomic
from .embedding import clip_embeddings, embed_waveforms

__all__ = ["CHUNK_SIZE", "FileEmbeddings", "embed_dataset", "embed_decodable", "embed_files", "encoder_fingerprint"]

CHUNK_SIZE = 16  # loops per cache file: what an interruption can cost at most


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

    def add_chunk(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        """Append one cached chunk's files and windows (its clip embeddings and durations are joined at the end)."""
        self.errors += meta["errors"]
        for j, f in enumerate(meta["files"]):
            sel = arrays["window_clip_index"] == j
            self.files.append(Path(f))
            self.windows.append(arrays["windows"][sel])
            self.window_start_s.append(arrays["window_start_s"][sel])


def _chunk_key(files: list[Path], fingerprint: str) -> str:
    h = hashlib.sha256(fingerprint.encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _embed_chunk(model: LoopSVDDModel, extractor: LoopSVDDFeatureExtractor, files: list[Path]) -> tuple[dict, dict]:
    """(arrays, metadata) of one chunk: decodes each file, embeds the good ones together."""
    sr = extractor.sampling_rate
    good, waves, errors = [], [], []
    for decoded in decode_files(files, sr):  # the package's one decoding path (plain reasons for bad files)
        if decoded.ok:
            waves.append(decoded.waveform)
            good.append(decoded.path)
        else:
            errors.append({"file": decoded.path, "error": decoded.reason})
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
    return arrays, {"files": good, "errors": errors}


def _load_or_embed(model, extractor, files: list[Path], cache: Path, fingerprint: str) -> tuple[dict, dict]:
    key = _chunk_key(files, fingerprint)
    meta_path, arr_path = cache / f"chunk-{key}.json", cache / f"chunk-{key}.safetensors"
    if meta_path.is_file():  # written last, so its presence means the chunk is complete
        meta = json.loads(meta_path.read_text())
        return (load_file(arr_path) if meta["files"] else {}), meta
    arrays, meta = _embed_chunk(model, extractor, files)
    if arrays:
        tmp = arr_path.with_name(f".{arr_path.name}.tmp")
        save_file(arrays, tmp)
        os.replace(tmp, arr_path)
    write_json_atomic(meta_path, meta)
    return arrays, meta


@torch.inference_mode()
def embed_files(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    files: list[Path],
    cache_dir: str | Path,
    chunk_size: int = CHUNK_SIZE,
    progress: bool = True,
) -> FileEmbeddings:
    """Embed every file once (chunks already in `cache_dir` are read back); undecodable files are listed."""
    from tqdm.auto import tqdm

    fingerprint = encoder_fingerprint(model, extractor)
    cache = Path(cache_dir) / fingerprint
    cache.mkdir(parents=True, exist_ok=True)
    out = FileEmbeddings([], np.zeros((0, 0), np.float32), [], [], np.zeros(0))
    clips, durations = [], []
    for i in tqdm(range(0, len(files), chunk_size), desc="Embedding loops", disable=not progress):
        arrays, meta = _load_or_embed(model, extractor, files[i : i + chunk_size], cache, fingerprint)
        out.add_chunk(arrays, meta)
        if meta["files"]:
            clips.append(arrays["clip"])
            durations.append(arrays["durations_s"])
    if clips:
        out.clip, out.durations_s = np.concatenate(clips), np.concatenate(durations)
    return out
