"""The heart model: each wave (P, Q, R, S, T, flutter, fibrillation, pacing spike) is a time course times a
3-D cardiac dipole direction (x left, y inferior, z anterior); leads are projections of the dipole (I, II and
V1-V6 directly, III/aVR/aVL/aVF derived by Einthoven and Goldberger, so the limb leads agree by
construction). The beat schedule of each rhythm (RR intervals, P-wave behaviour, conduction) is what tells
the 16 codes apart (criteria: the PTB-XL statements and the rhythm definitions in docs/method.md)."""
from __future__ import annotations

import numpy as np

from ecgproto.config import SyntheticRealism
from ecgproto.data.ptbxl import FS, N_SAMPLES

T = np.arange(N_SAMPLES) / FS
# Morphology outside the 16 codes, per patient, at roughly PTB-XL's prevalences (x realism.morphology).
MORPHOLOGY = {"CLBBB": 0.025, "CRBBB": 0.03, "IMI": 0.10, "ASMI": 0.09, "LVH": 0.10, "NDT": 0.15}
MARGIN = 1.5  # seconds simulated before and after the strip so that edge beats are complete


def _unit(*v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def _lead_vectors() -> np.ndarray:
    """(8, 3) projection of the dipole onto I, II, V1..V6."""
    frontal = [_unit(np.cos(np.radians(a)), np.sin(np.radians(a)), 0) for a in (0, 60)]
    # precordial leads: horizontal angle from left (+x) towards anterior (+z), slightly inferior
    precordial = [_unit(np.cos(np.radians(a)), 0.15, np.sin(np.radians(a))) * 1.4
                  for a in (115, 95, 75, 55, 30, 0)]
    return np.array(frontal + precordial)


LEAD_VECTORS = _lead_vectors()


class Waves:
    """Accumulates Gaussian waves (centre s, width s, dipole mV) and extra dipole time courses."""

    def __init__(self, rotation: np.ndarray):
        self.rows = []
        self.rotation = rotation
        self.extra = np.zeros((3, N_SAMPLES))

    def add(self, centre, sigma, amplitude, direction):
        self.rows.append((centre, sigma, *(amplitude * np.asarray(direction))))

    def render(self) -> np.ndarray:
        dipole = self.extra.copy()
        if self.rows:
            w = np.array(self.rows)
            g = np.exp(-0.5 * ((T[None, :] - w[:, :1]) / w[:, 1:2]) ** 2)
            dipole += w[:, 2:].T @ g
        return LEAD_VECTORS @ (self.rotation @ dipole)


def _rotation(rng, degrees: float) -> np.ndarray:
    """Random rotation of up to `degrees` about each axis: per-patient anatomy of the heart's axis."""
    angles = np.radians(rng.uniform(-degrees, degrees, size=3))
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


class Patient:
    """Per-patient morphology: axis, amplitudes, QRS and T shape, and the morphology codes of
    MORPHOLOGY; shared by the patient's records."""

    def __init__(self, rng, realism: SyntheticRealism):
        spread = realism.nuisance
        self.rotation = _rotation(rng, 15 + 10 * spread)
        axis = np.radians(rng.uniform(-10 - 20 * spread, 75 + 15 * spread))
        self.r_dir = _unit(np.cos(axis), np.sin(axis), -0.45)
        self.r_amp = rng.uniform(0.8, 1.6) * np.exp(0.25 * spread * rng.standard_normal())
        self.t_dir = _unit(np.cos(axis) + 0.3, np.sin(axis), 0.25)
        self.t_amp = rng.uniform(0.2, 0.45)
        self.p_amp = rng.uniform(0.1, 0.2) * np.exp(0.2 * spread * rng.standard_normal())
        self.qrs_scale = rng.uniform(0.9, 1.1)
        self.age = int(rng.integers(25, 90))
        self.sex = int(rng.integers(0, 2))
        self.weight = float(rng.integers(50, 110))
        draws = rng.random(len(MORPHOLOGY))  # one draw per code (later draws depend on what was found)
        self.morph = {c for (c, share), u in zip(MORPHOLOGY.items(), draws) if u < share * realism.morphology}
        if {"CLBBB", "CRBBB"} <= self.morph:
            self.morph.discard("CRBBB")
        if "LVH" in self.morph:  # high voltages, often with a strain pattern (lateral T inversion)
            self.r_amp *= rng.uniform(1.6, 2.2)
            if rng.random() < 0.5:  # strain: T opposite to the leftward-posterior QRS forces
                self.t_dir = _unit(-np.cos(axis), 0.4 * np.sin(axis), 0.3)
        if "NDT" in self.morph:  # flat or inverted T waves
            self.t_amp *= rng.uniform(-0.7, 0.3)
        if "CLBBB" in self.morph:  # discordant T: opposite to the broad leftward-posterior QRS
            self.t_dir = -LBBB_DIR


SINUS_P_DIR = _unit(0.55, 0.8, 0.15)
ECTOPIC_P_DIR = _unit(0.45, -0.85, 0.2)  # low atrial focus: inverted P in II, III, aVF
SEPTAL_DIR = _unit(-0.5, 0.2, 0.85)
TERMINAL_DIR = _unit(-0.6, -0.45, -0.65)
LBBB_DIR = _unit(0.75, 0.2, -0.6)    # slow leftward-posterior activation: broad R in I and V6, QS in V1
RBBB_DIR = _unit(-0.55, 0.05, 0.85)  # late rightward-anterior forces: R' in V1, broad S in I and V6


def _conducted_beat(w: Waves, p: Patient, t_q, rr, qrs, rng, retro=False):
    """Supraventricular QRS (onset t_q) followed by its T wave. qrs: QRS width relative to 90 ms
    (above about 1.22, i.e. 110 ms, IVCD-like slowed conduction with slurred terminal forces)."""
    morph = p.morph
    s = max(qrs, 1.45) if "CLBBB" in morph else qrs  # RBBB: normal start, a late R' (below)
    if "CLBBB" in morph:  # no septal q; one broad, notched leftward-posterior wave
        w.add(t_q + 0.045 * s, 0.02 * s, 1.1 * p.r_amp, LBBB_DIR)
        w.add(t_q + 0.085 * s, 0.015 * s, 0.5 * p.r_amp, LBBB_DIR)
    else:
        if "ASMI" in morph:  # septal forces lost: initial posterior force, QS in V1-V3
            w.add(t_q + 0.015 * s, 0.012 * s, 0.4 * p.r_amp, _unit(0.1, 0.1, -1))
        else:
            w.add(t_q + 0.015 * s, 0.008 * s, 0.15, SEPTAL_DIR)
        if "IMI" in morph:  # initial superior force: Q waves of about 40 ms in II, III, aVF
            w.add(t_q + 0.018 * s, 0.016 * s, 0.35 * p.r_amp, _unit(0.1, -1, 0))
        w.add(t_q + 0.04 * s, 0.011 * s, p.r_amp, p.r_dir)
        w.add(t_q + 0.07 * s, 0.011 * s, 0.35 * p.r_amp, TERMINAL_DIR)
        if "CRBBB" in morph:  # late R' (QRS about 130 ms); its T is discordant to it in V1-V3
            w.add(t_q + 0.095, 0.016, 0.6 * p.r_amp, RBBB_DIR)
            w.add(t_q + 0.30, 0.05, 0.12, -RBBB_DIR)
        elif s > 1.15:  # notched, slurred terminal forces, growing with the width
            w.add(t_q + 0.095 * s, 0.012 * s, min(1.0, (s - 1.15) / 0.3) * 0.25 * p.r_amp, _unit(-0.2, 0.4, -0.8))
    qt = 0.40 * np.sqrt(min(max(rr, 0.3), 2.0)) + 0.09 * max(s - 1.0, 0.0)
    if "NDT" in morph:  # ST depression before the flattened T
        w.add(t_q + 0.10 * s + 0.06, 0.04, -0.08, p.r_dir)
    w.add(t_q + qt - 0.08, 0.045, p.t_amp, p.t_dir)
    if retro:  # retrograde P buried right after the QRS
        w.add(t_q + 0.11, 0.015, 0.08, ECTOPIC_P_DIR)


def true_intervals(p: Patient, hr: float, pr: float, qrs: float) -> dict:
    """What a sinus record's waves measure, in ms, from the parameters that drew them (the reference for the
    measurements, written to synthetic_truth.csv). Each wave is a Gaussian; it is taken to begin and end two
    widths from its peak. QRS: from the first to the last of _conducted_beat's QRS waves with at least a
    tenth of the R amplitude; PR: from the P wave's start to the QRS start; QT: from the QRS start to the T
    wave's end, at the nominal RR."""
    m = p.morph
    s = max(qrs, 1.45) if "CLBBB" in m else qrs
    if "CLBBB" in m:
        start, end = 0.045 * s - 0.04 * s, 0.085 * s + 0.03 * s
    else:
        start = min(0.015 * s - 0.016 * s if 0.15 >= 0.1 * p.r_amp else 0.04 * s - 0.022 * s,
                    0.015 * s - 0.024 * s if "ASMI" in m else 1.0, 0.018 * s - 0.032 * s if "IMI" in m else 1.0)
        end = 0.07 * s + 0.022 * s
        if "CRBBB" in m:
            end = max(end, 0.095 + 0.032)
        elif s > 1.15 and min(1.0, (s - 1.15) / 0.3) * 0.25 >= 0.1:
            end = max(end, 0.095 * s + 0.024 * s)
    rr = 60 / hr
    qt = 0.40 * np.sqrt(min(max(rr, 0.3), 2.0)) + 0.09 * max(s - 1.0, 0.0)
    p_start = -pr + 0.05 - 0.044
    return {"rate_per_min": round(hr, 1), "pr_ms": round(1000 * (start - p_start), 1),
            "qrs_ms": round(1000 * (end - start), 1), "qt_ms": round(1000 * (qt - 0.08 + 0.09 - start), 1)}


def _ventricular_beat(w: Waves, p: Patient, t_q, direction, amp=1.6):
    """Wide QRS of ventricular origin (PVC, escape, paced) with a discordant T wave."""
    w.add(t_q + 0.035, 0.018, 0.5 * amp, direction)
    w.add(t_q + 0.08, 0.025, amp, direction)
    w.add(t_q + 0.36, 0.06, 0.45, -np.asarray(direction))


def _p_wave(w: Waves, p: Patient, onset, direction=SINUS_P_DIR, scale=1.0):
    w.add(onset + 0.05, 0.022, p.p_amp * scale, direction)


def _regular_times(rr, start=-MARGIN, stop=10 + MARGIN, jitter=0.02, rng=None):
    n = int((stop - start) / rr) + 2
    rrs = rr * (1 + jitter * rng.standard_normal(n))
    return start + rng.uniform(0, rr) + np.concatenate([[0], np.cumsum(rrs[:-1])])


def sinus(w, p, rng, hr, pr, qrs, breathing=0.0, p_dir=SINUS_P_DIR, pvc=False):
    """Sinus beats at `hr`; breathing: relative amplitude of the respiratory RR modulation (sinus
    arrhythmia from about 0.12). pvc: one premature ventricular beat takes the place of one conducted
    beat (its sinus P wave still comes, is not conducted, and the next beat is on time: a full
    compensatory pause), as in SR with a single PVC, which is neither BIGU nor TRIGU."""
    rr0 = 60 / hr
    t, times = -MARGIN + rng.uniform(0, rr0), []
    freq, phase = rng.uniform(0.15, 0.4), rng.uniform(0, 2 * np.pi)
    while t < 10 + MARGIN:
        times.append(t)
        t += rr0 * (1 + breathing * np.sin(2 * np.pi * freq * t + phase) + 0.015 * rng.standard_normal())
    premature = None
    if pvc:
        inside = [i for i, tq in enumerate(times) if 1 < tq < 9]
        premature = inside[int(rng.integers(len(inside)))]
        rr = times[premature] - times[premature - 1]
        _ventricular_beat(w, p, times[premature - 1] + rng.uniform(0.55, 0.7) * rr, _unit(-0.3, -0.8, 0.6))
    for i, tq in enumerate(times):
        rr = times[i] - times[i - 1] if i else rr0
        _p_wave(w, p, tq - pr, p_dir)
        if i != premature:
            _conducted_beat(w, p, tq, rr, qrs, rng)
    return np.array(times)


def ectopy(w, p, rng, every, pr, qrs):
    """BIGU (every=2), TRIGU (every=3): sinus beats with premature ventricular beats and a full
    compensatory pause."""
    hr = rng.uniform(60, 90)
    rr = 60 / hr
    direction = _unit(*rng.choice([[-0.3, -0.8, 0.6], [0.6, 0.7, -0.5], [0.8, -0.4, 0.4]]))
    coupling = rng.uniform(0.55, 0.7)
    t, k = -MARGIN + rng.uniform(0, rr), 0
    while t < 10 + MARGIN:
        if k % every == every - 1:
            _ventricular_beat(w, p, t - rr + coupling * rr, direction)
        else:
            _p_wave(w, p, t - pr)
            _conducted_beat(w, p, t, rr, qrs, rng)
        t += rr * (1 + 0.01 * rng.standard_normal())
        k += 1


def svarr(w, p, rng, pr, qrs):
    """Sinus rhythm with 2-3 premature atrial beats (early, abnormal P, narrow QRS), which reset the
    sinus node (non-compensatory pause)."""
    rr = 60 / rng.uniform(60, 85)
    premature_at = set(rng.choice(np.arange(2, 11), size=int(rng.integers(2, 4)), replace=False))
    t, k = -MARGIN + rng.uniform(0, rr), 0
    while t < 10 + MARGIN:
        if k in premature_at:
            t = t - rr + rng.uniform(0.55, 0.7) * rr
            _p_wave(w, p, t - 0.13, _unit(-0.3, 0.3, 0.9), scale=1.3)
            _conducted_beat(w, p, t, rr * 0.6, qrs, rng)
        else:
            _p_wave(w, p, t - pr)
            _conducted_beat(w, p, t, rr, qrs, rng)
        t += rr * (1 + 0.01 * rng.standard_normal())
        k += 1


def afib(w, p, rng, qrs, near=False):
    """Irregularly irregular ventricular response and fibrillatory waves; near: fine f waves and a less
    irregular response (the hard cases)."""
    hr = rng.uniform(70, 150)
    spread = (0.8, 1.25) if near else (0.6, 1.45)
    t = -MARGIN
    while t < 10 + MARGIN:
        rr = 60 / hr * rng.uniform(*spread)
        t += rr
        _conducted_beat(w, p, t, rr, qrs, rng)
    # fibrillatory waves: a few drifting 6-10 Hz components, strongest in V1 and the inferior leads
    f = np.zeros(N_SAMPLES)
    for _ in range(3):
        freq = rng.uniform(6, 10) + 0.4 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * T)
        f += np.sin(2 * np.pi * np.cumsum(freq) / FS + rng.uniform(0, 2 * np.pi))
    f *= rng.uniform(0.01, 0.03) / 1.5 if near else rng.uniform(0.05, 0.1) / 1.5
    w.extra += np.outer(_unit(0.1, 0.6, 0.8), f)


def aflt(w, p, rng, qrs, near=False):
    """Flutter waves at 250-330/min conducted 2:1 or 4:1; near: variable conduction (2-4:1, irregular)."""
    from scipy.signal import sawtooth

    flutter_rate = rng.uniform(250, 330)
    period = 60 / flutter_rate
    phase = rng.uniform(0, period)
    wave = sawtooth(2 * np.pi * (T - phase) / period, width=0.8)  # slow fall, fast rise when inverted
    w.extra += np.outer(_unit(0.05, -0.9, 0.45), rng.uniform(0.12, 0.25) * wave)
    ratio = int(rng.choice([2, 2, 4]))
    t = -MARGIN + phase
    while t < 10 + MARGIN:
        if near:
            ratio = int(rng.choice([2, 3, 4]))
        _conducted_beat(w, p, t + 0.25, period * ratio, qrs, rng)
        t += period * ratio


def svt(w, p, rng, hr, start=-MARGIN, stop=10 + MARGIN):
    for tq in _regular_times(60 / hr, start, stop, jitter=0.005, rng=rng):
        if tq < stop:
            _conducted_beat(w, p, tq, 60 / hr, p.qrs_scale, rng, retro=True)


def psvt(w, p, rng, pr):
    """Abrupt onset (or offset) of a supraventricular tachycardia inside the strip."""
    switch = rng.uniform(3, 7)
    hr_sinus, hr_svt = rng.uniform(65, 90), rng.uniform(165, 220)
    onset = rng.random() < 0.5
    sinus_span = (-MARGIN, switch) if onset else (switch, 10 + MARGIN)
    for tq in _regular_times(60 / hr_sinus, *sinus_span, rng=rng):
        if tq < sinus_span[1]:
            _p_wave(w, p, tq - pr)
            _conducted_beat(w, p, tq, 60 / hr_sinus, p.qrs_scale, rng)
    svt_span = (switch + 0.5, 10 + MARGIN) if onset else (-MARGIN, switch - 0.5)
    svt(w, p, rng, hr_svt, *svt_span)


def avb2(w, p, rng):
    """Second-degree AV block: Mobitz I (lengthening PR then a drop), Mobitz II or 2:1."""
    pp = 60 / rng.uniform(70, 100)
    kind = rng.choice(["wenckebach", "mobitz2", "2to1"])
    cycle = int(rng.integers(3, 5))
    for k, tp in enumerate(_regular_times(pp, jitter=0.01, rng=rng)):
        _p_wave(w, p, tp)
        pos = k % (2 if kind == "2to1" else cycle)
        dropped = pos == (1 if kind == "2to1" else cycle - 1)
        if not dropped:
            pr = 0.16 + 0.08 * pos if kind == "wenckebach" else 0.18
            _conducted_beat(w, p, tp + pr, pp, p.qrs_scale, rng)


def avb3(w, p, rng):
    """Complete heart block: regular P waves and an independent, slow (often wide) escape rhythm."""
    for tp in _regular_times(60 / rng.uniform(65, 100), jitter=0.01, rng=rng):
        _p_wave(w, p, tp)
    wide = rng.random() < 0.7
    rr = 60 / rng.uniform(30, 45)
    for tq in _regular_times(rr, jitter=0.01, rng=rng):
        if wide:
            _ventricular_beat(w, p, tq, _unit(0.5, -0.5, -0.7), amp=1.3)
        else:
            _conducted_beat(w, p, tq, rr, p.qrs_scale, rng)


def pace(w, p, rng):
    """Ventricular pacing at a fixed rate: a one-sample spike before each wide, LBBB-like QRS."""
    rr = 60 / rng.uniform(60, 72)
    spike_dir = _unit(0.3, -0.6, 0.75)
    for tq in _regular_times(rr, jitter=0.0, rng=rng):
        i = int(round(tq * FS))
        if 0 <= i < N_SAMPLES:
            w.extra[:, i] += spike_dir * rng.uniform(1.0, 2.0)
        _ventricular_beat(w, p, tq + 0.01, _unit(0.55, -0.6, -0.6), amp=1.4)
