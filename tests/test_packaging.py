"""Packaging: declared dependencies, file permissions, the CLI's words, and what a wheel contains."""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "loop_svdd"
OPTIONAL = {"gradio": "demo"}  # third-party modules that may come from an extra instead: module -> extra


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(section: str) -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = [x.strip() for x in cfg.get(*section.split(":")).splitlines() if x.strip()]
    return {_norm(re.split(r"[<>=!~ ;\[@]", x, maxsplit=1)[0]) for x in lines}


def _imported_modules() -> dict[str, str]:
    """Top-level module -> one file importing it, for every import (nested ones too) under loop_svdd/."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_declared():
    required = _requirements("options:install_requires")
    distributions = importlib.metadata.packages_distributions()
    third_party = {
        m: f for m, f in _imported_modules().items() if m not in sys.stdlib_module_names and m != "loop_svdd"
    }
    assert {"torch", "scipy", "yaml", "httpx", "psutil"} <= set(third_party)  # the scan sees them
    undeclared = []
    for module, where in sorted(third_party.items()):
        names = {_norm(d) for d in distributions.get(module, [module])}
        declared = required | (
            _requirements(f"options.extras_require:{OPTIONAL[module]}") if module in OPTIONAL else set()
        )
        if not names & declared:
            undeclared.append(f"{module} ({where}; distribution {', '.join(sorted(names))})")
    assert not undeclared, "imported but not in setup.cfg: " + "; ".join(undeclared)


# -- permissions -------------------------------------------------------------------------------------------
@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_saved_model_files_are_world_readable(tmp_path, umask_022):
    from model_folders import build_model_folder

    folder = build_model_folder(tmp_path / "model")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    assert {"model.safetensors", "config.json", "training_summary.json"} <= {p.name for p in files}
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in files}
    assert set(modes.values()) == {"0o644"}, modes


def test_checkpoint_files_are_world_readable(tmp_path, umask_022):
    import torch

    from loop_svdd.checkpointing import save_checkpoint

    save_checkpoint(tmp_path, {"step": 3}, {"w": torch.zeros(3)}, step=3)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()}
    assert modes == {"tensors-0000003.safetensors": "0o644", "trainer_state.json": "0o644"}


# -- the wheel ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_wheel_contains_templates_assets_and_metrics(tmp_path):
    """Build the wheel as a user would (no install: torch is not needed) and check what it ships."""
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    (wheel,) = tmp_path.glob("loop_svdd-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {f"loop_svdd/hub/templates/{t.name}" for t in (PACKAGE / "hub" / "templates").glob("*.jinja")}
    assets = {f"loop_svdd/{p.relative_to(PACKAGE)}" for p in (PACKAGE / "assets").rglob("*") if p.is_file()}
    assert len(templates) == 3 and "loop_svdd/assets/default_encoder/model.safetensors" in assets
    assert templates | assets <= names
    assert "loop_svdd/metrics/anomaly_detection.py" in names and "loop_svdd/cli.py" in names
    assert not any(n.startswith(("tests/", "hub/", "demo/", "scripts/")) for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = {
        _norm(re.split(r"[<>=!~ ;\[(]", line.split(":", 1)[1].strip(), maxsplit=1)[0])
        for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    assert {"scipy", "pyyaml", "httpx", "psutil"} <= requires
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "loop-svdd = loop_svdd.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
