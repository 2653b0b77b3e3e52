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
# third-party modules that may come from an extra instead: module -> extra
OPTIONAL = {"gradio": "demo", "onnx": "export", "onnxruntime": "export", "openvino": "export", "usearch": "bench"}


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

    from loop_svdd.models.checkpointing import save_checkpoint

    save_checkpoint(tmp_path, {"step": 3}, {"w": torch.zeros(3)}, step=3)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()}
    assert modes == {"tensors-0000003.safetensors": "0o644", "trainer_state.json": "0o644"}


# -- the command line's words ------------------------------------------------------------------------------
def _subcommands(parser, prefix=()) -> list[tuple[tuple[str, ...], object]]:
    import argparse

    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [((*prefix, name), sub), *_subcommands(sub, (*prefix, name))]
    return found


def _help(argv: list[str], capsys) -> str:
    from loop_svdd.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def _option_help(text: str, option: str) -> str:
    """The help of `option` in a --help text, its wrapped lines joined."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith(option))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("   ") or line.lstrip().startswith("-"):
            break
        block.append(line)
    return " ".join(" ".join(block).split())


def test_every_subcommand_help_shows_its_defaults(capsys, monkeypatch):
    from loop_svdd.cli import build_parser

    monkeypatch.setenv("COLUMNS", "10000")  # no wrapping: one option per line
    commands = _subcommands(build_parser())
    assert {"train", "score", "push", "space", "quickstart", "corpus", "corpus build"} <= {
        " ".join(c) for c, _ in commands
    }
    checked = 0
    for command, sub in commands:
        text = _help(list(command), capsys)
        for action in sub._actions:
            default = action.default
            if default in (None, [], "==SUPPRESS==") or isinstance(default, bool) or not action.option_strings:
                continue
            shown = [" ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)]
            if (
                isinstance(default, list)
                and all(type(x) is int for x in default)
                and default == list(range(default[0], default[-1] + 1))
            ):
                shown.append(f"{default[0]}-{default[-1]}")  # a range of seeds may be written 0-4
            if isinstance(default, float):
                shown.append(f"{default:g}")  # 60.0 may be written 60
            line = _option_help(text, action.option_strings[0])
            assert any(re.search(rf"default:? {re.escape(x)}\b", line) for x in shown), f"{command}: {line}"
            checked += 1
    assert checked > 30


def test_encoder_help_names_every_accepted_value(capsys, monkeypatch):
    from loop_svdd.cli import RANDOM_ENCODERS
    from loop_svdd.models.encoders import is_random_encoder
    from loop_svdd.models.loop_svdd.configuration_loop_svdd import HTSAT_SIZES

    assert set(RANDOM_ENCODERS) == {f"random-{size}" for size in HTSAT_SIZES}
    assert all(is_random_encoder(name) for name in RANDOM_ENCODERS)
    monkeypatch.setenv("COLUMNS", "10000")
    for command in ("train", "quickstart", "embed"):
        line = _option_help(_help([command], capsys), "--encoder")
        for value in ("'default'", "CLAP Hub id", "CLAP folder", ".pt", "LoopSVDD model folder", *RANDOM_ENCODERS):
            assert value in line, (command, value)


def test_no_progress_silences_datasets_bars():
    import datasets

    from loop_svdd.cli import quiet_libraries

    assert datasets.is_progress_bar_enabled()
    restore = quiet_libraries(no_progress=False)
    assert datasets.is_progress_bar_enabled()
    restore()
    restore = quiet_libraries(no_progress=True)
    assert not datasets.is_progress_bar_enabled()
    restore()
    assert datasets.is_progress_bar_enabled()


@pytest.mark.slow
def test_train_says_what_the_threshold_rests_on(corpus, encoder_dir, tmp_path, capsys):
    import json

    from loop_svdd.cli import main

    argv = ["train", str(corpus), "--normal", "instrument=bass", "--output-dir", str(tmp_path / "m")]
    argv += ["--encoder", str(encoder_dir), "--hidden-dims", "32", "8", "--epochs", "4", "--pretrain-epochs", "2"]
    assert main([*argv, "--ensemble", "1", "--no-progress"]) == 0
    captured = capsys.readouterr()
    summary = json.loads((tmp_path / "m" / "training_summary.json").read_text())
    n = len(summary["calibration_rows"])
    assert n > 0
    line = next(x for x in captured.out.splitlines() if x.startswith("threshold:"))
    assert line == (
        f"threshold: {summary['threshold']:.4g}, the 95th percentile of the scores of {n} normal loops of the "
        "training split that were not used to fit the heads"
    )
    assert "held-out" not in line
    assert "%|" not in captured.err  # --no-progress: no tqdm bar, ours or datasets'


def test_score_exits_non_zero_when_nothing_could_be_scored(encoder_dir, tmp_path, capsys):
    from loop_svdd.cli import main

    (tmp_path / "empty").mkdir()
    assert main(["score", str(encoder_dir), str(tmp_path / "empty")]) == 2
    assert "error: no file could be scored (no audio files found)" in capsys.readouterr().err
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    assert main(["score", str(encoder_dir), str(tmp_path / "bad.wav"), str(tmp_path / "missing.wav"), "--json"]) == 2
    err = capsys.readouterr().err
    assert "no file could be scored (2 skipped, none left)" in err and "Traceback" not in err


@pytest.mark.slow
def test_python_dash_m_reports_errors_in_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "loop_svdd.cli", "score", str(tmp_path / "nowhere"), "x.wav"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 2, run.stderr[-2000:]
    expected = f"loop-svdd score: error: no such file or folder: {tmp_path / 'nowhere'}"
    assert run.stderr.strip().splitlines() == [expected]


# -- the wheel ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_wheel_contains_templates_assets_and_metrics(tmp_path):
    """Build the wheel as a user would (no install: torch is not needed) and check what it ships, and that
    setuptools has no package-data warning (asset folders and templates are declared as namespace packages)."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-v",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "absent from the `packages` configuration" not in run.stdout + run.stderr
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


# -- a light --help ----------------------------------------------------------------------------------------
LIGHT_PARSER_SCRIPT = """
import sys
import loop_svdd.cli
parser = loop_svdd.cli.build_parser()
assert "train" in parser.format_help()
heavy = sorted(m for m in ("torch", "transformers", "datasets", "numpy", "huggingface_hub") if m in sys.modules)
print("heavy modules:", heavy)
sys.exit(1 if heavy else 0)
"""


def test_building_the_parser_imports_no_torch():
    """`loop-svdd --help` must not pay for torch/transformers: commands import them inside `run`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-c", LIGHT_PARSER_SCRIPT], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    assert "heavy modules: []" in run.stdout


def test_public_classes_still_register_the_auto_classes():
    from transformers import AutoConfig

    import loop_svdd

    assert loop_svdd.LoopSVDDModel.__name__ == "LoopSVDDModel"
    assert isinstance(AutoConfig.for_model("loop_svdd"), loop_svdd.LoopSVDDConfig)
    assert loop_svdd.LoopSVDDConfig._auto_class == "AutoConfig"
    with pytest.raises(AttributeError):
        loop_svdd.NoSuchThing  # noqa: B018


def test_output_piped_into_head_ends_quietly():
    """`loop-svdd ... | head`: when the reader leaves, no BrokenPipeError traceback (a 1 MB table into `head -c 10`)."""
    code = (
        "import sys, loop_svdd.commands.score as s; s.run = lambda args: print('x' * 1_000_000); "
        "from loop_svdd.cli import main; sys.exit(main(['score', 'model', 'loop.wav']))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', {code!r}], "
            "stdout=subprocess.PIPE, stderr=sys.stderr); p.stdout.read(10); p.stdout.close(); sys.exit(p.wait())",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 141 and "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr, run.stderr
