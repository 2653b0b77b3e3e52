"""Benchmarks: one module per protocol, run by `loop-svdd benchmark PROTOCOL [options]`.

A protocol is a module of this package, named after it (`one-vs-rest` is `one_vs_rest.py`), exposing:

- `NAME`: the protocol's name on the command line, and `DESCRIPTION`: its `--help` text;
- `add_arguments(parser)`: its options (`report.add_report_options` gives `--json` and `--markdown`);
- `run(args) -> report.BenchResult`: the run; `report.write_report` writes and prints what it returns.

A new protocol is one module and one line in `PROTOCOLS`. Nothing here imports a protocol (they import torch, and
`loop-svdd --help` must not): `protocol_module` does, when one is asked for.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

# name -> the line `loop-svdd benchmark --help` shows for it, in that order
PROTOCOLS = {
    "one-vs-rest": "every detector on a folder of embeddings: one folder normal, the other folders anomalies",
    "contaminated": "packs of one folder with strays of the others mixed in: are the strays found?",
    "defects": "time-resolved scores on loops with one injected defect (its own corpus unless --corpus)",
    "duplicates": "copies injected into packs of real audio (--audio): are they grouped with their originals?",
    "neighbours": "neighbour search: recall against exact search and speed (faiss, usearch, scikit-learn)",
    "scale": "curate a library built from real audio at several sizes: seconds per stage, peak RSS, growth",
    "speed": "throughput: naive transformers pipeline vs ours vs the fast mode, front end, every backend",
    "encoder-transfer": "one-vs-rest inside the sources of a corpus, each encoder against random weights",
    "verdict-calibration": "choose the stray rule's parameter on packs that are not reported",
    "quickstart-pack": "the quickstart's 100-loop pack (8 strays of 4 kinds) curated: stray AUROC and verdicts",
    "curation-e2e": "a curated pack with known strays: curate's ranking vs in-sample and clean-pack scoring",
    "small-data-study": "AUROC against the number of training loops; false alarms against calibration size",
    "localisation-candidates": "candidate time-resolved scorers (sources, pooling, fold) on injected defects",
    "repetition-candidates": "variants of the loop-aware time scores on injected defects, model-free",
    "localisation-figure": "draw a loop with an injected defect, its spectrogram and its time scores (PNG)",
}


def protocol_module(name: str) -> ModuleType:
    """The module of protocol `name` (imported now)."""
    if name not in PROTOCOLS:
        raise KeyError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}")
    return import_module(f"{__name__}.{name.replace('-', '_')}")
