"""Publishing to the Hub: the model card, the prepared repo (dry run), refusals, the Space, and the download
path for real - a generated repo served by a local Hub mirror (olah) and loaded with `trust_remote_code=True`
in a fresh process with an empty cache."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import synth_loop
from model_folders import EVALUATION, build_model_folder, write_wav

REPO_ID = "acme/loop-svdd-small"
EXPECTED_FILES = {
    "README.md",
    "config.json",
    "configuration_loop_svdd.py",
    "evaluation.json",
    "feature_extraction_loop_svdd.py",
    "time_scoring.py",
    "model.safetensors",
    "modeling_loop_svdd.py",
    "preprocessor_config.json",
    "score_distribution.png",
    "svdd_head.py",
    "training_summary.json",
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = build_model_folder(tmp_path_factory.mktemp("model") / "detector")
    (folder / "checkpoints").mkdir(exist_ok=True)
    (folder / "checkpoints" / "last.pt").write_bytes(b"not really a pickle")
    (folder / "optimizer.pkl").write_bytes(b"\x80\x04N.")
    return folder


@pytest.fixture(scope="module")
def repo_dir(model_dir, tmp_path_factory) -> Path:
    from loop_svdd.cli import main

    out = tmp_path_factory.mktemp("repo") / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["push", str(model_dir), "--repo-id", REPO_ID, "--dry-run", str(out)]) == 0
    (out.parent / "push-output.txt").write_text(printed.getvalue())
    return out


def _front_matter(card: str) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", card, flags=re.S)
    assert match, "the card must start with YAML front matter"
    return yaml.safe_load(match.group(1))


def _python_blocks(card: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", card, flags=re.S)


# -- the prepared repo ---------------------------------------------------------------------------------------
def test_dry_run_writes_exactly_the_repo(repo_dir):
    files = {str(p.relative_to(repo_dir)) for p in repo_dir.rglob("*") if p.is_file()}
    assert files == EXPECTED_FILES
    printed = (repo_dir.parent / "push-output.txt").read_text()
    assert "dry run: 12 files" in printed and "nothing uploaded" in printed
    assert not any(Path(f).suffix in (".pt", ".pkl", ".bin", ".pth") for f in files)
    assert not (repo_dir / "checkpoints").exists()
    config = json.loads((repo_dir / "config.json").read_text())
    assert config["auto_map"]["AutoModel"].endswith("modeling_loop_svdd.LoopSVDDModel")
    from PIL import Image

    with Image.open(repo_dir / "score_distribution.png") as img:
        assert img.format == "PNG" and img.width > 300


def test_card_metadata_and_model_index(repo_dir):
    card = (repo_dir / "README.md").read_text()
    meta = _front_matter(card)
    assert meta["library_name"] == "transformers"
    assert meta["pipeline_tag"] == "audio-classification"
    assert meta["license"] == "mit"
    assert {"anomaly-detection", "deep-svdd", "random-encoder"} <= set(meta["tags"])
    results = meta["model-index"][0]["results"]
    values = {m["name"]: m["value"] for r in results for m in r["metrics"]}
    assert values["AUROC"] == EVALUATION["detectors"]["loop_svdd"]["auroc"]
    assert values["AUPRC"] == EVALUATION["detectors"]["loop_svdd"]["auprc"]
    from huggingface_hub import ModelCard

    parsed = ModelCard(card)  # the Hub's own parser accepts it
    assert parsed.data.eval_results[0].metric_value == EVALUATION["detectors"]["loop_svdd"]["auroc"]


def test_card_sections(repo_dir, model_dir):
    card = (repo_dir / "README.md").read_text()
    assert "**Warning: this model's audio encoder has RANDOM weights.**" in card
    for needle in ("trust_remote_code=True", "AutoFeatureExtractor", "from loop_svdd", "## Intended use"):
        assert needle in card
    for citation in ("2505.23784", "Deep One-Class Classification", "HTS-AT", "Contrastive Language-Audio"):
        assert citation in card
    assert "| isolation_forest | 0.740 |" in card  # the baselines table
    config = json.loads((model_dir / "config.json").read_text())
    assert f"{config['threshold']:.6g}" in card
    assert "![Scores of the normal loops that calibrate the threshold](score_distribution.png)" in card
    assert "clap" not in _front_matter(card)["tags"]  # a random encoder is not CLAP


def test_pauc_is_its_own_metric_type(repo_dir):
    results = _front_matter((repo_dir / "README.md").read_text())["model-index"][0]["results"]
    metrics = [m for r in results for m in r["metrics"]]
    types = [m["type"] for m in metrics]
    assert len(types) == len(set(types)) == 4  # no metric type used twice
    pauc = next(m for m in metrics if m["name"].startswith("pAUC"))
    assert pauc["type"] == "pauc" and pauc["value"] == EVALUATION["detectors"]["loop_svdd"]["pauc"]
    assert all(r["dataset"]["type"] == "corpora/bass-loops" for r in results)


def _edited_folder(model_dir: Path, tmp_path: Path, config: dict, summary: dict | None = None) -> Path:
    import shutil

    folder = tmp_path / "edited"
    shutil.copytree(model_dir, folder)
    for name, changes in (("config.json", config), ("training_summary.json", summary or {})):
        data = json.loads((folder / name).read_text())
        (folder / name).write_text(json.dumps({**data, **changes}))
    return folder


def test_local_corpus_is_never_published_as_a_dataset(model_dir, tmp_path):
    from loop_svdd.hub import generate_model_card

    local = tmp_path / "my" / "loops"
    local.mkdir(parents=True)
    folder = _edited_folder(model_dir, tmp_path, {}, {"corpus": str(local)})
    card = generate_model_card(folder, REPO_ID)
    meta = _front_matter(card)
    assert "datasets" not in meta and "model-index" not in meta  # a model-index needs a real dataset id
    assert str(local) not in card and "loops (a local corpus)" in card
    assert "| loop_svdd | 0.910 |" in card  # the metrics stay in the card's table
    with_id = _front_matter(generate_model_card(folder, REPO_ID, datasets=["acme/bass-loops"]))
    assert with_id["datasets"] == ["acme/bass-loops"]
    assert with_id["model-index"][0]["results"][0]["dataset"]["type"] == "acme/bass-loops"


def test_push_refuses_a_local_path_as_dataset(model_dir, tmp_path, capsys):
    from loop_svdd.cli import main

    out = tmp_path / "out"
    assert main(["push", str(model_dir), "--repo-id", REPO_ID, "--dataset", str(tmp_path), "--dry-run", str(out)]) == 2
    assert "not a Hub dataset id" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize(
    "name, pretrained, clap_tag, warning",
    [
        ("laion/larger_clap_music", True, True, None),
        ("loop-svdd pretrain-encoder (SimCLR, 256-d HTS-AT from random) on 360 loops", True, False, "is not CLAP"),
        ("random-tiny (seed 0)", False, False, "has RANDOM weights"),
    ],
    ids=["clap", "embedded-stand-in", "random"],
)
def test_card_names_the_encoder_kind(model_dir, tmp_path, name, pretrained, clap_tag, warning):
    from loop_svdd.hub import generate_model_card

    folder = _edited_folder(model_dir, tmp_path, {"encoder_name_or_path": name, "encoder_pretrained": pretrained})
    card = generate_model_card(folder, REPO_ID)
    meta = _front_matter(card)
    assert ("clap" in meta["tags"]) == clap_tag
    assert meta.get("base_model") == (name if clap_tag else None)
    warnings = re.findall(r"^> \*\*Warning: this model's audio encoder (.*?)\.\*\*", card, flags=re.M)
    assert warnings == ([] if warning is None else [warning])


def test_threshold_words_say_what_calibrated_it(model_dir, tmp_path):
    from loop_svdd.hub import generate_model_card

    n = len(json.loads((model_dir / "config.json").read_text())["calibration_scores"])
    set_aside = generate_model_card(
        _edited_folder(model_dir, tmp_path / "a", {}, {"calibration_rows": [1, 2]}), REPO_ID
    )
    assert f"95th percentile of the scores of {n} normal loops of the training split that were not used to fit" in (
        " ".join(set_aside.split())
    )
    in_sample = generate_model_card(_edited_folder(model_dir, tmp_path / "b", {}, {"calibration_rows": []}), REPO_ID)
    assert f"the {n} normal loops the heads were fitted on (in-sample" in " ".join(in_sample.split())
    assert "held-out normal scores" not in set_aside + in_sample


def test_templates_are_package_data():
    from loop_svdd.hub.rendering import template_names

    assert template_names() == ["model_card.md.jinja", "space_README.md.jinja", "space_app.py.jinja"]
    assert not (Path(__file__).resolve().parents[1] / "hub" / "templates").exists()  # one copy, in the package


def test_undefined_template_variable_is_an_error():
    from huggingface_hub import ModelCard, ModelCardData

    from loop_svdd.hub.rendering import render_card

    with pytest.raises(KeyError, match="repo_id"):
        render_card(ModelCard, ModelCardData(license="mit"), "model_card.md.jinja", model_name="x")


def test_card_without_evaluation_has_no_model_index(model_dir, tmp_path):
    import shutil

    from loop_svdd.hub import generate_model_card

    folder = tmp_path / "plain"
    shutil.copytree(model_dir, folder, ignore=shutil.ignore_patterns("evaluation.json", "training_summary.json"))
    card = generate_model_card(folder, REPO_ID)
    meta = _front_matter(card)
    assert "model-index" not in meta and "metrics" not in meta
    assert "No evaluation report" in card and "No training summary" in card


def test_loop_svdd_usage_snippet_runs_against_the_folder(repo_dir, tmp_path, monkeypatch):
    snippet = _python_blocks((repo_dir / "README.md").read_text())[1]
    assert f'load_detector("{REPO_ID}")' in snippet
    write_wav(tmp_path / "loop.wav", synth_loop(3.0, seed=1))
    (tmp_path / "more_loops").mkdir()
    write_wav(tmp_path / "more_loops" / "other.wav", synth_loop(12.0, seed=2, freq=220.0))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(snippet.replace(REPO_ID, str(repo_dir)), "card-snippet", "exec"), namespace)
    assert len(namespace["report"]["results"]) == 2 and not namespace["report"]["errors"]


# -- refusals ------------------------------------------------------------------------------------------------
def test_folder_without_safetensors_is_refused(model_dir, tmp_path, capsys):
    from loop_svdd.cli import main

    folder = tmp_path / "pickled"
    folder.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (folder / name).write_text((model_dir / name).read_text())
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04N.")
    assert main(["push", str(folder), "--repo-id", REPO_ID, "--dry-run", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no model.safetensors" in err and "pytorch_model.bin" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_code_importing_beyond_the_model_is_refused(model_dir, tmp_path):
    import shutil

    from loop_svdd.hub.publish import PublishError, prepare_model_repo

    folder = tmp_path / "leaky"
    shutil.copytree(model_dir, folder)
    head = folder / "svdd_head.py"
    head.write_text("import loop_svdd\n" + head.read_text())
    with pytest.raises(PublishError, match="svdd_head.py imports 'loop_svdd'"):
        prepare_model_repo(folder, tmp_path / "out", REPO_ID)


def test_push_without_token_is_one_clear_line(model_dir, tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants as constants

    from loop_svdd.cli import main

    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"), raising=False)
    assert main(["push", str(model_dir), "--repo-id", REPO_ID]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("loop-svdd push: error: no Hugging Face token") and len(err.splitlines()) == 1


def test_push_offline_is_refused(model_dir, monkeypatch, capsys):
    from loop_svdd.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["push", str(model_dir), "--repo-id", REPO_ID, "--token", "hf_dummy"]) == 2
    assert "HF_HUB_OFFLINE is set" in capsys.readouterr().err


def test_bad_repo_id_is_refused(model_dir, tmp_path, capsys):
    from loop_svdd.cli import main

    assert main(["push", str(model_dir), "--repo-id", "no slash", "--dry-run", str(tmp_path / "o")]) == 2
    assert "invalid repo id" in capsys.readouterr().err


# -- the Space -----------------------------------------------------------------------------------------------
def test_space_dry_run(tmp_path):
    from importlib.metadata import version

    from loop_svdd.cli import main

    out = tmp_path / "space"
    assert main(["space", REPO_ID, "--repo-id", "acme/loop-demo", "--dry-run", str(out)]) == 0
    meta = _front_matter((out / "README.md").read_text())
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert str(meta["sdk_version"]) == version("gradio")
    assert meta["models"] == [REPO_ID]
    app = (out / "app.py").read_text()
    compile(app, "app.py", "exec")
    assert f'MODEL = "{REPO_ID}"' in app and "from loop_svdd.demo import serve" in app
    requirements = (out / "requirements.txt").read_text().splitlines()
    assert any(r.startswith("torch") for r in requirements) and not any(r.startswith("gradio") for r in requirements)
    assert (out / "packages.txt").read_text().strip() == "ffmpeg"
    assert (out / "loop_svdd" / "demo" / "app.py").is_file()  # the package travels with the Space
    assert not list(out.rglob("__pycache__")) and not list(out.rglob("*.pyc"))


def test_space_without_gradio_installed(tmp_path, monkeypatch):
    import importlib.metadata

    from loop_svdd.cli import main
    from loop_svdd.hub.space import TESTED_GRADIO_VERSION

    real_version = importlib.metadata.version

    def version(name: str) -> str:
        if name == "gradio":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    assert main(["space", REPO_ID, "--repo-id", "acme/loop-demo", "--dry-run", str(tmp_path / "a")]) == 0
    assert str(_front_matter((tmp_path / "a" / "README.md").read_text())["sdk_version"]) == TESTED_GRADIO_VERSION
    argv = ["space", REPO_ID, "--repo-id", "acme/loop-demo", "--sdk-version", "5.9.1", "--dry-run", str(tmp_path / "b")]
    assert main(argv) == 0
    assert str(_front_matter((tmp_path / "b" / "README.md").read_text())["sdk_version"]) == "5.9.1"


# -- the download path, for real -----------------------------------------------------------------------------
DOWNLOAD_SCRIPT = """
import json, sys
import numpy as np, torch
from transformers import AutoFeatureExtractor, AutoModel

model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
extractor = AutoFeatureExtractor.from_pretrained(sys.argv[1], trust_remote_code=True)
waves = [np.load(p, allow_pickle=False) for p in sys.argv[2:]]
with torch.no_grad():
    out = model(**extractor(waves, sampling_rate=48000))
print(json.dumps({
    "scores": out.anomaly_score.tolist(),
    "window_scores": out.window_scores.tolist(),
    "model_module": type(model).__module__,
    "extractor_module": type(extractor).__module__,
    "loop_svdd_imported": "loop_svdd" in sys.modules,
}))
"""


@pytest.mark.slow
def test_download_through_local_hub_mirror(repo_dir, tmp_path):
    pytest.importorskip("olah", reason="olah (the local Hub mirror) is not installed: pip install olah")
    import torch
    from hub_mirror import LocalHubMirror

    from loop_svdd.models.model_io import load_detector

    waves = [synth_loop(3.0, seed=3), synth_loop(23.0, seed=4, freq=82.0)]
    npys = []
    for i, w in enumerate(waves):
        np.save(tmp_path / f"wave{i}.npy", w)
        npys.append(str(tmp_path / f"wave{i}.npy"))
    snippet = _python_blocks((repo_dir / "README.md").read_text())[0]
    write_wav(tmp_path / "loop.wav", waves[0])

    model, extractor = load_detector(repo_dir)
    with torch.no_grad():
        local = model(**extractor(waves, sampling_rate=48000))

    with LocalHubMirror(tmp_path / "mirror", {REPO_ID: repo_dir}) as mirror:
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        env.update(HF_ENDPOINT=mirror.endpoint, HF_HOME=str(tmp_path / "empty-hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
        env["PYTHONPATH"] = ""  # nothing from the project: only what the Hub serves
        # The card's transformers snippet runs as written, in the same fresh process, after the scores.
        (tmp_path / "card_snippet.py").write_text(snippet)
        script = DOWNLOAD_SCRIPT + "exec(compile(open('card_snippet.py').read(), 'card_snippet.py', 'exec'), {})\n"
        run = subprocess.run(
            [sys.executable, "-c", script, REPO_ID, *npys],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr[-3000:]
    remote = json.loads(next(line for line in run.stdout.splitlines() if line.startswith("{")))
    assert remote["model_module"].startswith("transformers_modules.")
    assert remote["extractor_module"].startswith("transformers_modules.")
    assert not remote["loop_svdd_imported"]
    np.testing.assert_allclose(remote["scores"], local.anomaly_score.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(remote["window_scores"], local.window_scores.numpy(), rtol=1e-6, atol=1e-7)
    assert len(remote["window_scores"]) == 1 + 3  # the 23 s loop has three 10 s windows
    printed = re.search(r"score (\S+):", run.stdout)
    assert printed and float(printed.group(1)) == pytest.approx(float(local.anomaly_score[0]), abs=1e-4)
    assert re.search(r"score \S+: (normal|anomalous)", run.stdout)
