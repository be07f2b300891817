"""Where a prototype matched, measured with the model itself: the drop in its similarity when one window of
time (about 1 s, sliding) or one lead is blanked (set to 0, the training mean after scaling). Rhythm
prototypes match the whole strip, so most of the time no window stands out; a window is reported only when
it is localised (its drop at least LOCALISED times the median window's), on an absolute scale."""
from __future__ import annotations

import numpy as np

WINDOW = 100     # samples (1 s at 100 Hz)
STRIDE = 50      # samples between window starts
LOCALISED = 2.0  # best window's drop / median window's drop at which a match counts as localised
MIN_DROP = 0.01  # a similarity drop smaller than this is no drop at all


def window_starts(n_samples: int, window: int = WINDOW, stride: int = STRIDE) -> np.ndarray:
    return np.arange(0, n_samples - window + 1, stride)


def window_drops(outputs, x: np.ndarray, window: int = WINDOW, stride: int = STRIDE) -> np.ndarray:
    """(W, P) drop of every prototype's similarity when each window of one preprocessed ECG x (1, 12, T) is
    blanked. outputs: a runner's outputs function (PyTorch or ONNX alike)."""
    starts = window_starts(x.shape[-1], window, stride)
    batch = np.repeat(np.asarray(x, dtype=np.float32), len(starts) + 1, axis=0)
    for k, s in enumerate(starts):
        batch[k + 1, :, s:s + window] = 0.0
    sims = outputs(batch)["sims"]
    return sims[0][None, :] - sims[1:]


def where(drops: np.ndarray) -> dict:
    """For one prototype's window drops (W,): the best window, its drop, and whether it stands out."""
    best = int(np.argmax(drops))
    median = float(np.median(drops))
    top = float(drops[best])
    localised = top >= MIN_DROP and top >= LOCALISED * max(median, 0.0)
    return {"window": best, "drop": round(top, 4), "median_drop": round(median, 4), "localised": bool(localised)}


def window_check(drops: np.ndarray, rng) -> dict:
    """Per ECG, the best window's drop against a random window's, for the leading prototype of each ECG.
    drops: (N, W). Returns the mean ratio over all ECGs and over those whose match is localised."""
    best = drops.max(axis=1)
    random = drops[np.arange(len(drops)), rng.integers(0, drops.shape[1], size=len(drops))]
    localised = np.array([where(d)["localised"] for d in drops])

    def ratio(mask):
        return round(float(best[mask].mean() / random[mask].mean()), 3) if mask.any() and random[mask].mean() > 0 \
            else None
    return {"window_check_ecgs": int(len(drops)), "window_check_share_localised": round(float(localised.mean()), 4),
            "window_check_best_over_random": ratio(np.ones(len(drops), bool)),
            "window_check_best_over_random_localised": ratio(localised),
            # sums, so that cross-validation folds pool exactly
            "window_check_sums": {"ecgs": int(len(drops)), "best": float(best.sum()), "random": float(random.sum()),
                                  "localised": int(localised.sum()), "best_localised": float(best[localised].sum()),
                                  "random_localised": float(random[localised].sum())}}
