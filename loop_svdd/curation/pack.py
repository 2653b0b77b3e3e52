"""A pack on disk: its audio files, and their embeddings through the engine's resumable file cache
([`loop_svdd.engine.cache.embed_files`]: chunks of safetensors keyed by the encoder and each file's content, so
an interrupted run resumes where it stopped, with every window's embedding for the time-resolved scores)."""

from __future__ import annotations

from pathlib import Path

from ..audio.decode import find_audio_files
from ..engine.cache import CHUNK_SIZE, FileEmbeddings, embed_files
from ..errors import LoopSVDDError

__all__ = ["CHUNK_SIZE", "PackEmbeddings", "PackError", "embed_pack", "list_pack"]

PackEmbeddings = FileEmbeddings  # the embeddings of a pack's loops that decoded, and the files that did not
embed_pack = embed_files  # embed every file of a pack once (cached chunks are read back)


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
