"""Calibrated probabilities and per-class thresholds, fitted on the validation folds only.

The model's sigmoid(logit) is not a probability: pos_weight in the loss inflates it for rare classes.
Per class, a Platt scaling (scikit-learn's logistic regression on the one logit) maps the logit to a
calibrated probability; the class's threshold is the calibrated probability that maximises F1 on the
validation folds. A class without a positive (or a negative) there cannot be fitted: it keeps
sigmoid(logit) and threshold 0.5, and `fitted` says so. The result travels inside the model file.

A label is *assessable* only when its calibration means something: fitted on at least MIN_POSITIVES
validation positives, with a slope of at least MIN_SLOPE (a slope near 0 makes every ECG's probability the
prior, and the "call" a coin the intercept tosses), and with a prototype of its own left after pruning.
Any other label gets no probability and is never called (`assessable` says why).
"""
from __future__ import annotations

import numpy as np

from ecgproto.errors import ModelError

MIN_POSITIVES = 5   # validation positives below which a Platt fit (and an F1 threshold) is noise
MIN_SLOPE = 0.05    # calibration slope below which the logit no longer moves the probability
MAX_COEFFICIENT = 100.0  # a larger slope or intercept in a model file is damage: exp() would overflow


def _sigmoid(x):
    return 1 / (1 + np.exp(-np.asarray(x, dtype=np.float64)))


def fit(val_logits: np.ndarray, val_labels: np.ndarray, folds) -> dict:
    """Per-class Platt scaling and F1-maximising thresholds from validation logits (N, C) and labels."""
    from sklearn.linear_model import LogisticRegression  # here: the deployed runtime never imports it

    n_classes = val_logits.shape[1]
    slope, intercept, threshold, fitted = [1.0] * n_classes, [0.0] * n_classes, [0.5] * n_classes, [False] * n_classes
    for c in range(n_classes):
        y = val_labels[:, c] > 0
        if y.all() or not y.any():
            continue
        platt = LogisticRegression(C=1.0).fit(val_logits[:, [c]], y)
        slope[c], intercept[c] = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        p = _sigmoid(slope[c] * val_logits[:, c] + intercept[c])
        threshold[c] = _best_f1_threshold(p, y)
        fitted[c] = True
    return {"slope": slope, "intercept": intercept, "threshold": threshold, "fitted": fitted,
            "positives": [int((val_labels[:, c] > 0).sum()) for c in range(n_classes)],
            "fitted_on": f"validation folds {list(folds)}"}


def assessable(calibration: dict | None, n_classes: int, has_prototype=None) -> list:
    """Per class, None when the label can be assessed, else the reason it cannot (a sentence).
    has_prototype: (C,) whether the class keeps a prototype in use (None: not a prototype model)."""
    reasons = []
    for c in range(n_classes):
        why = None
        if calibration is None:
            why = "this model file has no calibration (an older version): no probability can be given"
        elif not fitted(calibration, n_classes)[c]:
            why = "not calibrated: no validation positive (or negative) to fit a probability on"
        elif "positives" in calibration and calibration["positives"][c] < MIN_POSITIVES:
            why = (f"only {calibration['positives'][c]} validation positives (at least {MIN_POSITIVES} are needed "
                   "to calibrate a probability)")
        elif calibration["slope"][c] < MIN_SLOPE:
            why = (f"degenerate calibration (slope {calibration['slope'][c]:.4f} < {MIN_SLOPE}): the probability "
                   "would not depend on the ECG")
        elif has_prototype is not None and not has_prototype[c]:
            why = "no prototype of this label is left in the model"
        reasons.append(why)
    return reasons


def _best_f1_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """The threshold (midway between neighbouring scores) with the highest F1 on (p, y)."""
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    tp = np.cumsum(y_sorted)
    f1 = 2 * tp / (np.arange(1, len(p) + 1) + y.sum())
    k = int(np.argmax(f1))  # call the k+1 highest scores
    below = p_sorted[k + 1] if k + 1 < len(p) else 0.0
    return float((p_sorted[k] + below) / 2)


def check(calibration, n_classes: int, where: str) -> None:
    """A calibration from a model file, refused by name unless it is what fit() writes for n_classes labels:
    slope, intercept and threshold lists of n_classes finite numbers, thresholds in (0, 1), and when present
    fitted (n_classes true/false), positives (n_classes counts) and fitted_on (text); no other key."""
    def numbers(v) -> bool:
        return (isinstance(v, (list, tuple)) and len(v) == n_classes
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) for x in v))

    if not isinstance(calibration, dict):
        problem = f"is a {type(calibration).__name__}, not a mapping"
    elif not {"slope", "intercept", "threshold"} <= set(calibration) <= {"slope", "intercept", "threshold", "fitted",
                                                                           "positives", "fitted_on"}:
        problem = f"has the keys {sorted(map(str, calibration))[:8]}"
    elif not all(numbers(calibration[k]) for k in ("slope", "intercept", "threshold")):
        problem = "slope, intercept or threshold is not a list of finite numbers, one per label"
    elif not all(0 < t < 1 for t in calibration["threshold"]):
        problem = "has a threshold outside (0, 1)"
    elif any(abs(v) > MAX_COEFFICIENT for k in ("slope", "intercept") for v in calibration[k]):
        problem = f"has a slope or intercept beyond +-{MAX_COEFFICIENT:g} (a Platt fit on logits never gives one)"
    elif "fitted" in calibration and not (isinstance(calibration["fitted"], (list, tuple))
                                         and len(calibration["fitted"]) == n_classes
                                         and all(isinstance(f, bool) for f in calibration["fitted"])):
        problem = "fitted is not a list of true/false, one per label"
    elif "positives" in calibration and not (numbers(calibration["positives"]) and all(
            isinstance(n, int) and n >= 0 for n in calibration["positives"])):
        problem = "positives is not a list of counts, one per label"
    elif not isinstance(calibration.get("fitted_on", ""), str):
        problem = "fitted_on is not text"
    else:
        return
    raise ModelError(f"{where}: calibration {problem}; expected slope, intercept and threshold lists of {n_classes} "
                     "finite numbers (thresholds in (0, 1)), optional fitted (true/false per label), positives (a "
                     "count per label) and fitted_on (text)")


def apply(logits: np.ndarray, calibration: dict | None) -> np.ndarray:
    """Calibrated probabilities (N, C); without a calibration, sigmoid(logit)."""
    if calibration is None:
        return _sigmoid(logits)
    return _sigmoid(np.asarray(calibration["slope"]) * logits + np.asarray(calibration["intercept"]))


def calls(probs: np.ndarray, calibration: dict | None, has_prototype=None) -> np.ndarray:
    """(N, C) which labels are called: the calibrated probability reaches the class's threshold, and the
    label is assessable (a label without enough validation positives has no threshold worth the name: it
    is never called, and the output says why)."""
    called = probs >= thresholds(calibration, probs.shape[1])
    ok = [why is None for why in assessable(calibration, probs.shape[1], has_prototype)]
    return called & np.asarray(ok, dtype=bool)[None, :]


def fitted(calibration: dict | None, n_classes: int) -> np.ndarray:
    """(C,) whether each class's probability is calibrated."""
    if calibration is None:
        return np.zeros(n_classes, dtype=bool)
    return np.asarray(calibration.get("fitted", [True] * n_classes), dtype=bool)


def thresholds(calibration: dict | None, n_classes: int) -> np.ndarray:
    return np.full(n_classes, 0.5) if calibration is None else np.asarray(calibration["threshold"], dtype=np.float64)


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Mean over the evaluable classes of the binned |mean predicted - observed| gap (equal-width bins,
    weighted by how many predictions fall in each)."""
    errors = []
    for c in range(y.shape[1]):
        if not (0 < y[:, c].sum() < len(y)):
            continue
        which = np.minimum((p[:, c] * bins).astype(int), bins - 1)
        gap = sum(abs(p[which == b, c].mean() - y[which == b, c].mean()) * (which == b).sum()
                  for b in range(bins) if (which == b).any())
        errors.append(gap / len(y))
    return float(np.mean(errors)) if errors else float("nan")


def brier(p: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error of the probabilities over every record and class."""
    return float(np.mean((p - y) ** 2))


def calibration_errors(logits: np.ndarray, y: np.ndarray, calibration: dict) -> dict:
    """Expected calibration error and Brier score of sigmoid(logit) and of the calibrated probabilities,
    and the macro F1 of the calls at 0.5 and at the calibrated per-class thresholds."""
    raw, calibrated = apply(logits, None), apply(logits, calibration)
    return {"ece_uncalibrated": round(expected_calibration_error(raw, y), 4),
            "ece_calibrated": round(expected_calibration_error(calibrated, y), 4),
            "brier_uncalibrated": round(brier(raw, y), 4), "brier_calibrated": round(brier(calibrated, y), 4),
            "macro_f1_at_0.5": round(macro_f1(raw >= 0.5, y), 4),
            "macro_f1_at_thresholds": round(macro_f1(calls(calibrated, calibration), y), 4)}


def macro_f1(called: np.ndarray, y: np.ndarray) -> float:
    """F1 of the calls averaged over the classes with a positive."""
    y = y > 0
    scores = [2 * (called[:, c] & y[:, c]).sum() / (called[:, c].sum() + y[:, c].sum())
              for c in range(y.shape[1]) if y[:, c].any()]
    return float(np.mean(scores)) if scores else float("nan")
