"""The demo under load: 8 concurrent clients x 3 requests against a real `loop-svdd demo` server on 127.0.0.1
with a one-slot queue. Every request must be answered or refused cleanly (none lost, no other error) and the
server's memory must stay bounded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hub_mirror import free_port
from model_folders import build_model_folder

pytest.importorskip("gradio", reason="the demo needs gradio: pip install 'loop-svdd[demo]'")
pytest.importorskip("psutil", reason="the load test samples the server's memory with psutil")

CLIENTS, REQUESTS = 8, 3
READY_TIMEOUT_S = 45.0
REQUEST_TIMEOUT_S = 20.0
RSS_GROWTH_LIMIT_MB = 300.0


def test_refusal_messages_are_classified():
    from loop_svdd.demo.loadtest import refusal_reason

    assert refusal_reason("join: HTTP 503: Queue is full. Max size is 1 and size is 1.") == "queue_full"
    assert refusal_reason("upload: HTTP 413: File size exceeded maximum allowed size of 524288 bytes.") == "too_large"
    assert refusal_reason("No loop could be scored:\n- `a.wav`: the loop is longer than the 3 s limit; trim it first")
    assert refusal_reason("No loop could be scored:\n- `b.wav`: cannot decode audio (bad header)") == "undecodable"
    assert refusal_reason("Traceback (most recent call last): ... Queue is full") is None
    assert refusal_reason("RuntimeError: CUDA out of memory") is None


@pytest.mark.slow  # about 12 s: a real server, 24 requests
def test_demo_under_load_answers_or_refuses_every_request(tmp_path: Path):
    from loop_svdd.demo.loadtest import run_load_test, start_demo, stop_demo, write_load_files

    began = time.monotonic()
    model = build_model_folder(tmp_path / "detector")
    print(f"model built in {time.monotonic() - began:.1f} s")
    files = write_load_files(tmp_path / "files", max_seconds=3.0, max_file_mb=0.5)
    (tmp_path / "server-tmp").mkdir()
    env = {"GRADIO_TEMP_DIR": str(tmp_path / "gradio"), "TMPDIR": str(tmp_path / "server-tmp")}
    demo_args = ["--concurrency=1", "--max-queue=1", "--max-seconds=3", "--max-file-mb=0.5", "--max-files=4"]
    port = free_port()
    server = start_demo(model, port, demo_args, READY_TIMEOUT_S, tmp_path / "server.log", env)
    print(f"server ready after {time.monotonic() - began:.1f} s")
    try:
        result = run_load_test(f"http://127.0.0.1:{port}/", files, CLIENTS, REQUESTS, REQUEST_TIMEOUT_S, server.pid)
    finally:
        stop_demo(server)
    assert server.poll() is not None, "the server was not stopped"
    summary = {k: v for k, v in result.items() if k != "records"}
    print(summary)  # the figures, with -s

    assert result["requests"] == CLIENTS * REQUESTS
    assert result["lost"] == 0 and result["errors"] == 0, summary
    assert result["answered"] + result["refused"] == CLIENTS * REQUESTS
    assert result["unexpected"] == 0, summary  # valid loops scored, bad files refused for their own reason
    assert result["answered"] >= 1 and result["reasons"].get("refused:queue_full", 0) >= 1, summary
    assert result["reasons"].get("refused:too_large", 0) >= 1, summary  # refused at upload, before the queue
    assert all("Traceback" not in m for m in result["examples"].values())
    assert result["latency_max_s"] < REQUEST_TIMEOUT_S
    assert result["warmup"] == "answered"
    assert result["rss_growth_mb"] is not None and result["rss_growth_mb"] < RSS_GROWTH_LIMIT_MB, summary
    assert time.monotonic() - began < 120
