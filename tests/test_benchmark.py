import json
from pathlib import Path

import numpy as np
import pytest

from loop_svdd.bench.one_vs_rest import load_embedding_set, split_one_vs_rest
from loop_svdd.cli import main

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
    argv = ["benchmark", "--embeddings", str(folder), "--seeds", "0", "1", "--json", str(out_json)]
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
    assert main(["benchmark", "--embeddings", str(target), "--json", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_unknown_detector(tmp_path, capsys):
    folder = _make_folder(tmp_path)
    assert main(["benchmark", "--embeddings", str(folder), "--json", "x.json", "--detectors", "magic"]) == 2
    assert "unknown detector" in capsys.readouterr().err


@pytest.mark.skipif(not (REAL / "nff.npy").is_file(), reason="shared musicradar-bass-392 data not present")
def test_cli_real_data_fast_detectors(tmp_path):
    out_json = tmp_path / "real.json"
    argv = ["benchmark", "--embeddings", str(REAL), "--seeds", "0", "--json", str(out_json), "--no-progress"]
    assert main([*argv, "--detectors", "pca", "knn", "ocsvm"]) == 0
    out = json.loads(out_json.read_text())
    data = load_embedding_set(REAL)
    _check_schema(out, ["pca", "knn", "ocsvm"], data.classes)
    # the reference figures of the data README (seed 0)
    assert out["detectors"]["pca"]["mean_auroc"] == pytest.approx(0.959, abs=0.002)
    assert out["detectors"]["knn"]["mean_auroc"] == pytest.approx(0.956, abs=0.002)
    assert out["detectors"]["ocsvm"]["mean_auroc"] == pytest.approx(0.959, abs=0.002)
