"""Seeded musical generators: bass riffs in a key, guitar riffs and strums, keys, drum grooves.

Every generator takes a :class:`numpy.random.Generator` and returns a :class:`Pattern` whose notes are timed
in beats (quarter notes, 4/4). Drum patterns use General MIDI percussion note numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
PROGRESSIONS = {  # scale degrees (0 = tonic), one chord per bar
    "major": ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (0, 3, 0, 4), (5, 3, 0, 4), (0, 0, 3, 4)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (0, 0, 3, 4), (0, 5, 3, 4)),
}
# General MIDI percussion notes by role.
DRUM_NOTES = {
    "kick": 36,
    "rim": 37,
    "snare": 38,
    "clap": 39,
    "hat": 42,
    "pedal_hat": 44,
    "open_hat": 46,
    "tom_lo": 45,
    "tom_mid": 47,
    "tom_hi": 50,
    "crash": 49,
    "ride": 51,
}
DRUM_ROLES = {note: role for role, note in DRUM_NOTES.items()}
DRUM_STYLES = ("rock", "funk", "hiphop", "house", "halftime", "breakbeat", "shuffle")


@dataclass(frozen=True, order=True)
class Note:
    """A note: onset and length in beats, MIDI pitch, velocity 1..127."""

    start: float
    dur: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Pattern:
    """The notes of one loop, its key (``""`` for unpitched loops) and a style tag."""

    notes: tuple[Note, ...]
    key: str
    style: str


@dataclass(frozen=True)
class Key:
    """A key: tonic pitch class and mode."""

    tonic: int
    mode: str

    @property
    def name(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"

    def pitch(self, degree: int, tonic_midi: int) -> int:
        """MIDI pitch of a scale ``degree`` (any integer) above a tonic at ``tonic_midi``."""
        octave, step = divmod(degree, 7)
        return tonic_midi + 12 * octave + SCALES[self.mode][step]

    def triad(self, degree: int, tonic_midi: int, seventh: bool = False) -> list[int]:
        return [self.pitch(degree + i, tonic_midi) for i in ((0, 2, 4, 6) if seventh else (0, 2, 4))]


def random_key(rng: np.random.Generator) -> Key:
    return Key(int(rng.integers(12)), str(rng.choice(("major", "minor"))))


def _tonic_in(key: Key, low: int, high: int) -> int:
    """The MIDI pitch of the key's tonic in ``[low, low + 12)`` (``high`` is unused headroom)."""
    return low + (key.tonic - low) % 12


def _progression(rng: np.random.Generator, key: Key, bars: int) -> list[int]:
    options = PROGRESSIONS[key.mode]
    prog = options[int(rng.integers(len(options)))]
    return [prog[b % len(prog)] for b in range(bars)]


def _vel(rng: np.random.Generator, base: int, spread: int = 8) -> int:
    return int(np.clip(base + rng.integers(-spread, spread + 1), 1, 127))


def _steps(rng: np.random.Generator, density: float, eighths_only: bool = False) -> list[int]:
    """A 16-step onset grid: step 0 always, eighth positions favoured."""
    steps = [0]
    for s in range(1, 16):
        p = density * (1.6 if s % 4 == 0 else 1.0 if s % 2 == 0 else (0.0 if eighths_only else 0.45))
        if rng.random() < p:
            steps.append(s)
    return steps


def _legato(onsets: list[float], end: float, fraction: float) -> list[float]:
    nxt = onsets[1:] + [end]
    return [max(0.1, (b - a) * fraction) for a, b in zip(onsets, nxt, strict=True)]


def bass_riff(rng: np.random.Generator, bars: int, key: Key | None = None) -> Pattern:
    """A bass line on roots, fifths, octaves and approach notes over a diatonic progression."""
    key = key or random_key(rng)
    tonic = _tonic_in(key, 28, 40)
    prog = _progression(rng, key, bars)
    steps = _steps(rng, float(rng.uniform(0.2, 0.5)))
    fraction = float(rng.uniform(0.5, 0.95))
    onsets, pitches = [], []
    for bar, degree in enumerate(prog):
        nxt = prog[(bar + 1) % bars]
        for i, s in enumerate(steps):
            if s == 0:
                pitch = key.pitch(degree, tonic)
            elif i == len(steps) - 1 and rng.random() < 0.5:
                pitch = key.pitch(nxt + int(rng.choice((-1, 1))), tonic)
            else:
                choice = rng.choice(4, p=(0.45, 0.25, 0.15, 0.15))
                pitch = key.pitch(degree + (0, 4, 7, 2)[choice], tonic)
            onsets.append(bar * 4 + s / 4)
            pitches.append(pitch)
    durs = _legato(onsets, bars * 4.0, fraction)
    notes = tuple(
        Note(t, d, p, _vel(rng, 110 if (t * 4) % 4 == 0 else 92)) for t, d, p in zip(onsets, durs, pitches, strict=True)
    )
    return Pattern(notes, key.name, "riff")


def guitar_riff(rng: np.random.Generator, bars: int, key: Key | None = None, power: bool = False) -> Pattern:
    """A single-note (or power-chord) motif transposed diatonically to each bar's chord."""
    key = key or random_key(rng)
    tonic = _tonic_in(key, 52, 64) - (12 if power else 0)
    prog = _progression(rng, key, bars)
    steps = _steps(rng, float(rng.uniform(0.3, 0.6)), eighths_only=bool(rng.random() < 0.5))
    walk = np.cumsum(rng.choice((-2, -1, 0, 1, 2, 4), size=len(steps), p=(0.2, 0.25, 0.1, 0.25, 0.15, 0.05)))
    walk[0] = 0
    fraction = float(rng.uniform(0.4, 0.9))
    notes = []
    for bar, degree in enumerate(prog):
        onsets = [bar * 4 + s / 4 for s in steps]
        durs = _legato(onsets, bar * 4 + 4.0, fraction)
        for t, d, w in zip(onsets, durs, walk, strict=True):
            root = key.pitch(degree + int(np.clip(w, -3, 9)), tonic)
            vel = _vel(rng, 104 if (t * 4) % 4 == 0 else 88)
            for p in (root, root + 7, root + 12) if power else (root,):
                notes.append(Note(t, d, p, vel))
    return Pattern(tuple(notes), key.name, "power-riff" if power else "riff")


STRUMS = ("D.D.D.D.", "D.DU.UDU", "D..UD.DU", "D.DUDUDU", "D...D.DU", "DUDUDUDU")


def guitar_strum(rng: np.random.Generator, bars: int, key: Key | None = None) -> Pattern:
    """Strummed open-voiced chords: down strums low to high, up strums lighter, high to low."""
    key = key or random_key(rng)
    tonic = _tonic_in(key, 40, 52)
    prog = _progression(rng, key, bars)
    strum = STRUMS[int(rng.integers(len(STRUMS)))]
    spread = float(rng.uniform(0.02, 0.05))  # beats between strings
    notes = []
    for bar, degree in enumerate(prog):
        root = key.pitch(degree, tonic)
        third, fifth = key.pitch(degree + 2, tonic), key.pitch(degree + 4, tonic)
        voicing = [root, fifth, root + 12, third + 12, fifth + 12, root + 24]
        onsets = [bar * 4 + i / 2 for i, c in enumerate(strum) if c != "."]
        kinds = [c for c in strum if c != "."]
        durs = _legato(onsets, bar * 4 + 4.0, 0.95)
        for t, d, kind in zip(onsets, durs, kinds, strict=True):
            strings = voicing if kind == "D" else voicing[:1:-1]
            base = 100 if kind == "D" else 78
            for i, p in enumerate(strings):
                notes.append(Note(t + i * spread, max(0.1, d - i * spread), p, _vel(rng, base - 3 * i, 5)))
    return Pattern(tuple(notes), key.name, "strum")


def keys_part(rng: np.random.Generator, bars: int, key: Key | None = None) -> Pattern:
    """Voice-led block chords with a left-hand root, or a broken-chord arpeggio."""
    key = key or random_key(rng)
    tonic = _tonic_in(key, 48, 60)
    prog = _progression(rng, key, bars)
    seventh = bool(rng.random() < 0.4)
    arpeggio = bool(rng.random() < 0.4)
    comp = ((0.0, 4.0), (0.0, 2.0, 2.0, 2.0), (0.0, 1.5, 1.5, 1.0, 2.5, 1.5), (0.0, 1.0, 1.0, 1.0, 2.0, 1.0))
    rhythm = comp[int(rng.integers(len(comp)))]
    prev = 64.0
    notes = []
    for bar, degree in enumerate(prog):
        chord = key.triad(degree, tonic, seventh)
        # Voice-lead: choose the inversion whose mean is closest to the previous chord's.
        inversions = [
            sorted(p + 12 * (i < k) + o for i, p in enumerate(chord)) for k in range(len(chord)) for o in (-12, 0)
        ]
        chord = min(inversions, key=lambda c: abs(float(np.mean(c)) - prev))
        prev = float(np.mean(chord))
        t0 = bar * 4.0
        notes.append(Note(t0, 3.9, key.pitch(degree, tonic - 12), _vel(rng, 84)))
        if arpeggio:
            order = chord + [chord[0] + 12] if rng.random() < 0.5 else chord + chord[-2:0:-1]
            step = 0.5 if rng.random() < 0.6 else 0.25
            for i in range(int(4 / step)):
                notes.append(Note(t0 + i * step, step * 0.9, order[i % len(order)], _vel(rng, 86)))
        else:
            for start, length in zip(rhythm[::2], rhythm[1::2], strict=True):
                for p in chord:
                    notes.append(Note(t0 + start, length * 0.92, p, _vel(rng, 90 if start == 0 else 78, 6)))
    return Pattern(tuple(notes), key.name, "arpeggio" if arpeggio else "chords")


def drum_groove(rng: np.random.Generator, bars: int, style: str | None = None) -> Pattern:
    """A 16th-note drum groove in one of :data:`DRUM_STYLES`, with ghost notes, swing and an optional fill."""
    style = style or str(rng.choice(DRUM_STYLES))
    kick = {
        "rock": [0, 8],
        "funk": [0, 7, 10],
        "hiphop": [0, 3, 10],
        "house": [0, 4, 8, 12],
        "halftime": [0, 11],
        "breakbeat": [0, 10],
        "shuffle": [0, 8],
    }[style]
    kick += [s for s in (6, 14, 2, 13) if rng.random() < 0.2 and style != "house"]
    snare = [8] if style == "halftime" else [4, 12]
    hat_step = 1 if style in ("funk", "house") or rng.random() < 0.25 else 2
    hat_role = "ride" if rng.random() < 0.15 and style != "house" else "hat"
    swing = float(rng.uniform(0.05, 0.16)) if style in ("hiphop", "shuffle") else 0.0
    fill = bars >= 2 and rng.random() < 0.5
    ghosts = [s for s in range(16) if s % 2 == 1 and rng.random() < (0.25 if style == "funk" else 0.08)]

    def at(bar: int, step: int) -> float:
        return bar * 4 + step / 4 + (swing if step % 2 == 1 else 0.0)

    hits: list[tuple[float, str, int]] = []
    for bar in range(bars):
        last = fill and bar == bars - 1
        for s in range(0, 16, hat_step):
            if last and s >= 12:
                break
            if style == "house" and s % 4 == 2:
                hits.append((at(bar, s), "open_hat", _vel(rng, 96)))
            else:
                hits.append((at(bar, s), hat_role, _vel(rng, 100 if s % 4 == 0 else 72)))
        hits += [(at(bar, s), "kick", _vel(rng, 112)) for s in sorted(set(kick)) if not (last and s >= 12)]
        hits += [(at(bar, s), "clap" if style == "house" else "snare", _vel(rng, 110)) for s in snare]
        hits += [(at(bar, s), "snare", _vel(rng, 40, 6)) for s in ghosts if not (last and s >= 12)]
        if last:
            toms = ("snare", "tom_hi", "tom_mid", "tom_lo")
            hits += [(at(bar, 12 + i), str(rng.choice(toms)), _vel(rng, 100)) for i in range(4)]
    if rng.random() < 0.35:
        hits.append((0.0, "crash", _vel(rng, 105)))
    notes = tuple(sorted(Note(t, 0.25, DRUM_NOTES[r], v) for t, r, v in hits))
    return Pattern(notes, "", style)


def one_note(pitch: int, bars: int = 1, velocity: int = 100) -> Pattern:
    """A single sustained note (for pitch checks)."""
    return Pattern((Note(0.0, bars * 4.0 - 0.5, pitch, velocity),), PITCH_NAMES[pitch % 12], "one-note")
