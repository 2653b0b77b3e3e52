"""Draw docs/img/where_in_the_loop.png: a held-out loop with an injected defect, its spectrogram and time scores.

loop-svdd benchmark localisation-figure MODEL CORPUS --row R --kind noise_burst --level 1 --seed 0 --out PNG
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ..audio.corpora import audio_column, load_corpus, waveform_of, with_decoding
from ..engine.embedding import forward_waveforms
from ..figures import _pyplot, plot_time_scores
from ..localisation.defects import Defect, inject_defect
from ..models.model_io import load_detector
from .report import BenchResult, add_report_options


def draw(path: str, extractor, damaged: np.ndarray, defect: Defect, out) -> None:
    """The damaged loop's log-mel spectrogram over its time scores and the clean loop's, the defect shaded."""
    plt = _pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(8, 5.2), dpi=110, sharex=True, gridspec_kw={"height_ratios": [3, 1.3, 1.3]})
    mel = extractor.log_mel(torch.from_numpy(damaged)[None], "slaney")[0].numpy()
    duration = len(damaged) / extractor.sampling_rate
    axes[0].imshow(mel.T, origin="lower", aspect="auto", extent=(0, duration, 0, mel.shape[1]), cmap="magma")
    axes[0].axvspan(defect.start_s, defect.end_s, color="cyan", alpha=0.25, label=f"injected {defect.kind}")
    axes[0].set_ylabel("mel bin")
    axes[0].set_title(f"loop with one {defect.kind.replace('_', ' ')} ({defect.start_s:.2f}-{defect.end_s:.2f} s)")
    axes[0].legend(loc="upper right", fontsize=7)
    top = max(float(out.time_scores[0].max()), float(out.time_scores[1].max())) * 1.05
    for ax, i, label in ((axes[1], 1, "with defect"), (axes[2], 0, "clean")):
        plot_time_scores(ax, out.time_scores_s[i].numpy(), out.time_scores[i].numpy(), label=label, mark_peak=i == 1)
        ax.axvspan(defect.start_s, defect.end_s, color="cyan", alpha=0.25)
        ax.set_ylim(0, top)
        ax.legend(loc="upper left", fontsize=7)
    axes[2].set_xlabel("time in the loop (s)")
    fig.tight_layout()
    fig.savefig(path)


# -- the protocol: `loop-svdd benchmark localisation-figure` -----------------------------------------------------
NAME = "localisation-figure"
DESCRIPTION = __doc__.splitlines()[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model folder (from `loop-svdd train`, with a memory bank)")
    parser.add_argument("corpus", help="the corpus the loop is taken from (with a bpm column)")
    parser.add_argument("--row", type=int, required=True, help="the loop's row in the corpus")
    parser.add_argument("--kind", default="noise_burst", help="defect kind (default: noise_burst)")
    parser.add_argument("--level", type=int, default=1, help="defect strength level (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="where the defect goes (default: 0)")
    parser.add_argument("--out", required=True, help="the PNG to write")
    add_report_options(parser, json_required=False)


def run(args: argparse.Namespace) -> BenchResult:
    model, extractor = load_detector(args.model)
    ds = load_corpus(args.corpus)
    wave = waveform_of(with_decoding(ds, extractor.sampling_rate)[args.row], audio_column(ds))
    beat = 60.0 / float(ds["bpm"][args.row])
    damaged, defect = inject_defect(wave, extractor.sampling_rate, args.kind, args.level, beat, args.seed)
    out = forward_waveforms(model, extractor, [wave, damaged], extractor.sampling_rate)
    draw(args.out, extractor, damaged, defect, out)
    peak = float(out.time_scores_s[1][int(np.argmax(out.time_scores[1]))])
    line = (
        f"defect {defect.start_s:.2f}-{defect.end_s:.2f} s; peak of the time scores at {peak:.2f} s; wrote {args.out}"
    )
    settings = {k: getattr(args, k) for k in ("model", "corpus", "row", "kind", "level", "seed", "out")}
    payload = {"defect": {"kind": defect.kind, "start_s": float(defect.start_s), "end_s": float(defect.end_s)}}
    payload["peak_s"] = peak
    return BenchResult(NAME, settings, line, {"protocol": NAME, **payload, "settings": settings})
