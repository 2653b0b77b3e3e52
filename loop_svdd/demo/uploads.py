"""Gradio's file values as plain paths (the scoring tab and the curation tab both take uploads)."""

from __future__ import annotations

from typing import Any


def upload_paths(value: Any) -> list[str]:
    """Gradio file values (paths, dicts or FileData objects) -> paths."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        path = item.get("path") if isinstance(item, dict) else getattr(item, "path", item)
        if path:
            out.append(str(path))
    return out
