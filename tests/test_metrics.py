import evaluate
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from loop_svdd.metrics import METRIC_PATH, compute_anomaly_metrics, load_anomaly_metric


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(50, int), np.ones(30, int)]
    scores = rng.normal(size=80) + labels
    return scores, labels


def test_matches_sklearn(scored):
    scores, labels = scored
    out = compute_anomaly_metrics(scores, labels, threshold=0.5)
    assert out["auroc"] == pytest.approx(roc_auc_score(labels, scores))
    assert out["auprc"] == pytest.approx(average_precision_score(labels, scores))
    assert out["pauc"] == pytest.approx(roc_auc_score(labels, scores, max_fpr=0.1))
    assert out["f1"] == pytest.approx(f1_score(labels, scores > 0.5))
    assert "f1" not in compute_anomaly_metrics(scores, labels)


def test_known_values():
    out = compute_anomaly_metrics([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    assert out["auroc"] == pytest.approx(0.75)
    assert out["auprc"] == pytest.approx(0.8333333333)
    perfect = compute_anomaly_metrics([0.0, 0.1, 0.9, 1.0], [0, 0, 1, 1])
    assert perfect == {"auroc": 1.0, "auprc": 1.0, "pauc": 1.0}


def test_loads_offline_by_path_with_batches(scored, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    scores, labels = scored
    metric = evaluate.load(METRIC_PATH)
    for i in range(0, 80, 16):
        metric.add_batch(predictions=scores[i : i + 16], references=labels[i : i + 16])
    out = metric.compute()
    assert out["auroc"] == pytest.approx(roc_auc_score(labels, scores))
    assert load_anomaly_metric().compute(predictions=scores, references=labels)["pauc"] == pytest.approx(out["pauc"])


def test_errors():
    with pytest.raises(ValueError, match="both"):
        compute_anomaly_metrics([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="length"):
        compute_anomaly_metrics([0.1, 0.2, 0.3], [0, 1])
