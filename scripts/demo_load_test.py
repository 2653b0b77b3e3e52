#!/usr/bin/env python
"""Load-test `loop-svdd demo` on 127.0.0.1: start it (on a small random-weight model folder built here, or a
given MODEL), send many concurrent score requests (valid, corrupt, too long and too large WAVs), print the
figures, optionally write them as JSON, and always stop the server.

    HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False python scripts/demo_load_test.py --clients 32 --requests 5
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

ROWS = [
    ("requests", "requests"),
    ("concurrency (clients)", "concurrency"),
    ("answered (scored)", "answered"),
    ("refused cleanly", "refused"),
    ("errors (other)", "errors"),
    ("lost (no answer in time)", "lost"),
    ("unexpected outcome", "unexpected"),
    ("latency p50 (s)", "latency_p50_s"),
    ("latency p95 (s)", "latency_p95_s"),
    ("latency max (s)", "latency_max_s"),
    ("scored p95 (s)", "answered_p95_s"),
    ("wall time (s)", "wall_s"),
    ("server RSS start (MB)", "rss_start_mb"),
    ("server RSS peak (MB)", "rss_peak_mb"),
    ("server RSS end (MB)", "rss_end_mb"),
    ("server RSS growth (MB)", "rss_growth_mb"),
    ("server RSS over the run (MB)", "rss_timeline_mb"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_small_model(path: Path) -> Path:
    """A small random-weight detector (4-stage HTS-AT, hidden 128) calibrated on a few synthetic loops."""
    import numpy as np
    import torch

    from loop_svdd import LoopSVDDConfig, LoopSVDDFeatureExtractor, LoopSVDDModel
    from loop_svdd.engine.scoring import score_waveforms
    from loop_svdd.models.model_io import save_detector

    torch.manual_seed(0)
    audio = {"patch_embeds_hidden_size": 16, "hidden_size": 128, "depths": [1, 1, 1, 1]}
    config = LoopSVDDConfig(
        audio_config={**audio, "num_attention_heads": [1, 2, 2, 2], "enable_fusion": False}, hidden_dims=[32, 8]
    )
    model = LoopSVDDModel(config).eval()
    model.config.encoder_name_or_path = "random-tiny (seed 0)"
    extractor = LoopSVDDFeatureExtractor.from_model_config(model.config)
    sr = extractor.sampling_rate
    t = np.arange(2 * sr) / sr
    waves = [
        (0.4 * np.exp(-6.0 * (t % 0.5)) * np.sin(2 * np.pi * (100.0 + 5 * i) * t)).astype(np.float32) for i in range(8)
    ]
    centre = np.full(model.config.latent_dim, 0.1)
    model.set_svdd_state(centre)
    scores = sorted(s.score for s in score_waveforms(model, extractor, waves, sr))
    model.set_svdd_state(centre, threshold=float(np.quantile(scores, 0.95)), calibration_scores=scores)
    return save_detector(model, extractor, path)


def print_table(result: dict[str, Any], title: str) -> None:
    print(f"\n{title}")
    width = max(len(label) for label, _ in ROWS)
    for label, key in ROWS:
        print(f"  {label:<{width}}  {result.get(key)}")
    print(f"  {'outcomes':<{width}}  " + ", ".join(f"{k}={v}" for k, v in result["reasons"].items()))
    for kind, message in result["examples"].items():
        print(f"  e.g. {kind}: {' '.join(message.split())[:110]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", help="model folder or Hub id (default: a small model built here)")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients (default: 32)")
    p.add_argument("--requests", type=int, default=5, help="requests per client (default: 5)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds one request may take (default: 120)")
    p.add_argument("--ready-timeout", type=float, default=180.0, help="seconds to wait for the server (180)")
    p.add_argument("--concurrency", type=int, default=1, help="the demo's --concurrency (default: 1)")
    p.add_argument("--max-queue", type=int, default=16, help="the demo's --max-queue (default: 16)")
    p.add_argument("--max-seconds", type=float, default=10.0, help="the demo's --max-seconds (default: 10)")
    p.add_argument("--max-file-mb", type=float, default=2.0, help="the demo's --max-file-mb (default: 2)")
    p.add_argument("--json", type=Path, help="write the figures (and every request) here")
    args = p.parse_args(argv)
    if min(args.clients, args.requests, args.concurrency, args.max_queue) < 1:
        p.error("--clients, --requests, --concurrency and --max-queue must be positive")

    from loop_svdd.demo.loadtest import run_load_test, start_demo, stop_demo, write_load_files

    with tempfile.TemporaryDirectory(prefix="loop-svdd-load-") as tmp:
        tmp = Path(tmp)
        model = args.model or str(build_small_model(tmp / "model"))
        files = write_load_files(tmp / "files", args.max_seconds, args.max_file_mb)
        port = free_port()
        demo_args = [
            f"--concurrency={args.concurrency}",
            f"--max-queue={args.max_queue}",
            f"--max-seconds={args.max_seconds:g}",
            f"--max-file-mb={args.max_file_mb:g}",
            "--max-files=4",
        ]
        (tmp / "server-tmp").mkdir()
        env = {"GRADIO_TEMP_DIR": str(tmp / "gradio"), "TMPDIR": str(tmp / "server-tmp")}
        print(f"starting loop-svdd demo {model} on 127.0.0.1:{port} {' '.join(demo_args)}", flush=True)
        server = start_demo(model, port, demo_args, args.ready_timeout, tmp / "server.log", env)
        try:
            result = run_load_test(
                f"http://127.0.0.1:{port}/", files, args.clients, args.requests, args.timeout, server.pid
            )
        finally:
            stop_demo(server)
    result["command"] = " ".join(["python scripts/demo_load_test.py", *(argv if argv is not None else sys.argv[1:])])
    result["demo_args"] = demo_args
    result["model"] = args.model or "small random-weight model (built by the script)"
    result["cpu_count"] = os.cpu_count()
    print_table(result, f"demo load test: {args.clients} clients x {args.requests} requests")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    clean = result["errors"] == 0 and result["lost"] == 0 and result["unexpected"] == 0
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
