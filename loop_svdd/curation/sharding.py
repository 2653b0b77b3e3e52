"""Curating on several processes, GPUs or machines (``accelerate launch ... curate``).

Each process takes a share of the work and stores it in the output folder, where a run on one process then reads
it back, so the result is the one a single process gives:

- a library: a pack is curated within itself, so each process curates every N-th pack (its ranking, report and
  ``.done.json`` under ``OUTPUT/packs/``, [`loop_svdd.curation.library`]) and stores its loops' fingerprints;
  the run on one process reads every pack back, searches near-duplicates across the library and writes the
  library report;
- one pack: a file's embedding depends on nothing else, so each process embeds every N-th file; the run on one
  process ranks the pack from the cache.

All processes share ``OUTPUT/cache``: chunks and fingerprints are named by their contents and written atomically,
and each process appends to its own log of content hashes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..engine.cache import CacheFolder, embed_files
from ..models.encoders import build_model, resolve_default_encoder
from .library import curate, find_packs
from .pack import PackError, list_pack
from .pipeline import refuse_writing_into

__all__ = ["curate_share", "embed_share"]


def embed_share(
    pack: str | Path,
    output_dir: str | Path,
    process: int,
    processes: int,
    encoder: str | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> int:
    """Embed process `process`'s share (of `processes`) of the files of `pack` into ``output_dir/cache``; returns
    how many files were in its share (those already cached are read, not embedded again). A pack without audio
    gives an empty share: the run on one process reports it."""
    root = Path(pack)
    refuse_writing_into(root, output_dir)
    try:
        share = list_pack(root)[process::processes]
    except PackError:
        share = []
    model, extractor = build_model(encoder or resolve_default_encoder())
    model = model.to(device)
    embed_files(model, extractor, share, CacheFolder(Path(output_dir) / "cache", process), progress=progress)
    return len(share)


def curate_share(
    input_path: str | Path,
    output_dir: str | Path,
    process: int,
    processes: int,
    packs: str | int = "auto",
    device: str = "cpu",
    **options: Any,
) -> str:
    """Process `process`'s share (of `processes`) of curating `input_path` (see the module docstring), with the
    `options` of [`curate`] that the run on one process will get; returns what it did, in words."""
    root = Path(input_path)
    pack_dirs, outside = find_packs(root, packs)
    if pack_dirs == [root] and not outside:
        n = embed_share(root, output_dir, process, processes, options.get("encoder"), device, False)
        return f"embedded its share of {n} file(s)"
    options = {**options, "export_outliers": None, "progress": False}
    result = curate(root, output_dir, packs=packs, share=(process, processes), **options)
    return f"curated its share of {len(result.packs)} pack(s)"
