"""Draw docs/img/where_in_the_loop.png: a held-out loop with an injected defect, its spectrogram and time scores.

python scripts/localisation_figure.py MODEL CORPUS --row R --kind noise_burst --level 1 --seed 0 --out PNG
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from loop_svdd.audio.corpora import audio_column, load_corpus, waveform_of, with_decoding
from loop_svdd.figures import _pyplot, plot_time_scores
from loop_svdd.localisation.defects import inject_defect
from loop_svdd.models.model_io import load_detector


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("corpus")
    ap.add_argument("--row", type=int, required=True)
    ap.add_argument("--kind", default="noise_burst")
    ap.add_argument("--level", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    model, ex = load_detector(args.model)
    ds = load_corpus(args.corpus)
    wave = waveform_of(with_decoding(ds, ex.sampling_rate)[args.row], audio_column(ds))
    beat = 60.0 / float(ds["bpm"][args.row])
    damaged, defect = inject_defect(wave, ex.sampling_rate, args.kind, args.level, beat, args.seed)
    with torch.no_grad():
        out = model(**ex([wave, damaged], sampling_rate=ex.sampling_rate))
    plt = _pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(8, 5.2), dpi=110, sharex=True, gridspec_kw={"height_ratios": [3, 1.3, 1.3]})
    mel = ex.log_mel(torch.from_numpy(damaged)[None], "slaney")[0].numpy()
    duration = len(damaged) / ex.sampling_rate
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
    fig.savefig(args.out)
    peak = float(out.time_scores_s[1][int(np.argmax(out.time_scores[1]))])
    print(
        f"defect {defect.start_s:.2f}-{defect.end_s:.2f} s; peak of the time scores at {peak:.2f} s; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
