"""Heart rate and RR regularity measured from the signal itself, and the remarks a reader needs when a
called label disagrees with them or with what the training folds ever showed together.

The QRS detector is deliberately small (NumPy, no import cost: `ecgproto explain` must answer in under a
second): the QRS complex holds most of an ECG's energy between 5 and 20 Hz, so beats are the peaks of
that band's energy summed over the leads, well above its median (the noise floor) and at least 250 ms
apart. A rate outside 20-250/min, or fewer than 3 beats, is no rate at all. tests/test_rhythm.py checks it
against wfdb's GQRS detector on the real sample records and on signals with no beats.
"""
from __future__ import annotations

import numpy as np

from ecgproto.data.ptbxl import FS

REFRACTORY_S = 0.25  # no two beats closer than this (240/min)
QRS_BAND_HZ = (5.0, 20.0)
PLAUSIBLE_PER_MIN = (20.0, 250.0)
MIN_QRS_MV = 0.05  # in-band amplitude below which there is nothing to detect


def detect_beats(millivolts: np.ndarray, fs: int = FS) -> np.ndarray:
    """Sample indices of the QRS complexes of a (12, T) recording."""
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


def heart_rate(millivolts: np.ndarray, fs: int = FS) -> dict:
    """{'beats', 'rate_per_min' (from the median RR), 'rr_variation' (std / mean of RR)}; None values when
    fewer than 3 beats are found."""
    beats = detect_beats(millivolts, fs)
    rr = np.diff(beats) / fs
    rate = 60 / np.median(rr) if len(rr) >= 2 else None
    if rate is None or not PLAUSIBLE_PER_MIN[0] <= rate <= PLAUSIBLE_PER_MIN[1]:
        return {"beats": int(len(beats)), "rate_per_min": None, "rr_variation": None}
    return {"beats": int(len(beats)), "rate_per_min": round(float(rate), 1),
            "rr_variation": round(float(rr.std() / rr.mean()), 3)}


def remarks(called: list, rate: dict, cooccurrence: dict | None) -> list:
    """Sentences for a reader: a called label that the measured rate or regularity contradicts, and called
    labels that never occurred together in the training folds (cooccurrence: {code: {code: Jaccard}})."""
    out = []
    bpm, variation = rate["rate_per_min"], rate["rr_variation"]
    if bpm is not None:
        if "STACH" in called and bpm <= 100:
            out.append(f"STACH is called, but the measured rate is {bpm:g}/min (tachycardia: over 100/min)")
        if "SBRAD" in called and bpm >= 60:
            out.append(f"SBRAD is called, but the measured rate is {bpm:g}/min (bradycardia: under 60/min)")
        if "AFIB" in called and variation is not None and variation < 0.05:
            out.append(f"AFIB is called, but the RR intervals are regular (variation {variation:.0%})")
    if cooccurrence:
        pairs = [(a, b) for i, a in enumerate(called) for b in called[i + 1:]
                 if cooccurrence.get(a, {}).get(b, 1.0) == 0.0]
        out += [f"{a} and {b} never occur together in the training folds" for a, b in pairs]
    return out
