"""Case-based explanations: which prototypes drove each label, by how much, and where they match.

The last layer has no bias, so a label's logit is exactly the sum over prototypes of
similarity x weight: every explanation below is that decomposition, not an approximation.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .calibration import apply as calibration_apply
from .calibration import thresholds
from .inference import predict


def duplicate_groups(model, cosine: float) -> list:
    """Group id per prototype: prototypes in use whose vectors have a cosine above `cosine` (near-copies)
    share a group and are shown once, with the number they stand for. Pruned ones get -1."""
    vectors = F.normalize(model.prototypes.detach().cpu(), dim=-1)
    cos = (vectors @ vectors.T).numpy()
    active = ~model.prototype_pruned.cpu().numpy()
    group = [-1] * len(active)
    for j in np.flatnonzero(active):
        if group[j] < 0:
            group[j] = int(j)
            for k in np.flatnonzero(active & (cos[j] > cosine)):
                if group[k] < 0:
                    group[k] = int(j)
    return group


def _evidence(n, c, sims, weight, contributions, groups, proto_class, sources):
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


@torch.no_grad()
def explain(model, x, labels, calibration: dict | None = None, top: int | None = 3,
            duplicate_cosine: float = 0.98) -> list:
    """For each ECG of x (N, 12, T): one entry per label with its logit split exactly into the evidence
    for (largest positive contributions, similarity x last-layer weight), the evidence against (largest
    negative ones) and the rest, which together sum to the logit; the calibrated probability, the
    class's threshold and whether the label is called. top=None lists every prototype (rest 0). Pruned
    prototypes (weight 0) are never listed; near-copies (cosine > duplicate_cosine) are listed once
    (duplicate_cosine above 1 lists each prototype on its own)."""
    out = predict(model, np.asarray(x, dtype=np.float32), model.prototypes.device)  # batched, eval mode
    logits, sims = out["logits"], out["sims"]
    probs = calibration_apply(logits, calibration)
    cuts = thresholds(calibration, len(labels))
    weight = model.last_layer.weight.detach().cpu().numpy()
    contributions = sims[:, None, :] * weight[None]  # (N, C, P)
    proto_class = [labels[c] for c in model.prototype_class.tolist()]
    sources = model.prototype_source.tolist()
    groups = duplicate_groups(model, duplicate_cosine)
    result = []
    for n in range(len(logits)):
        entries = []
        for c, label in enumerate(labels):
            evidence = sorted(_evidence(n, c, sims, weight, contributions, groups, proto_class, sources),
                              key=lambda e: -e["contribution"])
            pro = [e for e in evidence if e["contribution"] > 0][:top]
            con = [e for e in evidence if e["contribution"] < 0][::-1][:top]
            if top is None:
                pro, con = evidence, []
            shown = sum(e["contribution"] for e in pro + con)
            entries.append({
                "label": label, "logit": float(logits[n, c]), "probability": float(probs[n, c]),
                "uncalibrated_probability": float(1 / (1 + np.exp(-logits[n, c]))),
                "threshold": float(cuts[c]), "called": bool(probs[n, c] >= cuts[c]),
                "evidence_for": pro, "evidence_against": con, "rest": float(logits[n, c] - shown),
                "prototypes": pro + con})
        result.append(entries)
    return result


@torch.no_grad()
def where_it_matches(model, x, n_samples: int | None = None) -> np.ndarray:
    """(N, P, n_samples) local similarity of every prototype along each ECG of x, linearly
    interpolated from the feature map's time steps (centred on the samples they summarise)."""
    model.eval()
    x = torch.as_tensor(np.array(x, dtype=np.float32), device=model.prototypes.device)
    local = model.local_similarities(x).cpu().numpy()
    steps, n_samples = local.shape[-1], n_samples or x.shape[-1]
    pos = np.clip((np.arange(n_samples) + 0.5) * steps / n_samples - 0.5, 0, steps - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, steps - 1)
    frac = pos - lo
    return local[..., lo] * (1 - frac) + local[..., hi] * frac


def choose_cases(y: np.ndarray, probs: np.ndarray, labels, codes, threshold) -> list:
    """Per requested code: the most confident correct detection and the worst mistake (a missed
    positive, else a false alarm). Codes absent from the split are reported, not silently dropped."""
    cases, used = [], set()
    for code in codes:
        c = list(labels).index(code)
        pos, p, cut = y[:, c] > 0, probs[:, c], np.broadcast_to(threshold, (len(labels),))[c]
        candidates = {
            "correct": np.flatnonzero(pos & (p >= cut)), "missed": np.flatnonzero(pos & (p < cut)),
            "false alarm": np.flatnonzero(~pos & (p >= cut))}
        picks = [("correct", candidates["correct"], -p)]
        picks.append(("missed", candidates["missed"], p) if len(candidates["missed"])
                     else ("false alarm", candidates["false alarm"], -p))
        for outcome, idx, key in picks:
            idx = [i for i in idx[np.argsort(key[idx], kind="stable")] if i not in used]
            if idx:
                used.add(idx[0])
                cases.append({"index": int(idx[0]), "code": code, "outcome": outcome})
            else:
                cases.append({"index": None, "code": code, "outcome": outcome})
    return cases
