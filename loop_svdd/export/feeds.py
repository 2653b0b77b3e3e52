"""Graph inputs: numpy feeds of window features, for checking and calibrating exported graphs."""

from __future__ import annotations

import numpy as np

from ..models.loop_svdd.feature_extraction_loop_svdd import LoopSVDDFeatureExtractor


def feature_batches(
    extractor: LoopSVDDFeatureExtractor, waves: list[np.ndarray], windows_per_batch: int = 4
) -> list[dict[str, np.ndarray]]:
    """Graph inputs (numpy feeds) for the windows of `waves`, `windows_per_batch` windows per feed."""
    feats = extractor(waves, sampling_rate=extractor.sampling_rate, return_tensors="np")
    x, longer = feats["input_features"], feats["is_longer"]
    feeds = []
    for i in range(0, len(x), windows_per_batch):
        feed = {"input_features": x[i : i + windows_per_batch]}
        if extractor.fusion:
            feed["is_longer"] = longer[i : i + windows_per_batch]
        feeds.append(feed)
    return feeds


def probe_feeds(extractor: LoopSVDDFeatureExtractor) -> list[dict[str, np.ndarray]]:
    """Feeds of two tones, one shorter and one longer than a 10 s window: what a graph is checked on."""
    tone = np.sin(np.arange(extractor.sampling_rate * 12) / 7.0).astype(np.float32) * 0.3
    return feature_batches(extractor, [tone[: extractor.sampling_rate * 3], tone])  # short and longer than 10 s
