import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from loop_svdd.bench import PROTOCOLS, protocol_module
from loop_svdd.bench.one_vs_rest import load_embedding_set, split_one_vs_rest
from loop_svdd.bench.report import BenchResult, write_report
from loop_svdd.cli import build_parser, main

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "musicradar-bass-392"
if not REAL.is_dir():
    REAL = Path("/work/shared/data/musicradar-bass-392")


def _make_folder(root: Path, n_per=(14, 12, 10), dim=16) -> Path:
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(size=(n, dim)) + 3 * rng.normal(size=(1, dim)) for n in n_per]).astype(np.float32)
    np.save(root / "nff.npy", x)
    folders = [f"class{i}" for i, n in enumerate(n_per) for _ in range(n)]
    lines = ["row,file,folder"] + [f"{r},{f}/{r}.wav,{f}" for r, f in enumerate(folders)]
    (root / "index.csv").write_text("\n".join(lines) + "\n")
    return root


def _check_schema(out: dict, detectors, folders):
    assert set(out["detectors"]) == set(detectors)
    for d in out["detectors"].values():
        for key in ("mean_auroc", "mean_auprc", "mean_pauc"):
            assert isinstance(d[key], float) and 0.0 <= d[key] <= 1.0
        assert set(d["per_class"]) == set(folders)
        assert all(0.0 <= v <= 1.0 for v in d["per_class"].values())
    # the synthetic clusters sit 3 sd apart: a detector that cannot separate them is broken
    for name in set(out["detectors"]) & {"knn", "pca", "deep_svdd"}:
        assert out["detectors"][name]["mean_auroc"] >= 0.9, (name, out["detectors"][name]["mean_auroc"])


def test_split_protocol(tmp_path):
    data = load_embedding_set(_make_folder(tmp_path))
    train, test, labels = split_one_vs_rest(data, "class0", seed=3)
    members = np.flatnonzero(data.folders == "class0")
    expected = members[np.random.default_rng(3).permutation(len(members))]
    np.testing.assert_array_equal(train, expected[:9])  # floor(0.7 * 14)
    assert set(test[labels == 0]) == set(expected[9:])
    assert (data.folders[test[labels == 1]] != "class0").all() and labels.sum() == 22


def test_cli_synthetic(tmp_path, capsys):
    folder = _make_folder(tmp_path)
    out_json, out_md, plots = tmp_path / "r.json", tmp_path / "r.md", tmp_path / "plots"
    dets = ["pca", "knn", "deep_svdd"]
    argv = ["benchmark", "one-vs-rest", "--embeddings", str(folder), "--seeds", "0", "1", "--json", str(out_json)]
    argv += ["--markdown", str(out_md), "--plots", str(plots), "--no-progress", "--detectors", *dets]
    assert main(argv) == 0
    out = json.loads(out_json.read_text())
    _check_schema(out, dets, ["class0", "class1", "class2"])
    assert out["detectors"]["pca"]["mean_auroc"] > 0.9
    assert "| pca |" in out_md.read_text()
    assert {p.name for p in plots.iterdir()} >= {"roc_pca.png", "hist_deep_svdd.png"}


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: None, "not found"),
        (lambda p: p.mkdir(), "missing nff.npy"),
        (
            lambda p: (p.mkdir(), np.save(p / "nff.npy", np.zeros(5)), (p / "index.csv").write_text("row,folder\n")),
            "2-D",
        ),
    ],
)
def test_cli_errors(tmp_path, capsys, setup, message):
    target = tmp_path / "emb"
    setup(target)
    assert main(["benchmark", "one-vs-rest", "--embeddings", str(target), "--json", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_unknown_detector(tmp_path, capsys):
    folder = _make_folder(tmp_path)
    assert (
        main(["benchmark", "one-vs-rest", "--embeddings", str(folder), "--json", "x.json", "--detectors", "magic"]) == 2
    )
    assert "unknown detector" in capsys.readouterr().err


@pytest.mark.skipif(not (REAL / "nff.npy").is_file(), reason="shared musicradar-bass-392 data not present")
def test_cli_real_data_fast_detectors(tmp_path):
    out_json = tmp_path / "real.json"
    argv = [
        "benchmark",
        "one-vs-rest",
        "--embeddings",
        str(REAL),
        "--seeds",
        "0",
        "--json",
        str(out_json),
        "--no-progress",
    ]
    assert main([*argv, "--detectors", "pca", "knn", "ocsvm"]) == 0
    out = json.loads(out_json.read_text())
    data = load_embedding_set(REAL)
    _check_schema(out, ["pca", "knn", "ocsvm"], data.classes)
    # the reference figures of the data README (seed 0)
    assert out["detectors"]["pca"]["mean_auroc"] == pytest.approx(0.959, abs=0.002)
    assert out["detectors"]["knn"]["mean_auroc"] == pytest.approx(0.956, abs=0.002)
    assert out["detectors"]["ocsvm"]["mean_auroc"] == pytest.approx(0.959, abs=0.002)


def help_of(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main([*argv, "--help"])
    return out.getvalue()


def test_every_protocol_is_one_module_with_the_protocol_interface():
    for name in PROTOCOLS:
        module = protocol_module(name)
        assert module.NAME == name and module.DESCRIPTION
        assert callable(module.add_arguments) and callable(module.run)


def test_benchmark_help_lists_the_protocols_and_each_shows_only_its_own_options():
    listing = help_of(["benchmark"])
    assert all(name in listing for name in PROTOCOLS) and "--embeddings" not in listing
    ovr, dup = help_of(["benchmark", "one-vs-rest"]), help_of(["benchmark", "duplicates"])
    assert "--embeddings" in ovr and "--plots" in ovr and "--audio" not in ovr and "--contamination" not in ovr
    assert "--audio" in dup and "--embeddings" not in dup and "--n-bank" not in dup


def test_every_protocol_option_names_its_default():
    """The protocol parsers are filled on first use, after `show_defaults` ran: each option says its default."""
    import argparse

    def subparsers(parser: argparse.ArgumentParser) -> dict:
        return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices

    for name, sub in subparsers(subparsers(build_parser())["benchmark"]).items():
        sub.fill()
        for action in sub._actions:
            default = action.default
            if default in (None, [], argparse.SUPPRESS) or isinstance(default, bool):
                continue
            assert "default" in (action.help or "").lower(), f"{name} {action.option_strings}"


def test_the_old_protocol_flag_still_runs_the_protocol(tmp_path, capsys):
    folder = _make_folder(tmp_path)
    argv = ["benchmark", "--protocol", "one-vs-rest", "--embeddings", str(folder), "--seeds", "0"]
    assert main([*argv, "--json", str(tmp_path / "r.json"), "--detectors", "pca", "--no-progress"]) == 0
    assert "deprecated" in capsys.readouterr().err
    assert set(json.loads((tmp_path / "r.json").read_text())["detectors"]) == {"pca"}


def test_report_writer(tmp_path, capsys):
    result = BenchResult("x", {"a": 1}, "| t |\n", {"b": [1, 2], "settings": {"a": 1}}, "# T\n\n", 1.25)
    write_report(result, str(tmp_path / "sub" / "r.json"), str(tmp_path / "r.md"))
    assert json.loads((tmp_path / "sub" / "r.json").read_text()) == result.payload
    assert (tmp_path / "r.md").read_text() == "# T\n\n| t |\n"
    assert capsys.readouterr().out == f"| t |\n\ndone in 1.2 s; results in {tmp_path / 'sub' / 'r.json'}\n"
    write_report(BenchResult("x", {}, "table", {"c": 3}), "-")
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"c": 3} and captured.err == "table\n"
