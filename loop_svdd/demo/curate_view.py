"""The demo's "Curate a pack" tab: upload many loops (or a zip), get the ranked list with a player on every
row, the map of the pack and the report to download. Runs `loop_svdd.curation.curate` on the demo model's
encoder; every error is shown as one readable line in the status box."""

from __future__ import annotations

import base64
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from ..errors import LoopSVDDError, first_line
from .uploads import upload_paths

MAX_PACK_FILES = 300
MAX_ZIP_MB = 500.0


class UploadError(LoopSVDDError, ValueError):
    """An upload that cannot become a pack; one-line message."""


def _unzip(archive: Path, into: Path) -> None:
    """Extract the audio of `archive` safely (no absolute paths, no `..`, bounded size)."""
    try:
        with zipfile.ZipFile(archive) as z:
            members = [m for m in z.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > MAX_ZIP_MB * 1e6:
                raise UploadError(f"{archive.name}: more than {MAX_ZIP_MB:g} MB once unpacked")
            for m in members:
                target = (into / m.filename).resolve()
                if into.resolve() not in target.parents or m.filename.startswith("__MACOSX"):
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(m) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile:
        raise UploadError(f"{archive.name}: not a readable zip archive") from None


def make_pack(paths: list[str], workdir: Path) -> Path:
    """A folder holding the uploaded loops (zips unpacked), named as uploaded."""
    pack = workdir / "pack"
    pack.mkdir(parents=True)
    for p in map(Path, paths):
        if p.suffix.lower() == ".zip":
            _unzip(p, pack / p.stem)
        else:
            shutil.copy(p, pack / p.name)
    n = sum(1 for f in pack.rglob("*") if f.is_file())
    if n > MAX_PACK_FILES:
        raise UploadError(f"{n} files: the demo curates at most {MAX_PACK_FILES} per request")
    return pack


def ranked_table_html(rows: list[dict[str, Any]], media: dict[int, dict[str, str]]) -> str:
    """The ranked list as HTML, a player on every row that has one (the report's own rows)."""
    from ..curation.report import _row_html

    head = "<tr><th>rank</th><th>file</th><th>score</th><th>percentile</th><th>verdict</th><th>listen</th><th></th>"
    return "<table>" + head + "".join(_row_html(r, media.get(r["rank"])) for r in rows) + "</table>"


def curate_upload(paths: list[str], encoder: str, **options: Any) -> tuple[str, str, str, str]:
    """(status markdown, ranked table HTML, map image path, report path) for uploaded files."""
    from ..curation import curate

    if not paths:
        raise UploadError("Add loops first: several audio files, or one zip of a pack.")
    workdir = Path(tempfile.mkdtemp(prefix="loop-svdd-curate-"))
    result = curate(make_pack(paths, workdir), workdir / "out", encoder=encoder, progress=False, **options)
    s = result.summary
    skipped = [f"- skipped `{Path(e['file']).name}`: {e['error']}" for e in s["unreadable"]]
    lines = [*s["warnings"], s["headline"], *skipped]
    map_path = workdir / "map.png"
    map_path.write_bytes(base64.b64decode(result.map_uri.split(",", 1)[1]))
    table = ranked_table_html(result.rows, result.media)
    return "\n\n".join(lines), table, str(map_path), str(workdir / "out" / "report.html")


def curate_tab(encoder: str) -> None:
    """Add the "Curate a pack" tab to the enclosing `gr.Blocks` (curation on the demo model's encoder)."""
    import gradio as gr

    from ..curation import PackError

    def run(files: Any) -> tuple[Any, ...]:
        try:
            status, table, map_path, report = curate_upload(upload_paths(files), encoder)
        except (UploadError, PackError, ValueError, OSError, RuntimeError) as err:
            message = first_line(err)
            return f"**Could not curate:** {message}", "", None, None
        return status, table, map_path, report

    with gr.Tab("Curate a pack"):
        gr.Markdown(
            "Upload the loops of one pack (many files, or a zip). Every loop is scored by detectors that never "
            "trained on it; the strays come first. Packs under 20 loops are refused."
        )
        files = gr.File(label="Loops or a zip", file_count="multiple", elem_id="curate-files")
        button = gr.Button("Curate", variant="primary", elem_id="curate-button")
        status = gr.Markdown(elem_id="curate-status")
        table = gr.HTML(elem_id="curate-table")
        pack_map = gr.Image(label="The pack (PCA of the embeddings)", type="filepath", interactive=False)
        report = gr.File(label="Download the report (HTML, opens offline)", interactive=False)
        button.click(run, inputs=[files], outputs=[status, table, pack_map, report], api_name="curate")
