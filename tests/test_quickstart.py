"""The main job end to end on a small real corpus (FluidSynth soundfonts, Hydrogen kits, Sonic Pi loops)."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import small_model

from loop_svdd import LoopSVDDFeatureExtractor
from loop_svdd.cli import main
from loop_svdd.models.model_io import load_detector, save_detector

pytestmark = pytest.mark.skipif(
    shutil.which("fluidsynth") is None, reason="fluidsynth not installed (bash scripts/setup.sh installs it)"
)


@pytest.mark.slow
def test_quickstart_end_to_end(tmp_path, capsys):
    encoder = tmp_path / "encoder"
    model = small_model()
    save_detector(model, LoopSVDDFeatureExtractor.from_model_config(model.config), encoder)
    out = tmp_path / "qs"
    args = ["quickstart", "--output-dir", str(out), "--loops", "90", "--encoder", str(encoder), "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "RANDOM weights" in printed and "loop-svdd demo" in printed and "| loop_svdd |" in printed
    assert "Curated pack" in printed and "stray AUROC" in printed  # the producer's job comes first
    ranking = json.loads((out / "curated" / "ranking.json").read_text())
    assert len(ranking["loops"]) == len(list((out / "pack").iterdir())) and (out / "curated" / "report.html").is_file()

    report = json.loads((out / "model" / "evaluation.json").read_text())
    assert "bass (TimGM6mb)" in report["anomaly_kinds"] and "drums" in report["anomaly_kinds"]
    assert set(report["detectors"]) == {"loop_svdd", "isolation_forest", "pca", "knn", "ocsvm"}
    for metrics in report["detectors"].values():  # measured (seed 0, random encoder): 0.926 to 0.988
        assert metrics["auroc"] >= 0.8 and "bass (TimGM6mb)" in metrics["per_group_auroc"]
    assert report["detectors"]["loop_svdd"]["auroc"] >= 0.9  # measured 0.988
    assert report["n_normal_test"] >= 1 and not report["encoder_pretrained"]
    loaded, _ = load_detector(out / "model")
    assert loaded.config.threshold == report["threshold"]
    assert (out / "model" / "scores.png").stat().st_size > 1000

    # A second run reuses the corpus (same size and seed) and gives the same evaluation.
    assert main(args) == 0
    assert "reusing the corpus" in capsys.readouterr().out
    again = json.loads((out / "model" / "evaluation.json").read_text())
    assert again["detectors"]["loop_svdd"]["auroc"] == report["detectors"]["loop_svdd"]["auroc"]


@pytest.mark.slow
def test_quickstart_figures_on_the_embedded_encoder(tmp_path):
    """`loop-svdd quickstart` as a user runs it (400 loops, seed 0, the embedded encoder) keeps its figures: it
    measures Deep SVDD AUROC 0.983 and stray AUROC 0.766 (1 of the 3 strays in the top 3)."""
    from loop_svdd.quickstart import run_quickstart

    result = run_quickstart(tmp_path / "qs", progress=False, log=lambda *_: None)
    detectors = result.report["detectors"]
    assert detectors["loop_svdd"]["auroc"] >= 0.95
    assert all(d["auroc"] >= 0.9 for d in detectors.values())  # the baselines measure 0.942 to 0.970
    assert result.curation["auroc"] >= 0.7 and result.curation["strays_in_top"] >= 1


def test_quickstart_rejects_tiny_corpora(capsys):
    assert main(["quickstart", "--loops", "5"]) == 2
    assert "at least 40" in capsys.readouterr().err
