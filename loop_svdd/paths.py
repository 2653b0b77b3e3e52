"""Telling local paths from Hub ids, so a mistyped path is reported as a missing path, not as a Hub error."""

from __future__ import annotations

import re
from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent / "assets"  # the weights and cards shipped in the package

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # `org/name`: one slash, no leading `.`, `/` or `~`


def looks_like_hub_id(name: str | Path | None) -> bool:
    """True for `org/name` strings that are not an existing local path."""
    return bool(name) and HUB_ID.match(str(name)) is not None and not Path(str(name)).exists()


def missing_path_message(source: str | Path) -> str | None:
    """`"no such file or folder: SOURCE"` when `source` is neither an existing path nor shaped like a Hub id
    (`org/name`); None when it exists or may be a Hub id."""
    text = str(source)
    if Path(text).expanduser().exists() or looks_like_hub_id(text):
        return None
    return f"no such file or folder: {text}"


def hub_failure_message(source: str | Path, what: str, reason: str) -> str:
    """One line for a Hub id that could not be loaded: says that no local path of that name exists either."""
    return f"cannot load the {what} {str(source)!r}: no local file or folder of that name, and as a Hub id: {reason}"
