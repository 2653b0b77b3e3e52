"""Near-duplicates: groups of loops that are the same audio re-encoded, trimmed, resampled or gain-changed.

Fingerprint: a log-mel sequence of the loop at 16 kHz (:mod:`.fingerprints`: how it is made and kept).

Match: two loops are compared at every alignment (a trimmed copy starts anywhere inside its original) by the
Pearson correlation of their log-mel values over the frames they share; a gain change adds a constant to log
power, which Pearson correlation ignores. All alignments come from one FFT cross-correlation plus running sums.
Only alignments sharing :data:`MIN_OVERLAP` of the shorter loop count. Pairs whose best correlation reaches
:data:`THRESHOLD` are linked, and linked loops form a group (connected components). A pair whose loops the links
found so far already join is not compared: it could not change the groups.

To stay near-linear in the pack size, each loop is compared only with its :data:`CANDIDATES` nearest loops by a
gain-invariant summary (the mean and spread of its spectral shape), and with every loop when the pack is small.
Figures: ``loop-svdd benchmark duplicates`` (``docs/curation.md``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..detectors.neighbours import nearest_others
from .fingerprints import (
    FLOOR_DB,
    FP_RATE,
    HOP,
    N_MELS,
    Fingerprint,
    Fingerprints,
    as_fingerprints,
    fingerprint,
    fingerprint_files,
)

__all__ = [
    "CANDIDATES",
    "N_MELS",
    "THRESHOLD",
    "Fingerprint",
    "candidate_pairs",
    "compare",
    "describe_link",
    "find_duplicates",
    "fingerprint",
    "fingerprint_files",
    "group_links",
    "pair_links",
]

MIN_OVERLAP = 0.8  # an alignment must share this share of the shorter loop
MIN_FRAMES = 6  # ~0.1 s: shorter sounds are not compared
THRESHOLD = 0.95  # best pair F1 on the benchmark's tuning seeds 5-9 (docs/curation.md)
SEARCH_GATE = 0.8  # alignments this good are compared again without the per-loop floor
REFINE_TOP = 16  # how many of the best alignments are compared again
CANDIDATES = 12
ALL_PAIRS_BELOW = 200  # packs this small compare every pair
BATCH_PAIRS = 256  # pairs compared between two looks at which loops are joined already (threads share a batch)


@dataclass
class Match:
    """The best alignment of loop b inside (or around) loop a."""

    similarity: float  # Pearson correlation of log-mel values over the shared frames
    offset_s: float  # b's start minus a's start, in seconds (b starts offset_s into a when positive)
    gain_db: float  # b's level minus a's over the shared frames


def _window_sums(x: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    c = np.concatenate([[0.0], np.cumsum(x)])
    return c[stops] - c[starts]


def match(a: np.ndarray, b: np.ndarray, top: int = 1) -> list[Match]:
    """The ``top`` alignments of b against a with the best Pearson correlation of their log-mel values, among
    all alignments sharing enough frames (best first; empty when none does)."""
    from scipy.signal import fftconvolve

    ta, tb, f = len(a), len(b), a.shape[1]
    lags = np.arange(-(tb - 1), ta)  # b[t - lag] sits under a[t]: b starts `lag` frames into a
    a_start, a_stop = np.maximum(0, lags), np.minimum(ta, tb + lags)
    b_start, b_stop = a_start - lags, a_stop - lags
    overlap = a_stop - a_start
    valid = overlap >= max(MIN_FRAMES, MIN_OVERLAP * min(ta, tb))
    if not valid.any():
        return []
    sab = fftconvolve(a, b[::-1], axes=0).sum(axis=1)
    n = overlap * f
    sa, sb = _window_sums(a.sum(1), a_start, a_stop), _window_sums(b.sum(1), b_start, b_stop)
    saa = _window_sums((a * a).sum(1), a_start, a_stop)
    sbb = _window_sums((b * b).sum(1), b_start, b_stop)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sab - sa * sb / n
        r = cov / np.sqrt(np.maximum(saa - sa * sa / n, 1e-12) * np.maximum(sbb - sb * sb / n, 1e-12))
    r = np.where(valid, np.nan_to_num(r, nan=-1.0), -1.0)
    peaks = np.flatnonzero(valid & (r >= np.roll(r, 1)) & (r >= np.roll(r, -1)))  # one alignment per peak
    best = peaks[np.argsort(-r[peaks], kind="stable")[:top]] if len(peaks) else [int(np.argmax(r))]
    return [Match(float(r[k]), float(lags[k] * HOP / FP_RATE), 10.0 * float(sb[k] - sa[k]) / float(n[k])) for k in best]


@dataclass
class Powers:
    """A fine log-mel sequence (log10 power, (frames, mels)) as power, with each frame's loudest value: what
    :func:`refine` reads, computed once per loop of a pair rather than once per alignment."""

    power: np.ndarray  # (frames, mels) float64: 10 ** raw
    frame_max: np.ndarray  # (frames,) float64: raw's loudest value per frame

    @classmethod
    def of(cls, raw: np.ndarray) -> Powers:
        raw = raw.astype(np.float64)
        return cls(10.0**raw, raw.max(axis=1))


def refine(a: Powers, b: Powers, m: Match) -> tuple[float, float]:
    """(similarity, b's gain in dB): Pearson correlation at ``m``'s alignment of the fine sequences, after
    matching b's level to a's and flooring both at one level set by the shared frames (so a trim that cut the
    loudest part changes nothing). Flooring is ``log10(10**x + 10**floor)``, on the stored powers."""
    lag = int(round(m.offset_s * FP_RATE / HOP))
    start, stop = max(0, lag), min(len(a.power), len(b.power) + lag)
    a_max, b_max = a.frame_max[start:stop], b.frame_max[start - lag : stop - lag]
    shift = float(np.median(a_max - b_max))  # b's level matched to a's (robust to a few odd frames)
    floor = 10.0 ** (max(float(a_max.max()), float(b_max.max()) + shift) - FLOOR_DB / 10.0)
    x = np.log10(a.power[start:stop] + floor)
    y = np.log10(b.power[start - lag : stop - lag] * 10.0**shift + floor)
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / max(np.sqrt((x * x).sum() * (y * y).sum()), 1e-12)), -10.0 * shift


def compare(a: Fingerprint, b: Fingerprint) -> Match | None:
    """The best alignment of b against a (a the longer): searched on the floored sequences; when the best
    reaches :data:`SEARCH_GATE`, its :data:`REFINE_TOP` best alignments are compared again by :func:`refine`
    and the best of those is kept (a stationary sound, e.g. a bell's decay, matches at several lags)."""
    found = match(a.logmel, b.logmel, REFINE_TOP)
    if not found or found[0].similarity < SEARCH_GATE:
        return found[0] if found else None
    a_powers, b_powers = Powers.of(a.raw), Powers.of(b.raw)
    for m in found:
        m.similarity, m.gain_db = refine(a_powers, b_powers, m)
    return max(found, key=lambda m: m.similarity)


def candidate_pairs(fps: Sequence[Fingerprint] | np.ndarray, k: int = CANDIDATES) -> list[tuple[int, int]]:
    """Pairs worth aligning among fingerprints (or their summaries ``(n, 2 * N_MELS)``): all of them for small
    packs, else each loop with its ``k`` nearest summaries."""
    summaries = fps if isinstance(fps, np.ndarray) else as_fingerprints(fps).summaries
    n = len(summaries)
    if n <= ALL_PAIRS_BELOW:
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    _, near = nearest_others(summaries, k, metric="cosine")
    return sorted({(min(i, int(j)), max(i, int(j))) for i in range(n) for j in near[i] if j >= 0})


class Connections:
    """Union-find over loop indices: which loops the links found so far already join."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def root(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, i: int, j: int) -> None:
        self.parent[self.root(i)] = self.root(j)

    def joined(self, i: int, j: int) -> bool:
        return self.root(i) == self.root(j)


def _components(n: int, edges: list[tuple[int, int]]) -> list[list[int]]:
    connections = Connections(n)
    for i, j in edges:
        connections.join(i, j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(connections.root(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def _oriented_pairs(fps: Fingerprints) -> list[tuple[int, int]]:
    """The candidate pairs among fingerprints long enough to compare, the longer loop first."""
    index = np.flatnonzero(fps.n_frames >= MIN_FRAMES)
    pairs = []
    for i, j in candidate_pairs(fps.summaries[index]):
        a, b = (int(index[i]), int(index[j]))
        pairs.append((a, b) if fps.n_frames[a] >= fps.n_frames[b] else (b, a))
    return pairs


def pair_links(
    fps: Sequence[Fingerprint | None] | Fingerprints, threshold: float = THRESHOLD, skip_joined: bool = False
) -> list[dict[str, Any]]:
    """Every compared pair whose similarity reaches ``threshold``: ``{"a", "b", "similarity", "offset_s",
    "gain_db"}`` (indices into ``fps``; a is the longer loop; None fingerprints are skipped). ``skip_joined``:
    pairs are compared in batches of :data:`BATCH_PAIRS`, and a pair whose loops the links found before its batch
    already join is not compared (the groups stay the same; a group of n copies needs about n links, not n^2/2)."""
    from concurrent.futures import ThreadPoolExecutor

    fps = as_fingerprints(fps)
    pairs = _oriented_pairs(fps)
    connections = Connections(len(fps))
    step = BATCH_PAIRS if skip_joined else max(len(pairs), 1)
    links = []
    # one thread per core: the FFTs and array arithmetic release the GIL (1.4x on 2 cores, 3,000 loops)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for start in range(0, len(pairs), step):
            batch = [(a, b) for a, b in pairs[start : start + step] if not connections.joined(a, b)]
            matches = pool.map(lambda pair: compare(fps[pair[0]], fps[pair[1]]), batch, chunksize=16)
            for (a, b), m in zip(batch, matches, strict=True):
                if m is not None and m.similarity >= threshold:
                    links.append({"a": a, "b": b, **m.__dict__})
                    connections.join(a, b)
    return links


def group_links(n: int, links: list[dict[str, Any]], threshold: float = THRESHOLD) -> list[dict[str, Any]]:
    """Connected groups of the links at or above ``threshold``: ``{"members": [indices], "links": [...]}``,
    largest first."""
    kept = [link for link in links if link["similarity"] >= threshold]
    components = _components(n, [(link["a"], link["b"]) for link in kept])
    component_of = {i: c for c, members in enumerate(components) for i in members}
    inside: list[list[dict[str, Any]]] = [[] for _ in components]
    for link in kept:  # each link lies inside its ends' component
        inside[component_of[link["a"]]].append(link)
    groups = [{"members": sorted(m), "links": links_in} for m, links_in in zip(components, inside, strict=True)]
    return sorted(groups, key=lambda g: (-len(g["members"]), g["members"]))


def find_duplicates(
    fps: Sequence[Fingerprint | None] | Fingerprints, threshold: float = THRESHOLD
) -> list[dict[str, Any]]:
    """Groups of near-duplicates among fingerprints (see :func:`group_links`); each group's links join its
    members, without every pair inside it (``skip_joined``)."""
    return group_links(len(fps), pair_links(fps, threshold, skip_joined=True), threshold)


def describe_link(link: dict[str, Any], names: Sequence[str]) -> str:
    """One link in words: 'b is the same audio as a, starting 1.2 s into it, 6 dB quieter (match 0.98)'."""
    words = [f"{names[link['b']]} is the same audio as {names[link['a']]}"]
    if abs(link["offset_s"]) >= 0.05:
        words.append(f"starting {link['offset_s']:.2f} s into it" if link["offset_s"] > 0 else "with extra lead-in")
    if abs(link["gain_db"]) >= 1.0:
        words.append(f"{abs(link['gain_db']):.1f} dB {'louder' if link['gain_db'] > 0 else 'quieter'}")
    return ", ".join(words) + f" (match {link['similarity']:.3f})"
