"""What `--help` says is what the code does: exit statuses read from real runs, the int8 figure from the measurement
written in README.md or docs/, and where `train` runs its encoder pass from a real training run."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
import torch
from audio_cases import CASES
from conftest import small_model

from loop_svdd import LoopSVDDFeatureExtractor
from loop_svdd.cli import main

ROOT = Path(__file__).resolve().parents[1]


def measured_text() -> str:
    """README.md and docs/*.md: where the measured figures are written."""
    return "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def help_text(command: str) -> str:
    """`loop-svdd COMMAND --help`, whitespace collapsed (argparse wraps lines where it likes)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main([command, "--help"])
    return " ".join(out.getvalue().split())


def run_cli(args: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main([str(a) for a in args])


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    from loop_svdd.models.model_io import save_detector

    model = small_model()
    model.set_svdd_state(center=torch.full((8,), 0.2), threshold=1.0, calibration_scores=[0.1, 0.5, 1.0])
    folder = tmp_path_factory.mktemp("model") / "m"
    save_detector(model, LoopSVDDFeatureExtractor.from_model_config(model.config), folder)
    return folder


def test_score_help_gives_the_exit_statuses_the_command_returns(model_folder, tmp_path):
    bad, good = CASES["random-bytes-wav"][0](tmp_path), CASES["silence"][0](tmp_path)
    nothing = run_cli(["score", model_folder, bad])
    strict = run_cli(["score", model_folder, bad, good, "--strict"])
    text = help_text("score")
    assert f"the exit status is {nothing} when nothing could be scored" in text and nothing == 2
    assert f"{strict} for any skipped file with --strict" in text and f"exit with status {strict} if any" in text


def test_score_help_gives_the_int8_speed_readme_measures():
    readme = measured_text()
    ours = float(re.search(r"\| ours \(batched, fp32\) \| ([\d.]+) \|", readme).group(1))
    fast = float(re.search(r"\| fast \(int8 encoder\) \| ([\d.]+) \|", readme).group(1))
    spearman = re.search(r"The fast mode keeps the ranking: Spearman ([\d.]+) with the fp32 scores", readme).group(1)
    text = help_text("score")
    assert f"docs/usage.md measures {fast / ours:.1f}x the fp32 loops/s" in text and f"Spearman {spearman}" in text
    assert "~2x" not in text


@pytest.mark.slow
def test_train_help_says_where_the_encoder_runs(corpus, encoder_dir, tmp_path, monkeypatch):
    """A real (tiny) training run: the encoder embeds the loops on the device the help names."""
    from loop_svdd.training import from_corpus

    devices = []
    real = from_corpus.embed_decodable

    def spy(model, *args, **kwargs):
        devices.append(model.device.type)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(from_corpus, "embed_decodable", spy)
    args = ["train", corpus, "--normal", "instrument=bass", "--encoder", encoder_dir, "--output-dir", tmp_path / "m"]
    assert run_cli([*args, "--no-progress", "--ensemble", "1", "--epochs", "2", "--pretrain-epochs", "1"]) == 0
    text = help_text("train")
    assert devices == ["cpu"] and "The encoder pass (embedding the loops) runs on the CPU" in text
    assert "Deep SVDD heads train on the device Accelerate picks" in text and "Runs on CPU, a GPU" not in text
