"""The loop-svdd web demo (Gradio): score uploaded or recorded loops with any detector folder or Hub id.

``build_demo`` returns the `gr.Blocks`; ``serve`` queues and launches it (what ``loop-svdd demo`` and the Space
app call). Gradio is imported on first use, so ``loop_svdd.figures`` and ``.analysis`` work without it.
"""

from __future__ import annotations

from typing import Any


def build_demo(*args: Any, **kwargs: Any):
    from .app import build_demo as _build

    return _build(*args, **kwargs)


def serve(*args: Any, **kwargs: Any):
    from .app import serve as _serve

    return _serve(*args, **kwargs)


__all__ = ["build_demo", "serve"]
