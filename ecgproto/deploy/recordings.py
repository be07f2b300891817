"""Records of any length: read in 10 s windows (the length the model was trained on) every STRIDE_S
seconds, the last window aligned with the end; each window goes through the guard and the model, and the
record's calibrated probability of a label is the mean over the windows the guard lets through (all windows
when none passes, and then the record is not reliable). A label is called when that mean reaches its
threshold; the window with the highest probability is the one that carried the call, and the one explained."""
from __future__ import annotations

import numpy as np

from ecgproto.data.ptbxl import N_SAMPLES
from ecgproto.deploy.preprocessing import preprocess
from ecgproto.trust.calibration import apply, assessable, calls
from ecgproto.trust.evidence import classes_with_prototypes
from ecgproto.trust.guard import best_similarity, verdict

STRIDE_S = 5
AGGREGATION = "mean of the calibrated probabilities over the 10 s windows the guard lets through"


def window_starts(n_samples: int, window: int = N_SAMPLES, stride: int = STRIDE_S * 100) -> list:
    starts = list(range(0, n_samples - window + 1, stride))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)  # the end of the record is read too
    return starts


def has_prototype(runner) -> list | None:
    meta = runner.meta
    if not runner.explainable:
        return None
    return classes_with_prototypes(runner.labels, meta["prototype_class"], meta["groups"])


def answer(runner, millivolts: np.ndarray) -> dict:
    """One record (12, T >= 1000) at 100 Hz: its windows, their inputs, outputs and verdicts, and the
    record-level calibrated probabilities, calls and reliability."""
    meta = runner.meta
    starts = window_starts(millivolts.shape[1])
    mv = np.stack([millivolts[:, s:s + N_SAMPLES] for s in starts])
    x = preprocess(mv, meta["preprocessing"])
    out = runner.outputs(x)
    best = best_similarity(out["sims"], runner.active()) if runner.explainable else np.full(len(starts), np.nan)
    verdicts = [verdict(m, float(b), meta.get("guard"), meta.get("familiarity")) for m, b in zip(mv, best)]
    readable = np.array([v["reliable"] is not False for v in verdicts])
    used = readable if readable.any() else np.ones(len(starts), bool)
    calibration = meta.get("calibration")
    probs = apply(out["logits"], calibration)
    record = probs[used].mean(axis=0, keepdims=True)
    protos = has_prototype(runner)
    ok = np.array([why is None for why in assessable(calibration, len(runner.labels), protos)])
    carried = np.where(used[:, None], probs, -np.inf).argmax(axis=0)  # per label: the window that carried it
    return {"starts": starts, "millivolts": mv, "x": x, "out": out, "verdicts": verdicts,
            # None when the guard could not judge (no guard or no familiarity block), as explain says
            "reliable": None if any(v["reliable"] is None for v in verdicts) else bool(readable.any()),
            "probabilities": np.where(ok, record[0], np.nan), "called": calls(record, calibration, protos)[0],
            "scores": record[0],  # every label's (calibrated where possible) probability: for AUROC, not to show
            "window_probabilities": probs, "carried_by": carried}
