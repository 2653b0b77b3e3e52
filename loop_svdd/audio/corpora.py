"""Loop corpora as `datasets` datasets: loading from any source, selecting rows by metadata, decoding audio."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

from ..errors import CorpusError, first_line
from ..paths import hub_failure_message, missing_path_message

# Sizes below which results are named unreliable (docs/robustness.md, "Small data"). A threshold at the 95th
# percentile of n calibration scores has an expected false-alarm rate of 35% at n = 2, 13% at n = 10 and 9% at
# n = 20 instead of 5% (distribution-free order statistics); Deep SVDD fitted on fewer loops than that is noisy.
MIN_RELIABLE_TRAIN = 20
MIN_RELIABLE_CALIBRATION = 20
MIN_RELIABLE_TEST = 10


def small_data_warnings(n_train: int | None = None, n_calibration: int | None = None, n_test: int | None = None):
    """Plain warnings for training, calibration or evaluation sets below the reliable sizes above."""
    out = []
    if n_train is not None and n_train < MIN_RELIABLE_TRAIN:
        out.append(
            f"only {n_train} training loops (under {MIN_RELIABLE_TRAIN}): what counts as normal is learned "
            "from very few examples; expect unstable scores"
        )
    if n_calibration is not None and n_calibration < MIN_RELIABLE_CALIBRATION:
        out.append(
            f"the threshold rests on {n_calibration} calibration loops (under {MIN_RELIABLE_CALIBRATION}): "
            "its false-alarm rate can be several times the intended one"
        )
    if n_test is not None and n_test < MIN_RELIABLE_TEST:
        out.append(
            f"only {n_test} loops on one side of the evaluation (under {MIN_RELIABLE_TEST}): "
            "AUROC and the other metrics are rough estimates"
        )
    return out


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
        values = column_values(dataset, self.column, "filter on")
        mask = (values != self.value) if self.negate else (values == self.value)
        if not self.negate and not mask.any():
            raise CorpusError(f"no loop has {self}; values of {self.column!r}: {list_values(values)}")
        return mask


def column_values(dataset: datasets.Dataset, column: str, purpose: str = "use") -> np.ndarray:
    """The values of `column` as strings (class names for `ClassLabel` columns); a clear error if it is absent."""
    if column not in dataset.column_names:
        raise CorpusError(f"no column {column!r} to {purpose}; columns: {', '.join(dataset.column_names)}")
    feature = (dataset.features or {}).get(column)
    values = dataset[column]
    if isinstance(feature, datasets.ClassLabel):
        values = feature.int2str(list(values))
    return np.array([str(v) for v in values])


def list_values(values: np.ndarray, limit: int = 20) -> str:
    """The distinct values, sorted, at most `limit` of them (for error messages)."""
    distinct = sorted(set(values.tolist()))
    more = f", ... ({len(distinct)} in all)" if len(distinct) > limit else ""
    return ", ".join(distinct[:limit]) + more


def load_corpus(source: str | Path, split: str = "train", streaming: bool = False) -> datasets.Dataset:
    """Load a loop corpus from a Hub id, a local `audiofolder` directory or a `save_to_disk` folder.

    A local path that does not exist is reported as such (not as a Hub error); subfolder names of an audiofolder
    (`pack/beats/...`, `pack/strings/...`) are its `label` column, whose values [`RowFilter`] and `--by` see as
    the folder names."""
    source = str(source)
    path = Path(source).expanduser()
    missing = missing_path_message(source)
    if missing:
        raise CorpusError(missing)
    try:
        if path.is_dir() and (path / "dataset_info.json").is_file() and (path / "state.json").is_file():
            ds = datasets.load_from_disk(str(path))
        elif path.is_dir() and (path / "dataset_dict.json").is_file():
            ds = datasets.load_from_disk(str(path))[split]
        elif path.is_dir():
            ds = datasets.load_dataset("audiofolder", data_dir=str(path), split=split, streaming=streaming)
        elif path.exists():
            raise CorpusError(f"{source}: expected a folder (audiofolder or save_to_disk) or a Hub dataset id")
        else:
            ds = datasets.load_dataset(source, split=split, streaming=streaming)
    except CorpusError:
        raise
    except Exception as err:  # noqa: BLE001 - datasets raises many types; report one line
        reason = first_line(err)
        if not path.exists():
            raise CorpusError(hub_failure_message(source, "corpus", reason)) from err
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


@contextmanager
def quiet_datasets(quiet: bool = True) -> Iterator[None]:
    """`datasets`' progress bars off inside the block when `quiet` (on again after it)."""
    if not quiet:
        yield
        return
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        datasets.enable_progress_bars()


def waveform_of(example: dict, column: str) -> np.ndarray:
    """The mono float32 waveform of a decoded example (datasets returns a torchcodec decoder or a dict)."""
    audio = example[column]
    if isinstance(audio, dict):
        array = np.asarray(audio["array"], dtype=np.float32)
    else:  # torchcodec AudioDecoder
        array = audio.get_all_samples().data.numpy().astype(np.float32)
    return array.mean(axis=0) if array.ndim == 2 else array
