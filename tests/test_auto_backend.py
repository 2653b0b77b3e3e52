"""`--backend auto`: one rule (`backends.auto_order`), pinned to the measurement it rests on (docs/export.md),
with and without this machine's speed record; a damaged record is named, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import loop_svdd.engine.backends as backends

MEASURED = Path(__file__).resolve().parents[1] / "docs" / "export.md"


def measured_loops_per_s() -> dict[str, dict[str, float]]:
    """`{precision: {backend: loops/s}}` from the `loop-svdd speed` run printed in docs/export.md."""
    rows = re.findall(r"^(torch|onnxruntime|openvino)-(fp32|int8)\s+([\d.]+)\s", MEASURED.read_text(), re.MULTILINE)
    out: dict[str, dict[str, float]] = {}
    for backend, precision, speed in rows:
        out.setdefault(precision, {})[backend] = float(speed)
    return out


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """An empty cache (no speed record) and every backend installed; returns the set of installed backends."""
    monkeypatch.setenv("LOOP_SVDD_CACHE", str(tmp_path))
    available = {"torch", "onnxruntime", "openvino"}
    monkeypatch.setattr(backends, "installed", lambda name: name in available)
    return available


def test_the_built_in_order_is_the_measured_order():
    measured = measured_loops_per_s()
    assert set(measured) == {"fp32", "int8"} and all(len(m) == 3 for m in measured.values()), measured
    for precision, speeds in measured.items():
        fastest_first = sorted(speeds, key=lambda name: -speeds[name])
        assert list(backends.AUTO_ORDER[precision]) == fastest_first == backends.auto_order(precision)
    assert backends.auto_order("bf16") == ["torch"]


def test_without_a_record_auto_takes_the_first_installed_of_the_built_in_order(machine):
    assert [backends.resolve_auto(p) for p in ("fp32", "int8", "bf16")] == ["onnxruntime", "onnxruntime", "torch"]
    machine.discard("onnxruntime")
    assert backends.resolve_auto("fp32") == "openvino"
    machine.discard("openvino")
    assert backends.resolve_auto("int8") == "torch"


def test_a_record_reorders_what_it_measured_and_leaves_the_rest(machine, capsys):
    backends.record_speed({"fp32": {"openvino": 3.0, "onnxruntime": 1.0}, "int8": {"torch": 9.0}})
    assert backends.auto_order("fp32", backends.speed_record("fp32")) == ["openvino", "onnxruntime", "torch"]
    assert backends.auto_order("int8", backends.speed_record("int8")) == ["torch", "onnxruntime", "openvino"]
    assert backends.resolve_auto("fp32") == "openvino" and backends.resolve_auto("bf16") == "torch"
    machine.discard("openvino")
    assert backends.resolve_auto("fp32") == "onnxruntime"
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "record, error",
    [
        ("not json", "JSONDecodeError"),
        ('{"fp32": {"torch": null}}', "TypeError"),
        ('{"fp32": {"torch": "fast"}}', "ValueError"),
        ('{"fp32": [1, 2]}', "AttributeError"),
        ("[1, 2]", "AttributeError"),
    ],
)
def test_a_damaged_record_is_named_and_the_built_in_order_used(machine, capsys, record, error):
    path = backends.cache_dir() / backends.SPEED_RECORD
    path.write_text(record)
    assert backends.resolve_auto("fp32") == "onnxruntime"
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"loop-svdd: warning: ignoring the speed record {path} ({error}")
    assert line.endswith("--backend auto uses its built-in order (run `loop-svdd speed` to record a new one)")


def test_every_backend_is_a_registered_runner():
    from loop_svdd.engine.runners import OnnxRuntimeRunner, get_runner, register_runner, runner_for_format
    from loop_svdd.engine.runners.base import runner_names
    from loop_svdd.export import FORMATS

    assert backends.BACKENDS == (*runner_names(), "auto") == ("torch", "onnxruntime", "openvino", "auto")
    for name in runner_names():
        runner = get_runner(name)
        assert runner.name == name and runner.graph_format in (None, *FORMATS) and "fp32" in runner.precisions
    assert [runner_for_format(f).name for f in FORMATS] == ["onnxruntime", "openvino"]
    assert runner_for_format("onnx") is OnnxRuntimeRunner
    with pytest.raises(ValueError, match="'auto' is not a runner"):
        register_runner("auto", OnnxRuntimeRunner)
    with pytest.raises(KeyError, match="no runner registered as 'tpu'"):
        get_runner("tpu")
