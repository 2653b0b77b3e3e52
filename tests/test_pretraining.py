"""Self-supervised encoder pretraining: views, NT-Xent, resumable training, the CLI and the shipped encoder."""

from __future__ import annotations

import csv
import zipfile

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SR, synth_loop

from loop_svdd import LoopSVDDFeatureExtractor
from loop_svdd.pretraining import PretrainConfig, ViewConfig, make_pair_batch, nt_xent, pretrain_encoder
from loop_svdd.pretraining.augment import SILENCE_DB, crop_and_fill
from loop_svdd.pretraining.trainer import initial_model

TINY = {"patch_embeds_hidden_size": 8, "hidden_size": 16, "depths": [1, 1], "num_attention_heads": [1, 2]}


@pytest.fixture(scope="module")
def mels() -> list[torch.Tensor]:
    extractor = LoopSVDDFeatureExtractor()
    loops = [synth_loop(1.5 + 0.7 * i, seed=i, freq=55.0 * (1 + i % 3)) for i in range(6)]
    return [extractor.log_mel(torch.from_numpy(x)[None], "slaney")[0] for x in loops]


def _config(**kw) -> PretrainConfig:
    base = dict(audio_config=TINY, steps=4, batch_size=2, warmup_steps=1, checkpoint_every=2, lr=3e-3, seed=3)
    return PretrainConfig(**{**base, **kw})


def test_views_are_seeded_and_shaped(mels):
    a = make_pair_batch(mels, [0, 1, 2], 1001, ViewConfig(), torch.Generator().manual_seed(0))
    b = make_pair_batch(mels, [0, 1, 2], 1001, ViewConfig(), torch.Generator().manual_seed(0))
    assert a[0].shape == (3, 1, 1001, 64)
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    assert not torch.equal(a[0], a[1])  # two different views of the same loops
    assert torch.isfinite(a[0]).all() and a[0].min() >= SILENCE_DB


def test_short_crops_are_repeat_padded_with_silence():
    mel = torch.zeros(300, 64)
    out = crop_and_fill(mel, 1001, ViewConfig(min_crop=1.0, stretch=1.0), torch.Generator().manual_seed(0))
    assert (out[:900] == 0).all() and (out[900:] == SILENCE_DB).all()


def test_nt_xent_prefers_matching_views():
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    same = nt_xent(z, z + 0.01 * torch.randn_like(z))
    shuffled = nt_xent(z, z[torch.randperm(8, generator=torch.Generator().manual_seed(1))])
    assert torch.isfinite(same) and same < shuffled


def test_pretraining_runs_and_resumes_bit_exactly(mels, tmp_path):
    config = _config()
    full = pretrain_encoder(mels, tmp_path / "full", config, progress=False)
    assert all(np.isfinite(full.history["loss"])) and len(full.history["loss"]) == 4
    assert full.model.config.encoder_pretrained
    assert (tmp_path / "full" / "model.safetensors").is_file() and (tmp_path / "full" / "pretraining.json").is_file()

    class Interrupt(Exception):
        pass

    def stop(info):
        if info["step"] == 3:  # after the checkpoint of step 2: step 3 is lost and replayed
            raise Interrupt

    with pytest.raises(Interrupt):
        pretrain_encoder(mels, tmp_path / "resumed", config, progress=False, on_step_end=stop)
    resumed = pretrain_encoder(mels, tmp_path / "resumed", config, progress=False)
    assert resumed.history == full.history
    after = resumed.model.encoder.state_dict()
    for name, tensor in full.model.encoder.state_dict().items():
        torch.testing.assert_close(after[name], tensor, rtol=0, atol=0, msg=name)
    with pytest.raises(ValueError, match="another config"):
        pretrain_encoder(mels, tmp_path / "resumed", _config(seed=4), progress=False)


def _audiofolder(root, n=4):
    (root / "data").mkdir(parents=True)
    with open(root / "metadata.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file_name", "instrument", "source"])
        for i in range(n):
            sf.write(root / "data" / f"{i}.wav", synth_loop(1.0 + 0.5 * i, seed=i), SR)
            w.writerow([f"data/{i}.wav", "bass" if i % 2 else "keys", "synth"])
    return root


def test_cli(tmp_path, capsys):
    from loop_svdd.cli import main

    corpus = _audiofolder(tmp_path / "corpus")
    out = tmp_path / "enc"
    args = ["pretrain-encoder", str(corpus), "--output-dir", str(out), "--steps", "1", "--batch-size", "2"]
    assert main([*args, "--no-progress"]) == 0
    assert "encoder saved to" in capsys.readouterr().out
    assert main([*args, "--size", "huge"]) == 2
    assert main([*args, "--where", "instrument=drums"]) == 2
    assert "no loop has instrument=drums; values of 'instrument':" in capsys.readouterr().err


def test_shipped_default_encoder():
    from loop_svdd.engine.embedding import embed_waveforms
    from loop_svdd.models.encoders import DEFAULT_ENCODER, DEFAULT_ENCODER_DIR, build_model

    assert DEFAULT_ENCODER == "default" and (DEFAULT_ENCODER_DIR / "model.safetensors").is_file()
    assert (DEFAULT_ENCODER_DIR / "model.safetensors").stat().st_size < 10e6
    model, extractor = build_model(DEFAULT_ENCODER)
    assert model.config.encoder_pretrained and "pretrain-encoder" in model.config.encoder_name_or_path
    random = initial_model(PretrainConfig(size="small"))
    loops = [synth_loop(2.0, seed=0), synth_loop(3.0, seed=1, freq=220.0)]
    trained, _ = embed_waveforms(model, extractor, loops, SR)
    untrained, _ = embed_waveforms(random.eval(), extractor, loops, SR)
    assert trained.shape == untrained.shape and torch.isfinite(trained).all()
    assert not torch.allclose(trained, untrained, atol=1e-3)


# -- which encoder a new detector gets by default ---------------------------------------------------------------
def _fake_hub_cache(root, with_weights: bool = True):
    """A Hugging Face cache holding a tiny random CLAP under the paper encoder's repo id (no network involved)."""
    from conftest import SMALL_AUDIO
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    from loop_svdd.models.encoders import PAPER_ENCODER

    repo = root / f"models--{PAPER_ENCODER.replace('/', '--')}"
    commit = "0" * 40
    snapshot = repo / "snapshots" / commit
    torch.manual_seed(0)
    text = {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    clap = ClapModel(ClapConfig(audio_config=SMALL_AUDIO, text_config={**text, "intermediate_size": 37}))
    clap.save_pretrained(snapshot)
    ClapFeatureExtractor(frequency_min=50).save_pretrained(snapshot)
    if not with_weights:
        (snapshot / "model.safetensors").unlink()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return root


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    def use(root):
        monkeypatch.setenv("HF_HUB_CACHE", str(root))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
        return root

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return use


def test_default_encoder_falls_back_offline_with_one_line(hub_cache, tmp_path, monkeypatch):
    from loop_svdd.models import encoders

    def no_network(*args, **kwargs):
        raise AssertionError("the Hub was called in offline mode")

    monkeypatch.setattr("huggingface_hub.HfApi.model_info", no_network)
    hub_cache(tmp_path / "empty")
    lines: list[str] = []
    assert encoders.resolve_default_encoder(log=lines.append) == encoders.DEFAULT_ENCODER
    assert len(lines) == 1 and encoders.PAPER_ENCODER in lines[0] and "embedded default encoder" in lines[0]
    hub_cache(_fake_hub_cache(tmp_path / "partial", with_weights=False))  # config cached, weights not
    assert encoders.resolve_default_encoder(log=lines.append) == encoders.DEFAULT_ENCODER
    assert not encoders.paper_encoder_cached()


def test_default_encoder_asks_the_hub_only_when_online(hub_cache, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from huggingface_hub import constants

    from loop_svdd.models import encoders

    hub_cache(tmp_path / "empty")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    calls = []

    def model_info(self, repo_id, timeout=None):
        calls.append((repo_id, timeout))
        return SimpleNamespace(siblings=[SimpleNamespace(rfilename=name) for name in files])

    monkeypatch.setattr("huggingface_hub.HfApi.model_info", model_info)
    files = ["config.json", "model.safetensors"]
    assert encoders.resolve_default_encoder(log=None) == encoders.DEFAULT_ENCODER  # online, but not asked
    assert calls == []
    lines: list[str] = []
    assert encoders.resolve_default_encoder(log=lines.append, ask_hub=True) == encoders.PAPER_ENCODER
    assert calls == [(encoders.PAPER_ENCODER, encoders.HUB_CHECK_TIMEOUT_S)]
    assert lines == [f"note: encoder: {encoders.PAPER_ENCODER}, from the Hugging Face Hub (pass --encoder to choose)"]
    monkeypatch.setenv(encoders.ASK_HUB_ENV, "1")
    files = ["config.json", "pytorch_model.bin"]  # pickles only: refused, so not usable
    assert encoders.resolve_default_encoder(log=None) == encoders.DEFAULT_ENCODER
    assert len(calls) == 2

    def unreachable(self, repo_id, timeout=None):
        raise OSError("Name or service not known")

    monkeypatch.setattr("huggingface_hub.HfApi.model_info", unreachable)
    assert encoders.resolve_default_encoder(log=None) == encoders.DEFAULT_ENCODER


def test_train_uses_the_cached_paper_encoder(hub_cache, corpus, tmp_path, capsys):
    from loop_svdd.cli import main
    from loop_svdd.models.encoders import PAPER_ENCODER, paper_encoder_cached, resolve_default_encoder
    from loop_svdd.models.model_io import load_detector

    hub_cache(_fake_hub_cache(tmp_path / "hub"))
    assert paper_encoder_cached() and resolve_default_encoder(log=None) == PAPER_ENCODER
    fast = ["--hidden-dims", "32", "8", "--epochs", "2", "--pretrain-epochs", "1", "--ensemble", "1", "--no-progress"]
    args = ["train", str(corpus), "--normal", "instrument=bass", *fast]
    assert main([*args, "--output-dir", str(tmp_path / "clap")]) == 0
    err = capsys.readouterr().err
    assert "embedded" not in err and f"encoder: {PAPER_ENCODER}, from the local Hugging Face cache" in err
    model, _ = load_detector(tmp_path / "clap")
    assert model.config.encoder_name_or_path == PAPER_ENCODER and model.config.embedding_dim == 128
    # --encoder still overrides the default.
    assert main([*args, "--output-dir", str(tmp_path / "own"), "--encoder", "default"]) == 0
    assert "pretrain-encoder" in load_detector(tmp_path / "own")[0].config.encoder_name_or_path


# -- leave-sources-out: pretraining without a source, evaluating on it ------------------------------------------
def _two_source_corpus(root, per_cell: int = 8):
    """Loops of two sources ('fa', 'fb') x two instruments, like a corpus of two soundfonts."""
    (root / "data").mkdir(parents=True)
    with open(root / "metadata.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file_name", "instrument", "source_kind", "source", "program_family"])
        i = 0
        for source in ("fa", "fb"):
            for inst, freq in (("bass", 55.0), ("keys", 660.0)):
                for k in range(per_cell):
                    sf.write(
                        root / "data" / f"{i}.wav", synth_loop(1.0 + 0.1 * k, seed=i, freq=freq * (1 + k / 20)), SR
                    )
                    w.writerow([f"data/{i}.wav", inst, "soundfont", source, "x"])
                    i += 1
    return root


@pytest.mark.slow
def test_pretrain_encoder_holds_out_a_source(tmp_path, capsys):
    import json

    from loop_svdd.bench.encoder_transfer import heard_sources
    from loop_svdd.cli import main

    corpus = _two_source_corpus(tmp_path / "corpus", per_cell=2)
    out = tmp_path / "enc"
    args = ["pretrain-encoder", str(corpus), "--steps", "1", "--batch-size", "2", "--no-progress"]
    assert main([*args, "--output-dir", str(out), "--hold-out-source", "fb"]) == 0
    info = json.loads((out / "pretraining.json").read_text())
    assert info["n_loops"] == 4 and info["sources"] == ["fa"] and info["held_out_sources"] == ["fb"]
    assert "without fb" in info["data"] and heard_sources(str(out)) == {"fa"}
    assert main([*args, "--output-dir", str(tmp_path / "x"), "--hold-out-source", "nope"]) == 2
    assert "nothing to hold out" in capsys.readouterr().err
    held_all = ["--hold-out-source", "soundfont"]
    assert main([*args, "--output-dir", str(tmp_path / "y"), *held_all]) == 2
    assert "need at least 2" in capsys.readouterr().err


@pytest.mark.slow
def test_held_out_source_measures_gain_over_random_twin(tmp_path, capsys):
    from conftest import small_model

    from loop_svdd.audio.corpora import load_corpus
    from loop_svdd.bench.encoder_transfer import RANDOM_LIKE, embed_corpus, held_out_source, random_twin, source_classes
    from loop_svdd.cli import main
    from loop_svdd.models.model_io import save_detector

    model = small_model(seed=5)  # other weights than the seeded random twin
    encoder = str(tmp_path / "enc")
    save_detector(model, LoopSVDDFeatureExtractor.from_model_config(model.config), encoder)
    corpus = _two_source_corpus(tmp_path / "corpus")
    assert random_twin(encoder) == RANDOM_LIKE + encoder and random_twin("default") == "random-small"
    assert sorted(set(source_classes(load_corpus(corpus)))) == ["bass", "keys"]
    assert not np.allclose(embed_corpus(encoder, corpus), embed_corpus(RANDOM_LIKE + encoder, corpus))
    report = held_out_source(corpus, "fb", [encoder], detectors=["knn"], seeds=[0])
    assert report["n_loops"] == 16 and report["heard_source"] == {encoder: None}
    (tmp_path / "enc" / "pretraining.json").write_text('{"sources": ["fa"], "source_kinds": ["soundfont"]}')
    assert held_out_source(corpus, "fb", [encoder], ["knn"], [0])["heard_source"] == {encoder: False}
    assert held_out_source(corpus, None, [encoder], ["knn"], [0])["heard_source"] == {encoder: True}
    twin = report["results"][RANDOM_LIKE + encoder]["detectors"]["knn"]
    ours = report["results"][encoder]["detectors"]["knn"]
    assert sorted(ours["per_class"]) == ["bass", "keys"]
    gain = report["gain_over_random"][encoder]["knn"]
    assert gain == pytest.approx(ours["mean_auroc"] - twin["mean_auroc"])
    argv = ["benchmark", "encoder-transfer", str(corpus), "--source", "fb", "--encoder", encoder]
    assert main([*argv, "--detectors", "knn", "--seeds", "0"]) == 0
    assert "gain of" in capsys.readouterr().out
    assert main(["benchmark", "encoder-transfer", str(corpus), "--source", "nope", "--encoder", encoder]) == 2
    assert "only 0 loops" in capsys.readouterr().err
    assert main(["benchmark", "encoder-transfer", str(_audiofolder(tmp_path / "plain")), "--encoder", encoder]) == 2
    assert "no column(s) program_family, source_kind" in capsys.readouterr().err


def test_distillation_set_refuses_a_held_out_soundtrack(tmp_path):
    from loop_svdd.corpus.sources import CorpusError
    from loop_svdd.pretraining.distill_set import TRAIN_GAMES, build_distillation_corpus

    assert "hyperrogue" not in TRAIN_GAMES and len(TRAIN_GAMES) == 6
    with pytest.raises(CorpusError, match="hyperrogue: kept out of distillation"):
        build_distillation_corpus(tmp_path / "d", games=("wesnoth", "hyperrogue"))
    assert not (tmp_path / "d").exists()  # refused before anything was written


def test_game_music_excerpts(tmp_path, monkeypatch):
    from loop_svdd.audio.corpora import load_corpus
    from loop_svdd.bench.encoder_transfer import source_classes
    from loop_svdd.corpus import sources
    from loop_svdd.corpus.excerpts import build_excerpt_corpus

    music = tmp_path / "music"
    music.mkdir()
    for i in range(2):
        sf.write(music / f"track{i}.ogg", synth_loop(12.0, seed=i, freq=110.0 * (i + 1)), SR, format="OGG")
    monkeypatch.setitem(sources.GAME_MUSIC, "fakegame", (str(music), "*.ogg", "fake-music", "CC0-1.0"))
    first = build_excerpt_corpus(tmp_path / "a", games=["fakegame"], per_track=2, seconds=(3.0, 4.0), seed=1)
    again = build_excerpt_corpus(tmp_path / "b", games=["fakegame"], per_track=2, seconds=(3.0, 4.0), seed=1)
    assert (first / "metadata.csv").read_text() == (again / "metadata.csv").read_text()
    ds = load_corpus(first)
    assert len(ds) == 4 and set(ds["source_kind"]) == {"game-music"} and set(source_classes(ds)) == {"fakegame"}
    assert all(3.0 <= d <= 4.01 for d in ds["duration_s"])
    build_excerpt_corpus(tmp_path / "b", games=["fakegame"], per_track=1, seconds=(2.0, 2.0), seed=2, append=True)
    assert len(load_corpus(tmp_path / "b")) == 6
    with zipfile.ZipFile(tmp_path / "music.pk3", "w") as z:  # a game that keeps its tracks in an archive
        z.write(music / "track0.ogg", "sound/cdtracks/track0.ogg")
        z.writestr("maps/readme.txt", "not a track")
    monkeypatch.setitem(sources.GAME_MUSIC, "zipgame", (str(tmp_path / "music.pk3"), "sound/*/*.ogg", "z", "CC0-1.0"))
    zipped = load_corpus(build_excerpt_corpus(tmp_path / "z", games=["zipgame"], per_track=2, seconds=(3.0, 4.0)))
    assert len(zipped) == 2 and set(zipped["program_family"]) == {"track0"}
    with pytest.raises(sources.CorpusError, match="unknown game"):
        build_excerpt_corpus(tmp_path / "c", games=["nogame"])
    with pytest.raises(sources.CorpusError, match="kept out"):
        sources.find_soundfont("/usr/share/sounds/sf2/freepats/x.sf2")
