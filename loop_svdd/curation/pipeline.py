"""`curate_pack(pack, output_dir)` (what `curate` runs on each pack): rank the loops of an unlabelled folder
by how little they fit the rest.

1. every loop is decoded and embedded once per content (cached in ``output_dir/cache``: a rerun resumes);
2. every loop is scored by detectors that never trained on it (Deep SVDD, PCA and k-NN, each K-fold
   cross-fitted with trimming, combined on the pack's scale and averaged over fold seeds:
   :mod:`loop_svdd.curation.ranking`), its windows by the same fold detectors;
3. the ranking is written as CSV and JSON, the strays are named (a robust fence or a given fraction),
   ``report.html`` shows everything inline, and ``model/`` is a detector trained on the pack without its strays.
"""

from __future__ import annotations

import csv
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.decoding import decode_file
from ..engine.cache import CacheFolder, open_cache
from ..engine.stopwatch import Stopwatch
from ..models.encoders import build_model, describe_encoder, resolve_default_encoder
from ..models.model_io import write_json_atomic
from ..settings import CURATE
from .duplicates import describe_link, find_duplicates, fingerprint_files
from .pack import PackEmbeddings, PackError, embed_pack, list_pack
from .ranking import PackRanking, rank_pack
from .scoring import DEFAULT_FOLDS
from .verdicts import call_confidence, neighbour_ratio, reason, robust_z, rule_description, stray_verdicts

MIN_LOOPS = CURATE.min_loops  # below this a pack is too small to say what is typical; refused unless allow_small
ABSOLUTE_MIN_LOOPS = CURATE.absolute_min_loops  # cross-fitting cannot run on fewer, even with allow_small
MAX_MEDIA = CURATE.players  # loops with an inline player and spectrogram in the report (most out-of-place first)
RANKING_FIELDS = (
    "rank",
    "file",
    "score",
    "percentile",
    "verdict",
    "reason",
    "confidence",
    "robust_z",
    "duplicate_group",
    "window_scores",
)


@dataclass
class CurationResult:
    output_dir: Path
    rows: list[dict[str, Any]]  # ranked, most out-of-place first
    summary: dict[str, Any]
    media: dict[int, dict[str, str]] = field(default_factory=dict)  # rank -> inline audio / figure (data URIs)
    map_uri: str = ""  # the pack map (PNG data URI)

    @property
    def strays(self) -> list[str]:
        return [r["file"] for r in self.rows if r["verdict"] == "stray"]


def parse_contamination(value: str | float) -> str | float:
    """``"auto"`` or a fraction in [0, 0.5)."""
    if value == "auto":
        return "auto"
    try:
        fraction = float(value)
    except (TypeError, ValueError):
        raise PackError(f"contamination must be 'auto' or a fraction such as 0.05, got {value!r}") from None
    if not 0.0 <= fraction < 0.5:
        raise PackError(f"contamination must be in [0, 0.5), got {fraction}")
    return fraction


def check_size(n: int, allow_small: bool, folds: int) -> list[str]:
    """Refuse packs too small to judge (or warn, with allow_small); returns the warnings to show."""
    if n < max(ABSOLUTE_MIN_LOOPS, 2 * folds):
        raise PackError(f"only {n} readable loop(s): curation needs at least {max(ABSOLUTE_MIN_LOOPS, 2 * folds)}")
    if n >= MIN_LOOPS:
        return []
    message = f"only {n} readable loops: below {MIN_LOOPS}, what is 'typical' for this pack is guesswork"
    if not allow_small:
        raise PackError(f"{message}; add loops, or pass --allow-small to rank them anyway")
    return [f"WARNING: {message}; this ranking is not reliable."]


def stray_mask(pack: PackRanking, contamination: str | float) -> np.ndarray:
    """The loops called strays: by the calibrated rule (auto, :mod:`.verdicts`) or the top ``contamination``
    fraction."""
    if contamination == "auto":
        return stray_verdicts(pack.scores)
    k = int(np.ceil(float(contamination) * len(pack.scores)))
    mask = np.zeros(len(pack.scores), bool)
    mask[np.argsort(-pack.scores, kind="stable")[:k]] = True
    return mask


def ranking_rows(emb: PackEmbeddings, pack: PackRanking, stray: np.ndarray, root: Path) -> list[dict[str, Any]]:
    """One row per loop, most out-of-place first."""
    n, scores = len(emb.files), pack.scores
    order = np.argsort(-scores, kind="stable")
    z = robust_z(scores)
    near = neighbour_ratio(emb.clip)
    typical = max(float(np.median(scores)), 1e-12)
    bar = float(scores[stray].min()) / typical if stray.any() else None
    confidence = call_confidence(scores, stray)
    rows = []
    for rank, i in enumerate(order, 1):
        window_scores = pack.row_scores(int(i), emb.windows[i])
        verdict = "stray" if stray[i] else "fits"
        rows.append(
            {
                "rank": rank,
                "file": emb.files[i].relative_to(root).as_posix(),
                "score": float(scores[i]),
                "percentile": float(100.0 * np.sum(scores <= scores[i]) / n),
                "verdict": verdict,
                "reason": reason(verdict, float(scores[i]) / typical, float(near[i]), bar, float(confidence[i])),
                "confidence": float(confidence[i]),
                "robust_z": float(z[i]),
                "fold_seed_spread": float(pack.spread[i]),
                "neighbour_ratio": float(near[i]),
                "duplicate_group": None,
                "window_scores": [
                    {"start_s": float(t), "score": float(v)}
                    for t, v in zip(emb.window_start_s[i], window_scores, strict=True)
                ],
                "duration_s": float(emb.durations_s[i]),
                "trimmed_in_training": bool(pack.trimmed[i]),
                "path": str(emb.files[i]),
            }
        )
    return rows


def named_duplicate_groups(
    paths: Sequence[Path],
    names: list[str],
    rows: list[dict[str, Any]],
    keep_key: Callable[[int], Any],
    cache_dir: Path | CacheFolder | None = None,
) -> list[dict[str, Any]]:
    """Groups of near-duplicates among `paths` (:mod:`.duplicates`), shown by `names`: each with its files, the
    one to keep (the largest `keep_key(i)`) and every link in words; each row of `rows` (matched by its ``file``
    among `names`) gets ``duplicate_group`` (its group's number, or None). Fingerprints are kept in `cache_dir`
    by content (:mod:`.fingerprints`)."""
    groups = []
    for number, g in enumerate(find_duplicates(fingerprint_files(paths, cache_dir)), 1):
        files = [names[i] for i in g["members"]]
        keep = names[max(g["members"], key=keep_key)]
        links = [{**link, "a": names[link["a"]], "b": names[link["b"]]} for link in g["links"]]
        said = [describe_link(link, names) for link in g["links"]]
        groups.append({"group": number, "files": files, "keep": keep, "links": links, "explained": said})
    member = {f: g["group"] for g in groups for f in g["files"]}
    for r in rows:
        r["duplicate_group"] = member.get(r["file"])
    return groups


def duplicate_groups(
    emb: PackEmbeddings, root: Path, rows: list[dict[str, Any]], cache_dir: Path | CacheFolder | None = None
) -> list[dict[str, Any]]:
    """The pack's near-duplicate groups; the one to keep is the longest (then the largest file)."""
    names = [f.relative_to(root).as_posix() for f in emb.files]

    def longest_then_largest(i: int) -> tuple[float, int]:
        return emb.durations_s[i], emb.files[i].stat().st_size

    return named_duplicate_groups(emb.files, names, rows, longest_then_largest, cache_dir)


def write_csv_atomic(path: Path, header: Sequence[str], lines: Iterable[Sequence[Any]]) -> None:
    """Write a CSV table through a temporary file beside `path`, so a reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(lines)
    tmp.replace(path)


def write_rankings(output_dir: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """`ranking.json` (summary + rows) and `ranking.csv` (window scores as `start:score;...`)."""
    write_json_atomic(output_dir / "ranking.json", {**summary, "loops": rows})
    write_csv_atomic(output_dir / "ranking.csv", RANKING_FIELDS, (_csv_cells(r) for r in rows))


def _csv_cells(r: dict[str, Any]) -> list[Any]:
    windows = ";".join(f"{w['start_s']:g}:{w['score']:.6g}" for w in r["window_scores"])
    cells = [r["rank"], r["file"], f"{r['score']:.6g}", f"{r['percentile']:.1f}", r["verdict"], r["reason"]]
    group = "" if r["duplicate_group"] is None else r["duplicate_group"]
    return [*cells, f"{r['confidence']:.3f}", f"{r['robust_z']:.3f}", group, windows]


def export_strays(rows: list[dict[str, Any]], destination: str | Path) -> list[Path]:
    """Copy (never move) the strays into `destination`, keeping their paths inside the pack."""
    copied = []
    for r in rows:
        if r["verdict"] != "stray":
            continue
        target = Path(destination) / r["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(r["path"], target)
        copied.append(target)
    return copied


def train_pack_model(
    kept: list[Path], model_dir: Path, cache_dir: Path, encoder: str, seed: int, progress: bool, options: dict
):
    """`model/`: what `loop-svdd train` builds, on the loops that fit (a `save_to_disk` copy of their list;
    calibration on a split of them, nothing held out since the ranking already judged every loop), with the
    Deep SVDD `options` the ranking's detectors had (a `preset` among them picks the training settings)."""
    import datasets

    from ..detectors.deep_svdd import SVDDTrainingConfig
    from ..training.from_corpus import train_on_corpus

    corpus = cache_dir / "kept-loops"
    if corpus.exists():
        shutil.rmtree(corpus)
    ds = datasets.Dataset.from_dict({"audio": [str(p) for p in kept], "file_name": [p.name for p in kept]})
    ds.cast_column("audio", datasets.Audio()).save_to_disk(str(corpus))
    options = dict(options)
    return train_on_corpus(
        corpus,
        [],
        model_dir,
        encoder=encoder,
        training=SVDDTrainingConfig.from_preset(options.pop("preset", "tuned"), seed=seed),
        holdout_fraction=0.0,
        progress=progress,
        detector_options=options,
    )


def _no_players(err: Exception) -> bool:
    """Say once (stderr) that the report's rows keep their figures but get no audio players; False."""
    why = (str(err).strip().splitlines() or [type(err).__name__])[0]
    print(f"loop-svdd curate: warning: the report has no audio players: cannot encode MP3 ({why})", file=sys.stderr)
    return False


def _media(
    rows: list[dict[str, Any]], extractor, threshold: float | None, limit: int, model_dir: str | None = None
) -> dict[int, dict[str, str]]:
    """Inline audio and spectrogram + score figure for the `limit` most out-of-place loops; with the pack's
    `model_dir`, each figure also shows where in the loop it departs from the pack (its `time_scores`)."""
    from ..engine.detector import Detector
    from ..engine.scoring import score_waveforms
    from .report import audio_data_uri, loop_figure

    scorer = Detector.load(model_dir) if model_dir else None
    media, players = {}, True
    for r in rows[:limit]:
        wave = decode_file(r["path"], extractor.sampling_rate).waveform
        if wave is None:  # changed on disk since it was embedded
            continue
        times = [w["start_s"] for w in r["window_scores"]]
        scored = score_waveforms(scorer.model, scorer.extractor, [wave], extractor.sampling_rate)[0] if scorer else None
        curve = (scored.time_scores_s, scored.time_scores) if scored and scored.time_scores else None
        window_scores = [w["score"] for w in r["window_scores"]]
        item = {"figure": loop_figure(wave, extractor, times, window_scores, threshold, curve)}
        if players:
            try:
                item["audio"] = audio_data_uri(wave, extractor.sampling_rate)
            except RuntimeError as err:  # torchcodec's error for an FFmpeg without an MP3 encoder
                players = _no_players(err)
        media[r["rank"]] = item
    return media


def pack_summary(input_path: Path, emb: PackEmbeddings, pack: PackRanking, stray: np.ndarray, settings: dict) -> dict:
    n, n_stray = len(emb.files), int(stray.sum())
    rule = (
        rule_description()
        if settings["contamination"] == "auto"
        else f"the top {settings['contamination']:.0%} of the ranking"
    )
    return {
        "input": str(input_path),
        "n_loops": n,
        "n_strays": n_stray,
        "headline": f"{n_stray} of {n} loops do not fit this pack ({rule}); {len(emb.errors)} file(s) unreadable.",
        "method": (
            f"Each loop was scored by {', '.join(pack.members)} detectors that never trained on it: "
            f"{settings['folds']}-fold cross-fitting; a first pass ranked the pack, the top {pack.trim_fraction:.0%} "
            "were left out of every training fold, a second pass scored every loop; the detectors' scores were "
            f"combined on the pack's scale and averaged over {len(pack.repeats)} fold seeds. "
            "Score 1 = a typical loop of this pack."
        ),
        "unreadable": emb.errors,
        "trim_fraction": pack.trim_fraction,
        **settings,
    }


def refuse_writing_into(root: Path, *targets: str | Path | None) -> None:
    """A `PackError` when an output folder is the pack folder or inside it (the pack stays untouched)."""
    for target in targets:
        if target is not None and (
            Path(target).resolve() == root.resolve() or root.resolve() in Path(target).resolve().parents
        ):
            raise PackError(f"{target}: write outside the pack folder, so the pack stays untouched")


def media_note(max_media: int, n_rows: int) -> str:
    """The report's line on which loops have a player and a spectrogram."""
    from .report import PLAYER_SECONDS

    return (
        f"Players and spectrograms for the {min(max_media, n_rows)} most out-of-place loops "
        f"(audio: first {PLAYER_SECONDS:g} s, MP3 64 kbit/s) to keep the report small; every loop is in the table."
    )


def write_pack_report(
    output_dir: Path,
    emb: PackEmbeddings,
    pack: PackRanking,
    stray: np.ndarray,
    rows: list[dict[str, Any]],
    summary: dict[str, Any],
    extractor,
    max_media: int,
) -> tuple[dict[int, dict[str, str]], str]:
    """`report.html`: the pack map, then every row, the `max_media` first with a player and a figure;
    returns (media, map URI)."""
    from .report import pack_map, write_report

    threshold = min((r["score"] for r in rows if r["verdict"] == "stray"), default=None)
    ranks = np.empty(len(rows), int)
    ranks[np.argsort(-pack.scores, kind="stable")] = np.arange(1, len(rows) + 1)
    map_uri = pack_map(emb.clip, stray, ranks, pack.scores)
    media = _media(rows, extractor, threshold, max_media, summary.get("model"))
    write_report(output_dir / "report.html", summary, rows, media, map_uri)
    return media, map_uri


def curate_pack(
    input_path: str | Path,
    output_dir: str | Path,
    folds: int = DEFAULT_FOLDS,
    contamination: str | float = "auto",
    export_outliers: str | Path | None = None,
    encoder: str | None = None,
    seed: int = CURATE.seed,
    repeats: int = CURATE.repeats,
    allow_small: bool = False,
    train_model: bool = True,
    max_media: int = MAX_MEDIA,
    detector_options: dict[str, Any] | None = None,
    progress: bool = True,
    find_dupes: bool = True,
    cache_dir: str | Path | CacheFolder | None = None,
) -> CurationResult:
    """Rank every loop of the folder `input_path` by how little it fits; write the ranking, report and model
    into `output_dir` (see the module docstring). User files are only read (copied with `export_outliers`).
    `encoder=None`: the paper's encoder where it can be had, else the embedded default.
    `detector_options` go to the Deep SVDD detector and the model's training (e.g. `epochs`, `ensemble_size`).
    `repeats`: fold seeds the ranking is averaged over.
    `find_dupes`: list groups of near-duplicate loops (re-encoded, trimmed, resampled, gain-changed copies).
    `cache_dir`: where embeddings are cached by content (default `output_dir/cache`; a library shares one)."""
    contamination = parse_contamination(contamination)
    options = dict(detector_options or {})
    root, output_dir = Path(input_path), Path(output_dir)
    files = list_pack(root)
    refuse_writing_into(root, output_dir, export_outliers)
    output_dir.mkdir(parents=True, exist_ok=True)
    encoder, watch = encoder or resolve_default_encoder(), Stopwatch()
    with watch("load_encoder"):
        model, extractor = build_model(encoder)
    cache = open_cache(cache_dir or output_dir / "cache")
    with watch("embedding"):
        emb = embed_pack(model, extractor, files, cache, progress=progress)
    warnings = check_size(len(emb.files), allow_small, folds)
    with watch("rank"):
        pack = rank_pack(emb.clip, CURATE.members, folds, contamination, seed, repeats, {"deep_svdd": options})
        stray = stray_mask(pack, contamination)
        rows = ranking_rows(emb, pack, stray, root)
    with watch("duplicates"):
        duplicates = duplicate_groups(emb, root, rows, cache) if find_dupes else []
    settings = {"folds": folds, "repeats": repeats, "contamination": contamination, "seed": seed}
    summary = pack_summary(root, emb, pack, stray, {**settings, "encoder": describe_encoder(model.config)})
    summary.update(warnings=warnings, duplicates=duplicates, media_note=media_note(max_media, len(rows)))
    summary["headline"] += f" {len(duplicates)} group(s) of near-duplicates."
    write_rankings(output_dir, rows, summary)
    if train_model:
        with watch("model"):
            summary["model"] = train_on_kept(rows, output_dir, encoder, seed, progress, options)
    with watch("report"):
        media, map_uri = write_pack_report(output_dir, emb, pack, stray, rows, summary, extractor, max_media)
    if export_outliers is not None:
        summary["exported"] = [str(p) for p in export_strays(rows, export_outliers)]
    summary["seconds"] = {**watch, **{f"embedding.{k}": v for k, v in emb.seconds.items()}}
    summary["n_embedded"] = emb.n_embedded
    write_rankings(output_dir, rows, summary)
    return CurationResult(output_dir, rows, summary, media, map_uri)


def train_on_kept(
    rows: list[dict[str, Any]], output_dir: Path, encoder: str, seed: int, progress: bool, options: dict
) -> str:
    """``output_dir/model``, trained on the loops of `rows` that fit ([`train_pack_model`]); returns its path."""
    kept = [Path(r["path"]) for r in rows if r["verdict"] != "stray"]
    train_pack_model(kept, output_dir / "model", output_dir / "cache", encoder, seed, progress, options)
    return str(output_dir / "model")
