"""Case-based explanations under a PyTorch model: which prototypes drove each label (the exact split in
evidence.py), which prototypes are near-copies, where they match, and which cases to show."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ecgproto.model.inference import predict
from ecgproto.trust.evidence import split_logits


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


@torch.no_grad()
def explain(model, x, labels, calibration: dict | None = None, top: int | None = 3,
            duplicate_cosine: float = 0.98) -> list:
    """evidence.split_logits for each ECG of x (N, 12, T) under this model: per label, the logit split
    exactly into evidence for, evidence against and the rest, with the calibrated probability, the
    class's threshold and the call. Pruned prototypes are never listed; near-copies (cosine above
    duplicate_cosine; above 1: none) are listed once."""
    out = predict(model, np.asarray(x, dtype=np.float32), model.prototypes.device)  # batched, eval mode
    return split_logits(out["logits"], out["sims"], model.last_layer.weight.detach().cpu().numpy(),
                        [labels[c] for c in model.prototype_class.tolist()], model.prototype_source.tolist(),
                        duplicate_groups(model, duplicate_cosine), labels, calibration, top)


def choose_cases(y: np.ndarray, probs: np.ndarray, labels, codes, called: np.ndarray,
                 not_assessable: list | None = None) -> list:
    """Per requested code: the most confident correct detection and the worst mistake (a missed positive,
    else a false alarm), by the calls the explanation itself makes (called: (N, C), calibrated and
    assessable only), ranked by probability. A code the model cannot assess (not_assessable[c], a reason)
    gets no case: a "false alarm" of a label it never calls would be a contradiction. Codes absent from the
    split are reported, not silently dropped."""
    cases, used = [], set()
    for code in codes:
        c = list(labels).index(code)
        if not_assessable is not None and not_assessable[c]:
            cases.append({"index": None, "code": code, "outcome": "not assessable", "reason": not_assessable[c]})
            continue
        pos, p, yes = y[:, c] > 0, probs[:, c], np.asarray(called[:, c], dtype=bool)
        candidates = {
            "correct": np.flatnonzero(pos & yes), "missed": np.flatnonzero(pos & ~yes),
            "false alarm": np.flatnonzero(~pos & yes)}
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
