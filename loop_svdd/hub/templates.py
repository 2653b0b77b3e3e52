"""Finding and rendering the Hub templates kept in the project's top-level ``hub/`` folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ENV_VAR = "LOOP_SVDD_HUB_DIR"


class TemplateNotFoundError(FileNotFoundError):
    """The ``hub/`` folder of the project cannot be found (a non-editable install without it)."""


def hub_dir() -> Path:
    """The project's ``hub/`` folder: ``$LOOP_SVDD_HUB_DIR``, else the one next to the ``loop_svdd`` package."""
    candidates = [Path(os.environ[ENV_VAR])] if os.environ.get(ENV_VAR) else []
    candidates.append(Path(__file__).resolve().parents[2] / "hub")
    for path in candidates:
        if (path / "templates").is_dir():
            return path
    raise TemplateNotFoundError(
        f"cannot find the hub/ templates folder (looked in {', '.join(map(str, candidates))}); "
        f"install loop-svdd editable from a checkout or set {ENV_VAR}"
    )


def template_path(name: str) -> Path:
    path = hub_dir() / "templates" / name
    if not path.is_file():
        raise TemplateNotFoundError(f"missing Hub template {path}")
    return path


def render(name: str, **context: Any) -> str:
    """Render ``hub/templates/<name>`` with Jinja2 (undefined variables are errors, not blanks)."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    return env.from_string(template_path(name).read_text()).render(**context)
