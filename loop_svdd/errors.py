"""The package's error classes: every error a user can cause derives from `LoopSVDDError`, which the CLI turns
into a one-line message."""

from __future__ import annotations

import errno

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # an OSError's errno when there is no space left where it writes


def first_line(err: BaseException) -> str:
    """The first line of `err`'s message, or its class name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def is_disk_full(err: BaseException) -> bool:
    """Whether `err` says the disk being written is full (or over quota). safetensors' writer raises its own
    error class, whose message carries the system's."""
    if isinstance(err, OSError):
        return err.errno in DISK_FULL
    return "No space left on device" in str(err) or "Disk quota exceeded" in str(err)


class LoopSVDDError(Exception):
    """Base class of the errors loop-svdd raises for bad input or state (the CLI prints them in one line)."""


class CorpusError(LoopSVDDError, ValueError):
    """A corpus that cannot be built, loaded or filtered as asked."""
