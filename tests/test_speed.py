"""`loop-svdd speed` runs end to end and reports every figure (timings themselves are not asserted: these
machines are noisy; the benchmark prints measured ratios instead)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import small_model

import loop_svdd.speed as speed
from loop_svdd import LoopSVDDFeatureExtractor
from loop_svdd.cli import main
from loop_svdd.precision import apply_precision

KEYS = {
    "naive_loops_per_s",
    "ours_loops_per_s",
    "speedup",
    "fast_loops_per_s",
    "fast_speedup",
    "fast_spearman",
    "encoder_share",
    "encoder_gflops_per_s",
    "frontend_speedup",
    "frontend_max_abs_diff",
}


def test_speed_command_reports_every_figure(tmp_path, monkeypatch, capsys):
    def small(name):
        model = small_model()
        return model, LoopSVDDFeatureExtractor.from_model_config(model.config)

    monkeypatch.setattr(speed, "build_model", small)
    out = tmp_path / "speed.json"
    assert main(["speed", "--encoder", "tiny", "--loops", "4", "--no-backends", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert KEYS <= set(result) and all(result[k] > 0 for k in KEYS - {"frontend_max_abs_diff"})
    assert 0 < result["encoder_share"] <= 1 and result["frontend_max_abs_diff"] < 0.01
    assert result["naive_vs_ours_score_max_rel_diff"] < 1e-4  # same work, same scores
    assert result["fast_spearman"] > 0.9
    assert "vs naive" in capsys.readouterr().out


def test_int8_quantises_the_encoder_only():
    model = small_model()
    fast = apply_precision(model, "int8")
    assert fast is not model and type(fast.head.encoder_out).__name__ == "Linear"
    quantised = [m for m in fast.encoder.modules() if "quantized" in type(m).__module__]
    assert quantised and not [m for m in model.encoder.modules() if "quantized" in type(m).__module__]


@pytest.mark.slow
def test_speed_adds_one_row_per_backend_and_precision(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOOP_SVDD_CACHE", str(tmp_path / "cache"))

    def small(name):
        model = small_model()
        return model, LoopSVDDFeatureExtractor.from_model_config(model.config)

    monkeypatch.setattr(speed, "build_model", small)
    out = tmp_path / "speed.json"
    assert main(["speed", "--encoder", "tiny", "--loops", "4", "--reps", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    expected = {"torch-fp32", "torch-int8", "onnxruntime-fp32", "onnxruntime-int8"}
    expected |= {"openvino-fp32", "openvino-int8"} if importlib.util.find_spec("openvino") else set()
    assert set(result["backends"]) == expected
    for name, row in result["backends"].items():
        assert row["loops_per_s"] > 0 and row["speedup"] > 0 and -1 <= row["spearman"] <= 1
        if name.endswith("-fp32"):  # an fp32 graph scores like PyTorch
            assert row["max_rel_diff"] < 1e-4 and row["spearman"] > 0.99
    assert result["backends"]["torch-fp32"]["speedup"] == 1.0
    fp32 = [r["speedup"] for n, r in result["backends"].items() if n.endswith("-fp32")]
    assert result["best_fp32_speedup"] == max(fp32) and result["best_fast_speedup"] > 0
    assert "onnxruntime-int8" in capsys.readouterr().out
    recorded = json.loads((tmp_path / "cache" / "backend_speed.json").read_text())
    assert recorded["fp32"]["onnxruntime"] == result["backends"]["onnxruntime-fp32"]["loops_per_s"]
