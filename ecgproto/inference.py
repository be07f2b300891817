"""Inference: read a WFDB record, preprocess it as `prepare` did (the fitted filter and scaler travel in
the model file), and run a model in eval mode over an array in batches."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.signal import resample_poly

from .errors import RecordError
from .filters import LeadScaler, highpass
from .ptbxl import FS, read_header, read_record


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
