"""Build the corpus: plan, render in parallel, write FLAC + ``metadata.csv`` + dataset card."""

from __future__ import annotations

import csv
import math
import re
import shutil
import sys
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import soundfile as sf
from tqdm.auto import tqdm

from .card import write_card
from .plan import Planner, content_id
from .render import SAMPLE_RATE, LoopSpec, render_batch
from .sources import CorpusError, find_fluidsynth

COLUMNS = (
    "file_name",
    "instrument",
    "source_kind",
    "source",
    "program",
    "program_family",
    "bpm",
    "key",
    "bars",
    "duration_s",
    "licence",
    "seed",
    "style",
    "content_id",
)
AUDIO_DIR = "data"
MAX_ATTEMPTS = 3
SOUNDFONT_BATCH = 16  # loops per FluidSynth call
OTHER_BATCH = 8


def file_name(spec: LoopSpec) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", spec.source).strip("-").lower()
    return f"{AUDIO_DIR}/{spec.index:05d}_{spec.instrument}_{slug}.flac"


def render_and_write(fluidsynth: str, specs: list[LoopSpec], out_dir: str) -> list[int]:
    """Render a batch, write each non-silent loop as 24-bit FLAC; return the indices that came out silent."""
    silent = []
    for spec, audio in zip(specs, render_batch(fluidsynth, specs), strict=True):
        if audio is None:
            silent.append(spec.index)
            continue
        sf.write(Path(out_dir) / file_name(spec), audio, SAMPLE_RATE, subtype="PCM_24", format="FLAC")
    return silent


def _batches(specs: list[LoopSpec]) -> Iterator[list[LoopSpec]]:
    groups: dict[tuple[str, str], list[LoopSpec]] = {}
    for spec in specs:
        key = (spec.source_kind, spec.path if spec.source_kind == "soundfont" else "")
        groups.setdefault(key, []).append(spec)
    for (kind, _), group in groups.items():
        size = SOUNDFONT_BATCH if kind == "soundfont" else OTHER_BATCH
        n = math.ceil(len(group) / size)
        for i in range(n):
            yield group[i::n]


def _row(spec: LoopSpec, seed: int) -> dict[str, object]:
    return {
        "file_name": file_name(spec),
        "instrument": spec.instrument,
        "source_kind": spec.source_kind,
        "source": spec.source,
        "program": spec.program,
        "program_family": spec.program_family,
        "bpm": round(spec.bpm, 2),
        "key": spec.key,
        "bars": spec.bars,
        "duration_s": round(spec.n_samples / SAMPLE_RATE, 4),
        "licence": spec.licence,
        "seed": seed,
        "style": spec.style,
        "content_id": content_id(spec),
    }


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise CorpusError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise CorpusError(f"{out} exists and is not empty (pass --overwrite to replace a corpus there)")
        if not (out / "metadata.csv").is_file():
            raise CorpusError(f"{out} is not empty and holds no corpus (no metadata.csv): refusing to delete it")
        shutil.rmtree(out)
    (out / AUDIO_DIR).mkdir(parents=True, exist_ok=True)


def build_corpus(
    out_dir: str | Path,
    n_loops: int,
    seed: int,
    instruments: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    soundfonts: Sequence[str] | None = None,
    progress: bool = True,
    num_workers: int = 2,
    overwrite: bool = False,
) -> Path:
    """Write an ``audiofolder`` corpus of ``n_loops`` loops to ``out_dir`` and return its path.

    ``instruments`` keeps loops of those instruments (bass, guitar, keys, drums; recordings: drums, percussion,
    synth, fx); ``sources`` keeps loops whose source kind (soundfont, drumkit, recording) or source name
    (FluidR3_GM, TimGM6mb, a Hydrogen kit folder name, sonic-pi) is listed; ``soundfonts`` names the
    soundfonts (default FluidR3_GM and TimGM6mb) or gives ``.sf2`` paths. Deterministic for a ``seed``.
    """
    fluidsynth = find_fluidsynth()
    planner = Planner(seed, instruments, sources, soundfonts)
    out = Path(out_dir)
    _prepare(out, overwrite)
    pending = planner.plan(n_loops)
    done: dict[int, LoopSpec] = {}
    bar = tqdm(total=len(pending), desc="rendering loops", unit="loop", disable=not progress, file=sys.stderr)
    for attempt in range(MAX_ATTEMPTS):
        silent = set(_render_all(fluidsynth, pending, out, num_workers, bar))
        done.update({s.index: s for s in pending if s.index not in silent})
        pending = [planner.replan(s, attempt + 1) for s in pending if s.index in silent]
        if not pending:
            break
        bar.total += len(pending)
    bar.close()
    if pending:
        warnings.warn(f"{len(pending)} loops rendered silent {MAX_ATTEMPTS} times and were left out", stacklevel=2)
    rows = [_row(done[i], seed) for i in sorted(done)]
    with open(out / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    write_card(out, rows, planner, n_loops=n_loops, seed=seed, instruments=instruments, sources=sources)
    return out


def _render_all(fluidsynth: str, specs: list[LoopSpec], out: Path, num_workers: int, bar: tqdm) -> list[int]:
    batches = sorted(_batches(specs), key=lambda b: -sum(s.n_samples for s in b))
    silent: list[int] = []
    if num_workers <= 1 or len(batches) <= 1:
        for batch in batches:
            silent += render_and_write(fluidsynth, batch, str(out))
            bar.update(len(batch))
        return silent
    # Threads suffice: FluidSynth runs as a subprocess, and resampling and FLAC encoding release the GIL.
    with ThreadPoolExecutor(max_workers=num_workers) as pool:
        futures = {pool.submit(render_and_write, fluidsynth, b, str(out)): len(b) for b in batches}
        for future in as_completed(futures):
            silent += future.result()
            bar.update(futures[future])
    return silent
