"""Figures that say whether the prototypes can be trusted as explanations: how distinct they are, how
many real ECGs they stand for, how pure their neighbourhoods are, how well they separate the classes."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


@torch.no_grad()
def interpretability(model, z_train: torch.Tensor, y_train: np.ndarray, labels, k: int = 10) -> dict:
    """Figures that say whether the prototypes can be trusted as explanations (docs/method.md), over the
    prototypes the model uses (pruned ones left out)."""
    sources = model.prototype_source.tolist()
    kept = ~model.prototype_pruned.cpu().numpy()
    protos = F.normalize(model.prototypes.detach().cpu(), dim=-1)[torch.from_numpy(kept)]
    classes = model.prototype_class.cpu().numpy()[kept]
    sources = [s for s, keep in zip(sources, kept) if keep]
    n_protos = len(protos)
    cos = (protos @ protos.T).numpy()
    off_diagonal = ~np.eye(n_protos, dtype=bool)
    same_class = (classes[:, None] == classes[None, :]) & off_diagonal
    projected = [s for s in sources if s >= 0]
    zn = F.normalize(z_train, dim=-1)
    sims = (zn @ protos.T).numpy()  # (N, P)
    # class purity: share of each prototype's k nearest training ECGs that carry its class
    k = min(k, len(zn))
    nearest = np.argsort(-sims, axis=0, kind="stable")[:k]  # (k, P)
    purity = y_train[nearest, classes[None, :]].mean(axis=0)  # (P,)
    # a class without training positives has nothing to be pure about: None, and left out of the mean
    purity_by_class = {labels[c]: (round(float(purity[classes == c].mean()), 4) if y_train[:, c].any() else None)
                       for c in np.unique(classes)}
    scored = [v for v in purity_by_class.values() if v is not None]
    # separation: similarity of each labelled training ECG to its nearest wrong-class prototype
    own = (y_train[:, classes] > 0)  # (N, P)
    labelled = own.any(axis=1)
    wrong = np.where(own, -np.inf, sims).max(axis=1)[labelled]
    right = np.where(own, sims, -np.inf).max(axis=1)[labelled]
    return {
        "prototypes": n_protos,
        "pruned": int((~kept).sum()),
        "mean_pairwise_cosine": round(float(cos[off_diagonal].mean()), 4),
        "mean_within_class_cosine": round(float(cos[same_class].mean()), 4) if same_class.any() else None,
        "projected": len(projected),
        "distinct_source_ecgs": len(set(projected)),
        "prototypes_sharing_a_source_ecg": len(projected) - len(set(projected)),
        f"class_purity_top{k}": round(float(np.mean(scored)), 4) if scored else None,
        f"class_purity_top{k}_by_class": purity_by_class,
        "mean_similarity_nearest_wrong_class_prototype": round(float(wrong.mean()), 4),
        "mean_similarity_nearest_own_class_prototype": round(float(right.mean()), 4),
    }


def evidence_shares(sims: np.ndarray, weight: np.ndarray, prototype_class: np.ndarray, active: np.ndarray,
                    near_zero: float = 0.05) -> dict:
    """How much of each logit its own class's prototypes carry ("this looks like that").

    sims (N, P) similarities of N ECGs; weight (C, P) the last layer. own_class_share: per ECG and label,
    |contributions of the label's own prototypes| / |all contributions|, averaged; wrong-class weights
    near zero: the share of wrong-class connections of the prototypes in use with |w| < near_zero."""
    own = prototype_class[None, :] == np.arange(weight.shape[0])[:, None]  # (C, P)
    w = np.where(active[None, :], weight, 0.0)
    contributions = np.abs(sims[:, None, :] * w[None])  # (N, C, P)
    total = contributions.sum(axis=-1)
    share = np.divide((contributions * own[None]).sum(axis=-1), total, out=np.ones_like(total), where=total > 0)
    wrong = ~own & active[None, :]
    return {"own_class_share_of_evidence": round(float(share.mean()), 4),
            "own_class_share_min_by_label": round(float(share.mean(axis=0).min()), 4),
            f"wrong_class_weights_below_{near_zero}": round(float((np.abs(weight[wrong]) < near_zero).mean()), 4),
            "mean_wrong_class_weight": round(float(weight[wrong].mean()), 4)}


def figure_sample(n: int, most: int, seed: int) -> np.ndarray:
    """The test ECGs the per-ECG figures are computed on: all n, or (most > 0 and n > most) a seeded random
    sample of `most`, sorted."""
    if most == 0 or n <= most:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=most, replace=False))


def window_check_on(outputs, x: np.ndarray, weight: np.ndarray, seed: int) -> dict:
    """Is "where it matched" faithful? For each ECG x (N, 12, T), its leading prototype (largest positive
    contribution to its highest logit): the similarity drop when its best 1 s window is blanked, against a
    random 1 s window (occlusion.window_check). ECGs whose highest logit has no evidence for are left out."""
    from ecgproto.trust.occlusion import window_check, window_drops

    out = outputs(x)
    top = out["logits"].argmax(axis=1)
    contributions = out["sims"] * weight[top]
    keep = np.flatnonzero(contributions.max(axis=1) > 0)
    if not len(keep):
        return {"window_check_ecgs": 0}
    leading = contributions[keep].argmax(axis=1)
    drops = np.stack([window_drops(outputs, x[n:n + 1])[:, j] for n, j in zip(keep, leading)])
    return window_check(drops, np.random.default_rng(seed))
