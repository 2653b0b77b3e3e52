"""`loop-svdd speed` (the alias of `loop-svdd benchmark speed`) runs end to end and reports every figure (timings
themselves are not asserted: these machines are noisy; the benchmark prints measured ratios instead)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import small_model

import loop_svdd.bench.speed as speed
from loop_svdd import LoopSVDDFeatureExtractor
from loop_svdd.cli import main
from loop_svdd.engine.precision import apply_precision

KEYS = {
    "naive_loops_per_s",
    "ours_loops_per_s",
    "speedup",
    "fast_loops_per_s",
    "fast_speedup",
    "fast_spearman",
    "encoder_share",
    "encoder_gflops_per_s",
    "front_end_speedup",
    "front_end_cpu_speedup",
    "front_end_max_abs_diff",
}
ISSUE_KEYS = {"best_fp32_speedup", "best_fast_speedup", "best_fast_spearman", "front_end_speedup", "backends"}
ROW_KEYS = {"loops_per_s", "speedup", "spearman", "max_rel_diff"}


def test_speed_command_reports_every_figure(tmp_path, monkeypatch, capsys):
    def small(name):
        model = small_model()
        return model, LoopSVDDFeatureExtractor.from_model_config(model.config)

    monkeypatch.setattr(speed, "build_model", small)
    out = tmp_path / "speed.json"
    assert main(["speed", "--encoder", "tiny", "--loops", "4", "--no-backends", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert KEYS <= set(result) and all(result[k] > 0 for k in KEYS - {"front_end_max_abs_diff"})
    assert 0 < result["encoder_share"] <= 1 and result["front_end_max_abs_diff"] < 0.2
    assert result["naive_vs_ours_score_max_rel_diff"] < 1e-4  # same work, same scores
    assert result["fast_spearman"] > 0.9
    assert "vs naive" in capsys.readouterr().out


def small(name):
    model = small_model()
    return model, LoopSVDDFeatureExtractor.from_model_config(model.config)


def test_speed_json_on_stdout_has_the_issue_schema(monkeypatch, capsys):
    monkeypatch.setattr(speed, "build_model", small)
    assert main(["speed", "--encoder", "tiny", "--loops", "3", "--no-backends", "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # only JSON on stdout; the tables went to stderr
    assert "vs naive" in captured.err and ISSUE_KEYS <= set(result)
    assert set(result["backends"]) == {"torch-fp32", "torch-int8"}
    assert all(set(row) == ROW_KEYS for row in result["backends"].values())
    assert result["backends"]["torch-fp32"]["speedup"] == 1.0 == result["best_fp32_speedup"]
    int8 = result["backends"]["torch-int8"]
    assert result["best_fast_speedup"] == int8["speedup"] > 0 and result["best_fast_spearman"] == int8["spearman"]
    assert result["front_end_speedup"] > 0 and result["front_end_reps"] >= 1


def test_speed_measures_24_loops_by_default():
    import argparse

    from loop_svdd.commands import speed as command

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    assert parser.parse_args(["speed"]).loops == 24
    assert inspect_default(speed.run_speed, "n_loops") == 24


def inspect_default(func, name):
    import inspect

    return inspect.signature(func).parameters[name].default


def test_speed_refuses_int8_on_cuda_instead_of_timing_fp32(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(speed, "build_model", lambda name: pytest.fail("no model should be built"))
    assert main(["speed", "--device", "cuda", "--precision", "int8"]) != 0
    err = capsys.readouterr().err.strip()
    assert "int8 is CPU-only" in err and len(err.splitlines()) == 1 and "Traceback" not in err
    with pytest.raises(ValueError, match="CPU-only"):
        speed.run_speed(device="cuda", precision="int8")


@pytest.mark.parametrize("command", [["speed"], ["benchmark", "speed"]])  # the alias and the protocol
def test_front_end_only_reports_the_interleaved_ratio(command, capsys):
    assert main([*command, "--front-end-only", "--loops", "2", "--reps", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["front_end_speedup"] > 0 and result["front_end_cpu_speedup"] > 0
    assert result["front_end_reps"] == 1 and result["front_end_max_abs_diff"] < 0.2 and result["loops"] == 2


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
        assert row["loops_per_s"] > 0 and row["speedup"] > 0 and row["spearman"] >= 0.6, (name, row["spearman"])
        if name.endswith("-fp32"):  # an fp32 graph scores like PyTorch
            assert row["max_rel_diff"] < 1e-4 and row["spearman"] > 0.99
    assert result["backends"]["torch-fp32"]["speedup"] == 1.0
    fp32 = [r["speedup"] for n, r in result["backends"].items() if n.endswith("-fp32")]
    assert result["best_fp32_speedup"] == max(fp32) and result["best_fast_speedup"] > 0
    assert "onnxruntime-int8" in capsys.readouterr().out
    recorded = json.loads((tmp_path / "cache" / "backend_speed.json").read_text())
    assert recorded["fp32"]["onnxruntime"] == result["backends"]["onnxruntime-fp32"]["loops_per_s"]
