"""A tiny Standard MIDI File (format 0) writer and a SoundFont 2 preset lister, both dependency free.

Time is written in seconds: the file uses 480 ticks per quarter note at a tempo of 10 000 us per quarter,
so one tick is exactly one sample at 48 kHz.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_QUARTER = 480
TEMPO_US_PER_QUARTER = 10_000
TICKS_PER_SECOND = TICKS_PER_QUARTER * 1_000_000 // TEMPO_US_PER_QUARTER  # 48000


@dataclass(frozen=True, order=True)
class MidiEvent:
    """One channel event at an absolute time in seconds. ``data`` is the status byte and its data bytes."""

    time_s: float
    order: int  # ties at one tick: note-offs (0) before controls (1) before note-ons (2)
    data: bytes


def _vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def note_on(time_s: float, channel: int, pitch: int, velocity: int) -> MidiEvent:
    return MidiEvent(time_s, 2, bytes([0x90 | channel, pitch & 0x7F, max(1, min(127, velocity))]))


def note_off(time_s: float, channel: int, pitch: int) -> MidiEvent:
    return MidiEvent(time_s, 0, bytes([0x80 | channel, pitch & 0x7F, 0]))


def control(time_s: float, channel: int, number: int, value: int) -> MidiEvent:
    return MidiEvent(time_s, 1, bytes([0xB0 | channel, number & 0x7F, value & 0x7F]))


def program_change(time_s: float, channel: int, program: int) -> MidiEvent:
    return MidiEvent(time_s, 1, bytes([0xC0 | channel, program & 0x7F]))


def write_smf(path: str | Path, events: Iterable[MidiEvent], end_s: float) -> None:
    """Write a format-0 SMF with ``events`` (any order) and an end-of-track at ``end_s`` seconds."""
    track = bytearray()
    track += b"\x00\xff\x51\x03" + TEMPO_US_PER_QUARTER.to_bytes(3, "big")
    last = 0
    for event in sorted(events):
        tick = max(last, round(event.time_s * TICKS_PER_SECOND))
        track += _vlq(tick - last) + event.data
        last = tick
    track += _vlq(max(0, round(end_s * TICKS_PER_SECOND) - last)) + b"\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
    Path(path).write_bytes(header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track))


def sf2_presets(path: str | Path) -> set[tuple[int, ...]]:
    """The ``(bank, program)`` pairs a SoundFont 2 file defines (read from its ``phdr`` chunk)."""
    with open(path, "rb") as f:
        riff, _, kind = struct.unpack("<4sI4s", f.read(12))
        if riff != b"RIFF" or kind != b"sfbk":
            raise ValueError(f"{path} is not a SoundFont 2 file")
        while True:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError(f"{path}: no preset headers found")
            chunk_id, size = struct.unpack("<4sI", head)
            if chunk_id == b"LIST" and f.read(4) == b"pdta":
                end = f.tell() + size - 4
                while f.tell() < end:
                    sub_id, sub_size = struct.unpack("<4sI", f.read(8))
                    if sub_id == b"phdr":
                        raw = f.read(sub_size)
                        records = [raw[i : i + 38] for i in range(0, len(raw) - 38, 38)]  # last one is EOP
                        return {struct.unpack_from("<HH", r, 20)[::-1] for r in records}
                    f.seek(sub_size + (sub_size & 1), 1)
            f.seek(size + (size & 1) - (4 if chunk_id == b"LIST" else 0), 1)
