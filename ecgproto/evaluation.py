"""Test metrics: whole-fold macro-AUROC (with the labels it leaves out), bootstrap interval, AUPRC,
the published per-batch AUROC, ROC points for dvc plots.

A label with no positive or no negative in the evaluated set has no AUROC; it is excluded from the
macro average and listed, never counted as 0.5.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, roc_curve

# the pipeline's four models, in the order the metrics and the report list them
MODEL_FILES = {"final": "models/final.pt", "projected": "models/projected.pt", "joint": "models/joint.pt",
               "baseline": "models/baseline.pt"}


def evaluable(y: np.ndarray) -> np.ndarray:
    """Boolean mask of the label columns that have both a positive and a negative."""
    pos = y.sum(axis=0)
    return (pos > 0) & (pos < len(y))


def per_label_auroc(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """AUROC per label, NaN where the label is not evaluable.

    Mann-Whitney form, all labels at once: (rank sum of the positives - n+(n+ + 1)/2) / (n+ n-), with
    tied scores given their average rank. Equal to scikit-learn's roc_auc_score (a test checks it) and
    fast enough for a 1,000-sample bootstrap."""
    y = np.asarray(y) > 0
    ranks = rankdata(p, axis=0)
    n_pos = y.sum(axis=0)
    n_neg = len(y) - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * y).sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where(evaluable(y), auc, np.nan)


def macro_auroc(y: np.ndarray, p: np.ndarray) -> float:
    values = per_label_auroc(y, p)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def macro_auprc(y: np.ndarray, p: np.ndarray) -> float:
    ok = evaluable(y)
    if not ok.any():
        return float("nan")
    return float(np.mean([average_precision_score(y[:, j], p[:, j]) for j in np.flatnonzero(ok)]))


def bootstrap_interval(y: np.ndarray, p: np.ndarray, n: int = 1000, seed: int = 0, level: float = 0.95):
    """Percentile interval of the macro-AUROC over records resampled with replacement. Each resample
    averages over the labels evaluable in it."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        v = macro_auroc(y[idx], p[idx])
        if np.isfinite(v):
            values.append(v)
    if not values:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def per_batch_auroc(y: np.ndarray, p: np.ndarray, batch_size: int = 32) -> float:
    """The published code's metric: mean over consecutive batches of the batch's macro-AUROC over the
    labels evaluable in that batch; batches with none are skipped."""
    values = [macro_auroc(y[i:i + batch_size], p[i:i + batch_size]) for i in range(0, len(y), batch_size)]
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def roc_points(y: np.ndarray, p: np.ndarray, labels, model: str) -> list:
    """Flat records {model, label, fpr, tpr} for dvc plots, evaluable labels only."""
    rows = []
    for j in np.flatnonzero(evaluable(y)):
        fpr, tpr, _ = roc_curve(y[:, j], p[:, j])
        rows += [{"model": model, "label": labels[j], "fpr": round(float(a), 5), "tpr": round(float(b), 5)}
                 for a, b in zip(fpr, tpr)]
    return rows


def summarise(y: np.ndarray, p: np.ndarray, labels, bootstrap: int, batch_size: int, seed: int) -> tuple:
    """(headline dict, per-label AUROC dict) for one model."""
    low, high = bootstrap_interval(y, p, bootstrap, seed)
    headline = {
        "macro_auroc": round(macro_auroc(y, p), 4),
        "macro_auroc_ci_low": round(low, 4),
        "macro_auroc_ci_high": round(high, 4),
        "macro_auprc": round(macro_auprc(y, p), 4),
        "per_batch_auroc": round(per_batch_auroc(y, p, batch_size), 4),
    }
    per_label = {code: (None if np.isnan(v) else round(float(v), 4))
                 for code, v in zip(labels, per_label_auroc(y, p))}
    return headline, per_label
