"""The Hub templates shipped inside the package (``loop_svdd/hub/templates/``, package data) and their rendering:
cards through `huggingface_hub`'s own ``RepoCard.from_template`` (YAML front matter from a ``CardData``),
other files (the Space's ``app.py``) with Jinja2. Undefined template variables are errors, never blanks."""

from __future__ import annotations

from importlib import resources
from typing import Any

TEMPLATE_PACKAGE = "loop_svdd.hub"
TEMPLATE_FOLDER = "templates"


def template_names() -> list[str]:
    """The template files in the installed package."""
    folder = resources.files(TEMPLATE_PACKAGE) / TEMPLATE_FOLDER
    return sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".jinja"))


def template_text(name: str) -> str:
    """The text of ``loop_svdd/hub/templates/<name>`` (read as package data: works from a wheel or a zip)."""
    return (resources.files(TEMPLATE_PACKAGE) / TEMPLATE_FOLDER / name).read_text(encoding="utf-8")


def _check_defined(source: str, name: str, available: set[str]) -> None:
    import jinja2
    from jinja2 import meta

    missing = meta.find_undeclared_variables(jinja2.Environment().parse(source)) - available
    if missing:
        raise KeyError(f"template {name} uses undefined variable(s): {', '.join(sorted(missing))}")


def render_card(card_class: type, card_data: Any, name: str, **context: Any) -> str:
    """Render the card template `name` with `card_class.from_template` (a `ModelCard`, `DatasetCard` or
    `SpaceCard`): `card_data` becomes the YAML front matter, and the Hub's card parser validates the result."""
    source = template_text(name)
    _check_defined(source, name, {"card_data", *card_data.to_dict(), *context})
    return str(card_class.from_template(card_data, template_str=source, **context))


def render_file(name: str, **context: Any) -> str:
    """Render a non-card template (e.g. ``space_app.py.jinja``) with Jinja2, strictly."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    return env.from_string(template_text(name)).render(**context)
