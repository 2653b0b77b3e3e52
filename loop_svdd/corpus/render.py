"""Rendering loops to mono 48 kHz audio: FluidSynth (one long MIDI per batch, then slicing), Hydrogen kit
one-shots mixed at a groove's onsets, and Sonic Pi recordings resampled (with varispeed) and tiled.

Every loop is exactly ``bars * 4`` beats long; sound ringing past the loop end is folded back onto its start,
as when the loop plays on repeat. Output is peak-normalised to -1 dBFS; silent loops come back as ``None``.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from ..settings import SAMPLING_RATE
from . import midi
from .compose import DRUM_ROLES, Note
from .sources import Kit, load_kit

SAMPLE_RATE = SAMPLING_RATE
TAIL_S = 2.5  # how long sound may ring past a loop's end (folded onto its start)
PEAK = 10 ** (-1 / 20)  # -1 dBFS
MIN_RMS = 1e-3  # below this (-60 dBFS) a rendered loop counts as silent


@dataclass(frozen=True)
class LoopSpec:
    """Everything needed to render one loop, and its metadata."""

    index: int
    instrument: str
    source_kind: str  # soundfont | drumkit | recording
    source: str
    program: int
    program_family: str
    bpm: float
    key: str
    bars: int
    style: str
    licence: str
    notes: tuple[Note, ...] = ()
    path: str = ""  # the .sf2, the kit folder or the recording
    bank: int = 0
    rate: float = 1.0  # recordings: playback speed
    repeats: int = 1  # recordings: times the (varispeed) recording is tiled
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def n_samples(self) -> int:
        return round(self.bars * 4 * 60 / self.bpm * SAMPLE_RATE)


def fold_tail(audio: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` samples with everything after them added back from the start, cyclically."""
    out = np.zeros(n, dtype=np.float64)
    for k in range(0, len(audio), n):
        seg = audio[k : k + n]
        out[: len(seg)] += seg
    return out


def finish(audio: np.ndarray) -> np.ndarray | None:
    """Peak-normalise to -1 dBFS as float32, or ``None`` if the loop is (nearly) silent."""
    audio = np.asarray(audio, dtype=np.float64)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < 1e-4 or float(np.sqrt(np.mean(audio**2))) / peak < MIN_RMS:
        return None
    return (audio * (PEAK / peak)).astype(np.float32)


def resample(audio: np.ndarray, sr_in: float, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling ``sr_in -> sr_out`` (a rational approximation of the ratio)."""
    ratio = Fraction(sr_out / sr_in).limit_denominator(2000)
    if ratio == 1:
        return audio
    return resample_poly(audio, ratio.numerator, ratio.denominator)


def _to_mono(audio: np.ndarray) -> np.ndarray:
    return audio.mean(axis=1) if audio.ndim == 2 else audio


# --- FluidSynth -------------------------------------------------------------------------------------------


def _midi_events(spec: LoopSpec, t0: float) -> list[midi.MidiEvent]:
    drums = spec.instrument == "drums"
    ch = 9 if drums else 0
    spb = 60.0 / spec.bpm
    end = t0 + spec.n_samples / SAMPLE_RATE
    events = [midi.control(t0, ch, 121, 0)]
    if not drums:  # channel 10 (index 9) plays bank-128 drum kits by itself
        events.append(midi.control(t0, ch, 0, spec.bank))
    events += [
        midi.program_change(t0, ch, max(spec.program, 0)),
        midi.control(t0, ch, 7, 110),
        midi.control(t0, ch, 10, 64),
    ]
    start = t0 + 0.05  # after the program change
    for note in spec.notes:
        on = start + note.start * spb
        off = min(start + (note.start + note.dur) * spb, end + 0.05)
        if on < end + 0.05:
            events += [midi.note_on(on, ch, note.pitch, note.velocity), midi.note_off(off, ch, note.pitch)]
    stop = end + 0.05 + TAIL_S
    events += [midi.control(stop, ch, 120, 0), midi.control(stop, ch, 123, 0)]
    return events


def render_soundfont_batch(fluidsynth: str, specs: list[LoopSpec]) -> list[np.ndarray | None]:
    """Render loops (all of one soundfont) with one FluidSynth call on one long MIDI file, then slice."""
    starts, events, t = [], [], 0.0
    for spec in specs:
        starts.append(t)
        events += _midi_events(spec, t)
        t = math.ceil(t + spec.n_samples / SAMPLE_RATE + TAIL_S + 0.5)
    with tempfile.TemporaryDirectory(prefix="loop-svdd-fs-") as tmp:
        mid, wav = Path(tmp) / "batch.mid", Path(tmp) / "batch.wav"
        midi.write_smf(mid, events, end_s=t + 0.5)
        cmd = [fluidsynth, "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(SAMPLE_RATE)]
        cmd += ["-O", "float", "-T", "wav", "-o", "synth.polyphony=512", "-F", str(wav), specs[0].path, str(mid)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not wav.is_file():
            raise RuntimeError(f"fluidsynth failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
        audio = _to_mono(sf.read(wav, dtype="float64", always_2d=True)[0])
    out = []
    for spec, t0 in zip(specs, starts, strict=True):
        a = round((t0 + 0.05) * SAMPLE_RATE)
        chunk = audio[a : a + spec.n_samples + round(TAIL_S * SAMPLE_RATE)]
        out.append(finish(fold_tail(chunk, spec.n_samples)))
    return out


# --- Hydrogen drum kits -----------------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _one_shot(path: str) -> np.ndarray:
    audio, sr = sf.read(path, dtype="float64", always_2d=True)
    return resample(_to_mono(audio), sr)


@lru_cache(maxsize=32)
def _kit(path: str) -> Kit:
    return load_kit(Path(path))


def render_drumkit(spec: LoopSpec) -> np.ndarray | None:
    """Mix the kit's one-shots at the groove's onsets (velocity picks the layer and sets the gain)."""
    kit = _kit(spec.path)
    spb = 60.0 / spec.bpm
    n = spec.n_samples
    out = np.zeros(n + round(TAIL_S * SAMPLE_RATE))
    for note in spec.notes:
        role = DRUM_ROLES.get(note.pitch, "snare")
        layers = kit.roles.get(role) or kit.roles["snare"]
        v = note.velocity / 127
        layer = next((x for x in layers if x.low <= v <= x.high), layers[-1])
        shot = _one_shot(str(layer.path))
        start = round(note.start * spb * SAMPLE_RATE)
        if start >= n:
            continue
        seg = shot[: len(out) - start] * (layer.gain * v**1.5)

        out[start : start + len(seg)] += seg
    return finish(fold_tail(out, n))


# --- Sonic Pi recordings ----------------------------------------------------------------------------------


def render_recording(spec: LoopSpec) -> np.ndarray | None:
    """Resample the recording to 48 kHz at ``spec.rate`` speed, tile it ``spec.repeats`` times, fit the length."""
    audio, sr = sf.read(spec.path, dtype="float64", always_2d=True)
    one = resample(_to_mono(audio), sr * spec.rate)
    tiled = np.tile(one, spec.repeats)
    n = spec.n_samples
    if len(tiled) < n:
        tiled = np.pad(tiled, (0, n - len(tiled)))
    return finish(tiled[:n])


def render_batch(fluidsynth: str, specs: list[LoopSpec]) -> list[np.ndarray | None]:
    """Render loops of one source kind (soundfont batches must share one soundfont)."""
    kind = specs[0].source_kind
    if kind == "soundfont":
        return render_soundfont_batch(fluidsynth, specs)
    if kind == "drumkit":
        return [render_drumkit(s) for s in specs]
    return [render_recording(s) for s in specs]
