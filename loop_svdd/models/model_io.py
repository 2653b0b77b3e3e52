"""Saving and loading detector folders safely: safetensors + JSON only, written so a crash never leaves a
half-written folder that loads."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import LoopSVDDError, first_line, safetensors_write_errors_as_oserror
from ..paths import hub_failure_message, missing_path_message
from .loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor
from .loop_svdd.modeling_loop_svdd import LoopSVDDModel

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")


class ModelLoadError(LoopSVDDError, ValueError):
    """A model folder or Hub id that cannot be loaded safely; one-line reason."""


def default_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` gives (0o666 less the umask, usually 0o644). Temporary files are
    created 0o600; files moved into place get this mode so a web server or another user can read them."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_json_atomic(path: str | Path, obj: Any) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=float)
        f.write("\n")
    os.chmod(tmp, default_file_mode())
    os.replace(tmp, path)


def save_detector(
    model: LoopSVDDModel,
    extractor: LoopSVDDFeatureExtractor,
    output_dir: str | Path,
    extra_json: dict[str, Any] | None = None,
) -> Path:
    """Write a `from_pretrained`-loadable folder. Every file is written to a temporary folder first and moved
    into place with `os.replace`; `config.json` is removed first and moved in last, so an interrupted save
    leaves a folder that refuses to load rather than one that loads mixed weights."""
    from .auto import register_auto_classes

    register_auto_classes()  # the folder must carry auto_map and the modelling code
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=output_dir, prefix=".saving-"))
    try:
        with safetensors_write_errors_as_oserror():
            model.save_pretrained(staging, safe_serialization=True)
        extractor.save_pretrained(staging)
        for name, obj in (extra_json or {}).items():
            write_json_atomic(staging / name, obj)
        (output_dir / "config.json").unlink(missing_ok=True)
        mode = default_file_mode()
        for item in sorted(staging.iterdir()):
            if item.is_file():
                os.chmod(item, mode)
            if item.name != "config.json":
                os.replace(item, output_dir / item.name)
        os.replace(staging / "config.json", output_dir / "config.json")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output_dir


def load_detector(source: str | Path, **kwargs: Any) -> tuple[LoopSVDDModel, LoopSVDDFeatureExtractor]:
    """Load a detector (local folder or Hub id) in eval mode, refusing pickle-based weights."""
    source = str(source)
    path = Path(source)
    missing = missing_path_message(source)
    if missing:
        raise ModelLoadError(missing)
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{source}: expected a model folder (config.json + model.safetensors)")
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{source}: no config.json - not a model folder, or a save that did not finish")
        if not (path / "model.safetensors").is_file():
            pickles = [p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES]
            why = f" (found {', '.join(pickles)}: pickle files are never loaded, they can run code)" if pickles else ""
            raise ModelLoadError(f"{source}: no model.safetensors{why}")
    try:
        model, info = LoopSVDDModel.from_pretrained(source, use_safetensors=True, output_loading_info=True, **kwargs)
        extractor = LoopSVDDFeatureExtractor.from_pretrained(source, **kwargs)
    except RuntimeError as err:  # transformers reports shape mismatches as RuntimeError
        raise ModelLoadError(
            f"{source}: the weights in model.safetensors do not fit config.json (head or encoder sizes differ)"
        ) from err
    except (OSError, ValueError, KeyError, TypeError) as err:
        reason = first_line(err)
        if not path.exists():
            raise ModelLoadError(hub_failure_message(source, "model", reason)) from err
        raise ModelLoadError(f"cannot load the model {source!r}: {reason}") from err
    missing = [k for k in info.get("missing_keys", []) if not k.endswith("num_batches_tracked")]
    if missing or info.get("mismatched_keys"):
        bad = missing or [str(k) for k in info["mismatched_keys"]]
        raise ModelLoadError(
            f"{source}: model.safetensors lacks weights that config.json needs ({', '.join(bad[:3])}"
            f"{', ...' if len(bad) > 3 else ''}); refusing to run with random weights in their place"
        )
    if extractor.fusion != model.config.is_fused:
        raise ModelLoadError(
            f"{source}: the feature extractor ({'fused' if extractor.fusion else 'unfused'}) does not match the "
            f"encoder ({'fused' if model.config.is_fused else 'unfused'})"
        )
    return model.eval(), extractor


def read_json(path: str | Path) -> dict[str, Any] | None:
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None
