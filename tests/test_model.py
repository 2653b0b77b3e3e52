"""The model package: config validation, FFM features (parity with transformers), determinism, save/load,
Auto* resolution, remote code, and weight loading from transformers CLAP and original LAION checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from unittest import mock

import numpy as np
import pytest
import torch
from conftest import SMALL_AUDIO, SR, small_model, synth_loop
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    ClapConfig,
    ClapFeatureExtractor,
    ClapModel,
)

from loop_svdd import LoopSVDDConfig, LoopSVDDFeatureExtractor, LoopSVDDModel, from_clap
from loop_svdd.models.conversion import CheckpointError, convert_laion_state_dict

# Features are dB log-mels; ours (torch, float64 STFT) vs transformers (numpy): measured max |diff| ~4e-6 dB.
FEATURE_ATOL_DB = 1e-4
FLOAT32_MAX_DB = 0.2  # measured max 0.07 dB on corpus loops, 99.9% of bins within 0.007 dB
LENGTHS_S = (0.7, 3.0, 10.0, 14.3, 25.0)


def clips(lengths=LENGTHS_S):
    return [synth_loop(s, seed=i, freq=55.0 * (i + 1)) for i, s in enumerate(lengths)]


# -- configuration --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"head_type": "vae"}, "head_type"),
        ({"objective": "two-class"}, "objective"),
        ({"nu": 0.0}, "nu"),
        ({"hidden_dims": []}, "hidden_dims"),
        ({"dropout": 1.5}, "dropout"),
        ({"threshold": float("inf")}, "threshold"),
        ({"audio_config": {**SMALL_AUDIO, "hidden_size": 100}}, "hidden_size"),
        ({"activation": "swish"}, "activation"),
        ({"ensemble_size": 0}, "ensemble_size"),
    ],
)
def test_config_rejects_bad_fields(kwargs, message):
    kwargs = {"audio_config": {**SMALL_AUDIO}, "hidden_dims": [32, 8], **kwargs}
    with pytest.raises(ValueError, match=message):
        LoopSVDDConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"center": [0.0, 1.0]}, "latent size"),
        ({"center": [float("nan")] * 8}, "NaN"),
        ({"radius": -1.0}, "radius"),
        ({"center": [0.5] * 8, "ensemble": 2}, "ensemble_size is 2"),
        ({"score_scales": [1.0], "ensemble": 2}, "score_scales"),
        ({"score_scales": [0.0]}, "score_scale"),
    ],
)
def test_svdd_state_rejects_bad_values(kwargs, message):
    model = small_model(False, ensemble_size=kwargs.pop("ensemble", 1))
    with pytest.raises(ValueError, match=message):
        model.set_svdd_state(**kwargs)


def test_config_defaults_come_from_one_place():
    from loop_svdd.detectors.deep_svdd import SVDDTrainingConfig
    from loop_svdd.models.loop_svdd.svdd_head import HeadConfig

    config = LoopSVDDConfig()
    assert config.embedding_dim == 1024 and not config.is_fused  # HTSAT-base, music checkpoints
    head, training = HeadConfig(), SVDDTrainingConfig()
    for name in HeadConfig.field_names():  # the model ships what training fits by default (the tuned preset)
        assert getattr(config, name) == getattr(head, name) == getattr(training, name), name
    assert config.hidden_dims == [512, 256] and config.l2_normalize and config.activation == "elu"
    assert LoopSVDDConfig.from_htsat_size("tiny", enable_fusion=True).embedding_dim == 768


# -- feature extraction ---------------------------------------------------------------------------------------
def test_fused_features_match_transformers():
    audio = clips()
    ours = LoopSVDDFeatureExtractor(fusion=True, compute_dtype="float64")(audio, sampling_rate=SR)
    reference = ClapFeatureExtractor(frequency_min=50, truncation="fusion", padding="repeatpad")
    # transformers picks chunk starts at random: make it take the centre of each range, as we do.
    with mock.patch("numpy.random.choice", lambda a: a[len(a) // 2]):
        ref = reference(audio, sampling_rate=SR, return_tensors="pt")
    assert ours["input_features"].shape == (len(audio), 4, 1001, 64)
    diff = (ours["input_features"] - ref["input_features"].float()).abs().max().item()
    assert diff < FEATURE_ATOL_DB, diff
    assert ours["is_longer"][:, 0].tolist() == [False, False, False, True, True]
    assert ours["is_longer"][:, 0].tolist() == ref["is_longer"][:, 0].tolist()


def test_unfused_window_features_match_transformers():
    audio = clips()
    ours = LoopSVDDFeatureExtractor(fusion=False, compute_dtype="float64")(audio, sampling_rate=SR)
    with mock.patch("numpy.random.randint", lambda low, high: 0):  # its random crop, pinned to the first window
        ref = ClapFeatureExtractor(frequency_min=50, truncation="rand_trunc")(
            audio, sampling_rate=SR, return_tensors="pt"
        )
    first = [int(torch.nonzero(ours["window_clip_index"] == i)[0]) for i in range(len(audio))]
    diff = (ours["input_features"][first] - ref["input_features"].float()).abs().max().item()
    assert diff < FEATURE_ATOL_DB, diff


def test_float32_front_end_does_not_move_scores(fusion):
    """The default float32 STFT differs from the float64 one only in near-silent bins; scores do not move."""
    audio = clips()
    fast = LoopSVDDFeatureExtractor(fusion=fusion)(audio, sampling_rate=SR)
    exact = LoopSVDDFeatureExtractor(fusion=fusion, compute_dtype="float64")(audio, sampling_rate=SR)
    diff = (fast["input_features"] - exact["input_features"]).abs()
    assert diff.max() < FLOAT32_MAX_DB and diff.mean() < 1e-3
    model = small_model(fusion)
    with torch.inference_mode():
        a, b = model(**fast).anomaly_score, model(**exact).anomaly_score
    assert torch.allclose(a, b, rtol=1e-3), (a, b)


def test_windows_cover_long_loops_and_short_loops_repeat():
    fe = LoopSVDDFeatureExtractor(fusion=False)
    out = fe(clips(), sampling_rate=SR)
    assert out["window_clip_index"].tolist() == [0, 1, 2, 3, 3, 4, 4, 4]
    assert out["window_start_s"].tolist() == pytest.approx([0, 0, 0, 0, 4.3, 0, 10, 15])
    fe_hop = LoopSVDDFeatureExtractor(fusion=False, window_hop_s=5)
    assert fe_hop.window_starts(25 * SR) == [0, 5 * SR, 10 * SR, 15 * SR]
    # A 3 s loop is repeated three times before the silence that completes the window (CLAP's repeatpad).
    filled = fe._fill(torch.from_numpy(synth_loop(3.0)))
    assert torch.equal(filled[3 * SR : 6 * SR], filled[: 3 * SR]) and filled[9 * SR :].abs().max() == 0
    full = LoopSVDDFeatureExtractor(padding="repeat")._fill(torch.from_numpy(synth_loop(3.0)))
    assert torch.equal(full[9 * SR :], full[:SR])


def test_is_longer_is_never_random():
    """transformers marks one random clip as longer when none is; we never do."""
    fe = LoopSVDDFeatureExtractor(fusion=True)
    for _ in range(3):
        assert not fe(clips((2.0, 3.0, 5.0)), sampling_rate=SR)["is_longer"].any()


def test_features_resample_and_reject_bad_input():
    fe = LoopSVDDFeatureExtractor()
    out = fe(synth_loop(2.0, sr=44_100), sampling_rate=44_100)
    assert out["input_features"].shape == (1, 1, 1001, 64)
    int16 = (synth_loop(2.0) * 32767).astype(np.int16)
    assert torch.allclose(
        fe(int16, sampling_rate=SR)["input_features"],
        fe(int16 / 32768.0, sampling_rate=SR)["input_features"],
        atol=1e-3,
    )
    with pytest.raises(ValueError, match="empty"):
        fe(np.zeros(0, np.float32), sampling_rate=SR)
    with pytest.raises(ValueError, match="NaN"):
        fe(np.array([0.1, np.nan] * 100, np.float32), sampling_rate=SR)
    with pytest.raises(ValueError, match="mono"):
        fe([np.zeros((2, 100), np.float32)], sampling_rate=SR)
    with pytest.raises(ValueError, match="sampling_rate"):
        fe(synth_loop(1.0), sampling_rate=0)


# -- the model ------------------------------------------------------------------------------------------------
def test_untrained_model_scores_every_length(fusion):
    model = small_model(fusion)
    fe = LoopSVDDFeatureExtractor.from_model_config(model.config)
    with torch.inference_mode():
        out = model(**fe(clips(), sampling_rate=SR), return_loss=True)
    assert out.anomaly_score.shape == (5,) and out.embedding.shape == (5, 128) and out.latent.shape == (5, 8)
    assert torch.isfinite(out.anomaly_score).all() and out.anomaly_score.std() > 0
    assert out.loss is not None and torch.isfinite(out.loss)
    n_windows = 5 if fusion else 8
    assert out.window_scores.shape == (n_windows,) and out.window_clip_index.shape == (n_windows,)
    # The clip score is the score of the mean window embedding.
    assert torch.allclose(model.score_embeddings(out.embedding)[0], out.anomaly_score)


def test_window_scores_locate_the_anomalous_part():
    """A 20 s loop made of clip A then clip B has exactly the window scores of A and B scored alone."""
    model = small_model(False)
    fe = LoopSVDDFeatureExtractor.from_model_config(model.config)
    a, b = synth_loop(10.0, seed=1, freq=55.0), synth_loop(10.0, seed=2, freq=880.0)
    with torch.inference_mode():
        joined = model(**fe(np.concatenate([a, b]), sampling_rate=SR))
        alone = model(**fe([a, b], sampling_rate=SR))
    assert torch.allclose(joined.window_scores, alone.anomaly_score, rtol=1e-4, atol=1e-6)
    assert torch.allclose(joined.anomaly_score, model.score_embeddings(alone.embedding.mean(0, keepdim=True))[0])


def test_same_clip_same_score_alone_or_in_any_batch(fusion):
    model = small_model(fusion)
    fe = LoopSVDDFeatureExtractor.from_model_config(model.config)
    audio = clips()
    with torch.inference_mode():
        batch = model(**fe(audio, sampling_rate=SR)).anomaly_score
        reordered = model(**fe(audio[::-1], sampling_rate=SR)).anomaly_score.flip(0)
        alone = torch.cat([model(**fe(c, sampling_rate=SR)).anomaly_score for c in audio])
    assert torch.equal(
        fe(audio[3], sampling_rate=SR)["input_features"],
        fe(audio, sampling_rate=SR)["input_features"][3:4]
        if fusion
        else fe(audio, sampling_rate=SR)["input_features"][3:5],
    )
    assert torch.allclose(batch, alone, rtol=1e-5, atol=1e-6)
    assert torch.allclose(batch, reordered, rtol=1e-5, atol=1e-6)


def test_model_rejects_features_of_the_other_encoder_kind():
    model = small_model(True)
    feats = LoopSVDDFeatureExtractor(fusion=False)(synth_loop(2.0), sampling_rate=SR)
    with pytest.raises(ValueError, match="fused"):
        model(**feats)


def test_head_follows_ruff_guards():
    model = small_model(False)
    assert not [n for n, _ in model.head.named_parameters() if n.endswith("bias")]
    bns = [m for m in model.head.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert bns and all(not bn.affine for bn in bns)


def test_svdd_state_round_trip_and_auto_classes(tmp_path, fusion):
    model = small_model(fusion, head_type="residual_ae", objective="soft-boundary")
    model.set_svdd_state(center=torch.linspace(-1, 1, 8), radius=0.5, threshold=1.25, calibration_scores=[3.0, 1.0])
    fe = LoopSVDDFeatureExtractor.from_model_config(model.config)
    model.save_pretrained(tmp_path)
    fe.save_pretrained(tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "model.safetensors" in files and not [f for f in files if f.endswith((".bin", ".pt", ".pkl"))]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_loop_svdd.LoopSVDDModel"
    assert config["threshold"] == 1.25 and config["calibration_scores"] == [1.0, 3.0]

    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, LoopSVDDModel) and isinstance(AutoConfig.from_pretrained(tmp_path), LoopSVDDConfig)
    fe2 = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert isinstance(fe2, LoopSVDDFeatureExtractor) and fe2.fusion == fusion
    inputs = fe(clips(), sampling_rate=SR)
    with torch.inference_mode():
        a, b = model(**inputs).anomaly_score, loaded(**fe2(clips(), sampling_rate=SR)).anomaly_score
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), (a, b)


def test_ensemble_state_round_trip(tmp_path):
    model = small_model(False, ensemble_size=2)
    assert len(model.heads) == 2 and not torch.equal(
        model.heads[0].encoder_out.weight, model.heads[1].encoder_out.weight
    )
    model.set_svdd_state(
        center=[torch.full((8,), 0.3), torch.full((8,), -0.3)],
        radius=[0.0, 0.0],
        score_scales=[2.0, 4.0],
        threshold=1.0,
    )
    emb = torch.randn(4, 128)
    with torch.inference_mode():
        each = [
            (
                (
                    h.encode(torch.nn.functional.normalize(emb, dim=-1) if model.config.l2_normalize else emb)
                    - torch.tensor(c)
                )
                ** 2
            ).sum(-1)
            for h, c in zip(model.heads, ([0.3] * 8, [-0.3] * 8), strict=True)
        ]
        expected = (each[0] / 2.0 + each[1] / 4.0) / 2
        assert torch.allclose(model.score_embeddings(emb)[0], expected, rtol=1e-5)
    model.save_pretrained(tmp_path)
    loaded = LoopSVDDModel.from_pretrained(tmp_path).eval()
    with torch.inference_mode():
        assert torch.allclose(loaded.score_embeddings(emb)[0], expected, rtol=1e-5)


def test_remote_code_loads_in_a_fresh_process_without_the_package(tmp_path):
    model = small_model(False)
    model.set_svdd_state(center=torch.full((8,), 0.3), threshold=2.0)
    fe = LoopSVDDFeatureExtractor.from_model_config(model.config)
    model.save_pretrained(tmp_path / "m")
    fe.save_pretrained(tmp_path / "m")
    audio = synth_loop(12.0)
    np.save(tmp_path / "audio.npy", audio)
    with torch.inference_mode():
        expected = model(**fe(audio, sampling_rate=SR)).anomaly_score.item()
    script = textwrap.dedent(
        f"""
        import sys, json, numpy as np, torch
        sys.modules["loop_svdd"] = None  # the package must not be needed
        from transformers import AutoModel, AutoFeatureExtractor
        m = AutoModel.from_pretrained({str(tmp_path / "m")!r}, trust_remote_code=True).eval()
        fe = AutoFeatureExtractor.from_pretrained({str(tmp_path / "m")!r}, trust_remote_code=True)
        with torch.inference_mode():
            s = m(**fe(np.load({str(tmp_path / "audio.npy")!r}), sampling_rate=48000)).anomaly_score.item()
        print(json.dumps({{"score": s, "module": type(m).__module__}}))
        """
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["module"].startswith("transformers_modules")
    assert result["score"] == pytest.approx(expected, rel=1e-6)


# -- real encoder weights -------------------------------------------------------------------------------------
def test_from_transformers_clap_checkpoint(tmp_path, fusion):
    torch.manual_seed(0)
    clap = ClapModel(
        ClapConfig(
            audio_config={**SMALL_AUDIO, "enable_fusion": fusion},
            text_config={
                "vocab_size": 99,
                "hidden_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 37,
            },
            projection_dim=16,
        )
    ).eval()
    clap.save_pretrained(tmp_path)
    ClapFeatureExtractor(frequency_min=50).save_pretrained(tmp_path)
    model, fe = from_clap(str(tmp_path), hidden_dims=[32, 8])
    assert model.config.is_fused == fusion and model.config.encoder_pretrained
    inputs = fe(clips((3.0, 14.0)), sampling_rate=SR)
    with torch.inference_mode():
        ours = model.get_window_embeddings(inputs["input_features"], inputs["is_longer"])
        theirs = clap.audio_model(input_features=inputs["input_features"], is_longer=inputs["is_longer"]).pooler_output
    assert torch.equal(ours, theirs)
    with pytest.raises(CheckpointError, match="fused"):
        from_clap(str(tmp_path), enable_fusion=not fusion)


def test_refuses_pickle_only_checkpoints(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clap_audio_model", **SMALL_AUDIO}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(CheckpointError, match="pickle"):
        from_clap(str(tmp_path))
    (tmp_path / "evil.pt").write_bytes(b"\x80\x04\x95garbage")
    with pytest.raises(CheckpointError, match="weights-only"):
        from_clap(str(tmp_path / "evil.pt"))


laion_reference = pytest.importorskip("laion_reference")


@pytest.fixture(scope="module")
def htsat():
    module = laion_reference.import_laion_htsat()
    if module is None:
        pytest.skip("laion-clap reference code not installed (pip install --no-deps laion-clap==1.1.7 torchlibrosa)")
    return module


def test_laion_checkpoint_parity(tmp_path, htsat, fusion):
    """Convert a LAION HTS-AT (random weights, LAION's own code) from a .pt file and compare embeddings."""
    torch.manual_seed(0)
    reference = laion_reference.build_laion_htsat(htsat, 32, [1, 1, 2, 1], [1, 2, 4, 8], fusion).eval()
    state = {f"module.audio_branch.{k}": v for k, v in reference.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 15}, tmp_path / "music_audioset_epoch_15_esc_90.14.pt")
    model, fe = from_clap(tmp_path / "music_audioset_epoch_15_esc_90.14.pt", hidden_dims=[32, 8])
    assert model.config.audio_config.depths == [1, 1, 2, 1] and model.config.is_fused == fusion
    audio = clips((10.0, 4.0, 17.0))
    inputs = fe(audio, sampling_rate=SR)
    with torch.no_grad():
        ours = model.get_window_embeddings(inputs["input_features"], inputs["is_longer"])
        if fusion:  # LAION computes fused mels in its data pipeline: same 4-view input
            theirs = reference(
                {"mel_fusion": inputs["input_features"], "longer": inputs["is_longer"][:, 0]}, None, device="cpu"
            )
            ours_rows = ours
        else:  # unfused: LAION computes the log-mel inside the model, so this also checks our front end
            waves = torch.stack([torch.from_numpy(audio[0]), fe._fill(torch.from_numpy(audio[1]))])
            theirs = reference({"waveform": waves}, None, device="cpu")
            ours_rows = ours[:2]
    max_diff = (ours_rows - theirs["embedding"]).abs().max().item()
    print(f"LAION parity ({'fused' if fusion else 'unfused'}): max |diff| = {max_diff:.2e}")
    assert max_diff < 1e-4


def test_convert_rejects_non_htsat_state_dict():
    with pytest.raises(CheckpointError, match="HTS-AT"):
        convert_laion_state_dict({"text_branch.embeddings.weight": torch.zeros(2, 2)})


def test_svdd_state_lives_in_head_buffers(tmp_path):
    model = small_model(False, ensemble_size=2, objective="soft-boundary")
    model.set_svdd_state(
        center=[torch.full((8,), 0.3), torch.full((8,), -0.2)], radius=[0.5, 0.25], score_scales=[2.0, 4.0]
    )
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert not {"center", "radius", "score_scales", "legacy_svdd_state"} & set(config)
    from safetensors.torch import load_file

    tensors = load_file(tmp_path / "model.safetensors")
    assert torch.equal(tensors["extra_heads.0.center"], torch.full((8,), -0.2))
    assert float(tensors["head.radius"]) == 0.5 and float(tensors["extra_heads.0.score_scale"]) == 4.0


def _write_old_format(model, folder, state):
    """A folder as versions before the buffers wrote it: no centre/radius/scale tensors, the state in config.json."""
    from safetensors.torch import load_file, save_file

    model.save_pretrained(folder)
    tensors = load_file(folder / "model.safetensors")
    buffers = ("center", "radius", "score_scale")
    save_file(
        {k: v for k, v in tensors.items() if k.rsplit(".", 1)[-1] not in buffers},
        folder / "model.safetensors",
        metadata={"format": "pt"},
    )
    config = json.loads((folder / "config.json").read_text())
    config.update(state)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("ensemble_size", [1, 2])
def test_folders_written_before_the_buffers_still_load(tmp_path, ensemble_size):
    from loop_svdd.models.model_io import load_detector

    model = small_model(False, ensemble_size=ensemble_size, objective="soft-boundary")
    old_state = (
        {"center": [0.25] * 8, "radius": 0.5}
        if ensemble_size == 1
        else {"center": [[0.25] * 8, [-0.5] * 8], "radius": [0.5, 0.1], "score_scales": [2.0, 3.0]}
    )
    model.set_svdd_state(**old_state)
    fe = LoopSVDDFeatureExtractor.from_model_config(model.config)
    emb = torch.randn(6, 128)
    with torch.inference_mode():
        expected = model.score_embeddings(emb)[0]
    _write_old_format(model, tmp_path, old_state)
    fe.save_pretrained(tmp_path)
    for loaded in (LoopSVDDModel.from_pretrained(tmp_path).eval(), load_detector(tmp_path)[0]):
        assert torch.equal(loaded.head.center, torch.full((8,), 0.25)) and float(loaded.head.radius) == 0.5
        assert torch.equal(loaded.head.input_std, model.head.input_std)  # loaded weights survive the migration
        with torch.inference_mode():
            torch.testing.assert_close(loaded.score_embeddings(emb)[0], expected)
    # saved again, the state moves to the buffers for good
    loaded.save_pretrained(tmp_path / "again")
    assert "center" not in json.loads((tmp_path / "again" / "config.json").read_text())


def test_forward_loss_is_the_trainers_loss():
    from loop_svdd.models.loop_svdd.svdd_head import ensemble_loss

    for objective in ("one-class", "soft-boundary"):
        model = small_model(False, ensemble_size=2, objective=objective)
        model.set_svdd_state(center=torch.randn(2, 8), radius=[0.3, 0.6], score_scales=[2.0, 0.5])
        inputs = LoopSVDDFeatureExtractor.from_model_config(model.config)(clips((1.0, 3.0, 12.0)), sampling_rate=SR)
        with torch.inference_mode():
            out = model(**inputs, return_loss=True)
            per_head = [h.svdd_loss(h.distance(out.embedding)) / h.score_scale for h in model.heads]
        assert out.loss.item() == pytest.approx(float(sum(per_head) / 2), rel=1e-6)
        with torch.no_grad():
            assert out.loss.item() == pytest.approx(float(ensemble_loss(model.heads, out.embedding)), rel=1e-6)
        # one head with scale 1 (as while it trains): the plain Deep SVDD objective
        single = small_model(False, objective=objective)
        single.set_svdd_state(center=torch.randn(8), radius=0.4)
        with torch.inference_mode():
            out = single(**inputs, return_loss=True)
            dist = ((single.head.encode(out.embedding) - single.head.center) ** 2).sum(-1)
        r2 = 0.4**2
        plain = dist.mean() if objective == "one-class" else r2 + torch.clamp(dist - r2, min=0).mean() / 0.1
        assert out.loss.item() == pytest.approx(plain.item(), rel=1e-5)


def test_forward_chunks_windows_without_changing_results():
    model = small_model(False)
    model.set_svdd_state(center=torch.full((8,), 0.3))
    inputs = LoopSVDDFeatureExtractor.from_model_config(model.config)(clips((3.0, 25.0, 14.3)), sampling_rate=SR)
    with torch.inference_mode():
        whole = model(**inputs, max_windows=64)
        chunked = model(**inputs, max_windows=1)
    assert len(inputs["input_features"]) > 3
    torch.testing.assert_close(chunked.anomaly_score, whole.anomaly_score, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(chunked.window_scores, whole.window_scores, rtol=1e-5, atol=1e-6)
