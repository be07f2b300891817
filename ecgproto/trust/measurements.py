"""What a clinical ECG program measures before it interprets: R peaks, heart rate, RR regularity and ectopic
beats, PR, QRS, QT with QTc (Bazett, Fridericia), and the frontal QRS axis, from the 12-lead signal itself.

NumPy only and about a millisecond per ECG (`ecgproto explain` answers in under a second). Beats are the
peaks of the QRS band's energy (5-20 Hz) summed over the leads. Intervals are read on the median beat (the
sample-wise median of the normal beats, aligned at their R peak, which averages noise and fibrillatory
waves away; the signal is first high-passed at 0.5 Hz) from its spatial magnitude (the root sum of squares
over the leads after removing each lead's PR-segment level): QRS onset and offset where the magnitude
stays within 6% of the QRS peak above the floor, a P wave where the last hump 30-320 ms before the QRS
stands clear of the floor, T end where the magnitude after the T peak falls to a tenth of its height.
Crossings are interpolated between samples (10 ms apart at 100 Hz). The synthetic
generator knows the true intervals (synthetic_truth.csv) and wfdb's GQRS the rate of real records:
tests/trust/test_measurements.py checks both.
"""
from __future__ import annotations

import numpy as np

from ecgproto.data.filters import highpass

FS = 100
REFRACTORY_S = 0.25  # no two beats closer than this (240/min)
QRS_BAND_HZ = (5.0, 20.0)
PLAUSIBLE_PER_MIN = (20.0, 250.0)
MIN_QRS_MV = 0.05  # in-band amplitude below which there is nothing to detect
PREMATURE = 0.85   # a beat whose RR is below 85% of the median, followed by a longer one, is ectopic
IRREGULAR = 0.08   # median successive RR difference over 8% of the median RR: irregular (AFIB-like)
LEADS_I, LEADS_AVF = 0, 5  # lead I and aVF in PTB-XL's order, for the frontal axis


def detect_beats(millivolts: np.ndarray, fs: int = FS) -> np.ndarray:
    """Sample indices of the QRS complexes of a (12, T) recording (peaks of the 5-20 Hz energy)."""
    mv = np.asarray(millivolts, dtype=np.float64)
    spectrum = np.fft.rfft(mv - mv.mean(axis=1, keepdims=True), axis=1)
    freqs = np.fft.rfftfreq(mv.shape[1], 1 / fs)
    band = np.fft.irfft(np.where((freqs >= QRS_BAND_HZ[0]) & (freqs <= QRS_BAND_HZ[1]), spectrum, 0),
                        n=mv.shape[1], axis=1)
    width = max(1, int(0.1 * fs))  # a QRS lasts about 80-120 ms
    envelope = np.convolve((band ** 2).sum(axis=0), np.ones(width) / width, mode="same")
    top = np.percentile(envelope, 99)
    if top < MIN_QRS_MV ** 2:
        return np.array([], dtype=int)
    level = max(0.3 * top, 4 * np.median(envelope))  # well above the noise floor
    candidates = np.flatnonzero((envelope[1:-1] > level) & (envelope[1:-1] > envelope[:-2])
                                & (envelope[1:-1] >= envelope[2:])) + 1
    beats = []
    for i in candidates[np.argsort(-envelope[candidates], kind="stable")]:  # strongest first
        if all(abs(i - b) >= REFRACTORY_S * fs for b in beats):
            beats.append(i)
    return np.sort(np.asarray(beats, dtype=int))


def _rhythm(beats: np.ndarray, fs: int) -> dict:
    """Rate, regularity and ectopic beats from the beat times."""
    rr = np.diff(beats) / fs
    if len(rr) < 2 or not PLAUSIBLE_PER_MIN[0] <= 60 / np.median(rr) <= PLAUSIBLE_PER_MIN[1]:
        return {"rate_per_min": None, "rr_ms": [int(round(1000 * v)) for v in rr], "rr_variation": None,
                "rr_irregularity": None, "irregular": None, "ectopic_beats": 0, "normal": np.ones(len(beats), bool)}
    median = float(np.median(rr))
    # a premature beat: short RR followed by a longer (compensatory) one; it and the pause are left out
    ectopic = [i + 1 for i in range(len(rr) - 1) if rr[i] < PREMATURE * median and rr[i + 1] > rr[i] * 1.15]
    # isolated premature beats are left out of the regularity and the median beat; premature beats
    # everywhere (bigeminy, fibrillation) are the rhythm itself
    isolated = ectopic if len(ectopic) <= max(2, 0.2 * len(beats)) else []
    normal = np.ones(len(beats), dtype=bool)
    normal[isolated] = False
    clean = np.array([rr[i] for i in range(len(rr)) if i + 1 not in isolated and i not in isolated])
    clean = clean if len(clean) >= 3 else rr
    irregularity = float(np.median(np.abs(np.diff(clean))) / np.median(clean)) if len(clean) >= 3 else None
    return {"rate_per_min": round(60 / median, 1), "rr_ms": [int(round(1000 * v)) for v in rr],
            "rr_variation": round(float(rr.std() / rr.mean()), 3),
            "rr_irregularity": None if irregularity is None else round(irregularity, 3),
            "irregular": None if irregularity is None else bool(irregularity > IRREGULAR),
            "ectopic_beats": len(ectopic), "normal": normal}


def median_beat(millivolts: np.ndarray, beats: np.ndarray, fs: int = FS, before: float = 0.5,
                after: float = 0.6) -> tuple:
    """(12, W) sample-wise median of the beats whose window fits the record, and the R index in it."""
    b, a = int(before * fs), int(after * fs)
    mv = np.asarray(millivolts, dtype=np.float64)
    windows = [mv[:, r - b:r + a] for r in beats if r - b >= 0 and r + a <= mv.shape[1]]
    if len(windows) < 2:
        return None, b
    return np.median(np.stack(windows), axis=0), b


def _crossing(values: np.ndarray, start: int, stop: int, level: float, hold: int = 1) -> float | None:
    """The fractional index (linear between samples) where `values`, walked from start towards stop, first
    falls to `level` and stays there for `hold` samples; None when it does not within the range."""
    step = 1 if stop >= start else -1
    for i in range(start, stop, step):
        run = [i + step * k for k in range(hold)]
        if not all(0 <= j < len(values) for j in run) or not 0 <= i - step < len(values):
            return None
        if all(values[j] <= level for j in run):
            before = values[i - step]
            frac = (before - level) / (before - values[i]) if before != values[i] else 0.0
            return (i - step) + step * frac
    return None


QRS_LEVEL = 0.06   # QRS onset and offset: the magnitude within 6% of the QRS peak above the floor, for 20 ms
P_LEVEL = 0.3      # P onset: the magnitude below 30% of the P wave's height
T_LEVEL = 0.1      # T end: the magnitude below 10% of the T wave's height
MIN_WAVE_MV = 0.03  # a P or T wave lower than this over the floor is not there
QT_MAX_SHARE_OF_RR = 0.8  # a longer "QT" reaches into the next beat: a T end not found


def intervals(beat: np.ndarray, r: int, rr_s: float, fs: int = FS) -> dict:
    """PR, QRS, QT (ms), QTc and the frontal axis (degrees) from a median beat (12, W) whose QRS is near r."""
    ms = 1000 / fs
    level = np.median(beat[:, max(0, r - int(0.08 * fs)):max(1, r - int(0.04 * fs))], axis=1, keepdims=True)
    magnitude = np.sqrt(((beat - level) ** 2).sum(axis=0))
    out = {"pr_ms": None, "qrs_ms": None, "qt_ms": None, "qtc_bazett_ms": None, "qtc_fridericia_ms": None,
           "axis_deg": None}
    top = r - 3 + int(np.argmax(magnitude[max(0, r - 3):r + 4]))
    floor = float(np.percentile(magnitude, 10))
    cut = floor + QRS_LEVEL * (magnitude[top] - floor)
    onset = _crossing(magnitude, top, top - int(0.2 * fs), cut, hold=2)
    offset = _crossing(magnitude, top, top + int(0.25 * fs), cut, hold=2)
    if onset is None or offset is None or magnitude[top] - floor < MIN_QRS_MV:
        return out
    out["qrs_ms"] = round((offset - onset) * ms)
    qrs = beat[:, int(np.ceil(onset)):int(offset) + 1] - level
    out["axis_deg"] = round(float(np.degrees(np.arctan2(qrs[LEADS_AVF].sum(), qrs[LEADS_I].sum()))))
    # P wave: the last hump of the magnitude 40-320 ms before the QRS that stands clear of the floor
    first = int(np.floor(onset))
    lo, hi = max(1, first - int(0.32 * fs)), first - int(0.03 * fs)
    humps = [i for i in range(lo + 1, hi - 1) if magnitude[i] >= magnitude[i - 1] and magnitude[i] > magnitude[i + 1]
             and magnitude[i] - floor > MIN_WAVE_MV]
    if humps:
        height = magnitude[humps[-1]] - floor
        start = _crossing(magnitude, humps[-1], lo - 1, floor + P_LEVEL * height)
        if start is not None:
            out["pr_ms"] = round((onset - start) * ms)
    # T end: after the ST segment, where the magnitude falls below a tenth of the T wave's height
    t_lo, t_hi = int(offset) + int(0.06 * fs), min(len(magnitude) - 1, first + int(min(0.75 * rr_s, 0.6) * fs))
    if t_hi - t_lo >= 3:
        t_at = t_lo + int(np.argmax(magnitude[t_lo:t_hi]))
        height = magnitude[t_at] - floor
        end = _crossing(magnitude, t_at, len(magnitude), floor + T_LEVEL * height)
        if end is not None and height > MIN_WAVE_MV:
            qt = (end - onset) * ms
            out.update(qt_ms=round(qt), qtc_bazett_ms=round(qt / np.sqrt(rr_s)),
                       qtc_fridericia_ms=round(qt / rr_s ** (1 / 3)))
    return out


def measure(millivolts: np.ndarray, fs: int = FS) -> dict:
    """Everything measured on one (12, T) recording: beats (sample indices), RR intervals, rate,
    regularity, ectopic beats, PR, QRS, QT/QTc and axis. None where it cannot be measured (fewer than 3
    beats, no P wave, no clear T wave)."""
    beats = detect_beats(millivolts, fs)
    rhythm = _rhythm(beats, fs)
    normal = rhythm.pop("normal")
    result = {"beats": [int(b) for b in beats], **rhythm, "pr_ms": None, "qrs_ms": None, "qt_ms": None,
              "qtc_bazett_ms": None, "qtc_fridericia_ms": None, "axis_deg": None}
    if rhythm["rate_per_min"] is None:
        return result
    beat, r = median_beat(highpass(np.asarray(millivolts, dtype=np.float32)[None], 0.5, 1, fs)[0], beats[normal], fs)
    if beat is not None:
        result.update(intervals(beat, r, 60 / rhythm["rate_per_min"], fs))
    if rhythm["irregular"]:  # an irregularly irregular rhythm has no P wave to time a PR from (AF, as in 12SL),
        result["pr_ms"] = None  # and its QT changes beat to beat: a median-beat QT would be a false number
        result.update(qt_ms=None, qtc_bazett_ms=None, qtc_fridericia_ms=None)
    elif result["qt_ms"] is not None and result["qt_ms"] > QT_MAX_SHARE_OF_RR * 1000 * 60 / rhythm["rate_per_min"]:
        # a QT over 80% of the RR runs into the next beat: the T end was not found, not a long QT
        result.update(qt_ms=None, qtc_bazett_ms=None, qtc_fridericia_ms=None)
    return result
