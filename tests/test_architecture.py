"""One road from audio to a score: outside `loop_svdd/engine/`, `models/`, `pretraining/` and `export/`, nothing
runs the encoder or the model's forward itself. The source of every module is read and its calls are checked, so
a new caller has to go through the engine (`engine.embedding` is the one batched embedding core)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "loop_svdd"
ALLOWED = ("engine", "models", "pretraining", "export")  # the engine, the models and what trains or exports them

ENCODER_CLASSES = {"ClapAudioModel", "ClapModel", "ClapAudioModelWithProjection"}
# Methods that run the encoder (the model's own, transformers' CLAP, the time scorer's encoder pass).
ENCODER_METHODS = {
    "forward",
    "get_audio_features",
    "get_audio_embeddings",
    "get_window_embeddings",
    "embed_windows",
    "encode_windows",
    "window_time_scores",
}
MODEL_NAMES = {"model", "lm", "net", "encoder", "inner", "loaded"}  # a callable named so is a model
FEATURE_KEYWORDS = {"input_features", "is_longer", "window_clip_index"}
FEATURE_NAMES = {"inputs", "feats", "features"}  # what a `**` splat of window features is called


def _name(node: ast.AST) -> str:
    """`a.b.c` for a name or attribute chain, else ''."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _name(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    return ""


def _is_features(node: ast.AST) -> bool:
    """`inputs`, `feats`, or a call of a feature extractor (`extractor(waves, ...)`)."""
    if isinstance(node, ast.Call):
        return "extractor" in _name(node.func).lower()
    return _name(node).rsplit(".", 1)[-1] in FEATURE_NAMES


def _calls_model(call: ast.Call) -> bool:
    """`model(**inputs)`, `model(input_features=...)`, `m(**extractor(...))`: the model called itself."""
    callee = _name(call.func).rsplit(".", 1)[-1]
    if any(k.arg in FEATURE_KEYWORDS for k in call.keywords):
        return True
    splats = [k.value for k in call.keywords if k.arg is None]
    return any(callee in MODEL_NAMES or _is_features(v) for v in splats)


def encoder_uses(source: str) -> list[tuple[int, str]]:
    """`(line, what)` for each place in `source` that runs the encoder or the model's forward directly."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == "encoder" and _name(node.value) != "args":
            found.append((node.lineno, f"{_name(node)} (the encoder itself)"))
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        if name in ENCODER_CLASSES or name.rsplit(".", 1)[-1] in ENCODER_CLASSES:
            found.append((node.lineno, f"{name}(...)"))
        elif isinstance(node.func, ast.Attribute) and node.func.attr in ENCODER_METHODS:
            found.append((node.lineno, f"{name}(...)"))
        elif isinstance(node.func, ast.Name) and node.func.id in ENCODER_METHODS:
            found.append((node.lineno, f"{name}(...)"))
        elif _calls_model(node):
            found.append((node.lineno, f"{name}(...) with window features"))
    return sorted(set(found))


def _outside_the_engine() -> list[Path]:
    return [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.relative_to(PACKAGE).parts[0] not in ALLOWED and "__pycache__" not in p.parts
    ]


def test_nothing_outside_the_engine_runs_the_encoder():
    offenders = [
        f"loop_svdd/{path.relative_to(PACKAGE)}:{line}: {what}"
        for path in _outside_the_engine()
        for line, what in encoder_uses(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, "run the encoder through loop_svdd.engine (engine.embedding), not here:\n" + "\n".join(
        offenders
    )


def test_every_module_is_read():
    modules = _outside_the_engine()
    names = {str(p.relative_to(PACKAGE)) for p in modules}
    assert {"cli.py", "curation/pipeline.py", "demo/analysis.py", "commands/score.py"} <= names
    assert not any(p.relative_to(PACKAGE).parts[0] in ALLOWED for p in modules)


@pytest.mark.parametrize(
    "snippet",
    [
        "out = model.encoder(input_features=x)",
        "pooled = self.lm.encoder(x).pooler_output",
        "enc = model.encoder",
        "m = ClapAudioModel(config)",
        "m = transformers.ClapModel.from_pretrained('x')\nf = m.get_audio_features(**batch)",
        "e = model.get_window_embeddings(feats, longer)",
        "e, t = model.embed_windows(feats)",
        "out = model(**inputs)",
        "out = model(**extractor(waves, sampling_rate=48000))",
        "out = self.model(input_features=feats, return_dict=True)",
        "out = loaded(**loaded_extractor([w], sampling_rate=sr))",
        "out = LoopSVDDModel.forward(model, **inputs)",
        "out = m(**inputs)",
        "out = detector.net(**kwargs)",
        "p, g = encode_windows(model, feats, None, ['mel'])",
    ],
)
def test_a_direct_call_is_caught(snippet):
    assert encoder_uses(snippet), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        "model, extractor = build_model(args.encoder or resolve_default_encoder())",
        "print(describe_encoder(model.config))",
        "scores = score_waveforms(model, extractor, waves, sr)",
        "emb = embed_dataset(model, extractor, dataset, **kwargs)",
        "scores = model.score_embeddings(emb)[0]",
        "kwargs = dict(**options)\nrun(**kwargs)",
        "detector = make_detector(**options)",
        "model, extractor = build_model(encoder, **HeadConfig.of(training).head_kwargs())",
        "'''ClapFeatureExtractor then ClapAudioModel, model.encoder(...)'''",
    ],
)
def test_an_engine_call_is_not_caught(snippet):
    assert not encoder_uses(snippet), snippet
