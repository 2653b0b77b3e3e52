"""Loop-aware time scores (loop_svdd/engine/repetition.py): the period, the repetition and signal paths, the combination
with the bank, the spans `score --json` gives, and the benchmark's per-level metrics."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SR, synth_loop

from loop_svdd.bench.defects import kind_metrics
from loop_svdd.engine import repetition as rep
from loop_svdd.localisation.defects import Defect, inject_defect


def test_period_from_tempo_and_from_the_audio():
    loop = synth_loop(8.0, seed=1)  # a tone every 0.5 s: 4 bars of 4 beats at 120 bpm
    assert rep.choose_period(loop, SR, beat_s=0.5) == pytest.approx(2.0)
    assert rep.choose_period(synth_loop(1.0, seed=1), SR, beat_s=0.5) == pytest.approx(0.5)  # under 2 bars: a beat
    assert rep.choose_period(synth_loop(0.6, seed=1), SR, beat_s=0.5) is None  # not two of anything
    found = rep.choose_period(loop, SR)
    assert found is not None and found / 0.5 == pytest.approx(round(found / 0.5), abs=0.05)  # whole beats
    noise = np.random.default_rng(0).standard_normal(4 * SR).astype(np.float32) * np.linspace(0.05, 1.0, 4 * SR)
    assert rep.choose_period(noise.astype(np.float32), SR) is None  # a swell of noise does not repeat


@pytest.mark.parametrize(("kind", "path"), [("dropout", "repetition"), ("timing_slip", "repetition"),
                                            ("click", "signal"), ("noise_burst", "signal")])  # fmt: skip
def test_each_path_finds_its_defects(kind, path):
    clean = synth_loop(8.0, seed=2)
    damaged, defect = inject_defect(clean, SR, kind, level=2, beat_s=0.5, seed=5)
    curve = rep.loop_curve(damaged, SR, beat_s=0.5)
    scores = getattr(curve, path)
    peak = float(curve.times[int(np.argmax(scores))])
    assert defect.start_s - 0.25 <= peak <= defect.end_s + 0.25
    clean_curve = rep.loop_curve(clean, SR, beat_s=0.5)
    assert scores.max() > 2 * getattr(clean_curve, path).max()
    assert curve.combined.max() >= scores.max()


def test_combine_says_what_it_used():
    bank_s, bank_t = np.array([0.1, 3.0, 0.2]), np.array([0.5, 1.5, 2.5])
    flat = rep.LoopCurve(np.zeros(300), np.zeros(300), np.arange(300) * 0.01 + 0.005, None)
    scores, times, method = rep.combine(flat, bank_s, bank_t)
    assert method == "bank" and np.array_equal(scores, bank_s) and np.array_equal(times, bank_t)
    assert rep.combine(flat, None, None)[2] == "none"
    looped = rep.LoopCurve(np.full(300, 0.5), np.zeros(300), flat.times, 1.0)
    scores, times, method = rep.combine(looped, bank_s, bank_t, "max")
    assert method == "repetition" and len(scores) == 300
    assert scores[150] == 3.0 and scores[10] == 0.5  # the bank's step 1.0-2.0 s outweighs; elsewhere the loop's
    assert np.all(rep.combine(looped, bank_s, bank_t, "loop")[0] == 0.5)
    with pytest.raises(ValueError, match="unknown combination rule"):
        rep.combine(looped, bank_s, bank_t, "mean")


def test_top_spans():
    t = np.arange(200) * 0.01 + 0.005
    s = np.zeros(200)
    s[50:60] = 1.0  # 0.50-0.60 s
    s[150:152] = 2.0  # 1.50-1.52 s
    spans = rep.top_spans(s, t, k=3)
    assert spans[0]["start_s"] == pytest.approx(1.5) and spans[0]["end_s"] == pytest.approx(1.52)
    assert spans[1]["start_s"] == pytest.approx(0.5) and spans[1]["end_s"] == pytest.approx(0.6)
    assert spans[0]["score"] == 2.0 and len(spans) == 3
    assert all(a["end_s"] <= b["start_s"] or b["end_s"] <= a["start_s"] for a in spans for b in spans if a is not b)
    assert rep.top_spans(np.zeros(0), np.zeros(0)) == []


def test_kind_metrics_per_level_and_half_beat_hits():
    times = np.arange(400) * 0.01 + 0.005
    clean = [(np.zeros(400) + 0.01 * i, times) for i in range(4)]
    defects = [Defect("click", lv, 0.0, 2.0, 2.002) for lv in (0, 1, 2, 2)]
    curves = []
    for peak_s, height in ((0.5, 0.0), (2.2, 1.0), (2.1, 2.0), (1.0, 3.0)):  # level 1 and one level-2 loop hit
        s = np.zeros(400)
        s[int(peak_s * 100)] = height
        curves.append((s, times))
    m = kind_metrics(clean, curves, defects, beats=[0.5] * 4)  # tolerance: 0.25 s
    assert m["hit_rate"] == 0.5 and set(m["levels"]) == {"0", "1", "2"}
    assert m["levels"]["1"]["hit_rate"] == 1.0 and m["levels"]["2"]["hit_rate"] == 0.5
    assert m["levels"]["0"]["hit_rate"] == 0.0 and m["levels"]["2"]["auroc"] == 1.0
    loops = kind_metrics(np.zeros(4), np.array([0.0, 1.0, 1.0, 1.0]), defects, [0.5] * 4)
    assert set(loops) == {"auroc", "levels"} and loops["levels"]["2"]["auroc"] == 1.0


def test_score_waveforms_gives_the_combined_curve(banked_model):
    from loop_svdd.engine.scoring import score_waveforms

    model, extractor = banked_model
    loop = synth_loop(4.0, seed=7)
    damaged, defect = inject_defect(loop, SR, "dropout", level=2, beat_s=0.5, seed=2)
    shipped = score_waveforms(model, extractor, [damaged], SR, beats_s=[0.5])[0]
    bank = score_waveforms(model, extractor, [damaged], SR, loop_aware=False)[0]
    scores, times, method = rep.combine(rep.loop_curve(damaged, SR, 0.5), bank.time_scores, bank.time_scores_s)
    assert shipped.time_method == method == "repetition" and shipped.period_s == pytest.approx(2.0)
    np.testing.assert_allclose(shipped.time_scores, scores)
    assert bank.time_method is None and len(bank.time_scores) < len(shipped.time_scores)
    peak = shipped.time_scores_s[int(np.argmax(shipped.time_scores))]
    assert defect.start_s - 0.25 <= peak <= defect.end_s + 0.25
    one_beat = score_waveforms(model, extractor, [synth_loop(0.6, seed=3)], SR, beats_s=[0.5])[0]
    assert one_beat.time_method == "bank" and one_beat.period_s is None


def test_score_cli_json_gives_spans(banked_model, tmp_path, capsys):
    import json

    import soundfile as sf

    from loop_svdd.cli import main
    from loop_svdd.models.model_io import save_detector

    model, extractor = banked_model
    save_detector(model, extractor, tmp_path / "model")
    clean = synth_loop(4.0, seed=8)
    damaged, defect = inject_defect(clean, SR, "click", level=2, beat_s=0.5, seed=1)
    sf.write(tmp_path / "a.wav", damaged, SR)
    assert main(["score", str(tmp_path / "model"), str(tmp_path / "a.wav"), "--json", "--timeline"]) == 0
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert result["time_method"] == "repetition" and result["period_s"] > 0
    top = result["time_spans"][0]
    assert set(top) == {"start_s", "end_s", "peak_s", "score"} and top["start_s"] <= top["peak_s"] <= top["end_s"]
    assert defect.start_s - 0.25 <= top["peak_s"] <= defect.end_s + 0.25
    assert main(["score", str(tmp_path / "model"), str(tmp_path / "a.wav"), "--timeline"]) == 0
    assert "loop-aware, period" in capsys.readouterr().out


@pytest.fixture(scope="module")
def banked_model():
    from conftest import small_model

    from loop_svdd import LoopSVDDFeatureExtractor
    from loop_svdd.engine.time_bank import build_time_bank

    model = small_model()
    extractor = LoopSVDDFeatureExtractor.from_model_config(model.config)
    build_time_bank(model, extractor, [synth_loop(2.0 + i, seed=i) for i in range(4)], seed=0, bank_size=128)
    return model, extractor


def test_curve_plot_marks_the_top_span():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from loop_svdd.figures import plot_time_scores

    t = np.arange(200) * 0.01 + 0.005
    s = np.zeros(200)
    s[120:130] = 1.0
    fig, ax = plt.subplots()
    assert plot_time_scores(ax, t, s) == pytest.approx(1.205)
    assert "top span 1.20-1.30 s" in ax.get_legend_handles_labels()[1]
    plt.close(fig)


@pytest.mark.parametrize("wave", [np.zeros(0), np.zeros(10), np.zeros(3 * SR)], ids=["empty", "tiny", "silence"])
def test_degenerate_loops_give_flat_finite_curves(wave):
    curve = rep.loop_curve(wave.astype(np.float32), SR, beat_s=0.5)
    assert len(curve.combined) == len(curve.times) >= 1
    assert np.all(np.isfinite(curve.combined)) and curve.combined.max() == 0.0
