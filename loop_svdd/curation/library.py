"""Curating a library: a folder of packs. Each pack is curated within itself (:func:`.pipeline.curate_pack`, into
``OUTPUT_DIR/packs/<pack>``), near-duplicates are found across the whole library, and one library report indexes
the packs by stray count (paged), with ``ranking.csv`` / ``ranking.json`` holding every loop and its ``pack``.

Which folders are packs (``packs``):

- ``"auto"``: a folder is split into its sub-folders while it holds no audio file of its own and at least two of
  its sub-folders hold audio; otherwise it is one pack (so ``Library/Vendor/Pack/`` nests to any depth);
- ``"none"``: the whole folder is one pack;
- an integer ``N``: the folders ``N`` levels below the library are the packs (files above them are listed).

A killed run resumes: a pack whose curation finished (``.done.json`` beside its ranking, with the same settings and
files) is read back; the others embed only what the library's content cache (``OUTPUT_DIR/cache``) lacks, so a
file moved between packs or copied into two is embedded once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..audio.decode import find_audio_files
from ..engine.cache import CacheFolder
from ..engine.stopwatch import Stopwatch
from ..models.encoders import resolve_default_encoder
from ..models.model_io import write_json_atomic
from ..settings import CURATE
from .fingerprints import fingerprint_files
from .pack import PackError
from .pipeline import (
    CurationResult,
    curate_pack,
    export_strays,
    named_duplicate_groups,
    parse_contamination,
    refuse_writing_into,
    write_csv_atomic,
)
from .processes import curate_in_processes, resolve_jobs

PACKS_PER_PAGE = 200  # packs per page of the library index, so it opens fast at any size
DONE = ".done.json"  # beside a finished pack's ranking: its settings and files
LIBRARY_FIELDS = ("pack", "rank", "file", "score", "percentile", "verdict", "reason", "confidence", "duplicate_group")


@dataclass
class LibraryResult:
    output_dir: Path
    packs: list[dict[str, Any]]  # per pack: name, n_loops, n_strays, report (or skipped: why)
    rows: list[dict[str, Any]]  # every ranked loop of every pack, with "pack"; in pack order, then rank
    summary: dict[str, Any]

    @property
    def strays(self) -> list[str]:
        return [r["file"] for r in self.rows if r["verdict"] == "stray"]


def curate(
    input_path: str | Path,
    output_dir: str | Path,
    packs: str | int = "auto",
    pack_models: bool = False,
    **options: Any,
) -> CurationResult | LibraryResult:
    """`loop-svdd curate`: rank the loops of the folder `input_path` by how little they fit. A folder of packs
    (`packs`, see the module docstring) is a library: every pack is curated within itself and a
    :class:`LibraryResult` comes back (each pack's `model/` only with `pack_models`: one per pack costs a training
    run each); one pack gives a :class:`~.pipeline.CurationResult`. `options` are those
    of :func:`~.pipeline.curate_pack` (folds, contamination, export_outliers, encoder, seed, repeats, allow_small,
    train_model, max_media, detector_options, progress, find_dupes); `max_media` None or left out: players for
    :data:`CURATE.players` loops of a pack, :data:`CURATE.library_players` of each pack of a library. `jobs`: curate
    in that many processes on this machine first (``"auto"``: one per core for a library;
    [`loop_svdd.curation.processes.curate_in_processes`]), same result as one."""
    root, share = Path(input_path), options.pop("share", (0, 1))  # share: see curate_library
    jobs, found = options.pop("jobs", 1), options.pop("found", None)  # found: a share's packs, as its run found them
    if "contamination" in options:
        options["contamination"] = parse_contamination(options["contamination"])
    pack_dirs, outside = found or find_packs(root, packs)
    one_pack = pack_dirs == [root] and not outside
    if share == (0, 1) and (n := resolve_jobs(jobs, one_pack, len(pack_dirs))) > 1:
        refuse_writing_into(root, output_dir, options.get("export_outliers"))
        curate_in_processes(
            root, Path(output_dir), n, packs, (pack_dirs, outside), {**options, "pack_models": pack_models}
        )
    if options.get("max_media") is None:  # a library's pack pages: players for each pack's most out-of-place
        options["max_media"] = CURATE.players if one_pack else CURATE.library_players
    if one_pack:
        return curate_pack(root, output_dir, **options)
    options["train_model"] = pack_models and options.get("train_model", True)
    options["encoder"] = options.get("encoder") or resolve_default_encoder()  # said once, not once per pack
    return curate_library(root, output_dir, pack_dirs, outside, share=share, **options)


def parse_packs(value: str | int) -> str | int:
    """``"auto"``, ``"none"`` or a depth >= 1 (``--packs``)."""
    if value in ("auto", "none"):
        return value
    try:
        depth = int(value)
    except (TypeError, ValueError):
        raise PackError(f"--packs must be auto, none or a folder depth such as 1, got {value!r}") from None
    if depth < 1:
        raise PackError(f"--packs depth must be >= 1, got {depth}")
    return depth


def _audio_folders(root: Path, files: Sequence[Path]) -> tuple[set[Path], set[Path]]:
    """(folders holding audio files directly, folders holding audio at any depth), inside `root`."""
    direct = {f.parent for f in files}
    anywhere = {p for f in files for p in f.parents if p == root or root in p.parents}
    return direct, anywhere


def _split(folder: Path, direct: set[Path], anywhere: set[Path]) -> list[Path]:
    subs = sorted(p for p in anywhere if p.parent == folder and p != folder)
    if folder in direct or len(subs) < 2:
        return [folder]
    return [pack for sub in subs for pack in _split(sub, direct, anywhere)]


def find_packs(root: str | Path, packs: str | int = "auto") -> tuple[list[Path], list[Path]]:
    """(the pack folders of the library `root`, the audio files in no pack): see the module docstring."""
    root = Path(root)
    packs = parse_packs(packs)
    files = find_audio_files([root]) if root.is_dir() else []
    if packs == "none" or not files:
        return [root], []
    direct, anywhere = _audio_folders(root, files)
    if packs == "auto":
        return _split(root, direct, anywhere), []
    found = sorted(p for p in anywhere if len(p.relative_to(root).parts) == packs)
    outside = [f for f in files if len(f.relative_to(root).parts) <= packs]
    if not found:
        raise PackError(f"{root}: no folders {packs} level(s) below it hold audio; try --packs auto")
    return found, outside


def pack_name(root: Path, pack: Path) -> str:
    return pack.relative_to(root).as_posix() or "."


def _signature(pack: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """What a finished pack's curation depended on: the settings and every file's name, size and mtime."""
    files = [[f.relative_to(pack).as_posix(), f.stat().st_size, f.stat().st_mtime_ns] for f in find_audio_files([pack])]
    return {"settings": settings, "files": files}


def curate_one_pack(pack: Path, out: Path, settings: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """The pack's ranking.json (curated now, or read back when it finished before with the same inputs: then
    marked ``"read_back": True``)."""
    signature = _signature(pack, settings)
    done = out / DONE
    if done.is_file() and json.loads(done.read_text()) == signature and (out / "ranking.json").is_file():
        return {**json.loads((out / "ranking.json").read_text()), "read_back": True}
    curate_pack(pack, out, find_dupes=False, **options)
    write_json_atomic(done, signature)
    return json.loads((out / "ranking.json").read_text())


def library_rows(root: Path, pack: Path, ranking: dict[str, Any]) -> list[dict[str, Any]]:
    """A pack's ranked rows for the library: `file` relative to the library, `pack` its pack's name."""
    name = pack_name(root, pack)
    keep = ("rank", "score", "percentile", "verdict", "reason", "confidence", "path")
    return [
        {"pack": name, **{k: r[k] for k in keep}, "file": Path(r["path"]).relative_to(root).as_posix()}
        for r in ranking["loops"]
    ]


def library_duplicates(rows: list[dict[str, Any]], cache_dir: Path | CacheFolder) -> list[dict[str, Any]]:
    """Near-duplicate groups across the whole library, each with the `packs` it spans; each row gets
    ``duplicate_group`` (number or None); the one to keep is the largest file. Fingerprints are kept in
    `cache_dir` by content."""
    paths = [Path(r["path"]) for r in rows]
    names = [r["file"] for r in rows]
    groups = named_duplicate_groups(paths, names, rows, lambda i: paths[i].stat().st_size, cache_dir)
    pack_of = {r["file"]: r["pack"] for r in rows}
    for g in groups:
        g["packs"] = sorted({pack_of[f] for f in g["files"]})
    return groups


def write_library_rankings(output_dir: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """`ranking.json` (summary, packs and rows) and `ranking.csv` (one row per loop, with its pack)."""
    write_json_atomic(output_dir / "ranking.json", {**summary, "loops": rows})
    lines = (
        [r["pack"], r["rank"], r["file"], f"{r['score']:.6g}", f"{r['percentile']:.1f}", r["verdict"], r["reason"]]
        + [f"{r['confidence']:.3f}", "" if r.get("duplicate_group") is None else r["duplicate_group"]]
        for r in rows
    )
    write_csv_atomic(output_dir / "ranking.csv", LIBRARY_FIELDS, lines)


def pack_entry(root: Path, pack: Path, ranking: dict[str, Any]) -> dict[str, Any]:
    """A pack's line in the library index."""
    strays = [Path(r["file"]).name for r in ranking["loops"] if r["verdict"] == "stray"]
    return {
        "name": pack_name(root, pack),
        "n_loops": ranking["n_loops"],
        "n_strays": ranking["n_strays"],
        "n_unreadable": len(ranking["unreadable"]),
        "top_strays": strays[:5],
        "report": f"packs/{pack_name(root, pack)}/report.html",  # relative to the library's output folder
        "warnings": ranking.get("warnings", []),
    }


def curate_library(
    root: str | Path,
    output_dir: str | Path,
    pack_dirs: Sequence[Path],
    outside: Sequence[Path] = (),
    find_dupes: bool = True,
    export_outliers: str | Path | None = None,
    progress: bool = True,
    share: tuple[int, int] = (0, 1),
    **options: Any,
) -> LibraryResult:
    """Curate every pack in `pack_dirs` (:func:`find_packs`) within itself (`options` go to
    :func:`.pipeline.curate_pack`), find
    near-duplicates across the library and write the library report; packs that cannot be curated (too small,
    nothing readable) are listed with the reason. Files in the library are only read.
    `share` (process k, of N > 1): curate only every N-th pack from the k-th and store its loops' fingerprints,
    writing no library files ([`loop_svdd.curation.sharding`]: a run of the whole library then reads it back)."""
    root, output_dir = Path(root), Path(output_dir)
    refuse_writing_into(root, output_dir, export_outliers)
    output_dir.mkdir(parents=True, exist_ok=True)
    process, processes = share
    cache = CacheFolder(output_dir / "cache", process if processes > 1 else None)  # one for all packs, read once
    mine = list(pack_dirs)[process::processes]
    entries, rows, summary = curate_packs(root, output_dir, mine, cache, progress, options)
    if processes > 1:
        if find_dupes:
            fingerprint_files([r["path"] for r in rows], cache)
        return LibraryResult(output_dir, entries, rows, summary)
    summary = {**library_summary(root, entries, rows, outside), **summary}
    return finish_library(output_dir, summary, entries, rows, find_dupes, export_outliers, cache)


def curate_packs(
    root: Path, output_dir: Path, pack_dirs: Sequence[Path], cache: CacheFolder, progress: bool, options: dict
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(index entries, library rows, {"unreadable", "seconds"}) of curating each pack in `pack_dirs` (or
    reading it back, [`curate_one_pack`]) into ``output_dir/packs``."""
    settings = {k: v for k, v in options.items() if isinstance(v, str | int | float | bool | dict | type(None))}
    entries, rows, unreadable, watch = [], [], [], Stopwatch()
    for i, pack in enumerate(pack_dirs, 1):
        out = output_dir / "packs" / pack_name(root, pack)
        if progress:
            print(f"[pack {i}/{len(pack_dirs)}] {pack_name(root, pack)}", flush=True)
        try:
            shared = {"progress": progress, "cache_dir": cache}
            ranking = curate_one_pack(pack, out, settings, {**options, **shared})
        except PackError as err:
            entries.append({"name": pack_name(root, pack), "skipped": str(err).splitlines()[0]})
            continue
        entries.append(pack_entry(root, pack, ranking))
        rows += library_rows(root, pack, ranking)
        watch.add({} if ranking.get("read_back") else {f"packs.{k}": v for k, v in ranking["seconds"].items()})
        unreadable += [{**e, "file": Path(e["file"]).relative_to(root).as_posix()} for e in ranking["unreadable"]]
    return entries, rows, {"unreadable": unreadable, "seconds": watch}


def library_summary(
    root: Path, entries: list[dict[str, Any]], rows: list[dict[str, Any]], outside: Sequence[Path]
) -> dict[str, Any]:
    curated = [e for e in entries if "skipped" not in e]
    n_strays = sum(e["n_strays"] for e in curated)
    return {
        "input": str(root),
        "n_packs": len(curated),
        "n_loops": len(rows),
        "n_strays": n_strays,
        "headline": (
            f"{n_strays} of {len(rows)} loops do not fit their pack, in {len(curated)} packs"
            f" ({len(entries) - len(curated)} not curated: too small or unreadable);"
            f" {sum(e['n_unreadable'] for e in curated)} file(s) unreadable."
        ),
        "method": (
            "Each pack was curated within itself (its loops ranked against the rest of the same pack, as "
            "`loop-svdd curate PACK` does); near-duplicates were searched across the whole library."
        ),
        "outside_packs": [f.relative_to(root).as_posix() for f in outside],
    }


def finish_library(
    output_dir: Path,
    summary: dict[str, Any],
    entries: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    find_dupes: bool,
    export_outliers: str | Path | None,
    cache: CacheFolder | None = None,
) -> LibraryResult:
    """Duplicates across the library (fingerprints kept in `cache`, default ``output_dir/cache``), the library
    ranking and report, the exported strays."""
    from .report import write_library_report

    watch = summary.setdefault("seconds", Stopwatch())  # the packs' stages (those curated now), then these
    with watch("duplicates"):
        summary["duplicates"] = library_duplicates(rows, cache or output_dir / "cache") if find_dupes and rows else []
    summary["headline"] += f" {len(summary['duplicates'])} group(s) of near-duplicates across the library."
    entries.sort(key=lambda e: (-e.get("n_strays", -1), e["name"]))
    summary["packs"] = entries
    with watch("report"):
        write_library_rankings(output_dir, rows, summary)
        summary["pages"] = write_library_report(output_dir, summary, entries, PACKS_PER_PAGE)
    if export_outliers is not None:
        summary["exported"] = [str(p) for p in export_strays(rows, export_outliers)]
    write_library_rankings(output_dir, rows, summary)
    return LibraryResult(output_dir, entries, rows, summary)
