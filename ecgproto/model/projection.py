"""Prototype projection: each prototype of class c becomes the latent vector of a training ECG of
class c similar to it, so that every prototype is a real ECG a clinician can look at.

The published rule takes each prototype's most similar same-class ECG. The prototypes of a class often
sit close together, so that rule maps several prototypes onto one ECG: duplicates that explain nothing
new and leave the last layer few distinct features. With `distinct_sources` the
prototypes are assigned greedily, most similar (prototype, ECG) pair first, and an ECG that already
serves as a prototype is not used again while its class has unused ones.

Pruning (`project.prune`) then takes out of the model every prototype that is not a distinct real
ECG: one whose class has no training ECG, and one whose ECG already serves an earlier prototype (an
identical feature). Its last-layer weights become 0 and stay 0 through the classifier stage: a
duplicate would otherwise count one ECG's feature several times, with the joint stage's weights, for
its class and against every other. What this measured on real ECGs: docs/experiments.md.
"""
from __future__ import annotations

import heapq

import numpy as np
import torch
import torch.nn.functional as F

from ecgproto.errors import ModelError


def assign_sources(sims: np.ndarray, candidates: list, distinct: bool) -> list:
    """Source index (into the columns of sims) per prototype, or -1 where it has no candidate.

    sims (P, N) prototype-ECG similarities; candidates[j] the column indices prototype j may take.
    Without `distinct`, each prototype takes its best candidate. With it, the best remaining pair goes
    first; a prototype whose candidates are all taken falls back to its best one (shared)."""
    # each prototype's candidates from most to least similar; ties broken by index for reproducibility
    ranked = [np.asarray(c)[np.lexsort((np.asarray(c), -sims[j, c]))] if len(c) else np.array([], int)
              for j, c in enumerate(candidates)]
    if not distinct:
        return [int(r[0]) if len(r) else -1 for r in ranked]
    sources, used, cursor = [-1] * len(ranked), set(), [0] * len(ranked)
    heap = [(-sims[j, r[0]], j) for j, r in enumerate(ranked) if len(r)]
    heapq.heapify(heap)
    while heap:
        _, j = heapq.heappop(heap)
        r = ranked[j]
        while cursor[j] < len(r) and int(r[cursor[j]]) in used:
            cursor[j] += 1
        if cursor[j] == len(r):  # every candidate already serves another prototype
            sources[j] = int(r[0])
            continue
        best = int(r[cursor[j]])
        if heap and -sims[j, best] > heap[0][0]:  # no longer the best pair left: wait for its turn
            heapq.heappush(heap, (-sims[j, best], j))
            continue
        sources[j] = best
        used.add(best)
    return sources


@torch.no_grad()
def project(model, z: torch.Tensor, labels: np.ndarray, ecg_ids: np.ndarray, label_names,
            distinct_sources: bool = False) -> list:
    """Replace model.prototypes in place and record their sources (model.prototype_source); returns one
    row per prototype.

    A prototype whose class has no training positive cannot be projected: it keeps its learned vector
    and gets source_ecg_id -1 (the table and the metrics say so)."""
    zn = F.normalize(z, dim=-1)
    sims = (F.normalize(model.prototypes.detach().cpu(), dim=-1) @ zn.T).numpy()  # (P, N)
    classes = model.prototype_class.tolist()
    members = {c: np.flatnonzero(labels[:, c] > 0) for c in set(classes)}
    sources = assign_sources(sims, [members[c] for c in classes], distinct_sources)
    rows = []
    for j, (c, best) in enumerate(zip(classes, sources)):
        row = {"prototype": j, "class": label_names[c], "source_ecg_id": -1,
               "similarity_before": None, "similarity_after": None}
        if best >= 0:
            model.prototypes[j] = z[best].to(model.prototypes.device)
            model.prototype_source[j] = int(ecg_ids[best])
            after = F.cosine_similarity(model.prototypes[j].cpu(), z[best], dim=0)
            row.update(source_ecg_id=int(ecg_ids[best]), similarity_before=round(float(sims[j, best]), 6),
                       similarity_after=round(float(after), 6))
        rows.append(row)
    return rows


def source_signals(model, split, where: str) -> np.ndarray:
    """(P, leads, samples) every prototype's source ECG from `split` (zeros where it has none, id -1).
    Raises ModelError naming `where` when a source is not in the split."""
    source_ecg_ids = model.prototype_source.tolist()
    row = split.row_of()
    missing = [int(e) for e in source_ecg_ids if e >= 0 and int(e) not in row]
    if missing:
        raise ModelError(f"{where}: source ECGs {missing[:5]} are not in the prepared training split; run "
                         "`dvc repro project` to project onto the current data")
    x = np.zeros((len(source_ecg_ids),) + split.signals.shape[1:], dtype=np.float32)
    for j, e in enumerate(source_ecg_ids):
        if e >= 0:
            x[j] = split.signals[row[int(e)]]
    return x


@torch.no_grad()
def prune(model) -> list:
    """Take out every prototype without a source ECG or whose source ECG already serves a lower-numbered
    prototype: model.prototype_pruned marks it, its last-layer weights become 0. Returns the marks."""
    seen, pruned = set(), []
    for s in model.prototype_source.tolist():
        pruned.append(s < 0 or s in seen)
        seen.add(s)
    model.prototype_pruned.copy_(torch.tensor(pruned))
    model.last_layer.weight[:, model.prototype_pruned] = 0.0
    return pruned
