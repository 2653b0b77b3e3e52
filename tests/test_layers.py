"""The import contracts of `.importlinter` (layers, independent siblings, no circles) hold: `lint-imports` is run on
the package as installed from this tree, lazy imports inside functions included."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".importlinter"
LINT = (
    "import sys; from importlinter.cli import lint_imports; "
    "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))"
)


def test_contracts_cover_the_layers_and_circles():
    parser = configparser.ConfigParser()
    parser.read(CONFIG)
    types = {parser[s]["type"] for s in parser.sections() if s.startswith("importlinter:contract:")}
    assert {"layers", "independence", "acyclic_siblings"} <= types
    assert parser["importlinter:contract:layers"].getboolean("exhaustive")  # a new top-level module needs a layer


def test_import_contracts_are_kept():
    run = subprocess.run(
        [sys.executable, "-c", LINT, str(CONFIG)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, "broken import contracts (see .importlinter):\n" + report[report.find("Contracts") :]
