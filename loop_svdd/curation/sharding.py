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

On one machine, ``curate(..., jobs=N)`` (``loop-svdd curate --jobs N``) runs the same shares in N processes of
its own ([`loop_svdd.curation.processes`]; each started as ``python -m loop_svdd.curation.sharding SPEC``, the
spec in JSON: [`main`]) and then finishes as the run on one process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..engine.cache import CacheFolder, embed_files
from ..errors import first_line, is_disk_full
from ..models.encoders import build_model, resolve_default_encoder
from .library import curate, find_packs
from .pack import PackError, list_pack
from .pipeline import refuse_writing_into
from .processes import DISK_FULL_EXIT, Found, spec_found

__all__ = ["curate_share", "embed_share"]


def embed_share(
    pack: str | Path,
    output_dir: str | Path,
    process: int,
    processes: int,
    encoder: str | None = None,
    device: str = "cpu",
    progress: bool = True,
    cache_dir: str | Path | None = None,
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
    cache = CacheFolder(Path(cache_dir or Path(output_dir) / "cache"), process)
    embed_files(model, extractor, share, cache, progress=progress)
    return len(share)


def curate_share(
    input_path: str | Path,
    output_dir: str | Path,
    process: int,
    processes: int,
    packs: str | int = "auto",
    device: str = "cpu",
    found: Found | None = None,
    **options: Any,
) -> str:
    """Process `process`'s share (of `processes`) of curating `input_path` (see the module docstring), with the
    `options` of [`curate`] that the run on one process will get; returns what it did, in words. `found`: the
    packs and loose files as the starting run found them (walked again when None)."""
    root = Path(input_path)
    pack_dirs, outside = found or find_packs(root, packs)
    if pack_dirs == [root] and not outside:
        cache_dir = options.get("cache_dir")
        n = embed_share(root, output_dir, process, processes, options.get("encoder"), device, False, cache_dir)
        return f"embedded its share of {n} file(s)"
    options = {**options, "export_outliers": None, "progress": False}
    result = curate(root, output_dir, packs=packs, share=(process, processes), found=(pack_dirs, outside), **options)
    return f"curated its share of {len(result.packs)} pack(s)"


def main(argv: list[str]) -> int:
    """One share of [`loop_svdd.curation.processes.curate_in_processes`]:
    ``python -m loop_svdd.curation.sharding SPEC`` (SPEC in JSON)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a share prints one line, as the command that started it does
    hf_logging.set_verbosity_error()
    spec = json.loads(argv[0])
    k, n = spec["process"], spec["processes"]
    try:
        did = curate_share(
            spec["input"], spec["output"], k, n, spec["packs"], found=spec_found(spec), **spec["options"]
        )
    except Exception as err:  # one line; the run that follows does this share's work
        if is_disk_full(err):  # said once, by the run that started the shares, which stops
            return DISK_FULL_EXIT
        print(f"share {k + 1} of {n}: {first_line(err)}", file=sys.stderr)
        return 1
    print(f"share {k + 1} of {n}: {did}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
