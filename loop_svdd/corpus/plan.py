"""Planning a corpus: which loop comes from which source, with which pattern, tempo and length (seeded)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from . import compose
from .render import LoopSpec
from .sources import (
    DEFAULT_SOUNDFONTS,
    DRUM_KITS,
    POWER_PROGRAMS,
    PROGRAMS,
    RECORDING_INSTRUMENTS,
    RECORDING_KEYS,
    SONIC_PI_LICENCE,
    STRUM_PROGRAMS,
    CorpusError,
    SoundFont,
    find_kits,
    find_recordings,
    find_soundfont,
    gm_family,
    load_kit,
)

PITCHED = ("bass", "guitar", "keys")
SOUNDFONT_INSTRUMENTS = (*PITCHED, "drums")
BARS = (1, 2, 3, 4, 6, 8)
BARS_P = (0.15, 0.3, 0.05, 0.3, 0.05, 0.15)
BPM_RANGE = (70, 180)
WEIGHTS = {"soundfont": 1.0, "drumkit": 2.0, "recording": 1.0}  # per soundfont cell / all kits / all recordings


@dataclass(frozen=True)
class Cell:
    """A stratum of the corpus: one instrument from one soundfont, or all kits, or all recordings."""

    instrument: str
    source_kind: str
    source: str
    weight: float


def _matches(filters: Sequence[str] | None, *names: str) -> bool:
    if not filters:
        return True
    wanted = {f.lower() for f in filters}
    return any(n.lower() in wanted for n in names)


def _allocate(n: int, weights: list[float]) -> list[int]:
    """Largest-remainder apportionment of ``n`` over ``weights``, at least one each when ``n`` allows."""
    w = np.asarray(weights, dtype=float)
    floor_one = n >= len(w)
    quota = n * w / w.sum()
    counts = np.floor(quota).astype(int)
    if floor_one:
        counts = np.maximum(counts, 1)
    while counts.sum() > n:
        counts[np.argmax(counts - quota)] -= 1
    order = np.argsort(-(quota - counts), kind="stable")
    for i in range(n - counts.sum()):
        counts[order[i % len(w)]] += 1
    return counts.tolist()


def content_id(spec: LoopSpec) -> str:
    """A short hash of what makes a loop's audio (source, program, tempo, notes, recording variant)."""
    payload = [spec.source, spec.program, spec.bank, round(spec.bpm, 6), spec.bars, Path(spec.path).name]
    payload += [spec.rate, spec.repeats, [[n.start, n.dur, n.pitch, n.velocity] for n in spec.notes]]
    return hashlib.sha1(json.dumps(payload).encode()).hexdigest()[:16]


class Planner:
    """Resolves the sources once, then plans loops deterministically from ``(seed, index, attempt)``."""

    def __init__(
        self,
        seed: int,
        instruments: Sequence[str] | None = None,
        sources: Sequence[str] | None = None,
        soundfonts: Sequence[str] | None = None,
    ) -> None:
        self.seed = seed
        wanted = set(instruments) if instruments else None
        sf_names = [s for s in (soundfonts or DEFAULT_SOUNDFONTS) if _matches(sources, "soundfont", Path(s).stem)]
        self.soundfonts: dict[str, SoundFont] = {}
        for name in sf_names:
            sfont = find_soundfont(name)
            self.soundfonts[sfont.name] = sfont
        cells = [
            Cell(inst, "soundfont", name, WEIGHTS["soundfont"])
            for name in self.soundfonts
            for inst in SOUNDFONT_INSTRUMENTS
            if wanted is None or inst in wanted
        ]
        self.kits: list[Path] = []
        not_kits = {"soundfont", "recording", "sonic-pi", *(Path(n).stem.lower() for n in sf_names)}
        if (wanted is None or "drums" in wanted) and (not sources or any(s.lower() not in not_kits for s in sources)):
            self.kits = [k for k in find_kits() if _matches(sources, "drumkit", "hydrogen", k.name)]
            if self.kits:
                cells.append(Cell("drums", "drumkit", "hydrogen", WEIGHTS["drumkit"]))
        self.recordings: list[Path] = []
        if _matches(sources, "recording", "sonic-pi"):
            self.recordings = [
                r for r in find_recordings() if wanted is None or RECORDING_INSTRUMENTS.get(r.stem, "loop") in wanted
            ]
            if self.recordings:
                cells.append(Cell("mixed", "recording", "sonic-pi", WEIGHTS["recording"]))
        if not cells:
            raise CorpusError(f"no source matches instruments={instruments} sources={sources}")
        self.cells = cells

    def plan(self, n_loops: int) -> list[LoopSpec]:
        """``n_loops`` loop specs, stratified over the cells, in a seeded order."""
        if n_loops < 1:
            raise CorpusError("--loops must be at least 1")
        rng = np.random.default_rng([self.seed, 0x10095])
        counts = _allocate(n_loops, [c.weight for c in self.cells])
        labels = np.repeat(np.arange(len(self.cells)), counts)
        labels = labels[rng.permutation(len(labels))]
        kit_order = [self.kits[i] for i in rng.permutation(len(self.kits))]
        rec_order = [self.recordings[i] for i in rng.permutation(len(self.recordings))]
        bars = rng.choice(BARS, size=n_loops, p=BARS_P)
        bpm = rng.integers(BPM_RANGE[0], BPM_RANGE[1] + 1, size=n_loops)
        durations = bars * 240.0 / bpm
        if n_loops >= 4 and not (durations > 10.5).any():  # make sure both fusion paths are exercised
            bars[0], bpm[0] = 8, min(int(bpm[0]), 170)
        if n_loops >= 4 and not (bars * 240.0 / bpm < 9.5).any():
            bars[1] = 2
        seen = {c: 0 for c in range(len(self.cells))}
        specs = []
        for i, c in enumerate(labels.tolist()):
            cell, j = self.cells[c], seen[c]
            seen[c] += 1
            if cell.source_kind == "recording":
                specs.append(self.recording(i, rec_order[j % len(rec_order)], 0))
            else:
                kit = kit_order[j % len(kit_order)] if cell.source_kind == "drumkit" else None
                specs.append(self.generated(i, cell, int(bars[i]), float(bpm[i]), kit, 0))
        return specs

    def replan(self, spec: LoopSpec, attempt: int) -> LoopSpec:
        """Another loop of the same kind (after a silent render)."""
        if spec.source_kind == "recording":
            return self.recording(spec.index, Path(spec.path), attempt)
        cell = Cell(spec.instrument, spec.source_kind, spec.source, 1.0)
        kit = Path(spec.path) if spec.source_kind == "drumkit" else None
        return self.generated(spec.index, cell, spec.bars, spec.bpm, kit, attempt)

    def generated(self, index: int, cell: Cell, bars: int, bpm: float, kit: Path | None, attempt: int) -> LoopSpec:
        rng = np.random.default_rng([self.seed, index, attempt])
        common = {"index": index, "bpm": bpm, "bars": bars, "source_kind": cell.source_kind}
        if kit is not None:
            groove = compose.drum_groove(rng, bars)
            k = load_kit(kit)
            return LoopSpec(
                instrument="drums",
                source=k.name,
                program=-1,
                program_family=k.kind,
                key="unpitched",
                style=groove.style,
                licence=k.licence,
                notes=groove.notes,
                path=str(kit),
                **common,
            )
        sfont = self.soundfonts[cell.source]
        inst = cell.instrument
        if inst == "drums":
            program = int(rng.choice([p for p in DRUM_KITS if (128, p) in sfont.presets] or [0]))
            pattern, family = compose.drum_groove(rng, bars), "Drum Kit"
        else:
            style = "strum" if inst == "guitar" and rng.random() < 0.45 else ""
            power = inst == "guitar" and not style and rng.random() < 0.35
            pool = STRUM_PROGRAMS if style else POWER_PROGRAMS if power else PROGRAMS[inst]
            if inst == "guitar" and not style and not power:
                pool = (26, 27, 28)
            program = int(rng.choice([p for p in pool if (0, p) in sfont.presets] or list(pool)))
            if inst == "bass":
                pattern = compose.bass_riff(rng, bars)
            elif inst == "keys":
                pattern = compose.keys_part(rng, bars)
            elif style:
                pattern = compose.guitar_strum(rng, bars)
            else:
                pattern = compose.guitar_riff(rng, bars, power=power)
            family = gm_family(program)
        return LoopSpec(
            instrument=inst,
            source=sfont.name,
            program=program,
            program_family=family,
            key=pattern.key or "unpitched",
            style=pattern.style,
            licence=sfont.licence,
            notes=pattern.notes,
            path=str(sfont.path),
            bank=128 if inst == "drums" else 0,
            **common,
        )

    def recording(self, index: int, path: Path, attempt: int) -> LoopSpec:
        """A Sonic Pi loop at a seeded speed (0.9x to 1.12x), tiled to a whole number of bars (1 to 8)."""
        rng = np.random.default_rng([self.seed, index, attempt])
        info = sf.info(str(path))
        seconds = info.frames / info.samplerate
        beats = min((2, 4, 8, 16, 32), key=lambda b: abs(60 * b / seconds - 120))
        rate = round(float(rng.uniform(0.9, 1.12)), 3)
        bpm = float(np.clip(60 * beats * rate / seconds, *BPM_RANGE))
        rate = bpm * seconds / (60 * beats)
        options = [r for r in (1, 2, 3, 4, 6, 8) if (r * beats) % 4 == 0 and 1 <= r * beats // 4 <= 8]
        repeats = int(rng.choice(options))
        instrument = RECORDING_INSTRUMENTS.get(path.stem, "loop")
        default_key = "unpitched" if instrument in ("drums", "percussion") else "unknown"
        return LoopSpec(
            index=index,
            instrument=instrument,
            source_kind="recording",
            source="sonic-pi",
            program=-1,
            program_family=path.stem,
            bpm=bpm,
            key=RECORDING_KEYS.get(path.stem, default_key),
            bars=repeats * beats // 4,
            style="recording",
            licence=SONIC_PI_LICENCE,
            path=str(path),
            rate=rate,
            repeats=repeats,
        )
