"""Where the time goes: wall seconds per stage of a run, written beside its results (``ranking.json``'s
``seconds``) and read by ``loop-svdd benchmark scale``."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

__all__ = ["Stopwatch"]


class Stopwatch(dict):
    """Wall seconds per stage, summed over every time a stage runs: ``with watch("rank"): ...``."""

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add({stage: time.perf_counter() - start})

    def add(self, seconds: Mapping[str, float]) -> Stopwatch:
        """Add other seconds per stage (e.g. a sub-step's, or another pack's) to these."""
        for stage, s in seconds.items():
            self[stage] = self.get(stage, 0.0) + float(s)
        return self
