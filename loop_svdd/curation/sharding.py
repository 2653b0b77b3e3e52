"""Embedding a pack or a library on several processes, GPUs or machines (``accelerate launch ... curate``).

Embedding is the one stage whose cost grows with every file, and a file's embedding depends on nothing else: each
process embeds its share of the files (every N-th, ``files[process::processes]``) into the output folder's one
content cache (chunks are named by their contents and written atomically; each process appends to its own log of
content hashes). The ranking, duplicates and report then run once, on one process, reading every embedding back
from that cache, so the result is the one a single process gives.
"""

from __future__ import annotations

from pathlib import Path

from ..engine.cache import CacheFolder, embed_files
from ..models.encoders import build_model, resolve_default_encoder
from .library import find_packs
from .pack import PackError, list_pack
from .pipeline import refuse_writing_into

__all__ = ["embed_share", "files_to_rank"]


def files_to_rank(input_path: str | Path, packs: str | int = "auto") -> list[Path]:
    """Every file `curate` would embed: those of each pack of `input_path` ([`find_packs`]); packs without
    audio are left out here and reported by the curation itself."""
    pack_dirs, _ = find_packs(Path(input_path), packs)
    files: list[Path] = []
    for pack in pack_dirs:
        try:
            files += list_pack(pack)
        except PackError:
            continue
    return files


def embed_share(
    input_path: str | Path,
    output_dir: str | Path,
    process: int,
    processes: int,
    packs: str | int = "auto",
    encoder: str | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> int:
    """Embed process `process`'s share (of `processes`) of the files into ``output_dir/cache``; returns how many
    files were in its share (those already cached are read, not embedded again)."""
    root = Path(input_path)
    refuse_writing_into(root, output_dir)
    share = files_to_rank(root, packs)[process::processes]
    model, extractor = build_model(encoder or resolve_default_encoder())
    model = model.to(device)
    embed_files(model, extractor, share, CacheFolder(Path(output_dir) / "cache", process), progress=progress)
    return len(share)
