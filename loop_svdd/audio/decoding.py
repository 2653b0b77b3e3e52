"""One decoding path for files, folders and corpora: every entry point that reads audio (`score`, `train`,
`evaluate`, `embed`, `pretrain-encoder`, `curate`) skips files that cannot be decoded, names each with a plain
reason ([`loop_svdd.audio.decode.plain_reason`]), and stops only when too few good loops remain."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from ..settings import SAMPLING_RATE
from .corpora import CorpusError, audio_column, quiet_datasets, waveform_of, with_decoding
from .decode import AudioDecodeError, audio_duration, load_audio, promised_seconds

PROBE_VERSION = "2"  # bump when what counts as decodable changes (invalidates the cached probe)


MIN_LOOP_SECONDS = 0.01
"""The shortest audio accepted as a loop: one STFT hop of the encoders' front end (480 samples at 48 kHz). Below
it the log-mel spectrogram has a single frame, made mostly of padding: nothing of the loop is left to score. (The
matrix's 10 ms loop is exactly one hop and is still scored.)"""
TRUNCATION_TOLERANCE_S = 0.01
"""How far a WAV file may fall short of the duration its header promises before it counts as truncated (more than
this and more than 1 % of the promise: resampling moves the length by a few samples, never by 10 ms)."""


@dataclass(frozen=True)
class Decoded:
    """One file's outcome: the mono float32 waveform, or None and the plain reason it was skipped. A file longer
    than the caller's `stream_above_s` is not decoded: `stream_s` holds its duration (read it window by window)."""

    path: str
    waveform: np.ndarray | None
    reason: str | None = None
    stream_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.waveform is not None or self.stream_s is not None


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.1f} ms"


def refusal(source: str | Path | bytes, n_samples: int, sampling_rate: int, max_seconds: float | None) -> str | None:
    """Why a decoded waveform of `n_samples` is not a usable loop (None when it is): the file holds less than its
    header promises ([`promised_seconds`]), or less than [`MIN_LOOP_SECONDS`]."""
    read_s = n_samples / sampling_rate
    promised = promised_seconds(source)
    expected = promised if max_seconds is None or promised is None else min(promised, max_seconds)
    if expected is not None and expected - read_s > max(TRUNCATION_TOLERANCE_S, 0.01 * expected):
        return f"truncated WAV file: the header promises {_fmt_s(promised)}, the file holds {_fmt_s(read_s)}"
    if n_samples < int(MIN_LOOP_SECONDS * sampling_rate):
        return f"too short to be a loop: {_fmt_s(read_s)} (the minimum is {_fmt_s(MIN_LOOP_SECONDS)})"
    return None


def _long(path: str | Path | bytes, stream_above_s: float | None) -> float | None:
    """The duration of a file over `stream_above_s` (from its header), else None."""
    if stream_above_s is None or isinstance(path, bytes) or not Path(path).is_file() or not Path(path).stat().st_size:
        return None
    duration = audio_duration(path)
    return duration if duration is not None and duration > stream_above_s else None


def decode_file(
    path: str | Path | bytes,
    sampling_rate: int = SAMPLING_RATE,
    name: str | None = None,
    max_seconds: float | None = None,
    stream_above_s: float | None = None,
) -> Decoded:
    """Decode one file (a path, or its bytes named `name`; at most `max_seconds` of it) and check that it is a
    usable loop ([`refusal`]); never raises for bad audio. Files longer than `stream_above_s` are left undecoded
    (`Decoded.stream_s`). The package's one decoder: every entry point that reads audio files goes through it."""
    label = name or str(path if not isinstance(path, bytes) else "<bytes>")
    try:
        if (duration := _long(path, stream_above_s)) is not None:  # what the container holds, checked the same way
            reason = refusal(path, int(duration * sampling_rate), sampling_rate, None)
            return Decoded(label, None, reason) if reason else Decoded(label, None, stream_s=duration)
        wave = load_audio(path, sampling_rate, max_seconds=max_seconds, name=label)
        reason = refusal(path, len(wave), sampling_rate, max_seconds)
    except AudioDecodeError as err:
        return Decoded(label, None, str(err).removeprefix(f"{label}: "))
    except OSError as err:  # unreadable: permissions, a folder named like a file, ...
        return Decoded(label, None, f"cannot read the file ({err.strerror or type(err).__name__})")
    return Decoded(label, None, reason) if reason else Decoded(label, wave)


def decode_files(
    paths: Iterable[str | Path], sampling_rate: int = SAMPLING_RATE, longest_s: float | None = None
) -> Iterator[Decoded]:
    """Decode files one after another (in order), yielding a [`Decoded`] for each, good or bad; a file longer
    than `longest_s` (by its header) is not decoded but refused with the reason."""
    for path in paths:
        decoded = decode_file(path, sampling_rate, stream_above_s=longest_s)
        if decoded.stream_s is not None:
            limit = f"{longest_s / 60:g} min" if longest_s >= 60 else f"{longest_s:g} s"
            decoded = Decoded(decoded.path, None, f"too long to be a loop: {_fmt_s(decoded.stream_s)} (over {limit})")
        yield decoded


def _probe_example(audio: dict[str, Any], sampling_rate: int) -> str:
    """'' when a not-yet-decoded `datasets` Audio value (`{"bytes", "path"}`) decodes, else the plain reason."""
    name = audio.get("path") or "<row>"
    source = audio.get("bytes") or audio.get("path")
    if source is None:
        return "no audio in this row"
    return decode_file(source, sampling_rate, name=name).reason or ""


@dataclass
class CorpusDecoding:
    """Which rows of a corpus decode (`rows`, sorted indices) and which were skipped (`{"file", "reason"}`)."""

    n_rows: int
    rows: np.ndarray
    skipped: list[dict[str, str]] = field(default_factory=list)

    def restrict(self, rows: np.ndarray) -> np.ndarray:
        """The decodable ones among `rows`."""
        return np.intersect1d(np.asarray(rows, dtype=int), self.rows)

    def skipped_among(self, rows: np.ndarray) -> list[dict[str, str]]:
        bad = set(np.setdiff1d(np.asarray(rows, dtype=int), self.rows).tolist())
        return [s for s in self.skipped if int(s["row"]) in bad]


def decodable_rows(
    dataset: datasets.Dataset, sampling_rate: int = SAMPLING_RATE, progress: bool = True
) -> CorpusDecoding:
    """Decode every row of `dataset` once (the same decoder and settings `datasets` uses) and record which fail.

    The result is cached by a fingerprinted `datasets` map, like the embeddings, so a second run reads it back.
    """
    column = audio_column(dataset)
    raw = dataset.cast_column(column, datasets.Audio(decode=False))
    fingerprint = hashlib.sha256(f"decodable-{PROBE_VERSION}-{raw._fingerprint}-{sampling_rate}".encode())
    with quiet_datasets(not progress):
        probed = raw.map(
            lambda batch: {
                "reason": [_probe_example(a, sampling_rate) for a in batch[column]],
                "file": [a.get("path") or "" for a in batch[column]],
            },
            batched=True,
            batch_size=16,
            remove_columns=raw.column_names,
            features=datasets.Features({"reason": datasets.Value("string"), "file": datasets.Value("string")}),
            new_fingerprint=fingerprint.hexdigest()[:32],
            desc="Checking audio files",
        )
    reasons, names = probed["reason"], probed["file"]
    skipped = [{"row": i, "file": names[i] or f"row-{i}", "reason": r} for i, r in enumerate(reasons) if r]
    good = np.array([i for i, r in enumerate(reasons) if not r], dtype=int)
    return CorpusDecoding(len(dataset), good, skipped)


def corpus_waveforms(
    dataset: datasets.Dataset, rows: Iterable[int], sampling_rate: int = SAMPLING_RATE
) -> Iterator[np.ndarray]:
    """The mono float32 waveforms of `rows` of a corpus, one at a time, decoded as the embedding cache decodes
    them (`datasets`' Audio feature: torchcodec, mono, at `sampling_rate`). Take `rows` among
    [`decodable_rows`]: a row that does not decode raises here."""
    decoded, column = with_decoding(dataset, sampling_rate), audio_column(dataset)
    for i in rows:
        yield waveform_of(decoded[int(i)], column)


def decoded_stream(
    stream: Iterable[dict], column: str, sampling_rate: int, skipped: list[dict[str, str]]
) -> Iterator[dict]:
    """Decode a streamed corpus (cast with `Audio(decode=False)`) row by row: good rows come out with
    `{"array", "sampling_rate"}` audio, bad ones are appended to `skipped` instead."""
    for i, row in enumerate(stream):
        audio = row[column]
        name = audio.get("path") or f"stream-row-{i}"
        decoded = decode_file(audio.get("bytes") or audio.get("path") or b"", sampling_rate, name=name)
        if decoded.ok:
            yield {**row, column: {"array": decoded.waveform, "sampling_rate": sampling_rate}}
        else:
            skipped.append({"row": i, "file": name, "reason": decoded.reason or ""})


def require_loops(n_good: int, needed: int, what: str, skipped: list[dict[str, str]] | None = None) -> None:
    """Stop with a one-line `CorpusError` when fewer than `needed` good loops remain for `what`."""
    if n_good >= needed:
        return
    example = f", e.g. {skipped[0]['file']}: {skipped[0]['reason']}" if skipped else ""
    bad = f" ({len(skipped)} file(s) skipped as undecodable{example})" if skipped else ""
    raise CorpusError(f"only {n_good} decodable loop(s) for {what}{bad}; need at least {needed}")


def report_skipped(command: str, skipped: list[dict[str, str]], stream=None) -> None:
    """Print one `loop-svdd COMMAND: skipped FILE: reason` line per skipped file (stderr by default)."""
    for s in skipped:
        print(f"loop-svdd {command}: skipped {s['file']}: {s['reason']}", file=stream or sys.stderr)


def public_skipped(skipped: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The skipped files as the run's summary stores them: `{"file", "reason"}` (row indices dropped)."""
    return [{"file": str(s["file"]), "reason": str(s["reason"])} for s in skipped]
