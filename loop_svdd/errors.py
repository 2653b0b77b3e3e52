"""The package's error classes: every error a user can cause derives from `LoopSVDDError`, which the CLI turns
into a one-line message."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager

from safetensors import SafetensorError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # an OSError's errno when there is no space left where it writes


def first_line(err: BaseException) -> str:
    """The first line of `err`'s message, or its class name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def is_disk_full(err: BaseException) -> bool:
    """Whether `err` says the disk being written is full (or over quota)."""
    return isinstance(err, OSError) and err.errno in DISK_FULL


@contextmanager
def safetensors_write_errors_as_oserror() -> Iterator[None]:
    """Around a safetensors write: its writer raises its own error class, carrying the system's message; a full
    disk or quota comes out as the `OSError` (ENOSPC, EDQUOT) that every command handles."""
    try:
        yield
    except SafetensorError as err:
        for code in DISK_FULL:
            if os.strerror(code) in str(err):
                raise OSError(code, first_line(err)) from err
        raise


class LoopSVDDError(Exception):
    """Base class of the errors loop-svdd raises for bad input or state (the CLI prints them in one line)."""


class CorpusError(LoopSVDDError, ValueError):
    """A corpus that cannot be built, loaded or filtered as asked."""
