"""The curation report: one self-contained HTML file (audio, spectrograms and the pack map inline, base64),
so it opens offline in any browser and can be mailed as one file."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..figures import ANOMALY_COLOUR, NORMAL_COLOUR, THRESHOLD_COLOUR, _pyplot
from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor

PLAYER_SECONDS = 20.0  # audio in the report is cut to this, mono, compressed
PLAYER_BIT_RATE = 64_000
PLAYER_SAMPLE_RATE = 24_000


def draw_time_scores(ax, times: Sequence[float], scores: Sequence[float], end_s: float, threshold: float | None):
    """The time-resolved score curve of one loop: score i holds from times[i] to times[i + 1] (the last one to
    `end_s`). Works for one score per 10 s window today and for finer time scores alike."""
    times, scores = np.asarray(times, float), np.asarray(scores, float)
    edges = np.append(times, max(end_s, times[-1] + 1e-3)) if len(times) else np.array([0.0, end_s])
    values = np.append(scores, scores[-1]) if len(scores) else np.zeros(2)
    above = threshold is not None and bool((scores > threshold).any())
    ax.step(edges, values, where="post", color=ANOMALY_COLOUR if above else NORMAL_COLOUR, linewidth=2)
    if threshold is not None:
        ax.axhline(threshold, color=THRESHOLD_COLOUR, linestyle="--", linewidth=0.8)
    ax.set_xlim(0, end_s)
    ax.set_ylabel("score", fontsize=7)
    ax.set_xlabel("time (s)", fontsize=7)
    ax.tick_params(labelsize=6)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    _pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@torch.inference_mode()
def loop_figure(
    wave: np.ndarray,
    extractor: LoopSVDDFeatureExtractor,
    times: Sequence[float],
    scores: Sequence[float],
    threshold: float | None,
    time_curve: tuple[Sequence[float], Sequence[float]] | None = None,
) -> str:
    """PNG data URI: the loop's log-mel (the encoder's own front end) above its window scores and, when given,
    its time-resolved scores `(times, scores)` (`LoopSVDDOutput.time_scores`: where in the loop)."""
    plt = _pyplot()
    shown = np.pad(wave, (0, max(0, extractor.fft_window_size + 1 - len(wave))))  # a very short loop still frames
    log_mel = extractor.log_mel(torch.from_numpy(shown)[None], "htk" if extractor.fusion else "slaney")[0].numpy()
    duration = len(wave) / extractor.sampling_rate
    fig, (ax_mel, ax_score) = plt.subplots(
        2, 1, figsize=(5, 2.2), sharex=True, gridspec_kw={"height_ratios": [2.2, 1]}, layout="constrained"
    )
    ax_mel.imshow(log_mel.T, origin="lower", aspect="auto", extent=(0, duration, 0, log_mel.shape[1]), cmap="magma")
    ax_mel.set_yticks([])
    draw_time_scores(ax_score, times, scores, duration, threshold)
    if time_curve is not None:
        from ..figures import plot_time_scores

        twin = ax_score.twinx()
        plot_time_scores(twin, *time_curve, label="where", mark_peak=True)
        twin.tick_params(labelsize=6)
        twin.yaxis.label.set_fontsize(7)
    return _png(fig)


def pack_map(embeddings: np.ndarray, stray: np.ndarray, ranks: np.ndarray, scores: np.ndarray) -> str:
    """PNG data URI: the pack's embeddings on their first two principal components, strays marked by rank."""
    from sklearn.decomposition import PCA

    x = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    xy = PCA(n_components=2).fit_transform(x) if len(x) > 2 else np.zeros((len(x), 2))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
    sc = ax.scatter(xy[~stray, 0], xy[~stray, 1], c=np.log(scores[~stray]), cmap="viridis", s=18, label="fits")
    ax.scatter(xy[stray, 0], xy[stray, 1], marker="X", s=70, color=ANOMALY_COLOUR, label="stray")
    for i in np.flatnonzero(stray):
        ax.annotate(str(ranks[i]), xy[i], fontsize=7, xytext=(4, 4), textcoords="offset points")
    fig.colorbar(sc, ax=ax, label="log score")
    ax.set(xlabel="PC 1", ylabel="PC 2", title="The pack (PCA of the embeddings); strays marked by rank")
    ax.legend(fontsize=7)
    return _png(fig)


def audio_data_uri(wave: np.ndarray, sampling_rate: int) -> str:
    """The first PLAYER_SECONDS of a loop as an inline MP3 (mono, 64 kbit/s): ~8 kB per second of audio."""
    from torchcodec.encoders import AudioEncoder

    clip = torch.from_numpy(np.ascontiguousarray(wave[: int(PLAYER_SECONDS * sampling_rate)]))[None]
    encoded = AudioEncoder(clip, sample_rate=sampling_rate).to_tensor(
        "mp3", bit_rate=PLAYER_BIT_RATE, num_channels=1, sample_rate=PLAYER_SAMPLE_RATE
    )
    return "data:audio/mpeg;base64," + base64.b64encode(encoded.numpy().tobytes()).decode()


_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1200px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:4px;font-size:13px;
vertical-align:middle;text-align:left}tr.stray{background:#fbeaea}.warn{color:#a00;font-weight:bold}
img.spec{width:360px}audio{width:220px}"""


def _row_html(row: dict[str, Any], media: dict[str, str] | None) -> str:
    cls = ' class="stray"' if row["verdict"] == "stray" else ""
    player = f'<audio controls preload="none" src="{media["audio"]}"></audio>' if media and "audio" in media else ""
    spec = f'<img class="spec" src="{media["figure"]}" alt="spectrogram">' if media and "figure" in media else ""
    return (
        f"<tr{cls}><td>{row['rank']}</td><td>{html.escape(row['file'])}</td><td>{row['score']:.3f}</td>"
        f"<td>{row['percentile']:.0f}</td><td>{row['verdict']}</td><td>{html.escape(row.get('reason', ''))}</td>"
        f"<td>{'' if row.get('duplicate_group') is None else row['duplicate_group']}</td>"
        f"<td>{player}</td><td>{spec}</td></tr>"
    )


def duplicates_html(groups: list[dict[str, Any]]) -> str:
    """The near-duplicates section: each group's files, the one to keep, and how its copies differ."""
    items = []
    for g in groups:
        said = "".join(f"<li>{html.escape(x)}</li>" for x in g["explained"])
        files = ", ".join(html.escape(f) for f in g["files"])
        items.append(f"<li>group {g['group']}: {files}; keep <b>{html.escape(g['keep'])}</b><ul>{said}</ul></li>")
    note = (
        "Same audio re-encoded, trimmed, resampled or gain-changed (a log-mel fingerprint matched at every "
        "alignment; see docs/curation.md)."
    )
    return f"<h2>Near-duplicates ({len(groups)} groups)</h2><p>{note}</p><ul>{''.join(items) or '<li>none</li>'}</ul>"


def write_report(
    path: str | Path,
    summary: dict[str, Any],
    rows: list[dict[str, Any]],
    media: dict[int, dict[str, str]],
    map_uri: str,
) -> Path:
    """Write `report.html`: summary, warnings, the pack map, unreadable files, and the ranked table
    (`media[rank]` holds the inline audio / figure of the loops that have them)."""
    s = summary
    warnings = "".join(f'<p class="warn">{html.escape(w)}</p>' for w in s.get("warnings", []))
    unreadable = "".join(f"<li>{html.escape(e['file'])}: {html.escape(e['error'])}</li>" for e in s["unreadable"])
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Curation of {html.escape(s['input'])}</title>",
        f"<style>{_STYLE}</style></head><body><h1>Which loops do not fit?</h1>",
        f"<p>{html.escape(s['headline'])}</p>{warnings}",
        f"<p>{html.escape(s['method'])}</p>",
        f'<img src="{map_uri}" alt="map of the pack">',
        duplicates_html(s.get("duplicates", [])),
        f"<h2>Unreadable files ({len(s['unreadable'])})</h2><ul>{unreadable or '<li>none</li>'}</ul>",
        f"<h2>Ranking</h2><p>{html.escape(s['media_note'])}</p>",
        "<table><tr><th>rank</th><th>file</th><th>score</th><th>percentile</th><th>verdict</th><th>why</th>",
        "<th>duplicate group</th><th>listen</th>",
        "<th>spectrogram and score over time</th></tr>",
        *(_row_html(r, media.get(r["rank"])) for r in rows),
        "</table></body></html>",
    ]
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(parts))
    tmp.replace(path)
    return path


def library_page_name(page: int) -> str:
    return "report.html" if page == 1 else f"report-{page}.html"


def _pack_row_html(p: dict[str, Any]) -> str:
    name = html.escape(p["name"])
    if "skipped" in p:
        return f"<tr><td>{name}</td><td colspan='4'>not curated: {html.escape(p['skipped'])}</td></tr>"
    strays = ", ".join(html.escape(s) for s in p["top_strays"])
    return (
        f"<tr{' class=stray' if p['n_strays'] else ''}><td><a href='{html.escape(p['report'])}'>{name}</a></td>"
        f"<td>{p['n_loops']}</td><td>{p['n_strays']}</td><td>{p['n_unreadable']}</td><td>{strays}</td></tr>"
    )


def write_library_report(output_dir: Path, summary: dict[str, Any], packs: list[dict[str, Any]], per_page: int) -> int:
    """The library report: `report.html` (and `report-2.html`, ...: `per_page` packs each, most strays first)
    linking each pack's own report, then the duplicate groups across packs; returns the number of pages."""
    pages = max(1, -(-len(packs) // per_page))
    for page in range(1, pages + 1):
        links = " ".join(
            f"<a href='{library_page_name(q)}'>{q}</a>" if q != page else f"<b>{q}</b>" for q in range(1, pages + 1)
        )
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>Curation of {html.escape(summary['input'])}</title><style>{_STYLE}</style></head><body>",
            f"<h1>Which loops do not fit their pack?</h1><p>{html.escape(summary['headline'])}</p>",
            f"<p>{html.escape(summary['method'])}</p><p>pages: {links}</p>",
            "<table><tr><th>pack</th><th>loops</th><th>strays</th><th>unreadable</th><th>most out-of-place</th></tr>",
            *(_pack_row_html(p) for p in packs[(page - 1) * per_page : page * per_page]),
            "</table>",
            duplicates_html(summary["duplicates"]) if page == 1 else "",
            "</body></html>",
        ]
        path = output_dir / library_page_name(page)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("\n".join(parts))
        tmp.replace(path)
    return pages
