"""Curating on this machine's cores: a library's packs in one process per core (``curate(..., jobs=N)``,
``loop-svdd curate --jobs``). Each process is ``python -m loop_svdd.curation.sharding SPEC`` and does one share
([`loop_svdd.curation.sharding.curate_share`]); the run on one process then reads them back."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

from ..settings import CURATE

__all__ = ["curate_in_processes", "resolve_jobs", "share_command", "share_spec", "spec_found"]

Found = tuple[list[Path], list[Path]]  # a library's pack folders and its audio files in no pack
SHARE_MODULE = "loop_svdd.curation.sharding"  # what each process runs (it imports the library: not from here)
DISK_FULL_EXIT = 28  # a share's exit code when the output's disk is full: the whole run stops


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


def share_spec(
    input_path: Path, output_dir: Path, processes: int, packs: str | int, found: Found, options: dict
) -> dict:
    """What every share of curating `input_path` in `processes` processes is told (JSON-ready; `options` are
    those of [`loop_svdd.curation.sharding.curate_share`], ``device`` among them). `found`: the library's packs
    and loose files as `find_packs` gave them, so that no share walks the library again."""
    spec = {"input": str(input_path), "output": str(output_dir), "processes": processes, "packs": packs}
    spec["found"] = [[p.relative_to(input_path).as_posix() for p in paths] for paths in found]
    spec["options"] = {k: str(v) if isinstance(v, Path) else v for k, v in options.items()}
    return spec


def share_command(spec: dict, process: int) -> list[str]:
    """The command line of share `process` of `spec`: ``python -m loop_svdd.curation.sharding SPEC``."""
    return [sys.executable, "-m", SHARE_MODULE, json.dumps({**spec, "process": process})]


def spec_found(spec: dict) -> Found:
    """The packs and loose files of a [`share_spec`] as paths."""
    root = Path(spec["input"])
    packs, outside = ([root / p for p in paths] for paths in spec["found"])
    return packs, outside


def curate_in_processes(
    input_path: Path, output_dir: Path, jobs: int, packs: str | int, found: Found, options: dict
) -> None:
    """Run the `jobs` shares of curating `input_path` ([`loop_svdd.curation.sharding.curate_share`]) in as many
    processes on this machine, each on its share of the cores, and wait for them. A share that fails says so in
    one line; the run on one process that follows does its work. A full disk stops the run (``OSError``
    ENOSPC naming `output_dir`) once every share has ended; what they finished stays."""
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    spec = share_spec(input_path, output_dir, jobs, packs, found, options)
    running = []
    try:
        for k in range(jobs):
            running.append(subprocess.Popen(share_command(spec, k), env=env))
        codes = [share.wait() for share in running]
        for k, code in enumerate(codes):
            if code not in (0, DISK_FULL_EXIT):
                print(f"share {k + 1} of {jobs} did not finish; its packs are curated now", flush=True)
        if DISK_FULL_EXIT in codes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(output_dir))
    finally:
        for share in running:
            if share.poll() is None:
                share.kill()
