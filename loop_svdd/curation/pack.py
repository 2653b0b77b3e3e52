"""A pack on disk: its audio files, their decoding (one function), and their embeddings, cached in chunks so an
interrupted run resumes where it stopped.

The cache reuses :func:`loop_svdd.engine.embedding.embed_waveforms` and :func:`encoder_fingerprint`.
It does not use `embed_dataset`'s `datasets` map: that cache is all-or-nothing (a run killed at 90% starts
again) and keeps clip embeddings only, while curation needs every window's embedding for its time-resolved
scores. Each chunk of loops is written atomically as safetensors + JSON, named by the encoder fingerprint and
by the names, sizes and modification times of its files, so a changed file is embedded again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from ..audio.decode import find_audio_files
from ..audio.decoding import decode_files
from ..engine.embedding import embed_waveforms, encoder_fingerprint
from ..errors import LoopSVDDError
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from ..models.loop_svdd.modeling_loop_svdd import LoopSVDDModel
from ..models.model_io import write_json_atomic

CHUNK_SIZE = 16  # loops per cache file: what an interruption can cost at most


class PackError(LoopSVDDError, ValueError):
    """A pack that cannot be curated (missing folder, no audio); one-line message."""


def list_pack(source: str | Path) -> list[Path]:
    """Every audio file under `source` (a folder, searched recursively), sorted."""
    path = Path(source)
    if not path.exists():
        raise PackError(f"{source}: no such folder")
    if not path.is_dir():
        raise PackError(f"{source}: expected a folder of loops")
    files = find_audio_files([path])
    if not files:
        raise PackError(f"{source}: no audio files found (looked for common audio extensions, recursively)")
    return files


@dataclass
class PackEmbeddings:
    """Embeddings of the loops that decoded, in file order, and the files that did not."""

    files: list[Path]
    clip: np.ndarray  # (n, D)
    windows: list[np.ndarray]  # per loop: (w_i, D)
    window_start_s: list[np.ndarray]  # per loop: (w_i,)
    durations_s: np.ndarray  # (n,)
    errors: list[dict[str, str]] = field(default_factory=list)  # {"file", "error"}


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
def embed_pack(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    files: list[Path],
    cache_dir: str | Path,
    chunk_size: int = CHUNK_SIZE,
    progress: bool = True,
) -> PackEmbeddings:
    """Embed every file once (chunks already in `cache_dir` are read back); undecodable files are listed."""
    from tqdm.auto import tqdm

    fingerprint = encoder_fingerprint(model, extractor)
    cache = Path(cache_dir) / fingerprint
    cache.mkdir(parents=True, exist_ok=True)
    out = PackEmbeddings([], np.zeros((0, 0), np.float32), [], [], np.zeros(0))
    clips, durations = [], []
    for i in tqdm(range(0, len(files), chunk_size), desc="Embedding loops", disable=not progress):
        arrays, meta = _load_or_embed(model, extractor, files[i : i + chunk_size], cache, fingerprint)
        out.errors += meta["errors"]
        for j, f in enumerate(meta["files"]):
            sel = arrays["window_clip_index"] == j
            out.files.append(Path(f))
            out.windows.append(arrays["windows"][sel])
            out.window_start_s.append(arrays["window_start_s"][sel])
        if meta["files"]:
            clips.append(arrays["clip"])
            durations.append(arrays["durations_s"])
    if clips:
        out.clip, out.durations_s = np.concatenate(clips), np.concatenate(durations)
    return out
