"""Signal conditioning: zero-phase high-pass against baseline wander, per-lead standard scaling."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfiltfilt

from .ptbxl import FS


def highpass(signals: np.ndarray, cutoff_hz: float = 0.5, order: int = 1, fs: float = FS,
             chunk: int = 2048) -> np.ndarray:
    """Zero-phase Butterworth high-pass along the last axis of an (N, leads, samples) array.

    Second-order sections (numerically safe at any order) applied forward and backward, in chunks of
    records so that the float64 work buffer stays small at full PTB-XL scale. Returns float32.
    """
    sos = butter(order, cutoff_hz, btype="highpass", fs=fs, output="sos")
    out = np.empty(signals.shape, dtype=np.float32)
    for start in range(0, len(signals), chunk):
        out[start:start + chunk] = sosfiltfilt(sos, signals[start:start + chunk], axis=-1)
    return out


@dataclass(frozen=True)
class LeadScaler:
    """Per-lead mean and standard deviation, fitted on the training folds only."""
    mean: np.ndarray  # (leads,)
    std: np.ndarray   # (leads,)

    @classmethod
    def fit(cls, signals: np.ndarray) -> "LeadScaler":
        # float64 accumulation: a float32 sum over ~2e7 samples per lead loses digits
        mean = signals.mean(axis=(0, 2), dtype=np.float64)
        var = np.zeros_like(mean)
        for start in range(0, len(signals), 1024):
            block = signals[start:start + 1024].astype(np.float64) - mean[None, :, None]
            var += (block ** 2).sum(axis=(0, 2))
        std = np.sqrt(var / (signals.shape[0] * signals.shape[2]))
        return cls(mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32))

    @classmethod
    def identity(cls, n_leads: int) -> "LeadScaler":
        return cls(np.zeros(n_leads, np.float32), np.ones(n_leads, np.float32))

    def transform(self, signals: np.ndarray) -> np.ndarray:
        """In place on a float32 array (returns it): avoids a second full-size copy."""
        signals -= self.mean[None, :, None]
        signals /= self.std[None, :, None]
        return signals

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "LeadScaler":
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32))
