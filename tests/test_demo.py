"""The Gradio demo as a real server on 127.0.0.1: driven through gradio_client and a headless Chromium."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import synth_loop
from hub_mirror import free_port
from model_folders import build_model_folder, write_wav

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUEST_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_model_folder(tmp_path_factory.mktemp("demo-model") / "detector")


@pytest.fixture(scope="module")
def audio(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("demo-audio")
    rng = np.random.default_rng(0)
    return {
        "normal": write_wav(folder / "steady.wav", synth_loop(2.0, seed=11)),
        "odd": write_wav(folder / "odd.wav", (0.3 * rng.standard_normal(2 * 48_000)).astype(np.float32)),
        "long": write_wav(folder / "long.wav", synth_loop(7.0, seed=12)),
        "corrupt": _corrupt(folder / "broken.wav"),
    }


def _corrupt(path: Path) -> Path:
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage that is not audio")
    return path


@pytest.fixture(scope="module")
def server(model_dir):
    from loop_svdd.demo import serve
    from loop_svdd.demo.analysis import Limits

    port = free_port()
    demo = serve(
        str(model_dir),
        host="127.0.0.1",
        port=port,
        limits=Limits(max_files=4, max_seconds=5.0, max_file_mb=2.0),
        prevent_thread_lock=True,
        quiet=True,
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False, download_files=False)


def _score(client, files: list[Path]):
    from gradio_client import handle_file

    job = client.submit([handle_file(str(f)) for f in files], None, api_name="/score")
    return job.result(timeout=REQUEST_TIMEOUT_S)


def test_one_loop_gets_score_verdict_percentile(client, audio, model_dir):
    from loop_svdd.engine.scoring import score_files
    from loop_svdd.models.model_io import load_detector

    status, table, csv_file, choice, spectrogram, distribution = _score(client, [audio["normal"]])
    assert status.startswith("Scored 1 loop(s)")
    (row,) = table["data"]
    model, extractor = load_detector(model_dir)
    (expected,) = score_files(model, extractor, [audio["normal"]])["results"]
    assert row[1] == "steady.wav"
    assert row[2] == pytest.approx(expected["score"], abs=1e-5)
    assert row[3] == expected["verdict"] in ("normal", "anomalous")
    assert row[4] == pytest.approx(expected["percentile"], abs=0.1)
    assert choice["value"] == "1. steady.wav"
    assert spectrogram and distribution  # both figures were rendered


def test_batch_is_ranked_and_bad_files_are_reported(client, audio):
    status, table, csv_file, *_ = _score(client, [audio["normal"], audio["corrupt"], audio["odd"]])
    scores = [row[2] for row in table["data"]]
    assert len(scores) == 2 and scores == sorted(scores, reverse=True)
    assert "Skipped 1 file(s)" in status and "broken.wav" in status and "cannot decode audio" in status
    assert "Traceback" not in status
    assert csv_file  # the ranked table as CSV


def test_corrupt_file_alone_is_a_clean_error(client, audio):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as err:
        _score(client, [audio["corrupt"]])
    message = str(err.value)
    assert "No loop could be scored" in message and "broken.wav" in message and "cannot decode audio" in message
    assert "Traceback" not in message


def test_limits_are_enforced_with_clear_messages(client, audio):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="longer than the 5 s limit"):
        _score(client, [audio["long"]])
    with pytest.raises(AppError, match="Add at least one loop"):
        client.submit([], None, api_name="/score").result(timeout=REQUEST_TIMEOUT_S)


def test_demo_command_with_a_bad_model_is_one_line(tmp_path, capsys):
    from loop_svdd.cli import main

    empty = tmp_path / "not-a-model"
    empty.mkdir()
    assert main(["demo", str(empty), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("loop-svdd demo: error:") and "config.json" in err and len(err.splitlines()) == 1


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (apt-get install chromium)")
def test_browser_upload_scores_and_renders(server, audio, tmp_path):
    pytest.importorskip("playwright", reason="playwright is not installed: pip install playwright")
    from PIL import Image
    from playwright.sync_api import sync_playwright

    shot = tmp_path / "demo.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            timeout=30_000,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.set_default_timeout(60_000)
            page.goto(server, wait_until="domcontentloaded")
            # Gradio hydrates its components after the page loads: wait until the app is interactive.
            page.locator("#score-button").wait_for()
            page.locator("#model-panel").get_by_text("RANDOM weights").first.wait_for()
            for attempt in range(3):  # an upload set before the handlers attach is dropped: set it again
                page.locator("#loop-files input[type=file]").set_input_files(str(audio["normal"]))
                try:
                    page.get_by_text("steady.wav").first.wait_for(timeout=20_000)
                    break
                except Exception:  # noqa: BLE001 - playwright TimeoutError; retried, then re-raised below
                    if attempt == 2:
                        raise
            for attempt in range(3):  # a click that lands before the upload has settled is dropped: click again
                page.locator("#score-button").click()
                try:
                    page.locator("#status").get_by_text("Scored 1 loop(s)").wait_for(timeout=40_000)
                    break
                except Exception:  # noqa: BLE001 - playwright TimeoutError; retried, then re-raised below
                    if attempt == 2:
                        raise
            page.locator("#spectrogram img").wait_for()
            page.locator("#distribution img").wait_for()
            assert "steady.wav" in page.locator("#results-table").text_content()
            assert "RANDOM weights" in page.locator("#model-panel").inner_text()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    shutil.copy(shot, Path(tempfile.gettempdir()) / "loop-svdd-demo-screenshot.png")  # for a human to look at
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    non_white = (pixels.min(axis=2) < 235).mean()
    assert pixels.std() > 20 and non_white > 0.05, f"screenshot looks blank (std {pixels.std():.1f}, {non_white:.2%})"
