"""The package's error classes: every error a user can cause derives from `LoopSVDDError`, which the CLI turns
into a one-line message."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
def safetensors_write_errors_as_oserror(tmp: Path | None = None) -> Iterator[None]:
    """Around a safetensors write: its writer raises its own error class, carrying the system's message; a full
    disk or quota comes out as the `OSError` (ENOSPC, EDQUOT) that every command handles. On any `OSError` the
    temporary file `tmp` being written (if given) is removed, so that no half-written file is left behind."""
    try:
        yield
    except OSError:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    except SafetensorError as err:
        code = next((code for code in DISK_FULL if os.strerror(code) in str(err)), None)
        if code is None:
            raise
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise OSError(code, first_line(err)) from err


class LoopSVDDError(Exception):
    """Base class of the errors loop-svdd raises for bad input or state (the CLI prints them in one line)."""


class CorpusError(LoopSVDDError, ValueError):
    """A corpus that cannot be built, loaded or filtered as asked."""
