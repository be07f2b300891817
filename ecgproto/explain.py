"""Case-based explanations: which prototypes drove each label, by how much, and where they match.

The last layer has no bias, so a label's logit is exactly the sum over prototypes of
similarity x weight: every explanation below is that decomposition, not an approximation.
"""
from __future__ import annotations

import numpy as np
import torch

from .inference import predict


@torch.no_grad()
def explain(model, x, labels, top: int | None = 3) -> list:
    """For each ECG of x (N, 12, T): one entry per label with probability, logit and the prototypes
    with the largest contributions (similarity x last-layer weight); top=None lists all of them,
    whose contributions then sum to the logit. Pruned prototypes (weight 0) are never listed."""
    out = predict(model, np.asarray(x, dtype=np.float32), model.prototypes.device)  # batched, eval mode
    logits, sims = out["logits"], out["sims"]
    weight = model.last_layer.weight.detach().cpu().numpy()
    contributions = sims[:, None, :] * weight[None]  # (N, C, P)
    proto_class = [labels[c] for c in model.prototype_class.tolist()]
    sources = model.prototype_source.tolist()
    kept = np.flatnonzero(~model.prototype_pruned.cpu().numpy())
    out = []
    for n in range(len(logits)):
        entries = []
        for c, label in enumerate(labels):
            order = kept[np.argsort(-contributions[n, c, kept], kind="stable")][:top]
            entries.append({
                "label": label, "probability": float(1 / (1 + np.exp(-logits[n, c]))), "logit": float(logits[n, c]),
                "prototypes": [{"index": int(j), "class": proto_class[j], "similarity": float(sims[n, j]),
                                "weight": float(weight[c, j]), "contribution": float(contributions[n, c, j]),
                                "source_ecg_id": int(sources[j])} for j in order]})
        out.append(entries)
    return out


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


def choose_cases(y: np.ndarray, probs: np.ndarray, labels, codes, threshold: float) -> list:
    """Per requested code: the most confident correct detection and the worst mistake (a missed
    positive, else a false alarm). Codes absent from the split are reported, not silently dropped."""
    cases, used = [], set()
    for code in codes:
        c = list(labels).index(code)
        pos, p = y[:, c] > 0, probs[:, c]
        candidates = {
            "correct": np.flatnonzero(pos & (p >= threshold)), "missed": np.flatnonzero(pos & (p < threshold)),
            "false alarm": np.flatnonzero(~pos & (p >= threshold))}
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
