"""The defect benchmark: inject one defect into one beat of held-out normal loops and measure, per defect kind,
loop-level AUROC (defective vs the same loops clean), hit rate (the highest time score within one token of the
defect) and per-time-step AUROC."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score as auroc

from .data import RowFilter, audio_column, load_corpus, select, waveform_of, with_decoding
from .defects import DEFECT_KINDS, LEVELS, Defect, inject_defect

TOKEN_S = 10.0 / 32  # one step of HTS-AT's last token grid: the hit tolerance
DEFAULT_BEAT_S = 0.5


@dataclass
class DefectSet:
    """Normal loops for the bank, held-out clean loops, and each held-out loop with one defect per kind."""

    bank: list[np.ndarray]
    clean: list[np.ndarray]
    defective: dict[str, list[tuple[np.ndarray, Defect]]] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    bank_rows: list[int] = field(default_factory=list)


def make_defect_set(
    corpus: str, normal: list[RowFilter], n_bank: int, n_test: int, seed: int, kinds=DEFECT_KINDS, sr: int = 48_000
) -> DefectSet:
    """Pick `n_bank` + `n_test` normal loops with `seed`; inject each kind into every test loop, levels cycled."""
    dataset = load_corpus(corpus)
    rows = select(dataset, normal)
    if len(rows) < n_bank + n_test:
        raise ValueError(f"only {len(rows)} normal loops in {corpus}; the benchmark needs {n_bank} + {n_test}")
    order = np.random.default_rng(seed).permutation(rows)[: n_bank + n_test]
    decoded = with_decoding(dataset, sr)
    column = audio_column(dataset)
    bpm = dataset["bpm"] if "bpm" in dataset.column_names else None
    waves = [waveform_of(decoded[int(i)], column) for i in order]
    out = DefectSet(bank=waves[:n_bank], clean=waves[n_bank:], names=[str(int(i)) for i in order[n_bank:]])
    out.bank_rows = [int(i) for i in order[:n_bank]]
    for k, kind in enumerate(kinds):
        out.defective[kind] = []
        for j, (row, wave) in enumerate(zip(order[n_bank:], out.clean, strict=True)):
            beat = 60.0 / float(bpm[int(row)]) if bpm is not None and bpm[int(row)] else DEFAULT_BEAT_S
            level = j % len(LEVELS[kind])
            out.defective[kind].append(inject_defect(wave, sr, kind, level, beat, seed=seed * 100_003 + k * 1009 + j))
    return out


def hit(scores: np.ndarray, times: np.ndarray, defect: Defect, tolerance_s: float = TOKEN_S) -> bool:
    """Whether the highest time score lies within `tolerance_s` of the defect's span."""
    t = float(times[int(np.argmax(scores))])
    return defect.start_s - tolerance_s <= t <= defect.end_s + tolerance_s


def chance(times: np.ndarray, defect: Defect, tolerance_s: float = TOKEN_S) -> float:
    """The hit rate of a random pick: the share of time steps within the tolerance of the defect."""
    return float(np.mean((times >= defect.start_s - tolerance_s) & (times <= defect.end_s + tolerance_s)))


def _inside(times: np.ndarray, defect: Defect) -> np.ndarray:
    dt = float(times[1] - times[0]) if len(times) > 1 else float(2 * times[0])
    return (times + dt / 2 > defect.start_s) & (times - dt / 2 < defect.end_s)


def kind_metrics(
    clean: list[tuple[np.ndarray, np.ndarray]],
    defective: list[tuple[np.ndarray, np.ndarray]],
    defects: list[Defect],
    clean_scores: np.ndarray | None = None,
    defective_scores: np.ndarray | None = None,
) -> dict[str, float]:
    """Metrics of one defect kind from time curves `(scores, times)`; the loop score is the curve's maximum
    unless loop scores are given (e.g. the clip-level score)."""
    if clean_scores is None:
        clean_scores = np.array([s.max() for s, _ in clean])
        defective_scores = np.array([s.max() for s, _ in defective])
    labels = np.r_[np.zeros(len(clean_scores)), np.ones(len(defective_scores))]
    out = {"auroc": float(auroc(labels, np.r_[clean_scores, defective_scores]))}
    if defective:
        contrast = [np.array([s.max() - np.median(s) for s, _ in curves]) for curves in (clean, defective)]
        out["auroc_contrast"] = float(auroc(labels, np.r_[contrast[0], contrast[1]]))
        out["hit_rate"] = float(np.mean([hit(s, t, d) for (s, t), d in zip(defective, defects, strict=True)]))
        out["chance_hit_rate"] = float(np.mean([chance(t, d) for (_, t), d in zip(defective, defects, strict=True)]))
        step_labels = np.concatenate(
            [np.zeros(len(s)) for s, _ in clean] + [_inside(t, d) for (_, t), d in zip(defective, defects, strict=True)]
        )
        step_scores = np.concatenate([s for s, _ in clean] + [s for s, _ in defective])
        out["time_auroc"] = float(auroc(step_labels, step_scores))
    return out


def summarise(per_kind: dict[str, dict[str, float]]) -> dict:
    """`{"defects": per_kind, "mean_auroc": .., "mean_hit_rate": ..}` (means over kinds)."""
    out = {"defects": per_kind, "mean_auroc": float(np.mean([m["auroc"] for m in per_kind.values()]))}
    for key in ("auroc_contrast", "hit_rate", "chance_hit_rate", "time_auroc"):
        values = [m[key] for m in per_kind.values() if key in m]
        if values:
            out[f"mean_{key}"] = float(np.mean(values))
    return out


def curves_numpy(scores: list[torch.Tensor], times: list[torch.Tensor]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(s.numpy().astype(np.float64), t.numpy().astype(np.float64)) for s, t in zip(scores, times, strict=True)]


def spectral_baseline(model, extractor, data: DefectSet, seed: int):
    """Per set (`clean` and each kind), the time curves of the plain spectral-difference baseline: each log-mel
    frame's distance to the nearest normal frame (the same memory bank machinery, mel frames only)."""
    from .localisation import build_time_bank, encode_loops, fold_time_scores

    scorer = build_time_bank(copy.deepcopy(model), extractor, data.bank, seed, sources=("mel",))
    sets = {"clean": data.clean, **{k: [w for w, _ in v] for k, v in data.defective.items()}}
    curves = {}
    for name, waves in sets.items():
        enc = encode_loops(model, extractor, waves, ["mel"])
        window = scorer.score_grids(enc.grids)
        folded = fold_time_scores(
            window, enc.clip_index, enc.start_s, enc.duration_s, float(extractor.max_length_s), extractor.padding
        )
        curves[name] = curves_numpy(*folded)
    return curves


def run_defect_benchmark(
    corpus: str,
    normal: list[RowFilter],
    workdir: Path,
    encoder: str = "default",
    n_bank: int = 40,
    n_test: int = 20,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Train a detector (Deep SVDD + memory bank, as `loop-svdd train` does) on `n_bank` normal loops, then
    measure it on `n_test` held-out loops, clean and with each defect; with the clip-level score and the
    spectral baseline alongside. Returns the JSON-ready results."""
    from .embedding import score_waveforms
    from .training.from_corpus import train_on_corpus

    data = make_defect_set(corpus, normal, n_bank, n_test, seed)
    bank_corpus = Path(workdir) / "bank-corpus"
    load_corpus(corpus).select(data.bank_rows).save_to_disk(str(bank_corpus))
    trained = train_on_corpus(
        bank_corpus, [], Path(workdir) / "model", encoder, holdout_fraction=0.0, progress=progress
    )
    model, extractor = trained.model, trained.extractor
    sets = {"clean": data.clean, **{k: [w for w, _ in v] for k, v in data.defective.items()}}
    scored = {
        k: score_waveforms(model, extractor, waves, extractor.sampling_rate, batch_size=4) for k, waves in sets.items()
    }
    curves = {k: [(np.asarray(s.time_scores), np.asarray(s.time_scores_s)) for s in v] for k, v in scored.items()}
    clip = {k: np.array([s.score for s in v]) for k, v in scored.items()}
    spectral = spectral_baseline(model, extractor, data, seed)
    per_kind, clip_kind, spectral_kind = {}, {}, {}
    for kind, items in data.defective.items():
        defects = [d for _, d in items]
        per_kind[kind] = kind_metrics(curves["clean"], curves[kind], defects)
        clip_kind[kind] = kind_metrics([], [], [], clip["clean"], clip[kind])
        spectral_kind[kind] = kind_metrics(spectral["clean"], spectral[kind], defects)
    out = {"protocol": "defects", **summarise(per_kind)}
    out["baselines"] = {"clip_level": summarise(clip_kind), "spectral": summarise(spectral_kind)}
    out["settings"] = {
        "corpus": str(corpus),
        "normal": [str(f) for f in normal],
        "encoder": encoder,
        "n_bank": n_bank,
        "n_test": n_test,
        "seed": seed,
        "levels": {k: list(v) for k, v in LEVELS.items()},
        "hit_tolerance_s": TOKEN_S,
        "time_scoring": model.config.time_scoring,
    }
    return out


def format_summary(results: dict) -> str:
    """A markdown table: per defect kind, loop AUROC and hit rate of the shipped scorer and the baselines."""
    base = results["baselines"]
    lines = [
        "| defect | loop AUROC | hit rate (chance) | step AUROC | clip-level AUROC | spectral AUROC | spectral hit |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in [*results["defects"], "mean"]:

        def get(r: dict, key: str, kind: str = kind) -> float:
            return r[f"mean_{key}"] if kind == "mean" else r["defects"][kind][key]

        lines.append(
            f"| {kind} | {get(results, 'auroc'):.3f} | {get(results, 'hit_rate'):.3f} "
            f"({get(results, 'chance_hit_rate'):.2f}) | {get(results, 'time_auroc'):.3f} | "
            f"{get(base['clip_level'], 'auroc'):.3f} | {get(base['spectral'], 'auroc'):.3f} | "
            f"{get(base['spectral'], 'hit_rate'):.3f} |"
        )
    return "\n".join(lines)


def run_cli(args) -> int:
    """`loop-svdd benchmark --protocol defects ...`: run, write `--json`, print the table."""
    import json
    import tempfile
    import time

    from .cli import CLIError
    from .data import CorpusError

    if not args.corpus:
        raise CLIError("--corpus is required for the defects protocol (build one with `loop-svdd corpus build`)")
    if args.n_bank < 4 or args.n_test < 2:
        raise CLIError("--n-bank must be >= 4 and --n-test >= 2")
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
        raise CLIError(str(err)) from None
    results["settings"]["seconds"] = round(time.perf_counter() - start, 1)
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(format_summary(results))
    print(f"done in {results['settings']['seconds']} s; results in {args.json}")
    return 0
