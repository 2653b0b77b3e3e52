"""Near-duplicate search on a curated library's stored fingerprints, with and without skipping pairs whose loops
earlier links already join: wall time of each, pairs compared, and whether the groups are the same.

    .venv/bin/python scripts/duplicates_speed.py LIBRARY CURATED_DIR   (CURATED_DIR: `curate LIBRARY -o` output,
                                                                       whose cache holds the fingerprints)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from loop_svdd.audio.decode import AUDIO_EXTENSIONS
from loop_svdd.curation import duplicates


def main(library: Path, curated: Path) -> None:
    paths = sorted(p for p in library.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    fps = duplicates.fingerprint_files(paths, curated / "cache")
    compared, compare = [0], duplicates.compare

    def counted(a, b):
        compared[0] += 1
        return compare(a, b)

    duplicates.compare = counted
    runs = {}
    for skip in (False, True):
        compared[0], start = 0, time.perf_counter()
        links = duplicates.pair_links(fps, skip_joined=skip)
        runs[skip] = (time.perf_counter() - start, compared[0], duplicates.group_links(len(fps), links))
    (t0, n0, g0), (t1, n1, g1) = runs[False], runs[True]
    same = [g["members"] for g in g0] == [g["members"] for g in g1]
    print(
        f"{len(paths)} files, {len(g0)} groups; every candidate pair: {t0:.1f} s, {n0} pairs compared; "
        f"skipping joined pairs: {t1:.1f} s, {n1} pairs compared; {t0 / t1:.2f}x faster; same groups: {same}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
