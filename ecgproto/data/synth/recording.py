"""One synthetic recording: a rhythm drawn from the heart model at a rate in its category's band (or near a
criterion, for the borderline cases), plus recording nuisance (wander, tremor, electrode motion, a poor
lead, noise) scaled by data.synthetic_realism."""
from __future__ import annotations

import numpy as np

from ecgproto.config import SyntheticRealism
from ecgproto.data.ptbxl import FS, N_SAMPLES
from ecgproto.data.synth.heart import (
    ECTOPIC_P_DIR,
    SINUS_P_DIR,
    Patient,
    T,
    Waves,
    afib,
    aflt,
    avb2,
    avb3,
    ectopy,
    pace,
    psvt,
    sinus,
    svarr,
    svt,
    true_intervals,
)
from ecgproto.data.synth.labelling import SINUS

# Rates (per minute) by category: the criteria abut (SBRAD < 60 <= SR < 100 <= STACH); `near`: within a
# few beats of a criterion, as in the hard cases of a real dataset.
RATES = {"SR": (60, 100), "STACH": (100, 150), "SBRAD": (40, 60), "SARRH": (55, 85), "EAR": (60, 90)}
RATES_NEAR = {"SR": ((60, 63), (96, 100)), "STACH": ((100, 105),), "SBRAD": ((56, 60),)}


def _near_range(rng, ranges):
    return ranges[int(rng.integers(len(ranges)))]


def _band_noise(rng, shape, low_hz, high_hz):
    """White noise limited to low-high Hz (FFT mask), unit standard deviation."""
    spectrum = np.fft.rfft(rng.standard_normal(shape), axis=-1)
    freqs = np.fft.rfftfreq(shape[-1], 1 / FS)
    spectrum[..., (freqs < low_hz) | (freqs > high_hz)] = 0
    x = np.fft.irfft(spectrum, n=shape[-1], axis=-1)
    return x / max(float(x.std()), 1e-12)


def _nuisance(x, rng, scale, notes):
    """Recording nuisance on the independent leads (I, II, V1-V6), in place; notes names what was added
    (PTB-XL's baseline_drift, static_noise, burst_noise and electrodes_problems columns)."""
    names = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
    # slow drift below 0.5 Hz (as any recording), and breathing, whose amplitude differs by lead
    freqs = rng.uniform(0.05, 0.45, size=(8, 2, 1))
    phases = rng.uniform(0, 2 * np.pi, size=(8, 2, 1))
    x += (rng.uniform(0.02, 0.15, size=(8, 2, 1)) * np.sin(2 * np.pi * freqs * T + phases)).sum(axis=1)
    x += rng.uniform(0, 0.3 * scale, size=(8, 1)) * np.sin(2 * np.pi * rng.uniform(0.15, 0.4) * T
                                                            + rng.uniform(0, 2 * np.pi))
    # electrode placement and skin: a gain per lead
    x *= np.exp(0.15 * scale * rng.standard_normal((8, 1)))
    u = rng.random(4)
    if u[0] < 0.25 * scale:  # muscle tremor: 20-45 Hz noise swelling and fading
        envelope = np.clip(_band_noise(rng, (1, N_SAMPLES), 0.1, 0.6) + 0.5, 0, None)
        x += rng.uniform(0.01, 0.04) * envelope * _band_noise(rng, (8, N_SAMPLES), 20, 45)
        notes["static_noise"] = "alles"
    if u[1] < 0.08 * scale:  # electrode motion: a large slow transient on one or two leads
        leads = rng.choice(8, size=int(rng.integers(1, 3)), replace=False)
        width = int(rng.uniform(0.3, 1.5) * FS)
        at = int(rng.integers(0, N_SAMPLES - width))
        burst = np.hanning(width) * _band_noise(rng, (len(leads), width), 0.5, 5) * rng.uniform(0.3, 1.2)
        x[leads, at:at + width] += burst
        notes["burst_noise"] = ",".join(names[k] for k in sorted(leads))
    if u[2] < 0.02 * scale:  # a poor lead: loose electrode, broadband noise
        lead = int(rng.integers(8))
        x[lead] += rng.uniform(0.05, 0.2) * _band_noise(rng, (N_SAMPLES,), 0.5, 50)
        notes["electrodes_problems"] = names[lead]
    if u[3] < 0.5 * scale and "static_noise" not in notes:
        notes["baseline_drift"] = "alles"
    x += rng.normal(0, rng.uniform(0.005, 0.02), size=x.shape)


def simulate(category: str, conduction: tuple, p: Patient, rng, realism: SyntheticRealism) -> tuple:
    """One record of a primary category plus conduction add-ons: ((12, 1000) millivolts, notes), where
    notes holds extra scp codes (a single PVC) and the nuisance columns."""
    w = Waves(p.rotation)
    notes, codes = {}, {}
    near = rng.random() < realism.borderline
    if "1AVB" in conduction:
        pr = rng.uniform(0.202, 0.22) if near else rng.uniform(0.21, 0.30)
    else:
        pr = rng.uniform(0.18, 0.198) if near else rng.uniform(0.12, 0.19)
    if "IVCD" in conduction:
        qrs = rng.uniform(1.22, 1.28) if near else rng.uniform(1.28, 1.55)
    else:
        qrs = rng.uniform(1.12, 1.2) if near else p.qrs_scale
    if category in SINUS or category == "EAR":
        rates = _near_range(rng, RATES_NEAR[category]) if near and category in RATES_NEAR else RATES[category]
        if category == "SARRH":
            breathing = rng.uniform(0.1, 0.13) if near else rng.uniform(0.14, 0.22)
        else:
            breathing = rng.uniform(0.02, 0.05) if near else 0.0
        p_dir = ECTOPIC_P_DIR if category == "EAR" else SINUS_P_DIR
        hr = rng.uniform(*rates)
        pvc = category == "SR" and near and rng.random() < 0.3
        sinus(w, p, rng, hr, pr, qrs, breathing, p_dir=p_dir, pvc=pvc)
        notes["measures"] = {"rate": hr, "pr": pr, "qrs": qrs}  # what a reader measures, to label by
        notes["truth"] = true_intervals(p, hr, pr, qrs)
        if pvc:
            codes["PVC"] = 100.0
    elif category in ("BIGU", "TRIGU"):
        ectopy(w, p, rng, 2 if category == "BIGU" else 3, pr, qrs)
    elif category == "SVARR":
        svarr(w, p, rng, pr, qrs)
    elif category == "AFIB":
        afib(w, p, rng, qrs, near)
        notes["measures"] = {"qrs": qrs}
    elif category == "AFLT":
        aflt(w, p, rng, qrs, near)
    elif category == "SVTAC":
        svt(w, p, rng, rng.uniform(150, 230))
    elif category == "PSVT":
        psvt(w, p, rng, pr)
    elif category == "2AVB":
        avb2(w, p, rng)
    elif category == "3AVB":
        avb3(w, p, rng)
    elif category == "PACE":
        pace(w, p, rng)
    else:
        raise ValueError(f"unknown synthetic category {category!r}")
    independent = w.render()  # I, II, V1..V6
    _nuisance(independent, rng, realism.nuisance, notes)
    lead_i, lead_ii = independent[0], independent[1]
    limb = np.stack([lead_i, lead_ii, lead_ii - lead_i, -(lead_i + lead_ii) / 2,
                     lead_i - lead_ii / 2, lead_ii - lead_i / 2])
    notes["codes"] = codes
    return np.concatenate([limb, independent[2:]]).astype(np.float32), notes
