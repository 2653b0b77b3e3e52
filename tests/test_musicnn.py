"""musicnn in PyTorch (the distillation teacher) and the distillation itself."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SR, synth_loop
from safetensors.torch import load_file

from loop_svdd.models.musicnn import MusicnnConfig, MusicnnFeatureExtractor, MusicnnModel
from loop_svdd.models.musicnn.conversion import BN_FIELDS, BN_NAMES, CONV_NAMES, DENSE_NAMES, state_dict_from_tf
from loop_svdd.pretraining.teacher import CHECKPOINTS, MusicnnEmbedder, load_musicnn

FIXTURE = Path(__file__).parent / "fixtures" / "musicnn_tf_parity.safetensors"


@pytest.mark.parametrize("name", ["musicnn-mtt", "musicnn-msd"])
def test_port_matches_tensorflow(name):
    """The shipped weights in the PyTorch port give TensorFlow's outputs (the wheel's own extractor, TF 2.21) on
    log-mel patches of three real loops, to 1e-4 of each output's scale."""
    fixture = load_file(FIXTURE)
    key = {"musicnn-mtt": "MTT_musicnn", "musicnn-msd": "MSD_musicnn"}[name]
    with torch.inference_mode():
        out = load_musicnn(name)(fixture["input_features"])
    for field in ("probabilities", "max_pool", "mean_pool", "penultimate"):
        reference = fixture[f"{key}.{field}"]
        ours = out[field][: len(reference)]
        error = float((ours - reference).abs().max() / reference.abs().max())
        assert error <= 1e-4, (field, error)
    assert float(out.max_pool.abs().max()) > 1.0  # real activations, not a degenerate fixture


def test_front_end_matches_librosa():
    librosa = pytest.importorskip("librosa")
    wave = synth_loop(3.5, seed=3, sr=16000)
    ours = MusicnnFeatureExtractor().log_mel(torch.from_numpy(wave))
    mel = librosa.feature.melspectrogram(y=wave, sr=16000, hop_length=256, n_fft=512, n_mels=96).T
    theirs = np.log10(10000 * mel + 1)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours.numpy(), theirs, atol=2e-3, rtol=1e-3)


def test_patches_repeat_short_loops_and_overlap_by_half():
    fe = MusicnnFeatureExtractor()
    short = fe.patches(torch.from_numpy(synth_loop(0.5, sr=48000)), 48000)
    assert short.shape == (1, 187, 96)
    long = fe.patches(torch.from_numpy(synth_loop(10.0, sr=48000)), 48000)
    assert long.shape == (5, 187, 96)  # 626 frames, patches every 93
    with pytest.raises(ValueError, match="empty"):
        fe.patches(torch.zeros(0), 48000)


def _tf_variables(model: MusicnnModel) -> dict[str, torch.Tensor]:
    """The TensorFlow checkpoint layout of `model`'s weights (the inverse of the conversion)."""
    state, out = model.state_dict(), {}
    for tf_name, module in CONV_NAMES.items():
        w = state[f"{module}.weight"]
        out[f"{tf_name}/kernel"] = w.permute(2, 1, 0)[:, :, None] if w.dim() == 3 else w.permute(2, 3, 1, 0)
        out[f"{tf_name}/bias"] = state[f"{module}.bias"]
    for tf_name, module in BN_NAMES.items():
        for tf_field, field in BN_FIELDS.items():
            out[f"{tf_name}/{tf_field}"] = state[f"{module}.{field}"]
    for tf_name, module in DENSE_NAMES.items():
        out[f"{tf_name}/kernel"] = state[f"{module}.weight"].T
        out[f"{tf_name}/bias"] = state[f"{module}.bias"]
    return out


def test_conversion_maps_every_tensorflow_variable():
    shipped = load_musicnn("musicnn-mtt")
    variables = _tf_variables(shipped)
    assert variables["conv2d/kernel"].shape == (7, 38, 1, 204)  # the checkpoint's shapes
    assert variables["conv2d_5/kernel"].shape == (7, 561, 1, 64)
    assert variables["dense/kernel"].shape == (1506, 200)
    converted = state_dict_from_tf(variables)
    for name, tensor in shipped.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            torch.testing.assert_close(converted[name], tensor, rtol=0, atol=0, msg=name)


def test_checkpoints_carry_their_provenance():
    for name, folder in CHECKPOINTS.items():
        config = MusicnnConfig.from_pretrained(folder)
        assert len(config.labels) == 50 and config.feature_dim == 753
        card = (folder / "README.md").read_text()
        assert "ISC" in card and "Pons" in card and "scripts/musicnn_tf_dump.py" in card, name


def test_teacher_features_are_pooled_and_deterministic():
    loop = synth_loop(1.2, seed=5)
    mtt = MusicnnEmbedder("musicnn-mtt")
    a, tags = mtt.embed_one(loop, SR)
    b, _ = mtt.embed_one(loop, SR)
    assert a.shape == (753,) and tags.shape == (50,) and np.array_equal(a, b)
    assert ((tags >= 0) & (tags <= 1)).all()
    both = MusicnnEmbedder("both").embed([loop, synth_loop(4.0, seed=6)], SR)
    assert both.features.shape == (2, 1506) and both.tags.shape == (2, 100)
    np.testing.assert_allclose(both.features[0, :753], a, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown teacher"):
        MusicnnEmbedder("musicnn-xyz")


def _clips(root: Path, n: int = 6) -> Path:
    (root / "data").mkdir(parents=True)
    with open(root / "metadata.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file_name", "instrument", "source"])
        for i in range(n):
            sf.write(root / "data" / f"{i}.wav", synth_loop(1.0 + 0.4 * i, seed=i, freq=55.0 * (1 + i)), SR)
            w.writerow([f"data/{i}.wav", "bass" if i % 2 else "keys", "synth" if i < n - 1 else "other"])
    return root


def test_distillation_runs_caches_the_teacher_and_resumes_bit_exactly(tmp_path, capsys, monkeypatch):
    from loop_svdd.cli import main
    from loop_svdd.pretraining import distill

    corpus = _clips(tmp_path / "corpus")
    args = ["pretrain-encoder", str(corpus), "--teacher", "musicnn-mtt", "--steps", "4", "--batch-size", "3",
            "--checkpoint-every", "2", "--no-progress", "--hold-out-source", "other"]  # fmt: skip
    assert main([*args, "--output-dir", str(tmp_path / "full")]) == 0
    assert "distilled musicnn-mtt on 5 clips" in capsys.readouterr().out
    summary = json.loads((tmp_path / "full" / "pretraining.json").read_text())
    assert summary["held_out_sources"] == ["other"] and summary["teacher_s"] > 0
    assert all(np.isfinite(summary["history"]["feature_mse"])) and len(summary["history"]["loss"]) == 4

    real_step, calls = distill.DistillTrainer.step, []

    def interrupted(self):
        calls.append(1)
        if len(calls) == 3:  # after the checkpoint of step 2
            raise KeyboardInterrupt
        return real_step(self)

    monkeypatch.setattr(distill.DistillTrainer, "step", interrupted)
    assert main([*args, "--output-dir", str(tmp_path / "resumed")]) == 130  # Ctrl-C: "interrupted"
    assert "interrupted" in capsys.readouterr().err and not (tmp_path / "resumed" / "model.safetensors").exists()
    monkeypatch.setattr(distill.DistillTrainer, "step", real_step)
    assert main([*args, "--output-dir", str(tmp_path / "resumed")]) == 0
    resumed = json.loads((tmp_path / "resumed" / "pretraining.json").read_text())
    assert resumed["history"] == summary["history"] and resumed["teacher_s"] == 0  # teacher read from the cache
    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "model.safetensors")
    for name in a:
        if name.startswith("encoder."):
            torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_distillation_options_are_checked(tmp_path, capsys):
    from loop_svdd.cli import main

    corpus = _clips(tmp_path / "corpus", n=3)
    base = ["pretrain-encoder", str(corpus), "--output-dir", str(tmp_path / "o")]
    assert main([*base, "--tag-weight", "1"]) == 2
    assert "--tag-weight needs --teacher" in capsys.readouterr().err
    assert main([*base, "--teacher", "musicnn-mtt", "--temperature", "0.1"]) == 2
    assert main([*base, "--teacher", "musicnn-mtt", "--tag-weight", "-1"]) == 2
    assert "tag_weight" in capsys.readouterr().err


def test_gm_sweep_covers_every_program_and_never_a_reserved_source():
    from loop_svdd.pretraining.distill_set import HELD_OUT_SOURCES, TRAIN_SOUNDFONTS, gm_sweep_specs

    specs = gm_sweep_specs("FluidR3_GM", seed=0, first_index=10, per_program=2)
    melodic = {s.program for s in specs if s.bank == 0}
    assert melodic == set(range(128)) and {s.bank for s in specs} == {0, 128}
    assert [s.index for s in specs] == list(range(10, 10 + len(specs))) and all(s.notes for s in specs)
    assert gm_sweep_specs("FluidR3_GM", 0, 10, 2) == specs  # seeded
    reserved = ("freepats", "timidity", "lmms", "warzone2100")
    for path, _, _ in TRAIN_SOUNDFONTS.values():
        assert not any(r in path.lower() for r in reserved)
    assert not set(HELD_OUT_SOURCES) & set(TRAIN_SOUNDFONTS)


def test_processed_copies_and_mixes_are_appended(tmp_path):
    from loop_svdd.audio.corpora import load_corpus
    from loop_svdd.pretraining.distill_set import _append_rows, add_derived

    out = tmp_path / "set"
    (out / "data").mkdir(parents=True)
    rows = []
    for i in range(6):
        sf.write(out / "data" / f"{i}.flac", synth_loop(1.0 + 0.2 * i, seed=i), SR, subtype="PCM_24")
        rows.append({"file_name": f"data/{i}.flac", "source": f"s{i % 2}", "content_id": str(i)})
    (out / "metadata.csv").write_text("file_name,source,content_id\n")
    _append_rows(out, rows)
    added = add_derived(out, seed=0, processed=0.5, mixed=0.5, progress=False)
    assert added == 6
    corpus = load_corpus(str(out))
    assert len(corpus) == 12 and len(set(corpus["content_id"])) == 12
    styles = corpus["style"][6:]
    assert sum(s.startswith("proc") for s in styles) == 3 and sum(s.startswith("mix") for s in styles) == 3
    assert all("+" in s for s, st in zip(corpus["source"][6:], styles, strict=True) if st.startswith("mix"))


def test_leave_sources_out_shows_the_teacher_as_a_reference_row(tmp_path):
    from loop_svdd.bench.encoder_transfer import held_out_lines, held_out_source

    root = tmp_path / "ev"
    (root / "data").mkdir(parents=True)
    with open(root / "metadata.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file_name", "instrument", "source_kind", "source", "program_family"])
        for i in range(16):
            inst, freq = ("bass", 55.0) if i < 8 else ("keys", 880.0)
            sf.write(root / "data" / f"{i}.wav", synth_loop(1.0, seed=i, freq=freq * (1 + i / 40)), SR)
            w.writerow([f"data/{i}.wav", inst, "soundfont", "sfx", "x"])
    report = held_out_source(root, None, ["musicnn-mtt"], detectors=("knn",), seeds=(0,))
    assert set(report["results"]) == {"musicnn-mtt"} and report["gain_over_random"] == {}
    assert report["results"]["musicnn-mtt"]["detectors"]["knn"]["mean_auroc"] > 0.9  # low vs high tones
    assert "gain of" not in "\n".join(held_out_lines(report, "knn"))


def test_embed_with_the_teacher(tmp_path, capsys):
    from loop_svdd.cli import main

    corpus = _clips(tmp_path / "corpus", n=3)
    out = tmp_path / "emb"
    assert main(["embed", str(corpus), "--output-dir", str(out), "--encoder", "musicnn-mtt", "--no-progress"]) == 0
    assert "3 embeddings of 753 dims" in capsys.readouterr().out
    embeddings = np.load(out / "nff.npy", allow_pickle=False)
    assert embeddings.shape == (3, 753) and np.isfinite(embeddings).all()
    expected, _ = MusicnnEmbedder("musicnn-mtt").embed_one(sf.read(corpus / "data" / "1.wav", dtype="float32")[0], SR)
    np.testing.assert_allclose(embeddings[1], expected, rtol=1e-4, atol=1e-4)
    assert main(["embed", str(corpus), "--output-dir", str(out), "--encoder", "both", "--streaming"]) == 2
    assert "one process, without --streaming" in capsys.readouterr().err
