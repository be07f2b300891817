"""Case-based explanations: which prototypes drove each label, by how much, and where they match.

The last layer has no bias, so a label's logit is exactly the sum over prototypes of
similarity x weight: every explanation below is that decomposition, not an approximation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import resample_poly

from .errors import RecordError
from .ptbxl import FS, read_header, read_record
from .signal import LeadScaler, highpass
from .train import predict


def read_ecg(path) -> tuple:
    """A WFDB record (path without extension) as ((12, 1000) millivolts at 100 Hz, note or None).

    100 Hz records are read as they are; 500 Hz records (PTB-XL's records500) are resampled to 100 Hz
    with a polyphase anti-aliasing filter, and the note says so. Any other rate is refused."""
    base = Path(path)
    if base.suffix in (".hea", ".dat"):
        base = base.with_suffix("")
    hdr = read_header(base.with_suffix(".hea"))
    if hdr.fs == 5 * FS:
        millivolts = resample_poly(read_record(base, fs=5 * FS), 1, 5, axis=-1).astype(np.float32)
        return millivolts, f"{base}: resampled from 500 Hz to {FS} Hz"
    if hdr.fs != FS:
        raise RecordError(f"{base}: sampled at {hdr.fs:g} Hz; expected {FS} Hz (500 Hz records are resampled)")
    return read_record(base), None


def preprocess(millivolts: np.ndarray, preprocessing: dict) -> np.ndarray:
    """(N, 12, T) or (12, T) millivolts -> the model's input: the filter and scaler fitted in `prepare`
    (they travel inside the model file)."""
    x = np.asarray(millivolts, dtype=np.float32)
    x = x[None] if x.ndim == 2 else x
    x = highpass(x, preprocessing["highpass_hz"], preprocessing["filter_order"])
    return LeadScaler.from_dict(preprocessing["scaler"]).transform(x)


def to_millivolts(prepared: np.ndarray, preprocessing: dict) -> np.ndarray:
    """Undo the scaler (not the filter) so that prepared signals can be drawn in millivolts."""
    scaler = LeadScaler.from_dict(preprocessing["scaler"])
    return np.asarray(prepared) * scaler.std[:, None] + scaler.mean[:, None]


@torch.no_grad()
def explain(model, x, labels, sources=None, top: int | None = 3, pruned=None) -> list:
    """For each ECG of x (N, 12, T): one entry per label with probability, logit and the prototypes
    with the largest contributions (similarity x last-layer weight); top=None lists all of them,
    whose contributions then sum to the logit. Pruned prototypes (weight 0) are never listed."""
    out = predict(model, np.asarray(x, dtype=np.float32), model.prototypes.device)  # batched, eval mode
    logits, sims = out["logits"], out["sims"]
    weight = model.last_layer.weight.detach().cpu().numpy()
    contributions = sims[:, None, :] * weight[None]  # (N, C, P)
    proto_class = [labels[c] for c in model.prototype_class.tolist()]
    sources = list(sources) if sources is not None else [-1] * len(proto_class)
    kept = np.flatnonzero(~np.asarray(pruned, dtype=bool)) if pruned is not None else np.arange(len(proto_class))
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


@torch.no_grad()
def interpretability(model, z_train: torch.Tensor, y_train: np.ndarray, sources, labels, k: int = 10,
                     pruned=None) -> dict:
    """Figures that say whether the prototypes can be trusted as explanations (see README), over the
    prototypes the model uses (pruned ones left out)."""
    kept = ~np.asarray(pruned, dtype=bool) if pruned is not None else np.ones(len(sources), dtype=bool)
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
