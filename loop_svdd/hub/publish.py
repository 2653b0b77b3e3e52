"""Preparing a detector folder for the Hub (an allow-list of safe files + a generated card) and uploading it.

Only what a user needs is published: ``model.safetensors``, ``config.json`` (with ``auto_map``),
``preprocessor_config.json``, the modelling code that ``trust_remote_code=True`` imports, the training summary
and evaluation report when present, the model card and the score-distribution plot. Checkpoints, pickles and
anything else in the folder are never copied.
"""

from __future__ import annotations

import ast
import os
import shutil
from pathlib import Path

from ..errors import LoopSVDDError
from ..models.model_io import PICKLE_SUFFIXES, read_json
from .card import EVALUATION_FILE, PLOT_FILE, SUMMARY_FILE, generate_model_card, looks_like_hub_id

REQUIRED_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")
OPTIONAL_FILES = (SUMMARY_FILE, EVALUATION_FILE)
ALLOWED_IMPORTS = {"__future__", "collections", "dataclasses", "logging", "math", "typing", "numpy", "torch"}
ALLOWED_IMPORTS |= {"torchaudio", "transformers"}


class PublishError(LoopSVDDError, ValueError):
    """A folder or repository that cannot be published as asked; one-line reason."""


def check_repo_id(repo_id: str) -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise PublishError(f"invalid repo id {repo_id!r}: {str(err).splitlines()[0]}") from err
    if repo_id.count("/") != 1:
        raise PublishError(f"invalid repo id {repo_id!r}: expected ORG/NAME (or USER/NAME)")
    return repo_id


def _auto_map_modules(model_dir: Path) -> set[str]:
    modules = set()
    for name in ("config.json", "preprocessor_config.json"):
        for ref in ((read_json(model_dir / name) or {}).get("auto_map") or {}).values():
            for item in ref if isinstance(ref, list) else [ref]:
                if item:
                    modules.add(str(item).split("--")[-1].rsplit(".", 1)[0])
    return modules


def remote_code_files(model_dir: str | Path) -> list[str]:
    """The Python files `trust_remote_code=True` needs: the `auto_map` modules and their relative imports.

    Raises [`PublishError`] when a module is missing or imports anything beyond torch/numpy/transformers
    (e.g. `loop_svdd` itself, which a Hub user does not have)."""
    model_dir = Path(model_dir)
    todo, seen = sorted(_auto_map_modules(model_dir)), set()
    if not todo:
        raise PublishError(f"{model_dir}/config.json has no auto_map: trust_remote_code=True would not find the code")
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = model_dir / f"{module}.py"
        if not path.is_file():
            raise PublishError(f"{model_dir}: auto_map needs {path.name}, which is not in the folder")
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.level:
                todo.append(node.module or "")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for top in {n.split(".")[0] for n in names} - ALLOWED_IMPORTS:
                    raise PublishError(f"{path.name} imports {top!r}: the published modelling code must stand alone")
    return sorted(f"{m}.py" for m in seen)


def _prepare_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise PublishError(f"{out_dir} exists and is not an empty folder; choose a new one")
    out_dir.mkdir(parents=True, exist_ok=True)


def list_files(folder: str | Path) -> list[str]:
    folder = Path(folder)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def prepare_model_repo(
    model_dir: str | Path,
    out_dir: str | Path,
    repo_id: str,
    license: str = "mit",
    datasets: list[str] | None = None,
) -> list[str]:
    """Write into `out_dir` exactly the files to publish for the detector in `model_dir`; return their names."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    check_repo_id(repo_id)
    for dataset in datasets or []:
        if not looks_like_hub_id(dataset):
            raise PublishError(
                f"--dataset {dataset!r} is not a Hub dataset id (ORG/NAME); local paths are never published"
            )
    if not model_dir.is_dir():
        raise PublishError(f"{model_dir}: not a model folder")
    if not (model_dir / "model.safetensors").is_file():
        pickles = sorted(p.name for p in model_dir.iterdir() if p.suffix in PICKLE_SUFFIXES)
        extra = f" (found {', '.join(pickles)}: pickle weights are never published)" if pickles else ""
        raise PublishError(f"{model_dir}: no model.safetensors{extra}")
    for name in REQUIRED_FILES:
        if not (model_dir / name).is_file():
            raise PublishError(f"{model_dir}: no {name} - not a complete detector folder")
    code = remote_code_files(model_dir)
    _prepare_out_dir(out_dir)
    for name in (*REQUIRED_FILES, *code, *OPTIONAL_FILES):
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, out_dir / name)
    config = read_json(model_dir / "config.json") or {}
    plot = None
    if config.get("calibration_scores"):
        from ..figures import save_score_distribution

        save_score_distribution(config["calibration_scores"], config.get("threshold"), out_dir / PLOT_FILE)
        plot = PLOT_FILE
    card = generate_model_card(model_dir, repo_id, license=license, datasets=datasets, plot_file=plot)
    (out_dir / "README.md").write_text(card)
    files = list_files(out_dir)
    unsafe = [f for f in files if Path(f).suffix in PICKLE_SUFFIXES or "/" in f]
    if unsafe:  # cannot happen with the allow-list above; kept as a last line of defence
        raise PublishError(f"refusing to publish {', '.join(unsafe)}")
    return files


def upload_folder_to_hub(
    folder: str | Path,
    repo_id: str,
    repo_type: str = "model",
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload with loop-svdd",
    space_sdk: str | None = None,
) -> str:
    """`create_repo` (if needed) + `upload_folder`; returns the repo URL. Errors become one-line PublishErrors."""
    import httpx
    from huggingface_hub import HfApi, constants, get_token
    from huggingface_hub.errors import HfHubHTTPError

    check_repo_id(repo_id)
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        raise PublishError("HF_HUB_OFFLINE is set: cannot upload (unset it, or use --dry-run OUT)")
    token = token or get_token()
    if not token:
        raise PublishError("no Hugging Face token: run `hf auth login` or set HF_TOKEN (or use --dry-run OUT)")
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, space_sdk=space_sdk)
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type=repo_type, commit_message=commit_message)
    except HfHubHTTPError as err:
        raise PublishError(f"the Hub refused the upload to {repo_id}: {str(err).strip().splitlines()[0]}") from err
    except (OSError, httpx.HTTPError) as err:  # connection problems
        raise PublishError(f"cannot reach the Hub: {str(err).strip().splitlines()[0] or type(err).__name__}") from err
    return str(url)
