"""A Gradio Space that runs the loop-svdd demo on a model repo: README front matter, app.py, requirements."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
from pathlib import Path

from .publish import _prepare_out_dir, check_repo_id, list_files
from .rendering import render_card, render_file

FALLBACK_REQUIREMENTS = [
    "torch>=2.9",
    "torchaudio>=2.9",
    "torchcodec>=0.8",
    "transformers>=4.50",
    "huggingface-hub>=0.30",
    "datasets>=4.0",
    "evaluate>=0.4",
    "safetensors>=0.4",
    "scikit-learn>=1.3",
    "soundfile>=0.12",
    "numpy>=1.24",
    "tqdm",
    "matplotlib",
]


TESTED_GRADIO_VERSION = "6.31.0"  # the gradio the demo's tests ran on; a Space needs an exact sdk_version


def gradio_version() -> str:
    """The Space's `sdk_version`: the installed gradio's (what `loop-svdd demo` runs here), else the tested one
    (`loop-svdd space` itself does not need gradio: a plain wheel install can write and upload a Space)."""
    try:
        return importlib.metadata.version("gradio")
    except importlib.metadata.PackageNotFoundError:
        return TESTED_GRADIO_VERSION


def package_requirements() -> list[str]:
    """loop-svdd's own runtime requirements (no extras; gradio comes with the Space's SDK)."""
    try:
        reqs = importlib.metadata.requires("loop-svdd") or []
    except importlib.metadata.PackageNotFoundError:
        reqs = FALLBACK_REQUIREMENTS
    out = [r for r in reqs if "extra ==" not in r]
    return [r for r in out if re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() != "gradio"]


def _vendor_package(out_dir: Path) -> None:
    """Copy the loop_svdd package source into the Space (no caches, no compiled files)."""
    src = Path(__file__).resolve().parents[1]
    shutil.copytree(src, out_dir / "loop_svdd", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))


def prepare_space(
    model_repo: str,
    out_dir: str | Path,
    repo_id: str,
    requirement: str | None = None,
    license: str = "mit",
    title: str | None = None,
    sdk_version: str | None = None,
) -> list[str]:
    """Write the Space files into `out_dir`; return their names.

    `requirement` is a pip requirement for loop-svdd itself (e.g. ``loop-svdd @ git+https://...``); without it
    the package source is copied into the Space so it runs with nothing but PyPI dependencies.
    """
    check_repo_id(model_repo)
    check_repo_id(repo_id)
    out_dir = Path(out_dir)
    sdk_version = sdk_version or gradio_version()
    _prepare_out_dir(out_dir)
    title = title or f"Loop anomaly: {model_repo.split('/')[-1]}"
    code_note = f"installed from `{requirement}`" if requirement else "its source is in the `loop_svdd/` folder"
    from huggingface_hub import SpaceCard, SpaceCardData

    card_data = SpaceCardData(
        title=title,
        emoji="🔁",
        colorFrom="indigo",
        colorTo="red",
        sdk="gradio",
        sdk_version=sdk_version,
        app_file="app.py",
        pinned=False,
        license=license,
        models=[model_repo],
        tags=["audio", "music", "anomaly-detection", "loop-svdd"],
        short_description="Score musical loops for anomaly with a Deep SVDD model",
    )
    readme = render_card(
        SpaceCard, card_data, "space_README.md.jinja", title=title, model_repo=model_repo, code_note=code_note
    )
    (out_dir / "README.md").write_text(readme)
    (out_dir / "app.py").write_text(render_file("space_app.py.jinja", model_repo=model_repo))
    requirements = package_requirements() + ([requirement] if requirement else [])
    (out_dir / "requirements.txt").write_text("\n".join(requirements) + "\n")
    (out_dir / "packages.txt").write_text("ffmpeg\n")  # torchcodec decodes audio with FFmpeg
    if not requirement:
        _vendor_package(out_dir)
    return list_files(out_dir)
