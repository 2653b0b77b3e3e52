"""Anomaly-detection metrics as an `evaluate` module (load it by path; Hub metrics need a network).

>>> import evaluate, loop_svdd.metrics as m
>>> metric = evaluate.load(m.METRIC_PATH)
>>> metric.compute(predictions=[0.1, 0.9, 0.8, 0.2], references=[0, 1, 1, 0])["auroc"]
1.0
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

_DESCRIPTION = """
Threshold-free scores of an anomaly detector: AUROC, AUPRC (average precision, anomalies as the positive
class) and pAUC, the DCASE-style partial AUROC up to a false-positive rate of `max_fpr` (0.1), standardised
by scikit-learn's McClish correction. With `threshold`, also F1 of `score > threshold` (anomaly = 1).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): anomaly scores, higher = more anomalous.
    references (`list` of `int`): 0 = normal, 1 = anomaly. Both classes must be present.
    threshold (`float`, optional): if given, F1 of `predictions > threshold` is added as `f1`.
    max_fpr (`float`, default 0.1): the false-positive-rate limit of `pauc`.
Returns:
    auroc, auprc, pauc (floats in [0, 1]) and f1 when `threshold` is given.
"""

_CITATION = """
@inproceedings{koizumi2020dcase, title={Description and discussion on DCASE2020 challenge task2: unsupervised
anomalous sound detection for machine condition monitoring}, author={Koizumi, Yuma and others}, year={2020}}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AnomalyDetection(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int32")}
            ),
            reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html#roc-metrics"],
        )

    def _compute(self, predictions, references, threshold=None, max_fpr=0.1):
        scores = np.asarray(predictions, dtype=np.float64)
        labels = np.asarray(references, dtype=int)
        if not np.isfinite(scores).all():
            raise ValueError("predictions contain NaN or inf values")
        if not set(np.unique(labels).tolist()) <= {0, 1}:
            raise ValueError("references must be 0 (normal) or 1 (anomaly)")
        if len(np.unique(labels)) != 2:
            raise ValueError("references must contain both normals (0) and anomalies (1)")
        out = {
            "auroc": float(roc_auc_score(labels, scores)),
            "auprc": float(average_precision_score(labels, scores)),
            "pauc": float(roc_auc_score(labels, scores, max_fpr=max_fpr)),
        }
        if threshold is not None:
            out["f1"] = float(f1_score(labels, (scores > threshold).astype(int), zero_division=0))
        return out
