"""The Gradio Blocks app: upload or record loops, score them, and look at each one in context."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from ..engine.backends import make_backend
from .analysis import (
    TABLE_HEADERS,
    Limits,
    LoopResult,
    analyse_files,
    distribution_for,
    model_panel,
    spectrogram_for,
    table_rows,
    write_csv,
)
from .curate_view import curate_tab
from .examples import write_examples
from .uploads import upload_paths

DESCRIPTION = (
    "# Loop anomaly detector\n"
    "Upload loops (any format FFmpeg reads) or record one. Each loop gets an **anomaly score** (higher = less "
    "like the loops the model was trained on), a verdict against the calibrated threshold and its percentile "
    "among held-out normal loops."
)


def _error_lines(errors: list[tuple[str, str]]) -> str:
    return "\n".join(f"- `{name}`: {reason}" for name, reason in errors)


def _handlers(model: Any, extractor: Any, limits: Limits, out_dir: Path) -> tuple[Callable, Callable]:
    """The two request handlers: `score` (files, recording) -> every output, `show` (choice, state) -> the
    selected loop's spectrogram and distribution."""

    def detail(results: list[dict], index: int) -> tuple[Any, Any]:
        loops = [LoopResult(**r) for r in results]
        return (
            spectrogram_for(extractor, loops[index], model.config.threshold),
            distribution_for(model, loops, index),
        )

    def score(files: Any, recording: Any) -> tuple[Any, ...]:
        paths = upload_paths(files) + upload_paths(recording)
        if not paths:
            raise gr.Error("Add at least one loop: upload files, record one, or pick an example.")
        note = ""
        if len(paths) > limits.max_files:
            note = f"\n\nOnly the first {limits.max_files} of {len(paths)} files were scored (the per-request limit)."
            paths = paths[: limits.max_files]
        results, errors = analyse_files(model, extractor, paths, limits)
        if not results:
            raise gr.Error("No loop could be scored:\n" + _error_lines(errors))
        n_anom = sum(r.verdict == "anomalous" for r in results)
        status = f"Scored {len(results)} loop(s): {n_anom} anomalous."
        if errors:
            status += f"\n\nSkipped {len(errors)} file(s):\n" + _error_lines(errors)
        csv_path = write_csv(results, Path(tempfile.mkdtemp(dir=out_dir)) / "loop_scores.csv")
        state = [r.to_dict() for r in results]
        names = [f"{i}. {r.name}" for i, r in enumerate(results, 1)]
        spec, dist = detail(state, 0)
        dropdown = gr.Dropdown(choices=names, value=names[0], interactive=True)
        return status + note, table_rows(results), str(csv_path), dropdown, spec, dist, state

    def show(choice: str | None, state: list[dict]) -> tuple[Any, Any]:
        if not state or not choice:
            raise gr.Error("Score some loops first.")
        index = int(choice.split(".", 1)[0]) - 1
        return detail(state, index)

    return score, show


def _input_column(example_paths: list[Path], panel: str) -> tuple[Any, Any, Any]:
    """The left column: files, recording, the Score button, the examples and the model panel (markdown)."""
    with gr.Column(scale=1):
        files = gr.File(label="Loops (one or many)", file_count="multiple", file_types=["audio"], elem_id="loop-files")
        recording = gr.Audio(label="...or record / upload one loop", sources=["upload", "microphone"], type="filepath")
        button = gr.Button("Score", variant="primary", elem_id="score-button")
        gr.Examples(
            examples=[[str(p)] for p in example_paths],
            inputs=[recording],
            label="Example loops",
            cache_examples=False,
        )
        gr.Markdown(panel, elem_id="model-panel")
    return files, recording, button


def _output_column() -> tuple[Any, ...]:
    """The right column: status, the ranked table, its CSV, the loop chooser and the loop's two images."""
    with gr.Column(scale=2):
        status = gr.Markdown(elem_id="status")
        table = gr.Dataframe(
            headers=TABLE_HEADERS,
            label="Ranked loops (most anomalous first)",
            interactive=False,
            elem_id="results-table",
        )
        csv_file = gr.File(label="Download the table (CSV)", interactive=False)
        choice = gr.Dropdown(label="Show loop", choices=[], interactive=True)
        spec = gr.Image(
            label="Mel spectrogram and per-window scores", type="numpy", interactive=False, elem_id="spectrogram"
        )
        dist = gr.Image(
            label="Score among held-out normal loops", type="numpy", interactive=False, elem_id="distribution"
        )
    return status, table, csv_file, choice, spec, dist


def build_demo(
    model_source: str | Path,
    limits: Limits = Limits(),
    examples_dir: str | Path | None = None,
    backend: str = "torch",
) -> gr.Blocks:
    """The demo for a detector folder or Hub id (loaded once, shared by all requests). Example loops are written
    into `examples_dir` (a new temporary folder by default). `backend`: torch, onnxruntime, openvino or auto."""
    model, extractor = make_backend(model_source, backend)  # one-line errors if it cannot be loaded
    source = str(model_source)
    example_paths = write_examples(examples_dir)
    out_dir = Path(tempfile.mkdtemp(prefix="loop-svdd-demo-"))
    score, show = _handlers(model, extractor, limits, out_dir)
    with gr.Blocks(title="loop-svdd demo") as demo:
        gr.Markdown(DESCRIPTION)
        with gr.Row():
            files, recording, button = _input_column(example_paths, model_panel(source, model, limits))
            status, table, csv_file, choice, spec, dist = _output_column()
        state = gr.State([])
        button.click(
            score,
            inputs=[files, recording],
            outputs=[status, table, csv_file, choice, spec, dist, state],
            api_name="score",
            concurrency_id="analysis",  # /score and /show both draw with matplotlib: one shared limit
        )
        choice.input(show, inputs=[choice, state], outputs=[spec, dist], api_name="show", concurrency_id="analysis")
        curate_tab(source)
    return demo


def serve(
    model_source: str | Path,
    host: str | None = None,
    port: int | None = None,
    limits: Limits = Limits(),
    concurrency: int = 1,
    max_queue: int = 16,
    backend: str = "torch",
    **launch_kwargs: Any,
) -> gr.Blocks:
    """Build, queue (bounded) and launch the demo."""
    demo = build_demo(model_source, limits, backend=backend)
    demo.queue(default_concurrency_limit=concurrency, max_size=max_queue)
    demo.launch(
        server_name=host,
        server_port=port,
        max_file_size=int(limits.max_file_mb * 1024 * 1024),
        show_error=True,
        **launch_kwargs,
    )
    return demo
