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
its own ([`curate_in_processes`]; each started as ``python -m loop_svdd.curation.sharding SPEC``, the spec in
JSON) and then finishes as the run on one process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..engine.cache import CacheFolder, embed_files
from ..models.encoders import build_model, resolve_default_encoder
from ..settings import CURATE
from .library import curate, find_packs
from .pack import PackError, list_pack
from .pipeline import refuse_writing_into

__all__ = ["curate_in_processes", "curate_share", "embed_share", "resolve_jobs"]


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
    **options: Any,
) -> str:
    """Process `process`'s share (of `processes`) of curating `input_path` (see the module docstring), with the
    `options` of [`curate`] that the run on one process will get; returns what it did, in words."""
    root = Path(input_path)
    pack_dirs, outside = find_packs(root, packs)
    if pack_dirs == [root] and not outside:
        cache_dir = options.get("cache_dir")
        n = embed_share(root, output_dir, process, processes, options.get("encoder"), device, False, cache_dir)
        return f"embedded its share of {n} file(s)"
    options = {**options, "export_outliers": None, "progress": False}
    result = curate(root, output_dir, packs=packs, share=(process, processes), **options)
    return f"curated its share of {len(result.packs)} pack(s)"


def resolve_jobs(jobs: int | str, one_pack: bool, n_packs: int) -> int:
    """How many processes curate on this machine: ``"auto"`` is one per core (at most
    :data:`CURATE.most_auto_jobs`, at most one per pack) for a library and one for a single pack (whose
    embedding already uses every core); never more processes than a library has packs."""
    if jobs == "auto":
        return 1 if one_pack else max(1, min(os.cpu_count() or 1, CURATE.most_auto_jobs, n_packs))
    try:
        n = int(jobs)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or str(jobs).strip() != str(n):
        raise ValueError(f"jobs must be 'auto' or a whole number >= 1, got {jobs!r}")
    return n if one_pack else min(n, max(n_packs, 1))


def curate_in_processes(input_path: Path, output_dir: Path, jobs: int, packs: str | int, options: dict) -> None:
    """Run the `jobs` shares of curating `input_path` ([`curate_share`]) in as many processes on this machine,
    each on its share of the cores, and wait for them. A share that fails says so in one line; the run on one
    process that follows does its work."""
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    spec = {"input": str(input_path), "output": str(output_dir), "processes": jobs, "packs": packs}
    spec["options"] = {k: str(v) if isinstance(v, Path) else v for k, v in options.items()}
    running = []
    try:
        for k in range(jobs):
            argv = [sys.executable, "-m", __name__, json.dumps({**spec, "process": k})]
            running.append(subprocess.Popen(argv, env=env))
        for k, share in enumerate(running):
            if share.wait() != 0:
                print(f"share {k + 1} of {jobs} did not finish; its packs are curated now", flush=True)
    finally:
        for share in running:
            share.kill() if share.poll() is None else None


def main(argv: list[str]) -> int:
    """One share of [`curate_in_processes`]: ``python -m loop_svdd.curation.sharding SPEC`` (SPEC in JSON)."""
    spec = json.loads(argv[0])
    k, n = spec["process"], spec["processes"]
    try:
        did = curate_share(spec["input"], spec["output"], k, n, spec["packs"], **spec["options"])
    except Exception as err:  # one line; the run that follows does this share's work
        print(
            f"share {k + 1} of {n}: {str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}",
            file=sys.stderr,
        )
        return 1
    print(f"share {k + 1} of {n}: {did}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
