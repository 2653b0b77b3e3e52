"""Content hashes of audio files, the keys of the embedding cache: a loop is embedded once per content, whatever
its name or folder, and a changed file is embedded again.

Hashing reads every byte, so each hash is remembered in a log beside the cache (one JSON line per file: the
resolved path, size, modification time and hash); a rerun hashes only the files it has not seen unchanged. Each
process of a sharded run appends to a log of its own ([`hash_log`]); every log in the folder is read.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["HASH_LOG", "ContentHashes", "content_hash", "hash_log"]

HASH_LOG = "content-hashes.jsonl"  # a cache folder's log of content hashes (embeddings and fingerprints)
BLOCK_BYTES = 1 << 20
LOG_EVERY = 512  # new hashes written to the log at a time: what a kill while hashing can cost at most


def content_hash(path: str | Path) -> str:
    """BLAKE2b-128 of the file's bytes, in hex (raises OSError when the file cannot be read)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(BLOCK_BYTES):
            h.update(block)
    return h.hexdigest()


def hash_log(folder: str | Path, process: int | None = None) -> Path:
    """The log of content hashes that `process` of a sharded run appends to (None: a single process)."""
    name = HASH_LOG if process is None else HASH_LOG.replace(".jsonl", f".{process}.jsonl")
    return Path(folder) / name


def _stat_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _read_log(log: Path) -> dict[str, str]:
    known: dict[str, str] = {}
    if not log.is_file():
        return known
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
            known[entry["key"]] = entry["hash"]
        except (ValueError, KeyError, TypeError):  # a line cut short by a kill: that file is hashed again
            continue
    return known


class ContentHashes:
    """File -> content hash, remembered across runs in the JSON-lines logs of `folder` (new hashes go to the log
    of `process`, [`hash_log`])."""

    def __init__(self, folder: str | Path, process: int | None = None) -> None:
        self.log_path = hash_log(folder, process)
        self.known: dict[str, str] = {}
        for log in sorted(Path(folder).glob(HASH_LOG.replace(".jsonl", "*.jsonl"))):
            self.known.update(_read_log(log))

    def of(self, files: Sequence[Path]) -> list[str | None]:
        """Each file's content hash, or None for a file that cannot be read (it is not cached)."""
        hashes, new = [], []
        for f in files:
            try:
                key = _stat_key(Path(f))
                if key not in self.known:
                    self.known[key] = content_hash(f)
                    new.append(key)
                    if len(new) == LOG_EVERY:
                        self._remember(new)
                        new = []
                hashes.append(self.known[key])
            except OSError:
                hashes.append(None)
        self._remember(new)
        return hashes

    def _remember(self, keys: list[str]) -> None:
        if not keys:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps({"key": k, "hash": self.known[k]}) + "\n" for k in keys)
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(lines)
            log.flush()
            os.fsync(log.fileno())
