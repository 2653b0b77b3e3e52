"""Loop-length excerpts of recorded music (game soundtracks from Debian `*-music` packages) as an audiofolder
corpus: broader, real training audio for encoder pretraining and an out-of-domain evaluation source.

Each track gives `per_track` excerpts of `seconds` (seeded start times), decoded to 48 kHz mono by FFmpeg and
written as FLAC with a ``metadata.csv`` in the columns of the loop corpus (``source_kind`` = ``game-music``,
``source`` = the game, ``instrument`` = ``music``).
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from .build import AUDIO_DIR, COLUMNS, _prepare
from .render import SAMPLE_RATE
from .sources import GAME_MUSIC, CorpusError, find_game_music, refuse_reserved

SOURCE_KIND = "game-music"
SILENT_RMS = 1e-3  # excerpts quieter than this (fade-ins, pauses) are skipped


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise CorpusError("ffmpeg is not installed: apt-get install ffmpeg")
    return exe


def track_duration(path: Path) -> float:
    """Length of an audio file in seconds (FFprobe), 0 when it cannot be read."""
    probe = shutil.which("ffprobe") or "ffprobe"
    out = subprocess.run(
        [probe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        return float(out.stdout.strip())
    except ValueError:
        return 0.0


def decode_excerpt(path: Path, start_s: float, seconds: float) -> np.ndarray:
    """`seconds` of `path` from `start_s`, mono float32 at 48 kHz."""
    cmd = [_ffmpeg(), "-v", "error", "-ss", f"{start_s:.3f}", "-t", f"{seconds:.3f}", "-i", str(path)]
    cmd += ["-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"]
    out = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    if out.returncode != 0:
        raise CorpusError(f"{path}: ffmpeg could not decode it ({out.stderr.decode(errors='replace').strip()[:200]})")
    return np.frombuffer(out.stdout, dtype=np.float32)


def _row(game: str, track: Path, start_s: float, audio: np.ndarray, index: int, seed: int) -> dict[str, object]:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{game}-{track.stem}").strip("-").lower()
    ident = hashlib.sha1(f"{game}/{track.name}@{start_s:.3f}+{audio.size}".encode()).hexdigest()[:16]
    row: dict[str, object] = dict.fromkeys(COLUMNS, "")
    row.update(
        file_name=f"{AUDIO_DIR}/{index:05d}_{slug}.flac",
        instrument="music",
        source_kind=SOURCE_KIND,
        source=game,
        program_family=track.stem,
        duration_s=round(audio.size / SAMPLE_RATE, 4),
        licence=GAME_MUSIC[game][3],
        seed=seed,
        style=f"{track.name}@{start_s:.1f}s",
        content_id=ident,
    )
    return row


def build_excerpt_corpus(
    out_dir: str | Path,
    games: Sequence[str] | None = None,
    per_track: int = 2,
    seconds: tuple[float, float] = (4.0, 8.0),
    max_tracks: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    append: bool = False,
) -> Path:
    """Write an audiofolder corpus of game-music excerpts to `out_dir` (deterministic for `seed`); `max_tracks`
    caps the tracks taken per game (seeded choice). `append` adds them to the corpus already in `out_dir` (e.g.
    one from :func:`~loop_svdd.corpus.build_corpus`), so that a pretraining corpus draws from both."""
    if per_track < 1 or not 0 < seconds[0] <= seconds[1]:
        raise CorpusError(f"need per_track >= 1 and 0 < seconds[0] <= seconds[1], got {per_track}, {seconds}")
    out = Path(out_dir)
    rows: list[dict[str, object]] = []
    if append:
        if not (out / "metadata.csv").is_file():
            raise CorpusError(f"{out} holds no corpus (no metadata.csv) to append to")
        with open(out / "metadata.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    else:
        _prepare(out, overwrite)
    added = _write_excerpts(out, games, per_track, seconds, max_tracks, seed, len(rows))
    if not added:
        raise CorpusError("no excerpt could be taken (tracks too short or silent)")
    with open(out / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows + added)
    return out


def _write_excerpts(
    out: Path,
    games: Sequence[str] | None,
    per_track: int,
    seconds: tuple[float, float],
    max_tracks: int | None,
    seed: int,
    first_index: int,
) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="loop-svdd-tracks-") as unpacked:
        for game, tracks in find_game_music(list(games) if games else None, Path(unpacked)).items():
            if max_tracks is not None and len(tracks) > max_tracks:
                tracks = [tracks[i] for i in sorted(rng.choice(len(tracks), max_tracks, replace=False))]
            rows += _game_excerpts(out, game, tracks, rng, per_track, seconds, seed, first_index + len(rows))
    return rows


def _game_excerpts(
    out: Path,
    game: str,
    tracks: list[Path],
    rng: np.random.Generator,
    per_track: int,
    seconds: tuple[float, float],
    seed: int,
    first_index: int,
) -> list[dict[str, object]]:
    """Write `per_track` excerpts (seeded lengths and starts) of each of `tracks` and return their rows."""
    rows: list[dict[str, object]] = []
    for track in tracks:
        refuse_reserved(track)
        length = track_duration(track)
        for _ in range(per_track):
            dur = float(rng.uniform(*seconds))
            if length < dur + 1.0:
                continue
            start = float(rng.uniform(0.0, length - dur))
            audio = decode_excerpt(track, start, dur)
            if audio.size < SAMPLE_RATE or float(np.sqrt(np.mean(audio**2))) < SILENT_RMS:
                continue
            row = _row(game, track, start, audio, first_index + len(rows), seed)
            sf.write(out / str(row["file_name"]), audio, SAMPLE_RATE, subtype="PCM_24", format="FLAC")
            rows.append(row)
    return rows
