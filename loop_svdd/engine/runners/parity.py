"""Does a runner reproduce PyTorch? The check every export passes before its graphs are written as final."""

from __future__ import annotations

import numpy as np

from ...export.graph import ExportError
from ...models.loop_svdd.modeling_loop_svdd import LoopSVDDModel
from .base import Runner
from .torch import TorchRunner

PARITY_RTOL = 1e-3  # an fp32 graph further than this from PyTorch was traced wrongly: refuse it


def window_scores(runner: Runner, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    """`runner`'s window scores on every feed (`loop_svdd.export.feeds`), concatenated."""
    return np.concatenate([runner.windows(f["input_features"], f.get("is_longer"))[1] for f in feeds])


def check_parity(model: LoopSVDDModel, runner: Runner, feeds: list[dict[str, np.ndarray]]) -> float:
    """Max relative difference of the runner's window scores from PyTorch's; raises ExportError past PARITY_RTOL."""
    ref = window_scores(TorchRunner(model), feeds)
    try:
        got = window_scores(runner, feeds)
    except Exception as err:  # e.g. a shape traced as a constant fails on another number of windows
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ExportError(
            f"the exported graph does not reproduce the PyTorch scores (it fails on a batch of {len(ref)} windows: "
            f"{first}): part of the model was traced as a constant"
        ) from err
    same_shape = got.shape == ref.shape
    diff = float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-12))) if same_shape else float("inf")
    if not np.isfinite(diff) or diff > PARITY_RTOL:
        raise ExportError(
            f"the exported graph does not reproduce the PyTorch scores (max relative difference {diff:.3g} > "
            f"{PARITY_RTOL}): part of the model was traced as a constant"
        )
    return diff
