"""Corpus -> embeddings (cached) -> trained detector -> score / evaluate, through the Python API and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SR, synth_loop

from loop_svdd import LoopSVDDFeatureExtractor, LoopSVDDModel
from loop_svdd.audio.corpora import CorpusError, RowFilter, load_corpus, select
from loop_svdd.cli import main
from loop_svdd.detectors.deep_svdd import SVDDTrainingConfig
from loop_svdd.engine.cache import embed_dataset
from loop_svdd.models.model_io import ModelLoadError, load_detector, save_detector
from loop_svdd.training.from_corpus import train_on_corpus

FAST = ["--hidden-dims", "32", "8", "--epochs", "8", "--pretrain-epochs", "4", "--no-progress"]


def test_corpus_sources_and_filters(corpus, tmp_path):
    ds = load_corpus(corpus)
    assert len(ds) == 30 and "instrument" in ds.column_names
    assert len(select(ds, [RowFilter.parse("instrument=bass")])) == 20
    assert len(select(ds, [RowFilter.parse("instrument!=bass"), RowFilter.parse("bars=1")])) == 3
    ds.save_to_disk(tmp_path / "saved")
    assert len(load_corpus(tmp_path / "saved")) == 30
    with pytest.raises(CorpusError, match="COLUMN=VALUE"):
        RowFilter.parse("instrument")
    with pytest.raises(CorpusError, match="no column 'genre'"):
        select(ds, [RowFilter.parse("genre=rock")])
    with pytest.raises(CorpusError, match="cannot load"):
        load_corpus("no-such-org/no-such-corpus")


def test_embedding_cache_skips_the_encoder(corpus, encoder_dir, monkeypatch):
    model, fe = load_detector(encoder_dir)
    ds = load_corpus(corpus)
    first = embed_dataset(model, fe, ds, progress=False)
    assert first.shape == (30, 128) and np.isfinite(first).all()

    def boom(*args, **kwargs):
        raise AssertionError("the encoder ran although the embeddings were cached")

    monkeypatch.setattr(LoopSVDDModel, "get_window_embeddings", boom)
    assert np.array_equal(embed_dataset(model, fe, ds, progress=False), first)
    # Another extractor setting is another cache entry.
    fe_hop = LoopSVDDFeatureExtractor.from_model_config(model.config, window_hop_s=5)
    with pytest.raises(AssertionError, match="encoder ran"):
        embed_dataset(model, fe_hop, ds, progress=False)


@pytest.mark.parametrize(
    ("head_type", "objective"), [("ae", "one-class"), ("residual_ae", "soft-boundary")], ids=["ae", "residual"]
)
def test_train_score_evaluate_every_entry_point(corpus, encoder_dir, tmp_path, capsys, head_type, objective):
    # CLI and Python API give the same model for the same seed.
    cli_dir, api_dir = tmp_path / "cli", tmp_path / "api"
    args = [
        "train",
        str(corpus),
        "--normal",
        "instrument=bass",
        "--output-dir",
        str(cli_dir),
        "--encoder",
        str(encoder_dir),
        "--head-type",
        head_type,
        "--objective",
        objective,
        *FAST,
    ]
    assert main(args) == 0
    assert "threshold" in capsys.readouterr().out
    config = SVDDTrainingConfig(
        head_type=head_type, objective=objective, hidden_dims=[32, 8], epochs=8, pretrain_epochs=4
    )
    result = train_on_corpus(
        corpus, [RowFilter.parse("instrument=bass")], api_dir, encoder=str(encoder_dir), training=config, progress=False
    )
    assert result.summary["train_rows"] == json.loads((cli_dir / "training_summary.json").read_text())["train_rows"]
    model, fe = load_detector(cli_dir)
    assert model.config.threshold is not None and all(h.center.abs().min() >= 0.1 for h in model.heads)  # Ruff's eps
    assert model.config.head_type == head_type and model.config.objective == objective
    assert model.config.ensemble_size == 3 and len(model.heads) == 3
    assert len({float(h.score_scale) for h in model.heads}) == 3  # each head's own median scaling
    # The ensemble score is the mean of each head's raw score divided by its scale.
    emb = torch.randn(5, model.config.embedding_dim)
    with torch.inference_mode():
        per_head = [h.score(emb) / h.score_scale for h in model.heads]
        assert torch.allclose(model.score_embeddings(emb)[0], sum(per_head) / 3, rtol=1e-5)
        raw = model.head.distance(emb) - (model.head.radius**2 if objective == "soft-boundary" else 0)
        assert torch.allclose(per_head[0] * model.head.score_scale, raw, rtol=1e-5)

    # score: a ranked table and JSON; the high 'keys' loops rank above the held-out bass loops.
    heldout = result.summary["heldout_files"]
    files = [str(corpus / heldout[0]), str(corpus / "loop25.flac"), str(corpus / "loop27.flac")]
    assert main(["score", str(cli_dir), *files, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    ranked = [Path(r["file"]).name for r in report["results"]]
    assert ranked[-1] == heldout[0] and report["threshold"] == model.config.threshold
    api_scores = {Path(r["file"]).name: r["score"] for r in report["results"]}
    with torch.inference_mode():
        from loop_svdd.audio.decode import load_audio

        direct = model(**fe(load_audio(files[1]), sampling_rate=SR)).anomaly_score.item()
    assert api_scores["loop25.flac"] == pytest.approx(direct, rel=1e-5)

    # evaluate: held-out normals vs the other instrument, with baselines and per-kind AUROC.
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(cli_dir), str(corpus), "--by", "instrument", "--json", str(out), "--no-progress"]) == 0
    evaluation = json.loads(out.read_text())
    assert evaluation["n_normal_test"] == 4 and evaluation["n_anomaly_test"] == 10
    assert set(evaluation["detectors"]) == {"loop_svdd", "isolation_forest", "pca", "knn", "ocsvm"}
    ours = evaluation["detectors"]["loop_svdd"]
    assert set(ours["per_group_auroc"]) == {"keys"}
    assert ours["auroc"] > 0.8  # pitch is easy even for a random HTS-AT


def test_score_reports_bad_files_and_strict_mode(encoder_dir, tmp_path, capsys):
    good = tmp_path / "good.wav"
    sf.write(good, synth_loop(2.0), SR)
    (tmp_path / "bad.wav").write_bytes(os.urandom(300))
    (tmp_path / "empty.flac").write_bytes(b"")
    files = [str(good), str(tmp_path / "bad.wav"), str(tmp_path / "empty.flac"), str(tmp_path / "missing.wav")]
    assert main(["score", str(encoder_dir), *files]) == 0
    captured = capsys.readouterr()
    assert "good.wav" in captured.out and "uncalibrated" in captured.out
    assert captured.err.count("skipped") == 3 and "empty" in captured.err and "no such file" in captured.err
    assert main(["score", str(encoder_dir), *files, "--strict"]) == 1


def test_cli_errors_are_one_line(corpus, encoder_dir, tmp_path, capsys):
    assert (
        main(
            [
                "train",
                str(corpus),
                "--normal",
                "instrument=tuba",
                "--output-dir",
                str(tmp_path / "m"),
                "--encoder",
                str(encoder_dir),
                *FAST,
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "no loop has instrument=tuba; values of 'instrument': bass, keys" in err and "Traceback" not in err
    assert main(["score", str(tmp_path / "nowhere"), "x.wav"]) == 2
    assert f"no such file or folder: {tmp_path / 'nowhere'}" in capsys.readouterr().err
    assert main(["train", str(corpus), "--output-dir", str(tmp_path / "m"), "--nu", "3", *FAST]) == 2
    assert "nu" in capsys.readouterr().err


def test_interrupted_save_leaves_a_folder_that_refuses_to_load(encoder_dir, tmp_path, monkeypatch):
    model, fe = load_detector(encoder_dir)
    target = tmp_path / "model"
    save_detector(model, fe, target)
    real_replace = os.replace

    def crash(src, dst):
        if str(dst).endswith("model.safetensors"):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_detector(model, fe, target)
    monkeypatch.setattr(os, "replace", real_replace)
    with pytest.raises(ModelLoadError, match="did not finish"):
        load_detector(target)
    assert not [p for p in target.iterdir() if p.name.startswith(".saving-")]


def test_pickle_folders_are_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "loop_svdd"}))
    torch.save({"w": torch.zeros(1)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pickle files are never loaded"):
        load_detector(tmp_path)


@pytest.mark.parametrize("change", ["widths", "ensemble"])
def test_weights_that_do_not_fit_the_config_are_refused(encoder_dir, tmp_path, change):
    """A config edited by hand (or a half-copied folder) must not load with random weights in some places."""
    import shutil

    shutil.copytree(encoder_dir, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    if change == "widths":
        config["hidden_dims"] = [16, 8]  # same latent size, other layer widths
    else:
        config["ensemble_size"] = 2  # a second head the weights file does not have
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="do not fit|lacks weights"):
        load_detector(tmp_path / "m")


def test_embedding_cache_fingerprint_survives_save_and_reload(tmp_path):
    """`train` saves the model; `evaluate` reloads it and must find the embeddings `train` cached."""
    from conftest import small_model

    from loop_svdd import LoopSVDDFeatureExtractor
    from loop_svdd.engine.cache import encoder_fingerprint
    from loop_svdd.models.model_io import load_detector, save_detector

    model = small_model(False)
    extractor = LoopSVDDFeatureExtractor.from_model_config(model.config)
    before = encoder_fingerprint(model, extractor)
    save_detector(model, extractor, tmp_path)
    loaded, loaded_extractor = load_detector(tmp_path)
    assert "auto_map" in loaded_extractor.to_dict()  # what saving adds, and what must not count
    assert encoder_fingerprint(loaded, loaded_extractor) == before
    loaded_extractor.frequency_max = 12000  # a setting that changes embeddings still does
    assert encoder_fingerprint(loaded, loaded_extractor) != before
