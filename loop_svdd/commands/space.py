"""`loop-svdd space MODEL_REPO --repo-id ORG/NAME`: publish a Gradio Space that demos a model repo."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from .common import CLIError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "space",
        help="publish a Gradio Space demoing a Hub model",
        description="Write and upload a Gradio Space (README.md with sdk: gradio, app.py, requirements.txt) "
        "that loads MODEL_REPO from the Hub and runs the loop-svdd demo.",
    )
    p.add_argument("model_repo", help="Hub id of the model the Space loads (ORG/NAME)")
    p.add_argument("--repo-id", required=True, help="ORG/NAME of the Space")
    p.add_argument("--private", action="store_true", help="create the Space as private")
    p.add_argument("--dry-run", metavar="OUT", help="write the Space files into OUT and upload nothing")
    p.add_argument(
        "--requirement",
        help="pip requirement that installs loop-svdd in the Space (default: copy the package source into it)",
    )
    p.add_argument("--license", default="mit", help="license id for the Space metadata (default: mit)")
    p.add_argument("--title", help="Space title")
    p.add_argument(
        "--sdk-version",
        help="gradio version the Space runs (default: the installed gradio's, else the one loop-svdd was tested with)",
    )
    p.add_argument("--token", help="Hugging Face token (default: the logged-in token or HF_TOKEN)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..hub.publish import PublishError, upload_folder_to_hub
    from ..hub.space import prepare_space

    def prepare(out: str | Path) -> list[str]:
        return prepare_space(
            args.model_repo, out, args.repo_id, args.requirement, args.license, args.title, args.sdk_version
        )

    try:
        if args.dry_run:
            files = prepare(args.dry_run)
            print(f"dry run: {len(files)} Space files for {args.repo_id} written to {args.dry_run} (nothing uploaded)")
            return 0
        with tempfile.TemporaryDirectory(prefix="loop-svdd-space-") as tmp:
            files = prepare(Path(tmp) / "space")
            url = upload_folder_to_hub(
                Path(tmp) / "space",
                args.repo_id,
                repo_type="space",
                private=args.private,
                token=args.token,
                space_sdk="gradio",
            )
    except PublishError as err:
        raise CLIError(str(err)) from err
    print(f"uploaded {len(files)} files to {url}")
    return 0
