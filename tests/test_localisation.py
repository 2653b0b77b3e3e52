"""Time-resolved scores: defect injection, folding onto the loop's timeline, the memory bank in the model (save,
load, batch independence), and the defect benchmark end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import SR, small_model, synth_loop

from loop_svdd.engine.time_bank import build_time_bank
from loop_svdd.localisation.defects import DEFECT_KINDS, inject_defect
from loop_svdd.localisation.timelines import format_timelines
from loop_svdd.models.loop_svdd.time_scoring import fold_loop


@pytest.mark.parametrize("kind", DEFECT_KINDS)
def test_defect_is_deterministic_and_where_it_says(kind):
    clean = synth_loop(4.0, seed=1)
    a, defect = inject_defect(clean, SR, kind, level=2, beat_s=0.5, seed=3)
    b, again = inject_defect(clean, SR, kind, level=2, beat_s=0.5, seed=3)
    np.testing.assert_array_equal(a, b)
    assert defect == again and defect.kind == kind
    changed = np.flatnonzero(np.abs(a - clean) > 1e-6) / SR
    assert changed.size > 0
    assert changed.min() >= defect.start_s - 1e-6 and changed.max() <= defect.end_s + 1e-6
    assert 0.0 <= defect.start_s < defect.end_s <= 4.0
    other, _ = inject_defect(clean, SR, kind, level=2, beat_s=0.5, seed=4)
    assert not np.array_equal(other, a) or kind in ("dropout", "wrong_note", "timing_slip", "clipping")


def test_bad_defect_arguments():
    with pytest.raises(ValueError, match="unknown defect kind"):
        inject_defect(synth_loop(1.0), SR, "hum", 0, 0.5, 0)
    with pytest.raises(ValueError, match="level"):
        inject_defect(synth_loop(1.0), SR, "click", 3, 0.5, 0)


def test_fold_short_loop_onto_its_own_timeline():
    """A 2 s loop repeated in a 10 s window: every copy's steps land on the loop time they came from."""
    steps, window_s, duration = 64, 10.0, 2.0
    centres = (torch.arange(steps) + 0.5) * window_s / steps
    loop_time = torch.remainder(centres, duration)
    scores = torch.where(centres < 10.0, loop_time, torch.tensor(100.0))[None]  # the value is the loop time
    folded, times = fold_loop(scores, [0.0], duration, window_s, "repeatpad")
    assert len(folded) == len(times) == 13  # ceil(2 / 0.15625)
    assert float(times.max()) <= duration
    np.testing.assert_allclose(folded.numpy(), times.numpy(), atol=window_s / steps)
    silence_tail, _ = fold_loop(scores, [0.0], 3.0, window_s, "repeatpad")  # 3 copies = 9 s; 9-10 s is silence
    assert len(silence_tail) == 20


def test_fold_long_loop_concatenates_windows():
    scores = torch.stack([torch.zeros(64), torch.ones(64)])  # windows at 0 s and 5 s (last aligned to the end)
    folded, times = fold_loop(scores, [0.0, 5.0], 15.0, 10.0, "repeatpad")
    assert len(folded) == 96 and float(times[-1]) <= 15.0
    assert float(folded[times < 5].max()) == 0.0 and float(folded[times > 10].min()) == 1.0
    assert 0.0 < float(folded[(times > 5.2) & (times < 9.8)].mean()) < 1.0  # the overlap is averaged


@pytest.fixture(scope="module")
def banked():
    """A small model whose memory bank holds 6 synthetic bass-like loops."""
    from loop_svdd import LoopSVDDFeatureExtractor

    model = small_model()
    extractor = LoopSVDDFeatureExtractor.from_model_config(model.config)
    normals = [synth_loop(2.0 + i, seed=i, freq=55.0 * (1 + 0.05 * i)) for i in range(6)]
    build_time_bank(model, extractor, normals, seed=0, bank_size=256)
    return model, extractor


def test_time_scores_shapes_and_folding(banked):
    model, extractor = banked
    loops = [synth_loop(2.0, seed=10), synth_loop(13.5, seed=11)]
    out = model(**extractor(loops, sampling_rate=SR))
    assert [len(s) for s in out.time_scores] == [13, 87]  # 2 s and 13.5 s at 0.156 s a step
    for scores, times, loop in zip(out.time_scores, out.time_scores_s, loops, strict=True):
        assert scores.shape == times.shape and torch.isfinite(scores).all()
        assert float(times.min()) > 0 and float(times.max()) <= len(loop) / SR + 1e-6
        assert float(scores.std()) > 0


def test_batch_independent(banked):
    model, extractor = banked
    loop = synth_loop(3.0, seed=20)
    alone = model(**extractor([loop], sampling_rate=SR)).time_scores[0]
    batch = [synth_loop(12.0, seed=21), loop, synth_loop(1.5, seed=22)]
    together = model(**extractor(batch, sampling_rate=SR)).time_scores[1]
    torch.testing.assert_close(alone, together, rtol=1e-4, atol=1e-4)  # float32 matmul order


def test_loud_noise_burst_is_found(banked):
    model, extractor = banked
    clean = synth_loop(4.0, seed=30, freq=60.0)
    damaged, defect = inject_defect(clean, SR, "noise_burst", level=2, beat_s=0.5, seed=1)
    out = model(**extractor([clean, damaged], sampling_rate=SR))
    peak = float(out.time_scores_s[1][int(torch.argmax(out.time_scores[1]))])
    assert defect.start_s - 0.3125 <= peak <= defect.end_s + 0.3125
    assert float(out.time_scores[1].max()) > float(out.time_scores[0].max())


def test_bank_saved_and_loaded(banked, tmp_path):
    from loop_svdd.models.model_io import load_detector, save_detector

    model, extractor = banked
    save_detector(model, extractor, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["time_scoring"]["bank_sizes"] == [
        len(model.time_scorer.bank(s)) for s in model.time_scorer.sources
    ]
    loaded, loaded_extractor = load_detector(tmp_path)
    loops = [synth_loop(2.5, seed=40)]
    a = model(**extractor(loops, sampling_rate=SR)).time_scores[0]
    b = loaded(**loaded_extractor(loops, sampling_rate=SR)).time_scores[0]
    torch.testing.assert_close(a, b)


def test_model_without_bank_has_no_time_scores():
    from loop_svdd import LoopSVDDFeatureExtractor

    model = small_model()
    out = model(**LoopSVDDFeatureExtractor.from_model_config(model.config)([synth_loop(2.0)], sampling_rate=SR))
    assert out.time_scores is None and out.time_scores_s is None
    text = format_timelines([{"file": "a.wav", "duration_s": 2.0, "time_scores": None}])
    assert "no memory bank" in text


@pytest.mark.slow
def test_defect_benchmark_end_to_end(corpus, encoder_dir, tmp_path):
    from loop_svdd.cli import main

    out = tmp_path / "defects.json"
    code = main(
        ["benchmark", "--protocol", "defects", "--corpus", str(corpus), "--normal", "instrument=bass",
         "--encoder", str(encoder_dir), "--n-bank", "10", "--n-test", "6", "--seed", "0", "--json", str(out),
         "--no-progress"]
    )  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result["defects"]) == set(DEFECT_KINDS)
    for metrics in result["defects"].values():
        assert 0.0 <= metrics["auroc"] <= 1.0 and 0.0 <= metrics["hit_rate"] <= 1.0
    # well above chance (0.5 AUROC; hit rate of a random peak: about one beat in the loop's length)
    assert result["mean_auroc"] >= 0.6 and result["mean_hit_rate"] >= 0.3, (
        result["mean_auroc"],
        result["mean_hit_rate"],
    )
    assert {"clip_level", "spectral", "bank", "repetition", "signal", "tempo_unknown"} <= set(result["baselines"])
    assert set(result["defects"]["click"]["levels"]) == {"0", "1", "2"}
    assert {"hit_rate", "auroc"} <= set(result["defects"]["click"]["levels"]["2"])
    assert result["cost"]["ratio_to_score"] >= 1.0
    assert result["defects"]["noise_burst"]["hit_rate"] > result["defects"]["noise_burst"]["chance_hit_rate"]


def test_defect_protocol_refuses_tiny_sizes(tmp_path, capsys):
    from loop_svdd.cli import main

    assert main(["benchmark", "--protocol", "defects", "--n-bank", "2", "--json", str(tmp_path / "x.json")]) == 2
    assert "--n-bank must be >= 4" in capsys.readouterr().err


def test_score_cli_shows_time_scores(banked, tmp_path, capsys):
    import soundfile as sf

    from loop_svdd.cli import main
    from loop_svdd.models.model_io import save_detector

    model, extractor = banked
    save_detector(model, extractor, tmp_path / "model")
    sf.write(tmp_path / "a.wav", synth_loop(2.0, seed=50), SR)
    assert main(["score", str(tmp_path / "model"), str(tmp_path / "a.wav"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert len(result["time_scores"]) == len(result["time_scores_s"]) == 200  # loop-aware: 10 ms steps
    assert result["time_method"] == "repetition" and result["time_spans"]
    assert main(["score", str(tmp_path / "model"), str(tmp_path / "a.wav"), "--timeline"]) == 0
    out = capsys.readouterr().out
    assert "a.wav: 0-2.0 s |" in out and "peak" in out


def test_demo_draws_the_curve_under_the_spectrogram(banked, tmp_path):
    import soundfile as sf

    from loop_svdd.demo.analysis import analyse_files, spectrogram_for

    model, extractor = banked
    sf.write(tmp_path / "b.wav", synth_loop(3.0, seed=60), SR)
    results, errors = analyse_files(model, extractor, [tmp_path / "b.wav"])
    assert not errors and len(results[0].time_scores) == len(results[0].time_scores_s) == 300
    with_curve = spectrogram_for(extractor, results[0], model.config.threshold)
    results[0].time_scores = None
    without = spectrogram_for(extractor, results[0], model.config.threshold)
    assert with_curve.ndim == 3 and with_curve.shape == without.shape and not np.array_equal(with_curve, without)


def test_greedy_coreset_covers_the_rows():
    from loop_svdd.models.loop_svdd.time_scoring import greedy_coreset, nn_distance

    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    picked = greedy_coreset(x, 50, seed=1)
    assert len(set(picked.tolist())) == 50 and torch.equal(picked, greedy_coreset(x, 50, seed=1))
    random = torch.randperm(500, generator=torch.Generator().manual_seed(2))[:50]
    assert float(nn_distance(x, x[picked]).max()) < float(nn_distance(x, x[random]).max())  # k-centre covers better
    assert torch.equal(greedy_coreset(x[:10], 50), torch.arange(10))
