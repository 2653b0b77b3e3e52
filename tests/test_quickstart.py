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
    measures Deep SVDD AUROC 0.983 and, on its 100-loop pack, stray AUROC 0.957 with 6 of the 8 strays called
    and 1 false call (`loop-svdd benchmark quickstart-pack --seeds 0`)."""
    from loop_svdd.quickstart import run_quickstart

    result = run_quickstart(tmp_path / "qs", progress=False, log=lambda *_: None)
    detectors = result.report["detectors"]
    assert detectors["loop_svdd"]["auroc"] >= 0.95
    assert all(d["auroc"] >= 0.9 for d in detectors.values())  # the baselines measure 0.942 to 0.970
    curation = result.curation
    assert curation["n_loops"] == 100 and curation["n_strays"] == 8 and len(curation["stray_kinds"]) == 4
    assert curation["auroc"] >= 0.92 and curation["strays_in_top"] >= 5
    assert curation["strays_called"] >= 5 and curation["false_calls"] <= 3


def test_quickstart_rejects_tiny_corpora(capsys):
    assert main(["quickstart", "--loops", "5"]) == 2
    assert "at least 40" in capsys.readouterr().err


def test_example_pack_strays_are_two_of_four_kinds_one_subtle():
    import numpy as np

    from loop_svdd.bench.quickstart_pack import choose_strays

    kinds = np.array(["normal"] * 10 + ["bass (TimGM6mb)"] * 3 + ["guitar"] * 3 + ["keys"] * 2 + ["drums"] * 4 + ["fx"])
    chosen = choose_strays(kinds, np.random.default_rng(0))
    picked = kinds[chosen].tolist()
    assert len(chosen) == len(set(chosen.tolist())) == 8 and "normal" not in picked and "fx" not in picked
    assert picked.count("bass (TimGM6mb)") == 2 and len(set(picked)) == 4
    with pytest.raises(ValueError, match="lacks kinds"):
        choose_strays(kinds[kinds != "keys"][:-5], np.random.default_rng(0))


def test_example_pack_measures_ranking_and_verdicts():
    from loop_svdd.bench.quickstart_pack import measure_curation

    kinds = {f"loop_{i}.wav": "normal" for i in range(6)} | {"loop_6.wav": "keys", "loop_7.wav": "drums"}
    order = ["loop_6.wav", "loop_0.wav", "loop_7.wav", *(f"loop_{i}.wav" for i in range(1, 6))]
    rows = [
        {"rank": r, "file": f"/pack/{n}", "score": 10.0 - r, "verdict": "stray" if r <= 2 else "fits"}
        for r, n in enumerate(order, 1)
    ]
    m = measure_curation(rows, kinds)
    assert (m["n_strays"], m["strays_in_top"], m["strays_called"], m["false_calls"]) == (2, 1, 1, 1)
    assert m["precision"] == m["recall"] == 0.5 and m["auroc"] == pytest.approx(11 / 12)
    assert m["stray_kinds"] == ["drums", "keys"] and m["flagged"][0] == (1, "loop_6.wav", "keys")
