"""Can the model read this ECG at all? Checked before any label is presented.

Two kinds of check, with thresholds from params.yaml's `guard` section that travel in the model file:
- signal quality, on the millivolts as recorded: a flat line or a lead off, clipping (a lead stuck at its
  extreme value), and high-frequency noise that swamps the QRS;
- familiarity: the ECG's best similarity to a prototype in use, against the same figure over the
  training ECGs (quantiles stored in the model file); below the `familiarity_percentile`-th percentile
  the ECG is unlike what the model was trained on.
"""
from __future__ import annotations

import math

import numpy as np

from ecgproto.data.ptbxl import FS, LEADS

GUARD_KEYS = {"flat_mv", "clip_share", "noise_ratio", "familiarity_percentile", "familiarity_warning_percentile",
              "noisy_leads"}
OLDER_GUARD_KEYS = {"flat_mv", "clip_share", "noise_ratio", "familiarity_percentile"}  # model files before them
NOISE_BAND_HZ = 35.0  # above it a 100 Hz ECG holds little but noise (the QRS lives mostly below 25 Hz)


def lead_noise(millivolts: np.ndarray, fs: int = FS) -> np.ndarray:
    """(12,) each lead's noise: power above NOISE_BAND_HZ over power in 0.5 Hz-NOISE_BAND_HZ (square roots)."""
    mv = np.asarray(millivolts, dtype=np.float64)
    spectrum = np.fft.rfft(mv - mv.mean(axis=1, keepdims=True), axis=1)
    freqs = np.fft.rfftfreq(mv.shape[1], 1 / fs)
    power = np.abs(spectrum) ** 2
    noise = np.sqrt(power[:, freqs > NOISE_BAND_HZ].sum(axis=1))
    signal = np.sqrt(power[:, (freqs >= 0.5) & (freqs <= NOISE_BAND_HZ)].sum(axis=1))
    return np.divide(noise, signal, out=np.zeros_like(noise), where=signal > 0)


def signal_problems(millivolts: np.ndarray, guard: dict, fs: int = FS) -> tuple:
    """(reasons why this (12, T) recording cannot be read, warnings that do not stop the answer)."""
    mv = np.asarray(millivolts, dtype=np.float64)
    if not np.isfinite(mv).all():
        return ["non-finite samples"], []
    spectrum = np.fft.rfft(mv - mv.mean(axis=1, keepdims=True), axis=1)
    freqs = np.fft.rfftfreq(mv.shape[1], 1 / fs)
    wander_free = np.fft.irfft(np.where(freqs >= 0.5, spectrum, 0), n=mv.shape[1], axis=1)
    span = wander_free.max(axis=1) - wander_free.min(axis=1)
    flat = span < guard["flat_mv"]
    if flat.all():
        return [f"flat line: no lead varies by {guard['flat_mv']} mV or more"], []
    problems, warnings = [], []
    if flat.any():
        problems.append(f"lead(s) off or flat: {', '.join(name for name, f in zip(LEADS, flat) if f)}")
    at_extreme = np.maximum((mv >= mv.max(axis=1, keepdims=True) - 1e-6).mean(axis=1),
                            (mv <= mv.min(axis=1, keepdims=True) + 1e-6).mean(axis=1))
    clipped = (at_extreme > guard["clip_share"]) & ~flat
    if clipped.any():
        problems.append("clipping (a lead stuck at its extreme value): "
                        f"{', '.join(name for name, c in zip(LEADS, clipped) if c)}")
    ratio = lead_noise(mv, fs)
    noisy = (ratio > guard["noise_ratio"]) & ~flat
    limit = guard.get("noisy_leads")  # model files before it judged the median lead only
    described = ", ".join(f"{name} {r:.2f}" for name, r, n in zip(LEADS, ratio, noisy) if n)
    if limit is None:
        median = float(np.median(ratio[~flat]))
        if median > guard["noise_ratio"]:
            problems.append(f"noise swamps the QRS (power above {NOISE_BAND_HZ:g} Hz at {median:.2f} of the "
                            f"signal's, limit {guard['noise_ratio']})")
    elif noisy.sum() >= limit:
        problems.append(f"noise swamps the QRS in {int(noisy.sum())} leads (power above {NOISE_BAND_HZ:g} Hz over "
                        f"the signal's: {described}; limit {guard['noise_ratio']}, at most {limit - 1} such leads)")
    elif noisy.any():
        warnings.append(f"noisy lead {described} (power above {NOISE_BAND_HZ:g} Hz over the signal's; "
                        f"limit {guard['noise_ratio']})")
    return problems, warnings


def familiarity_reference(best_similarity_train: np.ndarray, percentile: float) -> dict:
    """Quantiles (0-100) of the training ECGs' best prototype similarity, and the cut-off below which a
    query counts as unfamiliar."""
    quantiles = np.quantile(best_similarity_train, np.linspace(0, 1, 101))
    return {"quantiles": [round(float(q), 6) for q in quantiles], "percentile": percentile,
            "cutoff": round(float(np.percentile(best_similarity_train, percentile)), 6)}  # as the quantiles


def familiarity(best_similarity: float, reference: dict) -> tuple:
    """(percentile of this ECG among the training ECGs, familiar?)."""
    percentile = float(np.interp(best_similarity, reference["quantiles"], np.arange(101)))
    return round(percentile, 1), best_similarity >= reference["cutoff"]


def best_similarity(sims: np.ndarray, active: np.ndarray) -> np.ndarray:
    """(N,) each ECG's highest similarity to a prototype in use."""
    return np.where(active[None, :], sims, -np.inf).max(axis=1)


def verdict(millivolts: np.ndarray, best_sim: float, guard: dict | None, reference: dict | None) -> dict:
    """{'reliable', 'reasons', 'familiarity_percentile'} for one ECG; a model file without a guard says so."""
    if guard is None or reference is None:
        return {"reliable": None, "reasons": ["this model file has no guard (an older version): signal quality and "
                                              "familiarity were not checked"], "familiarity_percentile": None}
    reasons, warnings = signal_problems(millivolts, guard)
    percentile, familiar = familiarity(best_sim, reference)
    if not familiar:
        reasons.append(f"unlike the training ECGs: best prototype similarity {best_sim:.2f} is below percentile "
                       f"{reference['percentile']:g} of the training ECGs' ({reference['cutoff']:.2f})")
    elif percentile < guard.get("familiarity_warning_percentile", 0):
        warnings.append(f"low familiarity: this ECG's best prototype similarity is at percentile {percentile:g} of "
                        f"the training ECGs' (warning below {guard['familiarity_warning_percentile']:g}); read the "
                        "calls with care")
    return {"reliable": not reasons, "reasons": reasons, "warnings": warnings, "familiarity_percentile": percentile}


def _usable_familiarity(f) -> bool:
    if not (isinstance(f, dict) and isinstance(f.get("quantiles"), list) and len(f["quantiles"]) == 101
            and _finite_numbers(f["quantiles"]) and _finite_numbers([f.get("cutoff"), f.get("percentile")])):
        return False
    q = np.asarray(f["quantiles"], dtype=float)
    p, cutoff = float(f["percentile"]), float(f["cutoff"])
    if not ((np.diff(q) >= 0).all() and 0 <= p < 50):
        return False
    # the cut-off is the training ECGs' quantile at its own percentile, as familiarity_reference stores it (both
    # rounded to 6 decimals): the stored quantiles interpolated there, within 1e-6. Between two whole
    # percentiles the training ECGs' own quantile need not be the straight line between the stored ones, but it
    # lies between them.
    if abs(float(np.interp(p, np.arange(101), q)) - cutoff) <= 1e-6 + 1e-12:
        return True
    return p != int(p) and q[int(p)] - 1e-6 <= cutoff <= q[int(p) + 1] + 1e-6


def _finite_numbers(values) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def malformed(guard, familiarity, cooccurrence, n_labels: int) -> list:
    """Names of the model-file entries (absent ones pass) that have the wrong type, shape or a
    non-finite number: such an entry is refused, never used."""
    problems = []
    if guard is not None and not (isinstance(guard, dict) and set(guard) in (GUARD_KEYS, OLDER_GUARD_KEYS)
                                  and _finite_numbers(guard.values()) and 0 < guard["flat_mv"] < 1
                                  and 0 < guard["clip_share"] < 1 and 0 < guard["noise_ratio"] < 1
                                  and 0 <= guard["familiarity_percentile"] < 50
                                  and (set(guard) == OLDER_GUARD_KEYS or (
                                      guard["familiarity_percentile"] <= guard["familiarity_warning_percentile"] < 50
                                      and isinstance(guard["noisy_leads"], int) and 1 <= guard["noisy_leads"] <= 12))):
        problems.append("guard (expected the ranges params.yaml allows)")
    if familiarity is not None and not _usable_familiarity(familiarity):
        problems.append("familiarity (expected 101 non-decreasing quantiles, the cut-off among them)")
    if cooccurrence is not None and not (
            isinstance(cooccurrence, dict) and len(cooccurrence) == n_labels
            and all(isinstance(row, dict) and _finite_numbers(row.values()) for row in cooccurrence.values())):
        problems.append("cooccurrence")
    return problems
