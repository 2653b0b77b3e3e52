"""Export to ONNX / OpenVINO and the backends that run the graphs: parity with PyTorch (fp32 to 1e-4 relative on
mixed-length loops, fused and unfused), ranking kept by int8 (Spearman >= 0.99), clear errors, the CLI."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from conftest import SR, small_model, synth_loop
from model_folders import build_model_folder, write_wav
from scipy.stats import spearmanr

import loop_svdd.engine.backends as backends
from loop_svdd import LoopSVDDFeatureExtractor
from loop_svdd.cli import main
from loop_svdd.engine.graphs import ExportError, export_model
from loop_svdd.engine.runners import OnnxRuntimeRunner, OpenVINORunner
from loop_svdd.engine.scoring import score_waveforms
from loop_svdd.export import read_manifest
from loop_svdd.models.loop_svdd.svdd_head import init_center

pytest.importorskip("onnxruntime")
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
LENGTHS = (1.5, 3.0, 7.5, 10.0, 12.0, 25.0, 4.2, 31.0, 2.2, 18.0, 6.0, 9.0)  # 1 to 4 windows each


def loops(seed: int = 0) -> list[np.ndarray]:
    return [synth_loop(s, seed=seed + i, freq=55.0 * 2 ** (i / 5)) for i, s in enumerate(LENGTHS)]


def centred(fused: bool):
    """A small random model whose centre is its loops' mean latent (scores then rank loops like a trained one)."""
    model = small_model(fused)
    extractor = LoopSVDDFeatureExtractor.from_model_config(model.config)
    latents = [
        model.score_embeddings(torch.from_numpy(s.embedding)[None])[1]
        for s in score_waveforms(model, extractor, loops(100), SR)
    ]
    model.set_svdd_state(init_center(torch.cat(latents).detach()))
    return model, extractor


@pytest.fixture(scope="module", params=[False, True], ids=["unfused", "fused"])
def exported(request, tmp_path_factory):
    """A model, its extractor and its ONNX export (fp32 + int8 calibrated on other loops of the same kind)."""
    with torch.inference_mode():
        model, extractor = centred(request.param)
    out = tmp_path_factory.mktemp("onnx")
    manifest = export_model(model, extractor, out, "onnx", "int8", loops(200))
    return model, extractor, out, manifest


def scores_of(model, extractor) -> tuple[np.ndarray, np.ndarray]:
    results = score_waveforms(model, extractor, loops(), SR, batch_size=5)
    return np.array([r.score for r in results]), np.concatenate([r.window_scores for r in results])


def graph_model(model, folder, manifest, precision: str, runner=OnnxRuntimeRunner):
    graph = folder / manifest["graphs"][precision]["file"]
    return backends.BackendModel(model.config, runner(graph, folder / manifest["head_file"], precision))


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.abs(b)))


@pytest.mark.slow
def test_fp32_onnx_gives_the_pytorch_scores(exported):
    model, extractor, folder, manifest = exported
    ref_clips, ref_windows = scores_of(model, extractor)
    clips, windows = scores_of(graph_model(model, folder, manifest, "fp32"), extractor)
    assert model.config.is_fused or len(ref_windows) > len(LENGTHS)  # unfused: loops of several windows
    assert max_rel(clips, ref_clips) < 1e-4 and max_rel(windows, ref_windows) < 1e-4


@pytest.mark.slow
def test_int8_onnx_keeps_the_ranking(exported):
    model, extractor, folder, manifest = exported
    ref = scores_of(graph_model(model, folder, manifest, "fp32"), extractor)[0]
    int8 = scores_of(graph_model(model, folder, manifest, "int8"), extractor)[0]
    how = manifest["graphs"]["int8"]["quantization"]
    assert how["method"] in ("static", "dynamic") and set(how["spearman_vs_fp32"]) == {"static", "dynamic"}
    assert not np.allclose(int8, ref)  # really quantised
    assert spearmanr(ref, int8).statistic >= 0.99


def test_manifest_describes_the_graphs(exported):
    model, _, folder, manifest = exported
    assert manifest == read_manifest(folder)
    assert manifest["opset"] >= 17 and manifest["format"] == "onnx" and set(manifest["graphs"]) == {"fp32", "int8"}
    names = [i["name"] for i in manifest["inputs"]]
    assert names == (["input_features", "is_longer"] if model.config.is_fused else ["input_features"])
    assert [o["name"] for o in manifest["outputs"]] == ["window_embeddings", "window_scores"]
    assert manifest["model_hash"] == backends_hash(model)


def backends_hash(model) -> str:
    from loop_svdd.export import model_hash

    return model_hash(model)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_OPENVINO, reason="openvino is not installed")
def test_fp32_openvino_gives_the_pytorch_scores(exported, tmp_path):
    model, extractor, _, _ = exported
    manifest = export_model(model, extractor, tmp_path, "openvino")
    assert (tmp_path / "openvino_model.xml").is_file() and (tmp_path / "openvino_model.bin").is_file()
    ref_clips, ref_windows = scores_of(model, extractor)
    clips, windows = scores_of(graph_model(model, tmp_path, manifest, "fp32", OpenVINORunner), extractor)
    assert max_rel(clips, ref_clips) < 1e-4 and max_rel(windows, ref_windows) < 1e-4


def test_export_never_changes_the_model(tmp_path):
    model = small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_model(model, LoopSVDDFeatureExtractor.from_model_config(model.config), tmp_path, "onnx")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_untraceable_graph_fails_with_one_clear_line(tmp_path, monkeypatch, capsys):
    folder = build_model_folder(tmp_path / "model")
    from loop_svdd.models.loop_svdd.svdd_head import SVDDAutoencoder

    def encode(self, x):  # an op the ONNX exporter has no symbolic for
        return torch.fft.fft(self._encode(x)[0]).real

    monkeypatch.setattr(SVDDAutoencoder, "encode", encode)
    assert main(["export", str(folder), "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("loop-svdd export: error: the model's graph cannot be traced for ONNX export")
    assert "Traceback" not in "".join(err) and not (tmp_path / "out" / "model.onnx").exists()


def test_a_graph_traced_as_a_constant_is_refused(tmp_path, monkeypatch):
    from loop_svdd.models.loop_svdd.svdd_head import SVDDAutoencoder

    def encode(self, x):  # goes through numpy: the tracer records a constant, not the computation
        return torch.from_numpy(self._encode(x)[0].detach().numpy().copy())

    monkeypatch.setattr(SVDDAutoencoder, "encode", encode)
    model = small_model()
    with pytest.raises(ExportError, match="does not reproduce the PyTorch scores"):
        export_model(model, LoopSVDDFeatureExtractor.from_model_config(model.config), tmp_path, "onnx")


@pytest.fixture
def scored_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOP_SVDD_CACHE", str(tmp_path / "cache"))
    folder = build_model_folder(tmp_path / "model")
    files = [write_wav(tmp_path / f"loop{i}.wav", w) for i, w in enumerate(loops()[:5])]
    return folder, [str(f) for f in files]


def score_json(argv: list[str], capsys) -> tuple[dict, str]:
    assert main(["score", *argv, "--json", "--windows"]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def test_score_backend_exports_once_into_the_cache(scored_folder, tmp_path, capsys):
    folder, files = scored_folder
    ref, _ = score_json([str(folder), *files], capsys)
    got, err = score_json([str(folder), *files, "--backend", "onnxruntime"], capsys)
    assert "exporting it once" in err and list((tmp_path / "cache" / "exports").glob("*/onnx/model.onnx"))
    assert [r["file"] for r in got["results"]] == [r["file"] for r in ref["results"]]
    for a, b in zip(got["results"], ref["results"], strict=True):
        assert abs(a["score"] - b["score"]) <= 1e-4 * abs(b["score"]) and a["verdict"] == b["verdict"]
        assert np.allclose([w["score"] for w in a["windows"]], [w["score"] for w in b["windows"]], rtol=1e-4)
    again, err = score_json([str(folder), *files, "--backend", "onnxruntime"], capsys)
    assert "exporting" not in err and again["results"] == got["results"]


def test_score_uses_the_export_in_the_model_folder(scored_folder, tmp_path, capsys):
    folder, files = scored_folder
    assert main(["export", str(folder), "--format", "onnx"]) == 0
    assert "max relative difference from PyTorch" in capsys.readouterr().out
    _, err = score_json([str(folder), *files, "--backend", "onnxruntime"], capsys)
    assert "exporting" not in err and not (tmp_path / "cache").exists()


def test_a_graph_of_another_model_is_not_used(scored_folder, tmp_path, capsys):
    folder, files = scored_folder
    other = build_model_folder(tmp_path / "other")
    config = json.loads((other / "config.json").read_text())
    config["threshold"] = 123.0  # another model: its hash differs
    (other / "config.json").write_text(json.dumps(config))
    assert main(["export", str(other), "--output-dir", str(folder / "onnx")]) == 0
    capsys.readouterr()
    _, err = score_json([str(folder), *files, "--backend", "onnxruntime"], capsys)
    assert "exporting it once" in err


def test_backend_errors_are_one_line(scored_folder, monkeypatch, capsys):
    folder, files = scored_folder
    monkeypatch.setattr(backends, "installed", lambda name: name == "torch")
    assert main(["score", str(folder), *files, "--backend", "openvino"]) == 2
    assert capsys.readouterr().err.strip() == (
        "loop-svdd score: error: the openvino backend is not installed (pip install 'loop-svdd[export]')"
    )
    assert main(["score", str(folder), *files, "--backend", "onnxruntime", "--precision", "bf16"]) == 2
    assert "runs fp32 or int8 graphs, not bf16" in capsys.readouterr().err


def test_auto_picks_the_fastest_recorded_installed_backend(monkeypatch, tmp_path):
    monkeypatch.setenv("LOOP_SVDD_CACHE", str(tmp_path))
    monkeypatch.setattr(backends, "installed", lambda name: name != "openvino")
    assert backends.resolve_auto("fp32") == "onnxruntime"  # the README order, openvino missing
    backends.record_speed({"fp32": {"torch": 2.0, "onnxruntime": 1.0, "openvino": 3.0}})
    assert backends.resolve_auto("fp32") == "torch" and backends.resolve_auto("bf16") == "torch"


def test_push_with_onnx_adds_the_graphs_under_onnx(tmp_path, capsys):
    folder = build_model_folder(tmp_path / "model")
    out = tmp_path / "repo"
    assert main(["push", str(folder), "--repo-id", "org/name", "--dry-run", str(out), "--with-onnx"]) == 0
    printed = capsys.readouterr().out
    assert "onnx/model.onnx" in printed and "onnx/head.onnx" in printed
    manifest = read_manifest(out / "onnx")
    assert manifest["graphs"]["fp32"]["file"] == "model.onnx" and (out / "onnx" / "model.onnx").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not HAS_OPENVINO, reason="openvino is not installed")
def test_score_on_openvino_converts_the_onnx_export(scored_folder, tmp_path, capsys, monkeypatch):
    folder, files = scored_folder
    assert main(["export", str(folder), "--format", "onnx"]) == 0
    capsys.readouterr()
    ref, _ = score_json([str(folder), *files], capsys)
    import loop_svdd.engine.graphs as graphs

    monkeypatch.setattr(graphs, "export_model", None)  # must convert, not trace again
    got, err = score_json([str(folder), *files, "--backend", "openvino"], capsys)
    assert "exporting it once" in err and list((tmp_path / "cache").glob("exports/*/openvino/openvino_model.xml"))
    for a, b in zip(got["results"], ref["results"], strict=True):
        assert a["file"] == b["file"] and abs(a["score"] - b["score"]) <= 1e-4 * abs(b["score"])


def test_demo_scores_on_an_exported_backend(scored_folder, monkeypatch, capsys):
    from loop_svdd.demo.analysis import analyse_files

    folder, files = scored_folder
    ref, _ = analyse_files(*backends.make_backend(folder, "torch"), files)
    got, errors = analyse_files(*backends.make_backend(folder, "onnxruntime"), files)
    assert not errors and [r.name for r in got] == [r.name for r in ref]
    np.testing.assert_allclose([r.score for r in got], [r.score for r in ref], rtol=1e-4)
    monkeypatch.setattr(backends, "installed", lambda name: name == "torch")
    capsys.readouterr()  # the loading bars of the calls above
    assert main(["demo", str(folder), "--backend", "openvino"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "loop-svdd demo: error: the openvino backend is not installed (pip install 'loop-svdd[export]')"
