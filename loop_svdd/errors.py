"""The package's error classes: every error a user can cause derives from `LoopSVDDError`, which the CLI turns
into a one-line message."""

from __future__ import annotations


class LoopSVDDError(Exception):
    """Base class of the errors loop-svdd raises for bad input or state (the CLI prints them in one line)."""


class CorpusError(LoopSVDDError, ValueError):
    """A corpus that cannot be built, loaded or filtered as asked."""
