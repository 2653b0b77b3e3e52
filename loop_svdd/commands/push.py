"""`loop-svdd push MODEL_DIR --repo-id ORG/NAME`: publish a detector (weights, code, card) to the Hub."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from .common import CLIError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "push",
        help="publish a model folder to the Hugging Face Hub",
        description="Upload a trained detector as a Hub model repo: model.safetensors, config.json (auto_map), "
        "preprocessor_config.json, the modelling code for trust_remote_code=True, and a model card generated from "
        "the training run. Checkpoints and pickle files are never uploaded.",
    )
    p.add_argument("model_dir", help="a folder written by `loop-svdd train`")
    p.add_argument("--repo-id", required=True, help="ORG/NAME of the model repo")
    p.add_argument("--private", action="store_true", help="create the repo as private")
    p.add_argument("--dry-run", metavar="OUT", help="write what would be uploaded into OUT and upload nothing")
    p.add_argument("--license", default="mit", help="license id for the card metadata (default: mit)")
    p.add_argument("--dataset", action="append", default=[], help="Hub dataset id the model was trained on")
    p.add_argument(
        "--with-onnx",
        action="store_true",
        help="also publish the ONNX export under onnx/ (MODEL/onnx when it is this model's, else exported now)",
    )
    p.add_argument("--token", help="Hugging Face token (default: the logged-in token or HF_TOKEN)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..hub.publish import PublishError, prepare_model_repo, upload_folder_to_hub

    try:
        if args.dry_run:
            files = prepare_model_repo(args.model_dir, args.dry_run, args.repo_id, args.license, args.dataset)
            files += _with_onnx(args, args.dry_run)
            print(f"dry run: {len(files)} files for {args.repo_id} written to {args.dry_run} (nothing uploaded)")
            for name in files:
                print(f"  {name}  ({(Path(args.dry_run) / name).stat().st_size:,} bytes)")
            return 0
        with tempfile.TemporaryDirectory(prefix="loop-svdd-push-") as tmp:
            staged = Path(tmp) / "repo"
            files = prepare_model_repo(args.model_dir, staged, args.repo_id, args.license, args.dataset)
            files += _with_onnx(args, staged)
            url = upload_folder_to_hub(staged, args.repo_id, private=args.private, token=args.token)
    except PublishError as err:
        raise CLIError(str(err)) from err
    print(f"uploaded {len(files)} files to {url}")
    return 0


def _with_onnx(args: argparse.Namespace, repo_dir: str | Path) -> list[str]:
    if not args.with_onnx:
        return []
    from ..engine.graphs import ExportError, add_onnx_to_repo
    from ..models.model_io import ModelLoadError

    try:
        return add_onnx_to_repo(args.model_dir, repo_dir)
    except (ExportError, ModelLoadError, ImportError) as err:
        raise CLIError(f"--with-onnx: {err}") from err
