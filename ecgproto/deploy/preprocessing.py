"""Read a WFDB record and preprocess it as `prepare` did (the fitted filter and scaler travel in the model
file). NumPy and SciPy only: the deployed runtime uses it without PyTorch."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgproto.data.filters import LeadScaler, highpass
from ecgproto.data.ptbxl import FS, N_SAMPLES
from ecgproto.data.wfdb_record import read_header, read_leads
from ecgproto.errors import RecordError
from ecgproto.files.paths import record_file

MAX_FILTER_ORDER = 8  # as config.py allows: a huge order read from a model file would stall the filter design


def resample_to(millivolts: np.ndarray, fs: float, target: int = FS) -> np.ndarray:
    """(12, T) at fs -> target Hz with a polyphase anti-aliasing filter (scipy's resample_poly)."""
    from fractions import Fraction

    from scipy.signal import resample_poly  # here: records at 100 Hz never need it

    ratio = Fraction(target) / Fraction(fs).limit_denominator(1000)
    return resample_poly(millivolts, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)


MAX_MINUTES = 60  # 12 leads x 1 h at 1000 Hz: 330 MB as float64 while it is read and resampled
MAX_SAMPLES = MAX_MINUTES * 60 * 1000  # per lead: the memory bound, whatever the rate


def read_ecg(path) -> tuple:
    """A WFDB record (path without extension) as ((12, T) millivolts at 100 Hz, T >= 1000, note or None).

    Any WFDB record wfdb can read, its leads found by name; a rate above 100 Hz is resampled to 100 Hz with a
    polyphase anti-aliasing filter, and the note says so. Lower rates and records under 10 s (the model was
    trained on 10 s) are refused; longer ones up to MAX_SAMPLES per lead (an hour at 1000 Hz) are read whole
    (deploy/recordings.py windows them), longer still are refused before any sample is read."""
    base = Path(path)
    if base.suffix in (".hea", ".dat", ".mat"):
        base = base.with_suffix("")
    hdr = read_header(record_file(base, ".hea"))
    if hdr.fs < FS:
        raise RecordError(f"{base}: sampled at {hdr.fs:g} Hz; expected at least {FS} Hz (the model reads 100 Hz)")
    if hdr.n_samples < round(N_SAMPLES / FS * hdr.fs):
        raise RecordError(f"{base}: {hdr.n_samples / hdr.fs:g} s long; expected at least 10 s (the model was "
                          "trained on 10 s records)")
    if hdr.n_samples > MAX_SAMPLES:
        raise RecordError(f"{base}: {hdr.n_samples / hdr.fs / 60:.1f} min at {hdr.fs:g} Hz ({hdr.n_samples} samples "
                          f"per lead); expected at most {MAX_SAMPLES} ({MAX_MINUTES} min at 1000 Hz: a rhythm strip, "
                          "not a Holter); cut it into parts first (wfdb.rdrecord's sampfrom/sampto)")
    millivolts = read_leads(base, hdr)
    if hdr.fs == FS:
        return millivolts, None
    millivolts = resample_to(millivolts, hdr.fs)
    if millivolts.shape[1] < N_SAMPLES:  # 10 s at a rate whose resampling rounds down
        millivolts = np.pad(millivolts, ((0, 0), (0, N_SAMPLES - millivolts.shape[1])), mode="edge")
    return millivolts, f"{base}: resampled from {hdr.fs:g} Hz to {FS} Hz"


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
