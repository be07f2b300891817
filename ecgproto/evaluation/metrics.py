"""Test metrics: whole-fold macro-AUROC (with the labels it leaves out), bootstrap interval, AUPRC,
the published per-batch AUROC, ROC points for dvc plots.

A label with no positive or no negative in the evaluated set has no AUROC; it is excluded from the
macro average and listed, never counted as 0.5.
"""
from __future__ import annotations

from pathlib import Path

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


def write_predictions(path: Path, ecg_ids, y: np.ndarray, probs_of: dict, labels) -> None:
    """One row per test ECG and model: ecg_id, model, the reference labels (true_<code>) and the
    model's probabilities (p_<code>)."""
    import pandas as pd

    from ecgproto.files.atomic import atomic_path

    frames = []
    for model, p in probs_of.items():
        frame = pd.DataFrame({"ecg_id": np.asarray(ecg_ids, dtype=np.int64), "model": model})
        frame[[f"true_{c}" for c in labels]] = np.asarray(y, dtype=np.int8)
        frame[[f"p_{c}" for c in labels]] = np.asarray(p, dtype=np.float64)
        frames.append(frame)
    with atomic_path(path) as tmp:
        pd.concat(frames, ignore_index=True).to_csv(tmp, index=False, float_format="%.6g")


def read_predictions(path: Path, labels) -> dict:
    """model -> (ecg_ids, y, p) from write_predictions' file, checked: the columns expected, finite
    probabilities in [0, 1], 0/1 labels, no ECG twice per model."""
    import pandas as pd

    from ecgproto.errors import RecordError

    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise RecordError(f"{path}: unreadable predictions file ({exc})") from None
    wanted = ["ecg_id", "model"] + [f"true_{c}" for c in labels] + [f"p_{c}" for c in labels]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise RecordError(f"{path}: missing columns {missing[:4]}; expected {wanted[:4]}...")
    ids = pd.to_numeric(frame["ecg_id"], errors="coerce").to_numpy(dtype=float)
    if frame["model"].isna().any() or not (np.isfinite(ids).all() and np.array_equal(ids, np.round(ids))):
        raise RecordError(f"{path}: a row without a model name or with an ecg_id that is not a whole number")
    out = {}
    for model, part in frame.groupby("model", sort=False):
        y = part[[f"true_{c}" for c in labels]].to_numpy(dtype=np.float64)
        p = part[[f"p_{c}" for c in labels]].to_numpy(dtype=np.float64)
        ids = part["ecg_id"].to_numpy()
        if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
            raise RecordError(f"{path}: model {model!r} has probabilities that are not finite numbers in [0, 1]")
        if not np.isin(y, (0, 1)).all():
            raise RecordError(f"{path}: model {model!r} has reference labels other than 0 and 1")
        if len(set(ids.tolist())) != len(ids):
            raise RecordError(f"{path}: model {model!r} lists an ECG more than once")
        out[str(model)] = (ids.astype(np.int64), y, p)
    return out
