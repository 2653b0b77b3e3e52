"""Loop corpora as `datasets` datasets: loading from any source, selecting rows by metadata, decoding audio."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

from .errors import CorpusError


@dataclass(frozen=True)
class RowFilter:
    """`column=value` (or `column!=value`); values compare as strings so CLI input needs no typing."""

    column: str
    value: str
    negate: bool = False

    @classmethod
    def parse(cls, text: str) -> RowFilter:
        negate = "!=" in text
        column, sep, value = text.partition("!=" if negate else "=")
        if not sep or not column.strip() or not value.strip():
            raise CorpusError(f"bad filter {text!r}: expected COLUMN=VALUE or COLUMN!=VALUE (e.g. instrument=bass)")
        return cls(column.strip(), value.strip(), negate)

    def __str__(self) -> str:
        return f"{self.column}{'!=' if self.negate else '='}{self.value}"

    def mask(self, dataset: datasets.Dataset) -> np.ndarray:
        if self.column not in dataset.column_names:
            raise CorpusError(f"no column {self.column!r} to filter on; columns: {', '.join(dataset.column_names)}")
        values = np.array([str(v) for v in dataset[self.column]])
        return (values != self.value) if self.negate else (values == self.value)


def load_corpus(source: str | Path, split: str = "train", streaming: bool = False) -> datasets.Dataset:
    """Load a loop corpus from a Hub id, a local `audiofolder` directory or a `save_to_disk` folder."""
    source = str(source)
    path = Path(source)
    try:
        if path.is_dir() and (path / "dataset_info.json").is_file() and (path / "state.json").is_file():
            ds = datasets.load_from_disk(source)
        elif path.is_dir() and (path / "dataset_dict.json").is_file():
            ds = datasets.load_from_disk(source)[split]
        elif path.is_dir():
            ds = datasets.load_dataset("audiofolder", data_dir=source, split=split, streaming=streaming)
        elif path.exists():
            raise CorpusError(f"{source}: expected a folder (audiofolder or save_to_disk) or a Hub dataset id")
        else:
            ds = datasets.load_dataset(source, split=split, streaming=streaming)
    except CorpusError:
        raise
    except Exception as err:  # noqa: BLE001 - datasets raises many types; report one line
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CorpusError(f"cannot load the corpus {source!r}: {reason}") from err
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise CorpusError(f"{source}: no split {split!r}; splits: {', '.join(ds)}")
        ds = ds[split]
    audio_column(ds)
    return ds


def audio_column(dataset: datasets.Dataset) -> str:
    """The name of the (first) `Audio` column."""
    for name, feature in (dataset.features or {}).items():
        if isinstance(feature, datasets.Audio):
            return name
    raise CorpusError("the corpus has no Audio column")


def select(dataset: datasets.Dataset, filters: list[RowFilter]) -> np.ndarray:
    """Indices of the rows matching every filter (AND)."""
    mask = np.ones(len(dataset), dtype=bool)
    for f in filters:
        mask &= f.mask(dataset)
    return np.flatnonzero(mask)


def with_decoding(dataset: datasets.Dataset, sampling_rate: int) -> datasets.Dataset:
    """Decode audio with `datasets`' Audio feature (torchcodec): mono, at `sampling_rate`."""
    column = audio_column(dataset)
    return dataset.cast_column(column, datasets.Audio(sampling_rate=sampling_rate, num_channels=1))


def waveform_of(example: dict, column: str) -> np.ndarray:
    """The mono float32 waveform of a decoded example (datasets returns a torchcodec decoder or a dict)."""
    audio = example[column]
    if isinstance(audio, dict):
        array = np.asarray(audio["array"], dtype=np.float32)
    else:  # torchcodec AudioDecoder
        array = audio.get_all_samples().data.numpy().astype(np.float32)
    return array.mean(axis=0) if array.ndim == 2 else array
