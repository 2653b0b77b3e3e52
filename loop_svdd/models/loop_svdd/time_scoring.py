"""Where in the loop: time-resolved anomaly scores (docs/localisation.md).

Each time step of an encoder window is scored by its distance to the nearest normal time step in a memory bank
(PatchCore-style, greedy coreset subsampling), per source - HTS-AT's token grids or the log-mel frames; shipped:
stage 1 (39 ms steps) and the log-mel frames (10 ms) - each distance divided by its scale and averaged over sources,
max-pooled to `steps` per 10 s window (0.156 s), then folded onto each loop's own timeline (windows of long loops
laid end to end, the repeated copies of a short loop folded back by their mean).

HTS-AT folds a 10 s window (1001 frames resized to 1024) into a square image: 4 time chunks of 256 frames stacked
along the frequency axis. A stage of resolution R holds 4 x R time steps (chunk-major) and R / 4 frequency rows per
chunk; averaging the rows gives the stage's time grid (stage 1: 256 steps of 39 ms ... stage 4: 32 of 0.31 s).

The maths only (a saved folder carries this file as remote code): filling the bank from normal loops is
`loop_svdd.engine.time_bank`'s.
"""

from __future__ import annotations

import math

import torch

SOURCES = ("mel", "stage1", "stage2", "stage3", "stage4")


def source_dim(audio_config, source: str) -> int:
    """Feature size of one time step of `source` for an HTS-AT of `audio_config`."""
    if source == "mel":
        return int(audio_config.num_mel_bins)
    stage = _stage(source)
    return int(audio_config.patch_embeds_hidden_size) * 2 ** (stage - 1)


def _stage(source: str) -> int:
    if source not in SOURCES or source == "mel":
        raise ValueError(f"unknown time source {source!r}; choose from {', '.join(SOURCES)}")
    return int(source.removeprefix("stage"))


def stage_time_grid(hidden: torch.Tensor, chunks: int = 4) -> torch.Tensor:
    """`(W, C, R, R)` reshaped hidden state -> `(W, chunks * R, C)`: the mean over frequency rows per time step."""
    w, c, height, width = hidden.shape
    grid = hidden.reshape(w, c, chunks, height // chunks, width).mean(dim=3)  # (W, C, chunks, R)
    return grid.reshape(w, c, chunks * width).transpose(1, 2)


def window_grids(input_features: torch.Tensor, encoder_output, sources: list[str]) -> dict[str, torch.Tensor]:
    """The time grid of each source for a batch of windows (`encoder_output` from HTS-AT with
    `output_hidden_states=True, output_hidden_states_before_downsampling=True`)."""
    grids = {}
    for source in sources:
        if source == "mel":
            grids[source] = input_features[:, 0].float()
        elif source == "stage4":
            last = encoder_output.last_hidden_state  # (W, C, 2, 32): the normed last grid
            grids[source] = last.mean(dim=2).transpose(1, 2).float()
        else:
            grids[source] = stage_time_grid(encoder_output.hidden_states[_stage(source)]).float()
    return grids


def to_steps(values: torch.Tensor, steps: int, pooling: str = "max") -> torch.Tensor:
    """`(W, T)` per-step values -> `(W, steps)`: max (or mean) over the finer steps, repeated for coarser ones."""
    if values.shape[1] == steps:
        return values
    if values.shape[1] < steps:
        return torch.nn.functional.interpolate(values[:, None], size=steps, mode="nearest")[:, 0]
    pool = torch.nn.functional.adaptive_max_pool1d if pooling == "max" else torch.nn.functional.adaptive_avg_pool1d
    return pool(values[:, None], steps)[:, 0]


NN_CHUNK = 4096  # query rows per distance block (bounded memory)


def greedy_coreset(features: torch.Tensor, size: int, seed: int = 0) -> torch.Tensor:
    """Indices of `size` rows chosen by greedy k-centre (each new row the farthest from those chosen), as in
    PatchCore; all rows when there are no more than `size`. Deterministic for a given `seed`. Squared distances
    by one matrix-vector product per pick (7x faster than `cdist` here)."""
    n = features.shape[0]
    if n <= size:
        return torch.arange(n)
    gen = torch.Generator().manual_seed(seed)
    chosen = [int(torch.randint(n, (1,), generator=gen))]
    sq = features.square().sum(dim=1)
    dist = (sq - 2 * torch.mv(features, features[chosen[0]]) + sq[chosen[0]]).clamp_min_(0)
    for _ in range(size - 1):
        nxt = int(torch.argmax(dist))
        chosen.append(nxt)
        torch.minimum(dist, (sq - 2 * torch.mv(features, features[nxt]) + sq[nxt]).clamp_min_(0), out=dist)
    return torch.tensor(chosen)


def nn_distance(queries: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """Euclidean distance of each query row `(N, D)` to its nearest bank row `(M, D)`: `(N,)`."""
    out = [torch.cdist(q, bank).amin(dim=1) for q in queries.split(NN_CHUNK)]
    return torch.cat(out) if out else queries.new_zeros(0)


class TimeScorer(torch.nn.Module):
    """Scores each time step of each window by its distance to the nearest normal time step, per source, each
    divided by its scale (the median out-of-bank distance of normal steps) and averaged over sources.

    Args:
        audio_config: the HTS-AT config (feature sizes of the sources).
        sources: which grids to score (`"mel"`, `"stage1"` ... `"stage4"`).
        bank_sizes: rows of each source's bank (the buffers' shapes, so a saved model loads).
        steps: output steps per window (e.g. 64: 0.156 s for 10 s windows).
        pooling: how finer grids reach `steps` (`"max"` or `"mean"`).
    """

    def __init__(self, audio_config, sources: list[str], bank_sizes: list[int], steps: int, pooling: str = "max"):
        super().__init__()
        self.sources = list(sources)
        self.steps = int(steps)
        self.pooling = pooling
        for source, size in zip(self.sources, bank_sizes, strict=True):
            self.register_buffer(f"bank_{source}", torch.zeros(int(size), source_dim(audio_config, source)))
        self.register_buffer("scales", torch.ones(len(self.sources)))

    def bank(self, source: str) -> torch.Tensor:
        return getattr(self, f"bank_{source}")

    def set_banks(self, banks: dict[str, torch.Tensor], scales: list[float]) -> None:
        for source in self.sources:
            setattr(self, f"bank_{source}", banks[source].float().contiguous())
        self.scales = torch.tensor(scales, dtype=torch.float32)

    def score_grids(self, grids: dict[str, torch.Tensor]) -> torch.Tensor:
        """`{source: (W, T_source, D)}` -> `(W, steps)` time scores."""
        total = 0.0
        for i, source in enumerate(self.sources):
            grid = grids[source]
            bank = self.bank(source).to(grid.device)
            dist = nn_distance(grid.reshape(-1, grid.shape[-1]), bank).reshape(grid.shape[:2])
            total = total + to_steps(dist, self.steps, self.pooling) / self.scales[i].to(grid.device)
        return total / len(self.sources)

    def forward(self, input_features: torch.Tensor, encoder_output) -> torch.Tensor:
        return self.score_grids(window_grids(input_features, encoder_output, self.sources))


def content_s(duration_s: float, window_s: float, padding: str) -> float:
    """How much of a window holds the loop's audio (the rest of a `repeatpad` window is silence)."""
    if duration_s >= window_s:
        return window_s
    if padding == "repeatpad":
        return math.floor(window_s / duration_s) * duration_s
    return window_s if padding == "repeat" else duration_s


def fold_loop(
    scores: torch.Tensor, starts_s: list[float], duration_s: float, window_s: float, padding: str, reduce: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor]:
    """One loop's windows `(n, steps)` starting at `starts_s` -> (scores, centre times) on its own timeline,
    with the window's step length (`window_s / steps`)."""
    steps = scores.shape[1]
    dt = window_s / steps
    n_bins = max(1, math.ceil(duration_s / dt - 1e-6))
    end = content_s(duration_s, window_s, padding)
    centres = (torch.arange(steps, dtype=torch.float64) + 0.5) * dt
    keep = centres < end
    values, bins = [], []
    for row, start in zip(scores, starts_s, strict=True):
        loop_t = torch.remainder(start + centres[keep], duration_s)
        bins.append(torch.clamp((loop_t / dt).long(), max=n_bins - 1))
        values.append(row[keep].double().cpu())
    values, bins = torch.cat(values), torch.cat(bins)
    if reduce == "max":
        out = torch.full((n_bins,), -math.inf, dtype=torch.float64).scatter_reduce(0, bins, values, "amax")
        filled = torch.isfinite(out)
    else:
        total = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, bins, values)
        count = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, bins, torch.ones_like(values))
        out, filled = total / count.clamp_min(1), count > 0
    times = torch.clamp((torch.arange(n_bins, dtype=torch.float64) + 0.5) * dt, max=duration_s)
    if not bool(filled.all()):  # only for odd geometries: take the nearest filled bin
        idx = torch.nonzero(filled).flatten()
        nearest = idx[torch.argmin((times[:, None] - times[idx][None]).abs(), dim=1)]
        out = out[nearest]
    return out.float(), times.float()


def fold_time_scores(
    window_scores: torch.Tensor,
    window_clip_index: torch.Tensor,
    window_start_s: torch.Tensor,
    clip_duration_s: torch.Tensor,
    window_s: float,
    padding: str = "repeatpad",
    reduce: str = "mean",
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per-window `(num_windows, steps)` -> per-loop lists of `(scores, times)` on each loop's timeline."""
    index = window_clip_index.cpu()
    starts = window_start_s.cpu().double()
    scores, times = [], []
    for clip in range(len(clip_duration_s)):
        sel = torch.nonzero(index == clip).flatten()
        s, t = fold_loop(
            window_scores[sel].cpu(), starts[sel].tolist(), float(clip_duration_s[clip]), window_s, padding, reduce
        )
        scores.append(s)
        times.append(t)
    return scores, times


DEFAULT_SOURCES = ("stage1", "mel")  # measured best on the defect benchmark (docs/localisation.md)
DEFAULT_BANK_SIZE = 4096  # rows per source after coreset subsampling
DEFAULT_STEPS = 64  # output steps per 10 s window (0.156 s)
SCALE_QUERIES = 4000
MAX_CORESET_INPUT = 60_000


def encode_windows(model, features: torch.Tensor, is_longer: torch.Tensor | None, sources: list[str]):
    """One encoder pass: `(pooled (W, D), {source: (W, T, D)})`."""
    model._check_inputs(features)
    out = model.encoder(
        input_features=features.to(model.encoder.dtype),
        is_longer=is_longer,
        output_hidden_states=True,
        output_hidden_states_before_downsampling=True,
    )
    return out.pooler_output, window_grids(features, out, sources)


def fit_bank(per_loop: list[torch.Tensor], size: int, seed: int) -> tuple[torch.Tensor, float]:
    """(coreset of the normal steps, scale): the scale is the median distance of steps of half the loops to the
    steps of the other half (out-of-bank distances of normal audio). At most `MAX_CORESET_INPUT` steps, drawn at
    random, enter the coreset search (bounded time on big corpora)."""
    gen = torch.Generator().manual_seed(seed)
    steps = torch.cat(per_loop).float()
    if len(steps) > MAX_CORESET_INPUT:
        steps = steps[torch.randperm(len(steps), generator=gen)[:MAX_CORESET_INPUT]]
    bank = steps[greedy_coreset(steps, size, seed)]
    if len(per_loop) < 2:
        return bank, 1.0
    a, b = torch.cat(per_loop[0::2]).float(), torch.cat(per_loop[1::2]).float()
    queries = a[torch.randperm(len(a), generator=gen)[:SCALE_QUERIES]]
    scale = float(torch.median(nn_distance(queries, b)))
    return bank, max(scale, 1e-6)


def fit_time_scorer(
    audio_config,
    per_loop: dict[str, list[torch.Tensor]],
    bank_size: int = DEFAULT_BANK_SIZE,
    steps: int = DEFAULT_STEPS,
    pooling: str = "max",
    seed: int = 0,
) -> TimeScorer:
    """A `TimeScorer` whose banks hold (a coreset of) the normal time steps `{source: [steps of each loop]}`."""
    banks, scales = {}, []
    for source, loops in per_loop.items():
        banks[source], scale = fit_bank(loops, bank_size, seed)
        scales.append(scale)
    scorer = TimeScorer(audio_config, list(per_loop), [len(b) for b in banks.values()], steps, pooling)
    scorer.set_banks(banks, scales)
    return scorer


FOLD = "mean"  # how repeated copies of a short loop are folded back (measured: docs/localisation.md)


def new_time_scorer(config) -> TimeScorer | None:
    """The (empty) scorer a config describes, or None when the model has no memory bank."""
    spec = getattr(config, "time_scoring", None)
    if not spec:
        return None
    return TimeScorer(config.audio_config, spec["sources"], spec["bank_sizes"], spec["steps"])


def window_time_scores(model, input_features: torch.Tensor, is_longer: torch.Tensor | None):
    """(window embeddings `(W, D)`, time scores `(W, steps)` or None): one encoder pass."""
    scorer = getattr(model, "time_scorer", None)
    if scorer is None:
        return None, None
    pooled, grids = encode_windows(model, input_features, is_longer, scorer.sources)
    with torch.no_grad():
        return pooled, scorer.score_grids(grids)


def loop_time_scores(model, window_scores, window_clip_index, window_start_s, clip_duration_s):
    """Per-loop `(time_scores, time_scores_s)` lists, or `(None, None)` when there is nothing to fold."""
    if window_scores is None or clip_duration_s is None:
        return None, None
    index = window_clip_index if window_clip_index is not None else torch.arange(len(window_scores))
    starts = window_start_s if window_start_s is not None else torch.zeros(len(window_scores))
    spec = model.config.time_scoring
    return fold_time_scores(window_scores, index, starts, clip_duration_s, spec["window_s"], spec["padding"], FOLD)
