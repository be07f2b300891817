"""Prototype projection: each prototype of class c becomes the latent vector of the training ECG of
class c that is most similar to it, so that every prototype is a real ECG a clinician can look at."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


@torch.no_grad()
def latents(model, signals, device, batch_size: int = 256) -> torch.Tensor:
    model.eval()
    parts = [model.latent(torch.from_numpy(np.array(signals[i:i + batch_size])).to(device)).cpu()
             for i in range(0, len(signals), batch_size)]
    return torch.cat(parts)


@torch.no_grad()
def project(model, z: torch.Tensor, labels: np.ndarray, ecg_ids: np.ndarray, label_names) -> list:
    """Replace model.prototypes in place; returns one row per prototype.

    A prototype whose class has no training positive cannot be projected: it keeps its learned vector
    and gets source_ecg_id -1 (the table and the metrics say so)."""
    zn = F.normalize(z, dim=-1)
    sims = F.normalize(model.prototypes.detach().cpu(), dim=-1) @ zn.T  # (P, N)
    rows = []
    for j, c in enumerate(model.prototype_class.tolist()):
        members = np.flatnonzero(labels[:, c] > 0)
        row = {"prototype": j, "class": label_names[c], "source_ecg_id": -1,
               "similarity_before": None, "similarity_after": None}
        if len(members):
            best = int(members[int(torch.argmax(sims[j, members]))])
            model.prototypes[j] = z[best].to(model.prototypes.device)
            after = F.cosine_similarity(model.prototypes[j].cpu(), z[best], dim=0)
            row.update(source_ecg_id=int(ecg_ids[best]), similarity_before=round(float(sims[j, best]), 6),
                       similarity_after=round(float(after), 6))
        rows.append(row)
    return rows
