"""The deployed model: an ONNX file (export.py) run by onnxruntime, with no PyTorch import.

The file is checked before use: its metadata must be ecgproto's, with finite numbers of the right
shapes. A deployment needs the .onnx file and numpy, onnxruntime and this package (scipy for 500 Hz records).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .calibration import check as check_calibration
from .errors import ModelError
from .preprocessing import usable_preprocessing
from .quality import malformed

FORMAT = "ecgproto-onnx-1"


class DeployedModel:
    """predict(x) -> {'logits', 'sims', 'local', 'probs'} on preprocessed ECGs (N, 12, T)."""

    def __init__(self, path: Path, threads: int = 1):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise ModelError(f"{path}: ONNX model file not found (write one with `ecgproto export`)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            raw = self.session.get_modelmeta().custom_metadata_map.get("ecgproto")
        except Exception as exc:  # onnxruntime raises its own types for a file that is not a model
            raise ModelError(f"{path}: not a usable ONNX model ({type(exc).__name__}: {str(exc)[:200]})") from None
        self.meta = _checked(raw, path)
        self.labels = self.meta["labels"]
        self.weight = np.asarray(self.meta["last_layer_weight"], dtype=np.float64)
        self.active = np.asarray([g >= 0 for g in self.meta["groups"]])

    def predict(self, x: np.ndarray, batch_size: int = 256) -> dict:
        parts = [self.session.run(None, {"ecg": np.ascontiguousarray(x[i:i + batch_size], dtype=np.float32)})
                 for i in range(0, len(x), batch_size)]
        logits, sims, local = (np.concatenate([p[k] for p in parts]) for k in range(3))
        return {"logits": logits, "sims": sims, "local": local, "probs": 1 / (1 + np.exp(-logits))}


def _checked(raw, path) -> dict:
    try:
        meta = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"{path}: not an ecgproto ONNX model (no '{FORMAT}' metadata)")
    try:
        labels, weight = meta["labels"], np.asarray(meta["last_layer_weight"], dtype=np.float64)
        n_protos = len(meta["prototype_class"])
        ok = (weight.shape == (len(labels), n_protos) and np.isfinite(weight).all()
              and len(meta["prototype_source"]) == len(meta["groups"]) == n_protos
              and all(math.isfinite(float(v)) for v in meta["preprocessing"]["scaler"]["std"]))
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise ModelError(f"{path}: ecgproto metadata with missing, mis-shaped or non-finite values")
    if meta.get("calibration") is not None:
        check_calibration(meta["calibration"], len(labels), str(path))
    problems = malformed(meta.get("guard"), meta.get("familiarity"), meta.get("cooccurrence"), len(labels))
    if problems or not usable_preprocessing(meta["preprocessing"]):
        raise ModelError(f"{path}: malformed {', '.join(problems) or 'preprocessing'} in the ecgproto metadata")
    return meta
