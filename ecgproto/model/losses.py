"""ProtoECGNet's composite loss: BCE + clustering + separation + diversity + contrastive (+ L1 of the
wrong-class last-layer weights in the classifier stage). Each term is its own function so that it can
be checked by hand on a tiny example."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ecgproto.config import LossParams


def clustering(sims: torch.Tensor, labels: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """-mean over samples of the max similarity to a prototype of one of the sample's classes.

    sims (B, P), labels (B, C) multi-hot, identity (P, C). Samples with no class have no own prototype
    and are left out of the mean (0 if the batch has none)."""
    own = (labels @ identity.T) > 0  # (B, P)
    has_class = own.any(dim=1)
    if not has_class.any():
        return sims.new_zeros(())
    best = sims.masked_fill(~own, float("-inf")).max(dim=1).values
    return -best[has_class].mean()


def separation(sims: torch.Tensor, labels: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """mean over samples of the max similarity to a prototype of none of the sample's classes."""
    other = (labels @ identity.T) == 0
    usable = other.any(dim=1)
    if not usable.any():
        return sims.new_zeros(())
    best = sims.masked_fill(~other, float("-inf")).max(dim=1).values
    return best[usable].mean()


def diversity(prototypes: torch.Tensor) -> torch.Tensor:
    """|| Pn Pn^T - I ||_F^2 / P^2 with Pn the L2-normalised prototypes."""
    pn = F.normalize(prototypes, dim=-1)
    p = len(pn)
    gram = pn @ pn.T
    return ((gram - torch.eye(p, device=pn.device)) ** 2).sum() / p ** 2


def contrastive(prototypes: torch.Tensor, identity: torch.Tensor, cooccurrence: torch.Tensor) -> torch.Tensor:
    """-(sum(sim * pos_n) - sum(sim * neg_n)) / sqrt(P).

    sim: prototype-prototype cosine; pos = A L A^T with A the prototype-class identity and L the
    training-set Jaccard co-occurrence (diagonal 1); neg = 1 - pos; each mask divided by its own sum.
    Sign: as in the paper, minimising it pulls prototypes of co-occurring classes together and pushes
    the others apart (the later re-implementation's opposite sign would push co-occurring classes, e.g.
    1AVB and SR, apart, against the stated intent of the term)."""
    pn = F.normalize(prototypes, dim=-1)
    sim = pn @ pn.T
    pos = identity @ cooccurrence @ identity.T
    neg = 1.0 - pos
    pos_n = pos / pos.sum().clamp_min(1e-12)
    neg_n = neg / neg.sum().clamp_min(1e-12)
    return -((sim * pos_n).sum() - (sim * neg_n).sum()) / len(pn) ** 0.5


def wrong_class_l1(last_layer_weight: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """L1 norm of the last-layer weights (C, P) that connect a prototype to a class not its own."""
    return (last_layer_weight * (1 - identity.T)).abs().sum()


def joint_loss(logits, sims, labels, model, pos_weight, cooccurrence, w: LossParams):
    """Total loss of the joint stage and its terms (detached floats, for the training curves)."""
    identity = model.class_identity()
    terms = {
        "bce": F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight),
        "clst": clustering(sims, labels, identity),
        "sep": separation(sims, labels, identity),
        "div": diversity(model.prototype_vectors()),
        "cnrst": contrastive(model.prototype_vectors(), identity, cooccurrence),
    }
    total = (terms["bce"] + w.clst * terms["clst"] + w.sep * terms["sep"] + w.div * terms["div"]
             + w.cnrst * terms["cnrst"])
    return total, {k: float(v.detach()) for k, v in terms.items()}
