"""`loop-svdd demo MODEL`: a local web demo (Gradio) that scores uploaded or recorded loops."""

from __future__ import annotations

import argparse
import os

from .common import CLIError

ANALYTICS_VARIABLE = "GRADIO_ANALYTICS_ENABLED"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="web demo: score uploaded or recorded loops in a browser",
        description="Start a Gradio app for a model folder or Hub id: upload or record loops and see each one's "
        "score, verdict, percentile, mel spectrogram with per-window scores, and a ranked table with a CSV download. "
        "Gradio's usage analytics are off unless you set GRADIO_ANALYTICS_ENABLED=True.",
    )
    p.add_argument("model", help="model folder or Hub id")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--max-files", type=int, default=16, help="loops per request (default: 16)")
    p.add_argument("--max-seconds", type=float, default=60.0, help="longest loop accepted, in s (default: 60)")
    p.add_argument("--max-file-mb", type=float, default=20.0, help="largest upload, in MB (default: 20)")
    p.add_argument("--concurrency", type=int, default=1, help="requests scored at once (default: 1)")
    p.add_argument("--max-queue", type=int, default=16, help="requests waiting at most (default: 16)")
    from ..engine.backends import add_backend_argument

    add_backend_argument(p)
    p.set_defaults(func=run)


def offline_by_default() -> None:
    """Turn Gradio's usage analytics off unless the user set `GRADIO_ANALYTICS_ENABLED` themselves: the demo runs
    offline like the rest of the package. Gradio reads the variable when it decides to send, so this must run
    before it is imported and launched."""
    os.environ.setdefault(ANALYTICS_VARIABLE, "False")


def run(args: argparse.Namespace) -> int:
    if min(args.max_files, args.concurrency, args.max_queue) < 1 or min(args.max_seconds, args.max_file_mb) <= 0:
        raise CLIError("--max-files, --max-seconds, --max-file-mb, --concurrency and --max-queue must be positive")
    if not 0 < args.port < 65536:
        raise CLIError(f"--port must be in 1..65535, got {args.port}")
    offline_by_default()
    try:
        from ..demo.analysis import Limits
        from ..demo.app import serve
    except ImportError as err:
        raise CLIError(f"the demo needs gradio: pip install 'loop-svdd[demo]' ({err})") from err
    from ..engine.backends import BackendError
    from ..models.model_io import ModelLoadError

    limits = Limits(max_files=args.max_files, max_seconds=args.max_seconds, max_file_mb=args.max_file_mb)
    try:
        serve(
            args.model,
            host=args.host,
            port=args.port,
            limits=limits,
            concurrency=args.concurrency,
            max_queue=args.max_queue,
            backend=args.backend,
        )
    except (ModelLoadError, BackendError) as err:
        raise CLIError(str(err)) from err
    except OSError as err:  # e.g. the port is taken
        raise CLIError(f"cannot start the server on {args.host}:{args.port}: {err}") from err
    return 0
