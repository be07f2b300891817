"""Run a PyTorch model in eval mode over an array, in batches: outputs, or latent vectors."""
from __future__ import annotations

import numpy as np
import torch


def _batches(x, device, batch_size: int):
    for i in range(0, len(x), batch_size):
        yield torch.from_numpy(np.array(x[i:i + batch_size], dtype=np.float32)).to(device)


@torch.no_grad()
def predict(model, x, device, batch_size: int = 256) -> dict:
    """Eval-mode outputs over an array: probabilities, logits and (prototype model) similarities."""
    model.eval()
    logits, sims = [], []
    for xb in _batches(x, device, batch_size):
        res = model(xb)
        logits.append((res[0] if isinstance(res, tuple) else res).cpu())
        if isinstance(res, tuple):
            sims.append(res[1].cpu())
    result = {"logits": torch.cat(logits).numpy()}
    if sims:
        result["sims"] = torch.cat(sims).numpy()
    result["probs"] = 1 / (1 + np.exp(-result["logits"]))
    return result


@torch.no_grad()
def latents(model, signals, device, batch_size: int = 256) -> torch.Tensor:
    """(N, latent_dim) latent vectors of a prototype model, eval mode, in batches."""
    model.eval()
    return torch.cat([model.latent(xb).cpu() for xb in _batches(signals, device, batch_size)])
