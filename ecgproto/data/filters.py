"""Signal conditioning: zero-phase high-pass against baseline wander, per-lead standard scaling."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecgproto.data.ptbxl import FS


def highpass(signals: np.ndarray, cutoff_hz: float = 0.5, order: int = 1, fs: float = FS,
             chunk: int = 2048) -> np.ndarray:
    """Zero-phase Butterworth high-pass along the last axis of an (N, leads, samples) array, in chunks of
    records so that the float64 work buffer stays small at full PTB-XL scale. Returns float32.

    First order (the published filter) is computed here in NumPy, exactly as scipy.signal.sosfiltfilt
    does it (a test checks the two agree): importing scipy.signal alone takes about a second, which
    `ecgproto explain` on one record cannot afford. Other orders use SciPy's second-order sections."""
    out = np.empty(signals.shape, dtype=np.float32)
    if order == 1:
        filtered = lambda block: _first_order_filtfilt(block, cutoff_hz, fs)  # noqa: E731
    else:
        from scipy.signal import butter, sosfiltfilt

        sos = butter(order, cutoff_hz, btype="highpass", fs=fs, output="sos")
        filtered = lambda block: sosfiltfilt(sos, block, axis=-1)  # noqa: E731
    for start in range(0, len(signals), chunk):
        out[start:start + chunk] = filtered(np.asarray(signals[start:start + chunk], dtype=np.float64))
    return out


def _first_order_filtfilt(x: np.ndarray, cutoff_hz: float, fs: float) -> np.ndarray:
    """sosfiltfilt of butter(1, cutoff_hz, 'highpass'): odd extension of 6 samples at each end (SciPy's
    padlen for one first-order section), a forward then a backward pass, each started in the steady
    state of its first sample (sosfilt_zi), and the extension cut off again."""
    k = np.tan(np.pi * cutoff_hz / fs)  # bilinear transform of the analogue prototype
    b0, b1, a1 = 1 / (1 + k), -1 / (1 + k), (k - 1) / (k + 1)
    pad = 6
    ext = np.concatenate([2 * x[..., :1] - x[..., pad:0:-1], x, 2 * x[..., -1:] - x[..., -2:-pad - 2:-1]], axis=-1)

    def one_pass(v):
        out = np.empty_like(v)
        state = b1 * v[..., 0]  # transposed direct form II, steady state for a constant input
        for n in range(v.shape[-1]):
            out[..., n] = b0 * v[..., n] + state
            state = b1 * v[..., n] - a1 * out[..., n]
        return out

    return one_pass(one_pass(ext)[..., ::-1])[..., ::-1][..., pad:-pad]


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
