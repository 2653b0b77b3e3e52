"""The broad audio set the default encoder is distilled on: every General MIDI program of four soundfonts, drum
grooves from the Hydrogen kits, Sonic Pi's recordings, excerpts of six game soundtracks, and processed copies and
mixes of them - all from Debian packages, none reserved. Sources kept out for the leave-sources-out measurement (never
rendered here): the OPL3 and csound soundfonts and the hyperrogue, singularity, asc and drascula soundtracks.

`build_distillation_corpus(out_dir, seed)` writes an audiofolder (FLAC + `metadata.csv`, the corpus columns) that
`loop-svdd pretrain-encoder --teacher` takes.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, resample_poly, sosfilt
from tqdm.auto import tqdm

from ..corpus import build_corpus, compose
from ..corpus.build import AUDIO_DIR, COLUMNS, _row, file_name
from ..corpus.excerpts import build_excerpt_corpus
from ..corpus.render import SAMPLE_RATE, LoopSpec, render_soundfont_batch
from ..corpus.sources import GM_FAMILIES, CorpusError, find_fluidsynth, refuse_reserved

# name -> (path, Debian package, licence)
TRAIN_SOUNDFONTS = {
    "FluidR3_GM": ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluid-soundfont-gm", "MIT"),
    "TimGM6mb": ("/usr/share/sounds/sf2/TimGM6mb.sf2", "timgm6mb-soundfont", "GPL-2.0-only"),
    "MuseScore_General": ("/usr/share/sounds/sf3/MuseScore_General.sf3", "musescore-general-soundfont", "MIT"),
    "FluidR3Mono_GM": ("/usr/share/sounds/sf3/FluidR3Mono_GM.sf3", "fluidr3mono-gm-soundfont", "MIT"),
}
TRAIN_GAMES = ("wesnoth", "planetblupi", "nexuiz", "ufoai", "supertux", "lincity-ng")
HELD_OUT_SOURCES = ("OPL3_FM", "sf_GMbank", "hyperrogue", "singularity", "asc", "drascula")
MELODIC_FAMILIES = {"Synth Lead", "Reed", "Pipe", "Brass", "Guitar", "Ethnic"}
DRUM_PROGRAMS = (0, 8, 16, 24, 25, 32, 40)
BATCH = 16


def _pattern(rng: np.random.Generator, program: int, bars: int) -> compose.Pattern:
    family = GM_FAMILIES[program // 8]
    if family == "Bass":
        return compose.bass_riff(rng, bars)
    if family in MELODIC_FAMILIES:
        return compose.guitar_riff(rng, bars)
    return compose.keys_part(rng, bars)


def gm_sweep_specs(name: str, seed: int, first_index: int, per_program: int) -> list[LoopSpec]:
    """`per_program` loops of every GM program (bank 0) and of the GM drum kits (bank 128) of soundfont `name`."""
    path, _package, licence = TRAIN_SOUNDFONTS[name]
    refuse_reserved(path)
    specs = []
    programs = [(0, p) for p in range(128)] + [(128, p) for p in DRUM_PROGRAMS]
    for bank, program in programs:
        for k in range(per_program):
            rng = np.random.default_rng([seed, bank, program, k, len(name)])
            bars, bpm = int(rng.choice([1, 2, 4])), float(rng.uniform(70, 170))
            drums = bank == 128
            pattern = compose.drum_groove(rng, bars) if drums else _pattern(rng, program, bars)
            specs.append(LoopSpec(
                index=first_index + len(specs), instrument="drums" if drums else "gm", source_kind="soundfont",
                source=name, program=program, program_family="Drum Kit" if drums else GM_FAMILIES[program // 8],
                bpm=bpm, key=pattern.key or "unpitched", bars=bars, style=pattern.style, licence=licence,
                notes=pattern.notes, path=path, bank=bank,
            ))  # fmt: skip
    return specs


def _append_rows(out: Path, rows: list[dict[str, object]]) -> None:
    with open(out / "metadata.csv", newline="", encoding="utf-8") as f:
        existing = list(csv.DictReader(f))
    with open(out / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(existing + rows)


def _n_rows(out: Path) -> int:
    with open(out / "metadata.csv", newline="", encoding="utf-8") as f:
        return sum(1 for _ in csv.DictReader(f))


def render_gm_sweep(out: Path, seed: int, per_program: int, progress: bool) -> int:
    """Render every training soundfont's GM sweep into `out` and append the rows; returns how many loops."""
    fluidsynth, rows = find_fluidsynth(), []
    for name, (path, package, _) in TRAIN_SOUNDFONTS.items():
        if not Path(path).is_file():
            raise CorpusError(f"soundfont {path} not found: apt-get install {package}")
        specs = gm_sweep_specs(name, seed, _n_rows(out) + len(rows), per_program)
        batches = [specs[i : i + BATCH] for i in range(0, len(specs), BATCH)]
        for batch in tqdm(batches, desc=f"GM sweep {name}", disable=not progress):
            for spec, audio in zip(batch, render_soundfont_batch(fluidsynth, batch), strict=True):
                if audio is not None:
                    sf.write(out / file_name(spec), audio, SAMPLE_RATE, subtype="PCM_24", format="FLAC")
                    rows.append(_row(spec, seed))
    _append_rows(out, rows)
    return len(rows)


def _process(audio: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One random processing of a clip: filter, pitch shift by resampling, level, or noise."""
    kind = str(rng.choice(["lowpass", "highpass", "pitch", "gain", "noise"]))
    if kind in ("lowpass", "highpass"):
        cutoff = float(rng.uniform(800, 4000) if kind == "lowpass" else rng.uniform(150, 800))
        sos = butter(4, cutoff, btype=kind, fs=SAMPLE_RATE, output="sos")
        return sosfilt(sos, audio), f"{kind} {cutoff:.0f} Hz"
    if kind == "pitch":
        up = int(rng.choice([-3, -2, -1, 1, 2, 3]))
        ratio = 2 ** (up / 12)
        return resample_poly(audio, 1000, round(1000 * ratio)), f"pitch {up:+d} st"
    if kind == "gain":
        db = float(rng.uniform(-15, -3))
        return audio * 10 ** (db / 20), f"gain {db:.1f} dB"
    snr = float(rng.uniform(20, 40))
    noise = rng.standard_normal(audio.size) * np.sqrt(np.mean(audio**2) / 10 ** (snr / 10))
    return audio + noise, f"noise {snr:.0f} dB SNR"


def _mix(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    db = float(rng.uniform(-9, 0))
    b = np.resize(b, a.size) * np.sqrt(np.mean(a**2) / max(np.mean(b**2), 1e-12)) * 10 ** (db / 20)
    return a + b, f"mix at {db:.1f} dB"


def add_derived(out: Path, seed: int, processed: float, mixed: float, progress: bool) -> int:
    """Append processed copies of a `processed` fraction of the clips and mixes of a `mixed` fraction of pairs."""
    with open(out / "metadata.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng([seed, 99])
    n = len(rows)
    jobs = [("proc", int(i), -1) for i in rng.choice(n, int(processed * n), replace=False)]
    jobs += [("mix", int(i), int(j)) for i, j in rng.choice(n, (int(mixed * n), 2))]
    new = []
    for kind, i, j in tqdm(jobs, desc="processed copies and mixes", disable=not progress):
        audio = sf.read(out / rows[i]["file_name"], dtype="float64")[0]
        if kind == "proc":
            audio, what = _process(audio, rng)
            source = rows[i]["source"]
        else:
            audio, what = _mix(audio, sf.read(out / rows[j]["file_name"], dtype="float64")[0], rng)
            source = f"{rows[i]['source']}+{rows[j]['source']}"
        audio = audio / max(1.0, float(np.abs(audio).max()) / 0.89)
        seconds = round(audio.size / SAMPLE_RATE, 4)
        row = {**rows[i], "source": source, "style": f"{kind}: {what}", "duration_s": seconds}
        row["content_id"] = hashlib.sha1(f"{row['content_id']}|{j}|{what}".encode()).hexdigest()[:16]
        row["file_name"] = f"{AUDIO_DIR}/{n + len(new):05d}_{kind}.flac"
        sf.write(out / row["file_name"], audio.astype(np.float32), SAMPLE_RATE, subtype="PCM_24", format="FLAC")
        new.append(row)
    _append_rows(out, new)
    return len(new)


def build_distillation_corpus(
    out_dir: str | Path,
    seed: int = 0,
    per_program: int = 2,
    drum_and_recording_loops: int = 300,
    excerpts_per_track: int = 4,
    processed: float = 0.15,
    mixed: float = 0.15,
    progress: bool = True,
    overwrite: bool = False,
    games: tuple[str, ...] = TRAIN_GAMES,
) -> Path:
    """Write the distillation audio set to `out_dir` (deterministic for `seed`) and return its path; `games`: the
    soundtracks excerpted (never a held-out one)."""
    held_out = sorted(set(games) & set(HELD_OUT_SOURCES))
    if held_out:
        raise CorpusError(f"{', '.join(held_out)}: kept out of distillation for the leave-sources-out measurement")
    kinds = ["drumkit", "recording"]
    out = build_corpus(out_dir, drum_and_recording_loops, seed, sources=kinds, progress=progress, overwrite=overwrite)
    render_gm_sweep(out, seed, per_program, progress)
    build_excerpt_corpus(out, games=games, per_track=excerpts_per_track, seconds=(4.0, 10.0), seed=seed,
                         append=True)  # fmt: skip
    add_derived(out, seed, processed, mixed, progress)
    return out
