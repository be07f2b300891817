"""The exact split of every logit into evidence for, evidence against and the rest, from a model's
outputs alone (NumPy, no PyTorch: the deployed ONNX model uses it too).

The last layer has no bias, so a label's logit is exactly the sum over prototypes of
similarity x weight: every explanation is that decomposition, not an approximation.
"""
from __future__ import annotations

import numpy as np

from ecgproto.trust.calibration import apply as calibrate
from ecgproto.trust.calibration import assessable, calls, fitted, thresholds

SHOWN = 0.005  # smaller contributions (0.00 at two decimals) stay in the rest instead of being listed


def _grouped(n, c, sims, weight, contributions, groups, proto_class, sources):
    """One entry per group of near-copies for label c of ECG n: the largest member speaks for it, the
    contribution is the group's sum (so the entries still add up to the logit)."""
    members = {}
    for j, g in enumerate(groups):
        if g >= 0:
            members.setdefault(g, []).append(j)
    out = []
    for js in members.values():
        rep = max(js, key=lambda j: abs(contributions[n, c, j]))
        out.append({"index": int(rep), "class": proto_class[rep], "similarity": float(sims[n, rep]),
                    "weight": float(weight[c, rep]), "contribution": float(contributions[n, c, js].sum()),
                    "source_ecg_id": int(sources[rep]), "stands_for": len(js), "members": [int(j) for j in js]})
    return out


def classes_with_prototypes(labels, proto_class: list, groups: list) -> list:
    """Per label, whether a prototype of its class is still in use (group -1: pruned)."""
    return [any(g >= 0 and proto_class[j] == label for j, g in enumerate(groups)) for label in labels]


def split_logits(logits: np.ndarray, sims: np.ndarray, weight: np.ndarray, proto_class: list, sources: list,
                 groups: list, labels, calibration: dict | None = None, top: int | None = 3) -> list:
    """For each ECG (logits (N, C), sims (N, P)): one entry per label with the evidence for (its largest
    positive contributions, similarity x weight), the evidence against (its largest negative ones) and the
    rest, which together sum to the logit; and the number that decides, the calibrated logit
    slope x logit + intercept, split the same way with the intercept (the prior) as its own term:
    prior + slope x (for + against + rest). Then the calibrated probability, the class's threshold and
    whether the label is called. A label that is not assessable (calibration.assessable) gets no
    probability and is never called. groups: one id per prototype (-1: pruned, never listed); prototypes
    sharing an id are near-copies, listed once; the evidence against is listed most negative first.
    top=None lists every group with a non-zero contribution (rest 0)."""
    probs = calibrate(logits, calibration)
    cuts = thresholds(calibration, len(labels))
    has_prototype = classes_with_prototypes(labels, proto_class, groups)
    not_assessable = assessable(calibration, len(labels), has_prototype)
    called, calibrated = calls(probs, calibration, has_prototype), fitted(calibration, len(labels))
    slope = np.ones(len(labels)) if calibration is None else np.asarray(calibration["slope"], dtype=np.float64)
    prior = np.zeros(len(labels)) if calibration is None else np.asarray(calibration["intercept"], dtype=np.float64)
    contributions = sims[:, None, :] * weight[None]  # (N, C, P)
    result = []
    for n in range(len(logits)):
        entries = []
        for c, label in enumerate(labels):
            evidence = sorted(_grouped(n, c, sims, weight, contributions, groups, proto_class, sources),
                              key=lambda e: -e["contribution"])
            floor = 0.0 if top is None else SHOWN  # top=None: every prototype, however small its part
            pro = [e for e in evidence if e["contribution"] > 0 and e["contribution"] >= floor][:top]
            con = [e for e in evidence if e["contribution"] < 0 and e["contribution"] <= -floor][::-1][:top]
            shown = sum(e["contribution"] for e in pro + con)
            pro_sum, con_sum = sum(e["contribution"] for e in pro), sum(e["contribution"] for e in con)
            rest = float(logits[n, c] - shown)
            ok = not_assessable[c] is None
            decision = {"prior": float(prior[c]), "slope": float(slope[c]),
                        "evidence_for": float(slope[c] * pro_sum), "evidence_against": float(slope[c] * con_sum),
                        "rest": float(slope[c] * rest),
                        "calibrated_logit": float(slope[c] * logits[n, c] + prior[c]),
                        "threshold_logit": float(np.log(cuts[c] / (1 - cuts[c])))}
            entries.append({
                "label": label, "assessable": ok, "not_assessable_because": not_assessable[c],
                "logit": float(logits[n, c]), "probability": float(probs[n, c]) if ok else None,
                "uncalibrated_probability": float(1 / (1 + np.exp(-logits[n, c]))),
                "threshold": float(cuts[c]), "called": bool(called[n, c]), "calibrated": bool(calibrated[c]),
                "decision": decision,
                # a call the prior carries: no evidence for it, or the ECG's own part alone stays below
                # the threshold and the intercept lifts it over
                "rests_on_prior": bool(called[n, c]) and (decision["evidence_for"] <= SHOWN or decision[
                    "calibrated_logit"] - decision["prior"] < decision["threshold_logit"]),
                "evidence_for": pro, "evidence_against": con, "rest": rest, "prototypes": pro + con})
        result.append(entries)
    return result


def lead_attribution(outputs, x: np.ndarray, prototype: int) -> np.ndarray:
    """(12,) how much each lead carries a prototype's match: the drop in its similarity when that lead
    alone is blanked (set to 0, the training mean after scaling). outputs: a runner's outputs function;
    x: one preprocessed ECG (1, 12, T)."""
    batch = np.repeat(np.asarray(x, dtype=np.float32), x.shape[1] + 1, axis=0)
    for lead in range(x.shape[1]):
        batch[lead + 1, lead] = 0.0
    sims = outputs(batch)["sims"][:, prototype]
    return sims[0] - sims[1:]


LEAD_FULL_DROP = 0.1  # a similarity drop this large shades a lead fully; the scale is the same for every ECG


def lead_shading(drops: np.ndarray) -> np.ndarray:
    """Lead attribution as 0-1 for drawing, on an absolute scale: drop / LEAD_FULL_DROP, nothing below
    occlusion's MIN_DROP (a 2% change never gets full colour because it happens to be the largest)."""
    from ecgproto.trust.occlusion import MIN_DROP

    drops = np.asarray(drops, dtype=float)
    return np.where(drops >= MIN_DROP, np.clip(drops / LEAD_FULL_DROP, 0, 1), 0.0)
