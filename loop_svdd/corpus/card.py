"""The dataset card (README.md with YAML metadata) of a built corpus."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..settings import SAMPLING_RATE

if TYPE_CHECKING:
    from .plan import Planner

FEATURE_TYPES = {
    "instrument": "string",
    "source_kind": "string",
    "source": "string",
    "program": "int64",
    "program_family": "string",
    "bpm": "float64",
    "key": "string",
    "bars": "int64",
    "duration_s": "float64",
    "licence": "string",
    "seed": "int64",
    "style": "string",
    "content_id": "string",
}
PACKAGES = {
    "soundfont": "rendered with `fluidsynth` from the Debian soundfont packages",
    "drumkit": "one-shots of the Debian package `hydrogen-drumkits` (drumkit.xml of each kit)",
    "recording": "`loop_*` files of the Debian package `sonic-pi-samples` (freesound.org, CC0)",
}
COLUMN_DOCS = {
    "file_name": "path of the FLAC file (mono, 48 kHz, 24-bit, peak -1 dBFS)",
    "instrument": "bass, guitar, keys, drums (recordings: drums, percussion, synth, fx)",
    "source_kind": "soundfont, drumkit or recording",
    "source": "FluidR3_GM / TimGM6mb, the Hydrogen kit folder name, or sonic-pi",
    "program": "General MIDI program (0-based; drum kits: the bank-128 preset), -1 for kits and recordings",
    "program_family": "GM family (Bass, Guitar, Piano, Organ, Drum Kit), kit kind, or the recording's name",
    "bpm": "tempo in beats per minute (70 to 180)",
    "key": "key of pitched loops (e.g. `E minor`), `unpitched` for drums, `unknown` if not known",
    "bars": "length in 4/4 bars (1 to 8)",
    "duration_s": "duration in seconds (bars x 4 x 60 / bpm)",
    "licence": "SPDX-style licence of the source the loop was made from",
    "seed": "the corpus seed",
    "style": "pattern style (riff, power-riff, strum, chords, arpeggio, a drum style, recording)",
    "content_id": "hash of the musical content and source; equal ids mean the same loop",
}


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return name
    return "100K<n<1M"


def _command(n_loops: int, seed: int, instruments: Sequence[str] | None, sources: Sequence[str] | None) -> str:
    cmd = f"loop-svdd corpus build OUT_DIR --loops {n_loops} --seed {seed}"
    if instruments:
        cmd += " --instruments " + ",".join(instruments)
    if sources:
        cmd += " --sources " + ",".join(f'"{s}"' if " " in s else s for s in sources)
    return cmd


def front_matter(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The YAML metadata: licence, task, tags, size, and the audiofolder config with its features."""
    features: list[dict[str, Any]] = [{"name": "audio", "dtype": {"audio": {"sampling_rate": SAMPLING_RATE}}}]
    features += [{"name": name, "dtype": dtype} for name, dtype in FEATURE_TYPES.items()]
    return {
        "pretty_name": "loop-svdd real-instrument loops",
        "license": "other",
        "license_name": "per-source (see the table in this card)",
        "task_categories": ["audio-classification"],
        "tags": ["music", "loops", "anomaly-detection", "audio", "general-midi", "drums", "fluidsynth"],
        "size_categories": [_size_category(len(rows))],
        "configs": [
            {"config_name": "default", "data_files": [{"split": "train", "path": ["metadata.csv", "data/*.flac"]}]}
        ],
        "dataset_info": {"features": features},
    }


CARD_BODY = """
# loop-svdd real-instrument loops

{n_rows} musical loops (mono 48 kHz FLAC) for learning what "normal" loops of an instrument sound like and
detecting anomalous ones (Deep SVDD on HTS-AT embeddings, `loop-svdd`). Every loop is an exact number of 4/4
bars; sound ringing past the end is folded onto the start, as on repeat. Durations run from
{shortest:.2f} s to {longest:.2f} s ({n_short} loops under 10 s,
{n_long} of 10 s or more).

## How it was built

```
{command}
```

Deterministic for the seed. Sources:

{kinds}

Soundfont loops are General MIDI parts composed from the seed: bass riffs on a diatonic progression in a
random key, guitar riffs, power-chord riffs and strums, keys (voice-led chords, arpeggios) and drum grooves
(rock, funk, hip-hop, house, half-time, breakbeat, shuffle), at 70 to 180 BPM, 1 to 8 bars, each rendered by
every soundfont with several GM programs. The same grooves drive the real one-shots of the Hydrogen kits
(velocity layers as in each kit). Sonic Pi loops are resampled at a seeded speed (0.9x to 1.12x) and tiled
to whole bars: the same recording can recur (at another speed or length) in corpora built with other seeds;
leave `recording` out of `--sources` for corpora with no shared source audio.

Soundfonts:

{soundfonts}

## Sources, counts and licences

{table}

The corpus as a whole is under mixed licences (`license: other`): each loop carries its source's licence in
the `licence` column. Hydrogen kit licences are those of `/usr/share/doc/hydrogen-drumkits/copyright`;
the Sonic Pi samples are CC0 per `samples/README.md` of `sonic-pi-samples`.

## Columns

| column | meaning |
|---|---|
{columns}

## Intended use

Training and evaluating anomaly detectors for loops: e.g. train on bass from FluidR3_GM, and test on held-out
normals, other instruments, and the subtler anomaly of the same instrument from TimGM6mb. Load with

```python
from datasets import load_dataset
ds = load_dataset("audiofolder", data_dir="OUT_DIR")["train"]
```

Not meant as a model of real-world musical performance: the parts are algorithmic and the pitched
instruments are sample-based synthesis.
"""  # str.format fields: the figures of one corpus


def _source_table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of loops per (kind, source, licence), with the instruments of each source."""
    per_source = Counter((r["source_kind"], r["source"], r["licence"]) for r in rows)
    insts: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        insts.setdefault((r["source_kind"], r["source"]), set()).add(r["instrument"])
    table = ["| kind | source | loops | instruments | licence |", "|---|---|---|---|---|"]
    for (kind, source, licence), count in sorted(per_source.items()):
        table.append(f"| {kind} | {source} | {count} | {', '.join(sorted(insts[kind, source]))} | {licence} |")
    return "\n".join(table)


def write_card(
    out: Path,
    rows: list[dict[str, Any]],
    planner: Planner,
    n_loops: int,
    seed: int,
    instruments: Sequence[str] | None,
    sources: Sequence[str] | None,
) -> None:
    """Write ``README.md`` for the corpus in ``out``."""
    durations = [float(r["duration_s"]) for r in rows]
    soundfonts = "\n".join(
        f"- **{s.name}** (`{s.path.name}`, Debian package `{s.package or 'n/a'}`): {s.licence}"
        for s in planner.soundfonts.values()
    )
    body = CARD_BODY.format(
        n_rows=len(rows),
        shortest=min(durations),
        longest=max(durations),
        n_short=sum(d < 10 for d in durations),
        n_long=sum(d >= 10 for d in durations),
        command=_command(n_loops, seed, instruments, sources),
        kinds="\n".join(f"- **{kind}**: {text}" for kind, text in PACKAGES.items()),
        soundfonts=soundfonts,
        table=_source_table(rows),
        columns="\n".join(f"| `{name}` | {doc} |" for name, doc in COLUMN_DOCS.items()),
    )
    yaml_text = yaml.safe_dump(front_matter(rows), sort_keys=False, allow_unicode=True)
    (out / "README.md").write_text(f"---\n{yaml_text}---\n{body}", encoding="utf-8")
