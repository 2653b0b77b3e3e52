"""The defect benchmark: inject one defect into one beat of held-out normal loops and measure, per defect kind and
per strength level, loop-level AUROC (defective vs the same loops clean), hit rate (the highest time score within
half a beat of the defect) and per-time-step AUROC; for the shipped scorer and each baseline."""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score as auroc

from ..audio.corpora import RowFilter, load_corpus, select
from ..audio.decoding import corpus_waveforms, decodable_rows
from ..localisation.defects import DEFECT_KINDS, LEVELS, Defect, inject_defect
from ..settings import SAMPLING_RATE
from .report import BenchmarkError, BenchResult, add_report_options

DEFAULT_BEAT_S = 0.5
HIT_BEATS = 0.5  # the hit tolerance: half a beat either side of the defect's span
CORPUS = {"n_loops": 80, "seed": 7, "instruments": ["bass"], "sources": ["FluidR3_GM"]}  # built when none given

Curve = tuple[np.ndarray, np.ndarray]


@dataclass
class DefectSet:
    """Normal loops for the bank, held-out clean loops (with their beats in s), and each held-out loop with one
    defect per kind."""

    bank: list[np.ndarray]
    clean: list[np.ndarray]
    defective: dict[str, list[tuple[np.ndarray, Defect]]] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    bank_rows: list[int] = field(default_factory=list)
    beats: list[float] = field(default_factory=list)


def make_defect_set(
    corpus: str,
    normal: list[RowFilter],
    n_bank: int,
    n_test: int,
    seed: int,
    kinds=DEFECT_KINDS,
    sr: int = SAMPLING_RATE,
) -> DefectSet:
    """Pick `n_bank` + `n_test` normal loops with `seed`; inject each kind into every test loop, levels cycled."""
    dataset = load_corpus(corpus)
    rows = decodable_rows(dataset, sr, progress=False).restrict(select(dataset, normal))  # undecodable: left out
    if len(rows) < n_bank + n_test:
        raise ValueError(f"only {len(rows)} normal loops in {corpus}; the benchmark needs {n_bank} + {n_test}")
    order = np.random.default_rng(seed).permutation(rows)[: n_bank + n_test]
    bpm = dataset["bpm"] if "bpm" in dataset.column_names else None
    waves = list(corpus_waveforms(dataset, order, sr))
    out = DefectSet(bank=waves[:n_bank], clean=waves[n_bank:], names=[str(int(i)) for i in order[n_bank:]])
    out.bank_rows = [int(i) for i in order[:n_bank]]
    out.beats = [
        60.0 / float(bpm[int(r)]) if bpm is not None and bpm[int(r)] else DEFAULT_BEAT_S for r in order[n_bank:]
    ]
    for k, kind in enumerate(kinds):
        out.defective[kind] = []
        for j, (wave, beat) in enumerate(zip(out.clean, out.beats, strict=True)):
            level = j % len(LEVELS[kind])
            out.defective[kind].append(inject_defect(wave, sr, kind, level, beat, seed=seed * 100_003 + k * 1009 + j))
    return out


def hit(scores: np.ndarray, times: np.ndarray, defect: Defect, tolerance_s: float) -> bool:
    """Whether the highest time score lies within `tolerance_s` of the defect's span."""
    if len(scores) == 0:
        return False
    t = float(times[int(np.argmax(scores))])
    return defect.start_s - tolerance_s <= t <= defect.end_s + tolerance_s


def chance(times: np.ndarray, defect: Defect, tolerance_s: float) -> float:
    """The hit rate of a random pick: the share of time steps within the tolerance of the defect."""
    return float(np.mean((times >= defect.start_s - tolerance_s) & (times <= defect.end_s + tolerance_s)))


def _inside(times: np.ndarray, defect: Defect) -> np.ndarray:
    dt = float(times[1] - times[0]) if len(times) > 1 else float(2 * times[0])
    return (times + dt / 2 > defect.start_s) & (times - dt / 2 < defect.end_s)


def _loop_score(curve: Curve) -> float:
    return float(curve[0].max()) if len(curve[0]) else 0.0


def curve_metrics(clean: list[Curve], defective: list[Curve], defects: list[Defect], beats: list[float]) -> dict:
    """Loop AUROC (loop score = the curve's maximum), hit rate, chance hit rate and step AUROC of time curves."""
    clean_scores = np.array([_loop_score(c) for c in clean])
    out = loop_metrics(clean_scores, np.array([_loop_score(c) for c in defective]))
    tol = [HIT_BEATS * b for b in beats]
    out["hit_rate"] = float(np.mean([hit(s, t, d, e) for (s, t), d, e in zip(defective, defects, tol, strict=True)]))
    out["chance_hit_rate"] = float(
        np.mean([chance(t, d, e) for (_, t), d, e in zip(defective, defects, tol, strict=True)])
    )
    labels = np.concatenate(
        [np.zeros(len(s)) for s, _ in clean] + [_inside(t, d) for (_, t), d in zip(defective, defects, strict=True)]
    )
    values = np.concatenate([s for s, _ in clean] + [s for s, _ in defective])
    out["time_auroc"] = float(auroc(labels, values)) if 0 < labels.sum() < len(labels) else float("nan")
    return out


def loop_metrics(clean_scores: np.ndarray, defective_scores: np.ndarray) -> dict:
    """Loop AUROC of defective vs clean loop scores."""
    labels = np.r_[np.zeros(len(clean_scores)), np.ones(len(defective_scores))]
    return {"auroc": float(auroc(labels, np.r_[clean_scores, defective_scores]))}


def kind_metrics(
    clean: list[Curve] | np.ndarray, defective: list[Curve] | np.ndarray, defects: list[Defect], beats: list[float]
) -> dict:
    """One kind's metrics over all its loops, and per strength level (`"levels": {"0": ..., ...}`). Curves
    `(scores, times)` give all metrics; plain loop scores (arrays, e.g. the clip-level score) give AUROC only."""

    def measure(sel: list[int]) -> dict:
        if isinstance(defective, np.ndarray):
            return loop_metrics(np.asarray(clean), defective[sel])
        picked = [defective[i] for i in sel]
        return curve_metrics(clean, picked, [defects[i] for i in sel], [beats[i] for i in sel])

    out = measure(list(range(len(defects))))
    levels = sorted({d.level for d in defects})
    out["levels"] = {str(lv): measure([i for i, d in enumerate(defects) if d.level == lv]) for lv in levels}
    return out


def summarise(per_kind: dict[str, dict]) -> dict:
    """`{"defects": per_kind, "mean_auroc", "mean_hit_rate", ...}`: means over kinds (each kind's figure is over
    all its loops, the strength levels balanced by construction)."""
    out = {"defects": per_kind}
    for key in ("auroc", "hit_rate", "chance_hit_rate", "time_auroc"):
        values = [m[key] for m in per_kind.values() if key in m]
        if values:
            out[f"mean_{key}"] = float(np.mean(values))
    return out


def curves_numpy(scores: list[torch.Tensor], times: list[torch.Tensor]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(s.numpy().astype(np.float64), t.numpy().astype(np.float64)) for s, t in zip(scores, times, strict=True)]


def spectral_baseline(model, extractor, data: DefectSet, seed: int):
    """Per set (`clean` and each kind), the time curves of the plain spectral-difference baseline: each log-mel
    frame's distance to the nearest normal frame (the same memory bank machinery, mel frames only)."""
    from ..engine.time_bank import build_time_bank, scorer_curves

    scorer = build_time_bank(copy.deepcopy(model), extractor, data.bank, seed, sources=("mel",))
    sets = {"clean": data.clean, **{k: [w for w, _ in v] for k, v in data.defective.items()}}
    return {name: curves_numpy(*scorer_curves(model, extractor, waves, scorer)) for name, waves in sets.items()}


def model_curves(model, extractor, sets: dict[str, list[np.ndarray]]) -> tuple[dict, dict, float]:
    """Per set: the learned bank's time curves and the clip-level scores (one `score_waveforms` pass, as `score`
    runs the model), and the seconds it took."""
    from ..engine.scoring import score_waveforms

    start = time.perf_counter()
    scored = {
        k: score_waveforms(model, extractor, w, extractor.sampling_rate, batch_size=4, loop_aware=False)
        for k, w in sets.items()
    }
    seconds = time.perf_counter() - start
    curves = {k: [(np.asarray(s.time_scores), np.asarray(s.time_scores_s)) for s in v] for k, v in scored.items()}
    return curves, {k: np.array([s.score for s in v]) for k, v in scored.items()}, seconds


def loop_curves(sets: dict[str, list[np.ndarray]], beats: list[float | None], sr: int) -> tuple[dict, float]:
    """Per set, each loop's `LoopCurve` (repetition and signal scores), and the seconds they took."""
    from ..engine.repetition import loop_curve

    start = time.perf_counter()
    out = {k: [loop_curve(w, sr, b) for w, b in zip(waves, beats, strict=True)] for k, waves in sets.items()}
    return out, time.perf_counter() - start


def variants(bank: dict, loops: dict, loops_no_tempo: dict) -> dict[str, dict[str, list[Curve]]]:
    """Per scorer, per set, the time curves: the shipped rule, the other rule, the learned bank alone, the
    repetition and signal scores alone, and the shipped rule with the tempo unknown."""
    from ..engine.repetition import RULE, RULES, combine

    def per_set(fn) -> dict[str, list[Curve]]:
        return {k: [fn(c, b) for c, b in zip(loops[k], bank[k], strict=True)] for k in bank}

    def combined(source: dict, rule: str) -> dict[str, list[Curve]]:
        return {k: [combine(c, *b, rule)[:2] for c, b in zip(source[k], bank[k], strict=True)] for k in bank}

    other = next(r for r in RULES if r != RULE)
    return {
        "shipped": combined(loops, RULE),
        f"rule_{other}": combined(loops, other),
        "tempo_unknown": combined(loops_no_tempo, RULE),
        "bank": bank,
        "repetition": per_set(lambda c, b: (c.repetition, c.times)),
        "signal": per_set(lambda c, b: (c.signal, c.times)),
    }


def build_default_corpus(workdir: Path, progress: bool) -> str:
    """The benchmark's own corpus (`CORPUS`: FluidR3_GM bass loops), built in `workdir` unless already there."""
    from ..corpus.build import build_corpus

    out = Path(workdir) / "corpus"
    if not (out / "metadata.csv").exists():
        build_corpus(
            out,
            CORPUS["n_loops"],
            CORPUS["seed"],
            CORPUS["instruments"],
            CORPUS["sources"],
            progress=progress,
            overwrite=True,
        )
    return str(out)


def train_detector(corpus: str, data: DefectSet, workdir: Path, encoder: str, progress: bool):
    """Deep SVDD + memory bank trained on the bank loops, as `loop-svdd train` does: (model, extractor)."""
    from ..training.from_corpus import train_on_corpus

    bank_corpus = Path(workdir) / "bank-corpus"
    load_corpus(corpus).select(data.bank_rows).save_to_disk(str(bank_corpus))
    trained = train_on_corpus(
        bank_corpus, [], Path(workdir) / "model", encoder, holdout_fraction=0.0, progress=progress
    )
    return trained.model, trained.extractor


def measure(curves: dict[str, list[Curve]], data: DefectSet) -> dict:
    """`summarise` of one scorer's curves over every kind."""
    per_kind = {
        k: kind_metrics(curves["clean"], curves[k], [d for _, d in items], data.beats)
        for k, items in data.defective.items()
    }
    return summarise(per_kind)


def run_defect_benchmark(
    corpus: str | None,
    normal: list[RowFilter],
    workdir: Path,
    encoder: str = "default",
    n_bank: int = 40,
    n_test: int = 30,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Train a detector (Deep SVDD + memory bank, as `loop-svdd train` does) on `n_bank` normal loops, then
    measure it on `n_test` held-out loops, clean and with each defect, with the baselines alongside (clip-level
    score, spectral bank, learned bank, repetition and signal scores alone). `corpus` None: build `CORPUS`.
    Returns the JSON-ready results."""
    corpus = corpus or build_default_corpus(workdir, progress)
    data = make_defect_set(corpus, normal, n_bank, n_test, seed)
    model, extractor = train_detector(corpus, data, workdir, encoder, progress)
    sets = {"clean": data.clean, **{k: [w for w, _ in v] for k, v in data.defective.items()}}
    bank, clip, model_s = model_curves(model, extractor, sets)
    loops, loop_s = loop_curves(sets, data.beats, extractor.sampling_rate)
    loops_no_tempo, no_tempo_s = loop_curves(sets, [None] * len(data.beats), extractor.sampling_rate)
    scorers = variants(bank, loops, loops_no_tempo)
    scorers["spectral"] = spectral_baseline(model, extractor, data, seed)
    out = {"protocol": "defects", **measure(scorers.pop("shipped"), data)}
    clip_kind = {
        k: kind_metrics(clip["clean"], clip[k], [d for _, d in v], data.beats) for k, v in data.defective.items()
    }
    out["baselines"] = {"clip_level": summarise(clip_kind), **{k: measure(v, data) for k, v in scorers.items()}}
    n_loops = sum(len(v) for v in sets.values())
    out["cost"] = {
        "model_s_per_loop": model_s / n_loops,
        "loop_scores_s_per_loop": loop_s / n_loops,
        "loop_scores_no_tempo_s_per_loop": no_tempo_s / n_loops,
        "ratio_to_score": (model_s + loop_s) / model_s,
        "ratio_to_score_no_tempo": (model_s + no_tempo_s) / model_s,
    }
    out["settings"] = settings(corpus, normal, encoder, n_bank, n_test, seed, model)
    return out


def settings(corpus, normal, encoder, n_bank, n_test, seed, model) -> dict:
    """What the results were measured with."""
    from ..engine.repetition import RULE

    return {
        "corpus": str(corpus),
        "normal": [str(f) for f in normal],
        "encoder": encoder,
        "n_bank": n_bank,
        "n_test": n_test,
        "seed": seed,
        "levels": {k: list(v) for k, v in LEVELS.items()},
        "hit_tolerance_beats": HIT_BEATS,
        "rule": RULE,
        "time_scoring": model.config.time_scoring,
    }


def format_summary(results: dict) -> str:
    """Markdown tables: per defect kind and level, hit rate / loop AUROC of the shipped scorer; then the means of
    every scorer."""
    lines = ["| defect | all: hit / AUROC | " + " | ".join(f"level {lv}" for lv in ("0", "1", "2")) + " |"]
    lines.append("|---|---|---|---|---|")
    for kind, m in results["defects"].items():
        cells = [f"{m['levels'][lv]['hit_rate']:.2f} / {m['levels'][lv]['auroc']:.2f}" for lv in sorted(m["levels"])]
        lines.append(f"| {kind} | {m['hit_rate']:.3f} / {m['auroc']:.3f} | " + " | ".join(cells) + " |")
    lines += ["", "| scorer | mean hit rate (chance) | mean loop AUROC | mean step AUROC |", "|---|---|---|---|"]
    rows = {"shipped": results, **results["baselines"]}
    for name, r in rows.items():
        hit_rate = f"{r['mean_hit_rate']:.3f} ({r['mean_chance_hit_rate']:.2f})" if "mean_hit_rate" in r else "-"
        step = f"{r['mean_time_auroc']:.3f}" if "mean_time_auroc" in r else "-"
        lines.append(f"| {name} | {hit_rate} | {r['mean_auroc']:.3f} | {step} |")
    return "\n".join(lines)


# -- the protocol: `loop-svdd benchmark defects` -----------------------------------------------------------------
NAME = "defects"
DESCRIPTION = (
    "Train a detector on normal loops, inject one defect into one beat of held-out loops and measure, per defect "
    "kind and strength, loop AUROC, hit rate and per-step AUROC of the shipped time scores and the baselines."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--corpus", help="a loop corpus (default: the command builds its own, 80 FluidR3_GM bass loops, seed 7)"
    )
    parser.add_argument("--normal", action="append", default=[], help="COLUMN=VALUE filter of the normal loops")
    parser.add_argument(
        "--encoder", default="default", help="encoder of the detector, as for `loop-svdd train` (default: default)"
    )
    parser.add_argument("--n-bank", type=int, default=40, help="normal loops to train on (default 40)")
    parser.add_argument(
        "--n-test",
        type=int,
        default=30,
        help="held-out loops, each defective once per kind, levels cycled (default 30)",
    )
    parser.add_argument("--seed", type=int, default=0, help="which loops, beats and defects (default 0)")
    parser.add_argument("--workdir", help="where the trained detector is kept (default: a temporary folder)")
    add_report_options(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> BenchResult:
    """Run the benchmark as the command line asks; the built corpus is named by its recipe in the settings."""
    import tempfile

    from ..audio.corpora import CorpusError

    if args.n_bank < 4 or args.n_test < 2:
        raise BenchmarkError("--n-bank must be >= 4 and --n-test >= 2")
    start = time.perf_counter()
    try:
        normal = [RowFilter.parse(f) for f in args.normal]
        with tempfile.TemporaryDirectory() as tmp:
            results = run_defect_benchmark(
                args.corpus,
                normal,
                Path(args.workdir or tmp),
                args.encoder,
                args.n_bank,
                args.n_test,
                args.seed,
                progress=not args.no_progress,
            )
    except (CorpusError, ValueError) as err:
        raise BenchmarkError(str(err)) from None
    results["settings"]["seconds"] = round(time.perf_counter() - start, 1)
    if not args.corpus:
        results["settings"]["corpus"] = "built: " + ", ".join(f"{k}={v}" for k, v in CORPUS.items())
    seconds = results["settings"]["seconds"]
    return BenchResult(NAME, results["settings"], format_summary(results), results, seconds=seconds)
