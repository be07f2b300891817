"""Read a WFDB record and preprocess it as `prepare` did (the fitted filter and scaler travel in the model
file). NumPy and SciPy only: the deployed runtime uses it without PyTorch."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import RecordError
from .filters import LeadScaler, highpass
from .ptbxl import FS, read_header, read_record

MAX_FILTER_ORDER = 8  # as config.py allows: a huge order read from a model file would stall the filter design


def read_ecg(path) -> tuple:
    """A WFDB record (path without extension) as ((12, 1000) millivolts at 100 Hz, note or None).

    100 Hz records are read as they are; 500 Hz records (PTB-XL's records500) are resampled to 100 Hz
    with a polyphase anti-aliasing filter, and the note says so. Any other rate is refused."""
    base = Path(path)
    if base.suffix in (".hea", ".dat"):
        base = base.with_suffix("")
    hdr = read_header(base.with_suffix(".hea"))
    if hdr.fs == 5 * FS:
        from scipy.signal import resample_poly  # here: only 500 Hz records need it

        millivolts = resample_poly(read_record(base, fs=5 * FS), 1, 5, axis=-1).astype(np.float32)
        return millivolts, f"{base}: resampled from 500 Hz to {FS} Hz"
    if hdr.fs != FS:
        raise RecordError(f"{base}: sampled at {hdr.fs:g} Hz; expected {FS} Hz (500 Hz records are resampled)")
    return read_record(base), None


def preprocess(millivolts: np.ndarray, preprocessing: dict) -> np.ndarray:
    """(N, 12, T) or (12, T) millivolts -> the model's input: the filter and scaler fitted in `prepare`
    (they travel inside the model file)."""
    x = np.asarray(millivolts, dtype=np.float32)
    x = x[None] if x.ndim == 2 else x
    x = highpass(x, preprocessing["highpass_hz"], preprocessing["filter_order"])
    return LeadScaler.from_dict(preprocessing["scaler"]).transform(x)


def to_millivolts(prepared: np.ndarray, preprocessing: dict) -> np.ndarray:
    """Undo the scaler (not the filter) so that prepared signals can be drawn in millivolts."""
    scaler = LeadScaler.from_dict(preprocessing["scaler"])
    return np.asarray(prepared) * scaler.std[:, None] + scaler.mean[:, None]


def usable_preprocessing(prep) -> bool:
    """A model file's preprocessing: 0 < highpass_hz < 50, an integer filter order 1-8, a 12-lead scaler with
    finite means and positive finite standard deviations."""
    try:
        order = prep["filter_order"]
        return (0 < float(prep["highpass_hz"]) < 50 and isinstance(order, int) and not isinstance(order, bool)
                and 1 <= order <= MAX_FILTER_ORDER and len(prep["scaler"]["mean"]) == len(prep["scaler"]["std"]) == 12
                and all(np.isfinite(float(v)) for v in prep["scaler"]["mean"])
                and all(np.isfinite(float(v)) and float(v) > 0 for v in prep["scaler"]["std"]))
    except (KeyError, TypeError, ValueError):
        return False
