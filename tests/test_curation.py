"""`curate` / `loop-svdd curate` on a small synthetic pack: tonal loops plus two noise strays and bad files."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import SR, synth_loop

FAST = {"epochs": 5, "pretrain_epochs": 2, "ensemble_size": 1}
STRAYS = {"odd0.wav", "odd1.wav"}


def _write_pack(root: Path, n_normal: int, n_stray: int = 2, bad: bool = True) -> Path:
    import soundfile as sf

    (root / "sub").mkdir(parents=True)
    for i in range(n_normal):
        folder = root / "sub" if i % 3 == 0 else root
        wave = synth_loop(2.0 + (i % 3), seed=i, freq=55.0 * (1 + 0.02 * (i % 5)))
        sf.write(folder / f"bass{i:02d}.wav", wave, SR)
    rng = np.random.default_rng(0)
    for i in range(n_stray):
        sf.write(root / f"odd{i}.wav", (0.3 * rng.standard_normal(3 * SR)).astype(np.float32), SR)
    if bad:
        (root / "broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage that is not audio")
        (root / "empty.ogg").write_bytes(b"")
    return root


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def pack(tmp_path_factory) -> Path:
    return _write_pack(tmp_path_factory.mktemp("pack") / "pack", n_normal=24)


@pytest.fixture(scope="module")
def curated(pack, encoder_dir, tmp_path_factory):
    from loop_svdd.curation import curate

    before = _snapshot(pack)
    out = tmp_path_factory.mktemp("curated") / "out"
    result = curate(
        pack, out, encoder=str(encoder_dir), detector_options=FAST, train_model=False, max_media=4, progress=False
    )
    return result, before


def test_strays_rank_on_top(curated):
    result, _ = curated
    top = [Path(r["file"]).name for r in result.rows[:2]]
    assert set(top) == STRAYS
    assert set(Path(f).name for f in result.strays) >= STRAYS
    assert len(result.strays) <= 4  # the fence does not flag a large part of a clean pack
    assert [r["rank"] for r in result.rows] == list(range(1, 27))


def test_outputs_exist_and_parse(curated):
    result, _ = curated
    out = result.output_dir
    data = json.loads((out / "ranking.json").read_text())
    assert data["n_loops"] == 26 and len(data["loops"]) == 26
    row = data["loops"][0]
    assert {"file", "score", "rank", "percentile", "verdict", "reason", "duplicate_group", "window_scores"} <= set(row)
    assert row["reason"].startswith("Does not fit") and "x a typical loop of this pack" in row["reason"]
    assert isinstance(data["duplicates"], list) and "near-duplicates" in data["headline"]
    assert row["percentile"] == 100.0 and row["window_scores"][0]["score"] == pytest.approx(row["score"], rel=1e-4)
    with open(out / "ranking.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == [r["file"] for r in data["loops"]]
    assert [r["reason"] for r in rows] == [r["reason"] for r in data["loops"]]
    for g in data["duplicates"]:  # each group's files point back to it, in the JSON and the CSV
        assert g["keep"] in g["files"] and len(g["explained"]) == len(g["links"]) >= len(g["files"]) - 1
        assert {r["file"] for r in rows if r["duplicate_group"] == str(g["group"])} == set(g["files"])
    assert "sub/bass00.wav" in {r["file"] for r in rows}
    report = (out / "report.html").read_text()
    assert report.count("<audio") == 4 and report.count('class="spec"') == 4
    assert report.count("data:image/png;base64,") == 5  # 4 loops + the map
    assert "odd0.wav" in report and "Which loops do not fit?" in report
    assert "Near-duplicates (" in report and "<th>why</th>" in report and data["loops"][0]["reason"] in report


def test_bad_files_listed_and_user_files_untouched(curated, pack):
    result, before = curated
    unreadable = {Path(e["file"]).name: e["error"] for e in result.summary["unreadable"]}
    assert set(unreadable) == {"broken.wav", "empty.ogg"}
    assert "empty" in unreadable["empty.ogg"]
    assert "broken.wav" in (result.output_dir / "report.html").read_text()
    assert _snapshot(pack) == before  # nothing moved, changed, added or deleted


def test_resume_from_partial_cache(curated, pack, encoder_dir, tmp_path, monkeypatch):
    """A run interrupted after its first chunk: the rerun embeds only the rest and gives the same ranking."""
    import loop_svdd.engine.cache as cache_module
    from loop_svdd.curation import curate

    result, _ = curated
    out = tmp_path / "resumed"
    shutil.copytree(result.output_dir / "cache", out / "cache")
    chunks = sorted((out / "cache").rglob("chunk-*.json"))
    assert len(chunks) == 2  # 28 files in chunks of 16
    second = [c for c in chunks if json.loads(c.read_text())["errors"]]  # the chunk with the bad files
    second[0].unlink()  # as if killed while embedding the second chunk
    calls = []
    real = cache_module.embed_waveforms
    monkeypatch.setattr(cache_module, "embed_waveforms", lambda *a, **k: calls.append(len(a[2])) or real(*a, **k))
    again = curate(
        pack, out, encoder=str(encoder_dir), detector_options=FAST, train_model=False, max_media=0, progress=False
    )
    assert calls == [12 - 2]  # only the second chunk (12 files, 2 of them unreadable) was embedded again
    assert [(r["file"], r["score"]) for r in again.rows] == [(r["file"], r["score"]) for r in result.rows]


def test_ranking_json_says_where_the_time_went(curated):
    result, _ = curated
    seconds = json.loads((result.output_dir / "ranking.json").read_text())["seconds"]
    stages = {"load_encoder", "embedding", "rank", "duplicates", "report", "embedding.hash", "embedding.decode"}
    assert stages <= set(seconds) and {"embedding.encode", "embedding.cache"} <= set(seconds)
    assert all(v >= 0 for v in seconds.values()) and seconds["embedding"] >= seconds["embedding.encode"]
    assert result.summary["n_embedded"] == len(result.rows) + 2  # every readable loop and the 2 bad files, once


def test_small_pack_refused_or_warned(tmp_path, encoder_dir):
    from loop_svdd.curation import PackError, curate

    small = _write_pack(tmp_path / "small", n_normal=9, n_stray=1, bad=False)
    with pytest.raises(PackError, match="only 10 readable loops.*--allow-small"):
        curate(small, tmp_path / "o1", encoder=str(encoder_dir), detector_options=FAST, progress=False)
    result = curate(
        small,
        tmp_path / "o2",
        encoder=str(encoder_dir),
        detector_options=FAST,
        allow_small=True,
        train_model=False,
        max_media=0,
        progress=False,
    )
    assert result.summary["warnings"] and "not reliable" in result.summary["warnings"][0]
    assert "not reliable" in (tmp_path / "o2" / "report.html").read_text()


def test_cli(pack, encoder_dir, tmp_path, monkeypatch, capsys):
    from loop_svdd.cli import main
    from loop_svdd.detectors import DETECTORS, DeepSVDD

    monkeypatch.setitem(DETECTORS, "deep_svdd", partial(DeepSVDD, head_type="ae", **FAST))
    out, export = tmp_path / "out", tmp_path / "strays"
    argv = [
        "curate",
        str(pack),
        "--output-dir",
        str(out),
        "--encoder",
        str(encoder_dir),
        "--no-progress",
        "--players",
        "2",
    ]
    options = ["--no-model", "--no-duplicates", "--contamination", "0.07", "--export-outliers", str(export)]
    assert main([*argv, *options]) == 0
    captured = capsys.readouterr()
    assert "2 of 26 loops do not fit" in captured.out and "0 group(s) of near-duplicates" in captured.out
    assert "loop-svdd curate: skipped " in captured.err and "broken.wav" in captured.err
    assert {p.name for p in export.rglob("*.wav")} == STRAYS
    assert (pack / "odd0.wav").is_file()  # copied, not moved
    for bad, message in [(["--contamination", "lots"], "contamination must be"), (["--folds", "1"], "--folds")]:
        assert main([*argv, *bad]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["curate", str(tmp_path / "nope"), "--output-dir", str(out)]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main([*argv, "--export-outliers", str(pack / "strays")]) == 2
    assert "outside the pack folder" in capsys.readouterr().err and not (pack / "strays").exists()


@pytest.mark.slow
def test_model_of_the_clean_pack(curated, pack, encoder_dir, tmp_path):
    """model/ is trained without the strays and is what `score` and `from_pretrained` accept."""
    from loop_svdd import LoopSVDDModel
    from loop_svdd.curation import curate
    from loop_svdd.engine.scoring import score_files
    from loop_svdd.models.model_io import read_json

    out = tmp_path / "with-model"
    shutil.copytree(curated[0].output_dir / "cache", out / "cache")  # reuse the embeddings
    result = curate(pack, out, encoder=str(encoder_dir), detector_options=FAST, max_media=0, progress=False)
    summary = read_json(out / "model" / "training_summary.json")
    assert not set(summary["train_files"]) & STRAYS and len(summary["train_files"]) == 26 - len(result.strays)
    assert summary["ensemble_size"] == FAST["ensemble_size"] and summary["training"]["epochs"] == FAST["epochs"]
    model = LoopSVDDModel.from_pretrained(out / "model")
    assert model.config.threshold is not None
    from loop_svdd.models.model_io import load_detector

    report = score_files(*load_detector(out / "model"), [pack / "odd0.wav", pack / "bass01.wav"])
    assert [Path(r["file"]).name for r in report["results"]] == ["odd0.wav", "bass01.wav"]


def test_benchmark_contaminated_protocol(tmp_path):
    """`benchmark --protocol contaminated` on synthetic clusters: the JSON schema, and in-sample PCA fooled
    by its strays while cross-fitting finds them."""
    from test_benchmark import _make_folder

    from loop_svdd.bench.contaminated import make_pack, n_strays
    from loop_svdd.bench.one_vs_rest import load_embedding_set
    from loop_svdd.cli import main

    folder = _make_folder(tmp_path, n_per=(30, 30, 30), dim=40)
    rows, labels = make_pack(load_embedding_set(folder), "class1", 0.1, seed=2)
    assert labels.sum() == n_strays(30, 0.1) == 3 and len(rows) == 33 and len(set(rows.tolist())) == 33
    out = tmp_path / "c.json"
    argv = ["benchmark", "--protocol", "contaminated", "--embeddings", str(folder), "--json", str(out)]
    assert (
        main([*argv, "--contamination", "0.05", "0.1", "--seeds", "0", "--detectors", "pca", "knn", "--no-progress"])
        == 0
    )
    result = json.loads(out.read_text())
    assert result["protocol"] == "contaminated" and set(result["results"]) == {"0.05", "0.1"}
    for fraction in result["results"].values():
        assert set(fraction) == {"pca", "knn"}
        for modes in fraction.values():
            assert set(modes) == {"in_sample", "cross_fitted", "cross_fitted_robust"}
            assert all(0 <= m["auroc"] <= 1 and 0 <= m["precision_at_k"] <= 1 for m in modes.values())
            for m in modes.values():
                assert all(0 <= m[k] <= 1 for k in ("verdict_precision", "verdict_recall", "verdict_f1"))
    pca = result["results"]["0.05"]["pca"]
    assert pca["cross_fitted_robust"]["auroc"] > 0.9 > 0.5 > pca["in_sample"]["auroc"]  # PCA rebuilds its strays
    assert result["results"]["0.1"]["knn"]["cross_fitted_robust"]["auroc"] > 0.95
    assert result["results"]["0.1"]["knn"]["cross_fitted_robust"]["verdict_recall"] > 0.5  # strays are called
    fence = [*argv, "--contamination", "0.1", "--seeds", "0", "--detectors", "knn", "--no-progress"]
    assert main([*fence, "--modes", "cross_fitted", "--verdict-rule", "fence", "--verdict-param", "50"]) == 0
    assert json.loads(out.read_text())["results"]["0.1"]["knn"]["cross_fitted"]["verdict_recall"] == 0.0
    assert main([*fence, "--verdict-rule", "vibes"]) == 2


def test_verdict_calibration_counts_false_calls_on_clean_packs(tmp_path):
    """`benchmark verdict-calibration` with clean packs (fraction 0): their false calls per 100 loops, a parameter
    chosen within the limit on them, the chosen rule, fixed settings to compare, and a one-line error for a bad
    one."""
    from test_benchmark import _make_folder

    from loop_svdd.bench.contaminated import make_pack, n_strays
    from loop_svdd.bench.one_vs_rest import load_embedding_set
    from loop_svdd.cli import main

    folder = _make_folder(tmp_path, n_per=(30, 30, 30), dim=40)
    assert n_strays(30, 0.0) == 0 and make_pack(load_embedding_set(folder), "class1", 0.0, seed=1)[1].sum() == 0
    out = tmp_path / "v.json"
    argv = ["benchmark", "verdict-calibration", "--embeddings", str(folder), "--detectors", "knn"]
    argv += ["--modes", "cross_fitted_robust", "--fractions", "0", "0.1", "--tune-seeds", "3", "--report-seeds", "0"]
    argv += ["--cache", str(tmp_path / "cache"), "--json", str(out), "--compare", "fence=0.5"]
    assert main(argv) == 0
    result = json.loads(out.read_text())["results"]["knn"]
    assert result["cross_fitted_robust"]["fence"]["tuning_false_per_100"] <= 1.0  # the fence can keep within it
    for rule in result["cross_fitted_robust"].values():
        clean, dirty = rule["fractions"]["0"], rule["fractions"]["0.1"]
        assert 0 <= clean["false_per_100"] <= 100
        assert 0 <= dirty["verdict_f1"] <= 1 and dirty["false_per_100"] == 0.0  # a pack with strays is not clean
    loose = result["cross_fitted_robust fixed"]["fence=0.5"]["0"]["false_per_100"]
    assert loose > 10  # a fence at half a robust standard deviation calls a good share of a clean pack
    ranking = result["cross_fitted_robust ranking"]
    assert list(ranking) == ["0.1"] and 0.5 <= ranking["0.1"]["auroc"] <= 1  # clean packs have no stray to rank
    best = ranking["0.1"]["best_cutoff_f1"]
    assert best >= max(r["fractions"]["0.1"]["verdict_f1"] for r in result["cross_fitted_robust"].values())
    assert main([*argv[:-2], "--compare", "vibes=1"]) == 2


def test_demo_curate_upload(pack, encoder_dir, tmp_path):
    """The demo's "Curate a pack" tab: a zip of the pack in, the ranked table with players, map and report out."""
    import zipfile

    from loop_svdd.demo.curate_view import UploadError, curate_upload

    archive = tmp_path / "pack.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(pack.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(pack).as_posix())
        z.writestr("../escape.wav", b"not extracted outside the pack")
    opts = {"detector_options": FAST, "train_model": False, "max_media": 3}
    status, table, map_path, report = curate_upload([str(archive)], str(encoder_dir), **opts)
    assert "of 26 loops do not fit" in status and "broken.wav" in status
    assert table.count("<tr") == 27 and table.count("<audio") == 3 and table.index("odd") < table.index("bass")
    assert Path(map_path).read_bytes()[:4] == b"\x89PNG" and Path(report).name == "report.html"
    assert not (tmp_path / "escape.wav").exists()
    with pytest.raises(UploadError, match="Add loops"):
        curate_upload([], str(encoder_dir))
    (tmp_path / "bad.zip").write_bytes(b"PK not a zip")
    with pytest.raises(UploadError, match="not a readable zip"):
        curate_upload([str(tmp_path / "bad.zip")], str(encoder_dir))


@pytest.mark.parametrize("failure", [RuntimeError("Couldn't allocate AVFormatContext. Got format=mp3."), None])
def test_report_without_an_mp3_encoder_says_so_once(tmp_path, monkeypatch, capsys, failure):
    """No MP3 encoder in FFmpeg: every row keeps its figure, no player, and one stderr line says why; any other
    error in the player is a bug and is not swallowed."""
    import soundfile as sf
    from conftest import small_model

    from loop_svdd import LoopSVDDFeatureExtractor
    from loop_svdd.curation import pipeline, report

    calls = []

    def encoder(wave, sr):
        calls.append(sr)
        raise failure if failure is not None else TypeError("a bug")

    monkeypatch.setattr(report, "audio_data_uri", encoder)
    extractor = LoopSVDDFeatureExtractor.from_model_config(small_model().config)
    rows = []
    for rank in (1, 2, 3):
        sf.write(tmp_path / f"l{rank}.wav", synth_loop(1.0, seed=rank), SR)
        rows.append(
            {"path": str(tmp_path / f"l{rank}.wav"), "rank": rank, "window_scores": [{"start_s": 0.0, "score": 1.0}]}
        )
    if failure is None:
        with pytest.raises(TypeError, match="a bug"):
            pipeline._media(rows, extractor, 0.5, limit=3)
        return
    media = pipeline._media(rows, extractor, 0.5, limit=3)
    assert sorted(media) == [1, 2, 3] and all(set(m) == {"figure"} for m in media.values()) and len(calls) == 1
    assert capsys.readouterr().err == (
        "loop-svdd curate: warning: the report has no audio players: cannot encode MP3 "
        "(Couldn't allocate AVFormatContext. Got format=mp3.)\n"
    )


# -- every pack size (issue 27: a 47-loop pack crashed curate's cross-fitting) ------------------------------------
PACK_SIZES = range(20, 201)
_TINY = {"epochs": 1, "pretrain_epochs": 1, "hidden_dims": [8, 4], "ensemble_size": 1}


def _pack_embeddings(n_max: int = 200) -> np.ndarray:
    """Small synthetic clip embeddings: a tight cluster with every tenth loop far from it."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_max, 12)).astype(np.float32)
    X[::10] += 4.0
    return X


def _size_recorder(sizes: set[int]):
    """A seed -> detector factory whose detectors note how many rows they are fitted on (a cheap score)."""
    from loop_svdd.detectors.base import BaseDetector

    class Recorder(BaseDetector):
        def _fit(self, X):
            sizes.add(len(X))
            self.mean_ = X.mean(axis=0)
            return self._score(X)

        def _score(self, X):
            return ((X - self.mean_) ** 2).sum(axis=1)

    return lambda seed: Recorder(random_state=seed)


def test_cross_fitting_serves_every_pack_size():
    """curate's cross-fitting (folds x trim) on every pack size from 20 to 200 never fails, and Deep SVDD (with
    and without a validation split) fits every training size it hands a fold detector."""
    from loop_svdd.curation.scoring import robust_cross_fit
    from loop_svdd.detectors import make_detector

    X, sizes = _pack_embeddings(), set()
    for n in PACK_SIZES:
        for folds in (2, 3, 5, 10):
            for trim in (0.0, 0.1, "auto", 0.49):
                pack = robust_cross_fit(X[:n], _size_recorder(sizes), folds, trim, seed=n)
                assert pack.scores.shape == (n,) and np.isfinite(pack.scores).all(), (n, folds, trim)
    assert min(sizes) >= 2 and max(sizes) < 200
    for val_fraction in (0.0, 0.2):
        for size in sorted(sizes):
            det = make_detector("deep_svdd", random_state=size, val_fraction=val_fraction, **_TINY).fit(X[:size])
            assert np.isfinite(det.decision_function(X[:size])).all(), (size, val_fraction)


def test_cross_fitting_names_a_fold_left_empty():
    """Trimming that would leave a fold nothing to fit on stops with one line that says what to change."""
    from loop_svdd.curation.scoring import cross_fit, fold_ids

    X = _pack_embeddings(20)
    exclude = fold_ids(20, 2, seed=0) == 1  # every loop of fold 1 trimmed: fold 0 has nothing to fit on
    with pytest.raises(ValueError, match="fold 0: only 0 loop.*more folds or a lower contamination") as err:
        cross_fit(X, _size_recorder(set()), folds=2, seed=0, exclude=exclude)
    assert len(str(err.value).splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("val_fraction", [0.0, 0.2])
def test_cross_fitting_with_deep_svdd_every_pack_size(val_fraction):
    """The same with the Deep SVDD detector itself, at curate's settings (5 folds, trim "auto" and 0.1)."""
    from loop_svdd.curation.scoring import detector_factory, robust_cross_fit

    X = _pack_embeddings()
    factory = detector_factory("deep_svdd", val_fraction=val_fraction, **_TINY)
    for n in PACK_SIZES:
        for trim in ("auto", 0.1):
            pack = robust_cross_fit(X[:n], factory, 5, trim, seed=0)
            assert np.isfinite(pack.scores).all(), (n, trim)


def test_pack_model_honours_the_detector_options(pack, encoder_dir, tmp_path):
    """`model/` trains with the Deep SVDD options the ranking's detectors had (issue 26: they were dropped)."""
    from loop_svdd.curation.pipeline import train_pack_model
    from loop_svdd.models.model_io import read_json

    kept = sorted(pack.glob("bass*.wav"))[:8]
    options = {**FAST, "hidden_dims": [16, 4], "val_fraction": 0.2}
    result = train_pack_model(kept, tmp_path / "model", tmp_path / "cache", str(encoder_dir), 3, False, options)
    assert result.model.config.ensemble_size == 1 and result.model.config.hidden_dims == [16, 4]
    summary = read_json(tmp_path / "model" / "training_summary.json")
    training = summary["training"]
    assert (training["epochs"], training["pretrain_epochs"], training["val_fraction"], training["seed"]) == (
        5,
        2,
        0.2,
        3,
    )
    assert summary["heldout_rows"] == [] and summary["calibration_fraction"] == 0.2
    assert len(summary["epochs_run"]) == 1 and summary["epochs_run"][0]["svdd_loss"] <= 5
