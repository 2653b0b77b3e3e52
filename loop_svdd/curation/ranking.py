"""The ranking `curate` ships: several cross-fitted scorers, combined on the pack's own scale, over several
fold seeds.

Per member detector (Deep SVDD always among them), every loop gets a cross-fitted score
(:func:`loop_svdd.curation.scoring.cross_fit`: scored by a detector that never saw it). Each member's log scores
are standardised over the pack (median and 1.4826 MAD: a pack is mostly normal, so both describe its typical
loops whatever the contamination below 50%) and the members' standardised scores are averaged. Trimming uses
that combination: the first pass's highest ``trim`` share leaves every training fold of the second pass.
The whole is repeated over ``repeats`` fold seeds and the log scores averaged, so a loop's rank does not hinge
on which fold it fell in. The final score is ``exp`` of that average over its pack median: 1 = a typical loop,
2 = twice as far out, on the multiplicative scale the verdict rules read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..settings import CURATE
from .scoring import CrossFit, DetectorFactory, cross_fit, detector_factory, resolve_trim, trim_mask
from .verdicts import MAD_TO_SD, log_scores

REPEAT_SEED_STRIDE = 7919  # fold seed of repeat r: seed + r * stride (a prime, far from the member seeds)


@dataclass
class MemberFit:
    """One member's cross-fit on one fold seed and the affine map that standardises its log scores."""

    fit: CrossFit
    centre: float
    spread: float

    def standardised(self, raw_scores: np.ndarray) -> np.ndarray:
        return (log_scores(raw_scores) - self.centre) / self.spread


def standardise(fit: CrossFit) -> MemberFit:
    """Centre and spread of a member's log cross-fitted scores over the pack."""
    z = log_scores(fit.scores)
    centre = float(np.median(z))
    spread = max(MAD_TO_SD * float(np.median(np.abs(z - centre))), 1e-6)
    return MemberFit(fit, centre, spread)


def combine(fits: Sequence[MemberFit]) -> np.ndarray:
    """Mean of the members' standardised log scores (n,)."""
    return np.mean([m.standardised(m.fit.scores) for m in fits], axis=0)


def fit_members(
    X: np.ndarray, factories: Sequence[DetectorFactory], folds: int, seed: int, exclude: np.ndarray | None = None
) -> list[MemberFit]:
    return [standardise(cross_fit(X, factory, folds, seed, exclude)) for factory in factories]


@dataclass
class PackRanking:
    """The shipped scores of a pack, and how to score more rows of one loop (its windows) alike."""

    repeats: list[list[MemberFit]]  # per fold seed, per member
    first_pass: np.ndarray  # (n,) combined log scores of the first pass (first fold seed)
    trimmed: np.ndarray  # (n,) bool: left out of every training fold in the second pass
    trim_fraction: float
    members: tuple[str, ...]
    log_median: float = 0.0
    spread: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n,) range of log scores over fold seeds

    @property
    def scores(self) -> np.ndarray:
        return np.exp(self._log_scores() - self.log_median)

    def _log_scores(self) -> np.ndarray:
        return np.mean([combine(fits) for fits in self.repeats], axis=0)

    def row_scores(self, i: int, X: np.ndarray) -> np.ndarray:
        """Scores of rows ``X`` (e.g. loop ``i``'s windows) by the fold detectors that scored loop ``i``."""
        per_repeat = []
        for fits in self.repeats:
            per_repeat.append(np.mean([m.standardised(m.fit.normalised(int(m.fit.fold[i]), X)) for m in fits], axis=0))
        return np.exp(np.mean(per_repeat, axis=0) - self.log_median)


def rank_pack(
    X: np.ndarray,
    members: Sequence[str] = CURATE.members,
    folds: int = CURATE.folds,
    trim: float | str = CURATE.trim,
    seed: int = CURATE.seed,
    repeats: int = CURATE.repeats,
    member_options: dict[str, dict] | None = None,
) -> PackRanking:
    """The shipped ranking of the pack ``X`` (n, d); see the module docstring."""
    if repeats < 1 or not members:
        raise ValueError("rank_pack needs at least one member and one repeat")
    options = {"deep_svdd": {"ensemble_size": CURATE.member_heads}}
    for name, extra in (member_options or {}).items():
        options[name] = {**options.get(name, {}), **extra}
    factories = [detector_factory(m, **options.get(m, {})) for m in members]
    X = np.asarray(X, dtype=np.float32)
    runs, first_pass, dropped, fraction = [], None, None, 0.0
    for r in range(repeats):
        fold_seed = seed + r * REPEAT_SEED_STRIDE
        if r == 0:  # the trimmed set is chosen once, so every repeat fits on the same loops
            first = fit_members(X, factories, folds, fold_seed)
            first_pass = combine(first)
            fraction = resolve_trim(np.exp(first_pass), trim)
            dropped = trim_mask(first_pass, fraction)
        # a later repeat's untrimmed pass would only be thrown away: fit it only when nothing is trimmed
        if dropped.any():
            runs.append(fit_members(X, factories, folds, fold_seed, dropped))
        else:
            runs.append(first if r == 0 else fit_members(X, factories, folds, fold_seed))
    per_repeat = np.array([combine(fits) for fits in runs])
    ranking = PackRanking(runs, first_pass, dropped, fraction, tuple(members))
    ranking.log_median = float(np.median(per_repeat.mean(axis=0)))
    ranking.spread = np.ptp(per_repeat, axis=0)
    return ranking
