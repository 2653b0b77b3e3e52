"""The package's error classes: every error a user can cause derives from `LoopSVDDError`, which the CLI turns
into a one-line message."""

from __future__ import annotations

import errno

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # an OSError's errno when there is no space left where it writes


def is_disk_full(err: BaseException) -> bool:
    """Whether `err` says the disk being written is full (or over quota)."""
    return isinstance(err, OSError) and err.errno in DISK_FULL


class LoopSVDDError(Exception):
    """Base class of the errors loop-svdd raises for bad input or state (the CLI prints them in one line)."""


class CorpusError(LoopSVDDError, ValueError):
    """A corpus that cannot be built, loaded or filtered as asked."""
