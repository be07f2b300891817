"""Model files: save everything needed to rebuild and use a model, and load one safely.

A model file from outside is hostile until checked: it is read with torch.load(weights_only=True),
which unpickles only tensors, numbers, strings, lists, tuples and dicts and never runs code, and its
contents are validated (kind, architecture, labels, preprocessing, finite weights) before use.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ecgproto.data.ptbxl import LABELS
from ecgproto.deploy.preprocessing import MAX_FILTER_ORDER, usable_preprocessing
from ecgproto.errors import ModelError
from ecgproto.files.atomic import atomic_path
from ecgproto.model.network import build
from ecgproto.trust import calibration
from ecgproto.trust import guard as quality

REQUIRED = ("kind", "config", "state_dict", "labels", "preprocessing")


def save_checkpoint(path: Path, model, meta: dict, **extra) -> None:
    """Kind, architecture, weights, the label set and the preprocessing fitted in `prepare` (filter,
    scaler), plus the stage's extras (plain values only)."""
    state = {"kind": model.kind, "config": model.config(), "state_dict": model.state_dict(),
             "labels": meta["labels"], "preprocessing": {k: meta[k] for k in ("highpass_hz", "filter_order", "scaler")},
             **extra}
    # through a file object: given a path, torch.save names the archive after the (random) temporary
    # file, so the same model would get different bytes and DVC would rerun what follows it
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(state, f)


def _check_preprocessing(path, prep) -> None:
    if not usable_preprocessing(prep):
        raise ModelError(f"{path}: preprocessing {str(prep)[:200]} is not usable; expected 0 < highpass_hz < 50, an "
                         f"integer filter_order 1-{MAX_FILTER_ORDER} and a 12-lead scaler (finite mean, positive "
                         "finite std)")


def _check_extras(path, state: dict, n_protos: int, n_labels: int) -> None:
    """The final model's guard, familiarity, source ECGs and co-occurrence, when present: the right types,
    shapes and finite numbers (anything else is refused by name, never used)."""
    problems = quality.malformed(state.get("guard"), state.get("familiarity"), state.get("cooccurrence"), n_labels)
    signals = state.get("source_signals")
    if signals is not None and not (isinstance(signals, torch.Tensor) and signals.dim() == 3
                                    and signals.shape[:2] == (n_protos, 12) and torch.isfinite(signals).all()):
        problems.append("source_signals")
    codes = state.get("source_codes")
    if codes is not None and not (isinstance(codes, list) and len(codes) == n_protos
                                  and all(isinstance(c, str) for c in codes)):
        problems.append("source_codes")
    settings = state.get("explain")
    if settings is not None and not (isinstance(settings, dict) and set(settings) == {"duplicate_cosine"}
                                     and isinstance(settings["duplicate_cosine"], (int, float))
                                     and 0 < settings["duplicate_cosine"] <= 1.1):
        problems.append("explain")
    if problems:
        raise ModelError(f"{path}: malformed {', '.join(problems)} (wrong type, shape or non-finite values); "
                         "retrain with `dvc repro` or use another model file")


def load_checkpoint(path: Path, device="cpu", require_prototypes: bool = False):
    """(model, checkpoint dict) from an ecgproto model file, checked before use; ModelError otherwise."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path}: is a folder; expected a model file (e.g. models/final.pt or models/final.onnx)")
    if path.exists() and not path.is_file():
        raise ModelError(f"{path}: not a regular file (a FIFO, device or socket); expected a model file")
    if not path.is_file():
        raise ModelError(f"{path}: model file not found (train one with `dvc repro`; the final model is "
                         "models/final.pt)")
    if path.suffix == ".onnx":
        raise ModelError(f"{path}: an ONNX model; run it with --runtime onnx (or leave --runtime at auto)")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # UnpicklingError for a disallowed object, others for a file that is no archive
        raise ModelError(f"{path}: refused: not a plain ecgproto model file ({type(exc).__name__}; a model file "
                         "that would run code is never loaded)") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED) or not isinstance(state["state_dict"], dict):
        raise ModelError(f"{path}: not an ecgproto model file (expected the keys {list(REQUIRED)})")
    weights = dict(state["state_dict"])
    if state["kind"] == "prototype" and "prototype_source" not in weights and "prototypes" in weights:
        # model files written before the prototype sources and the pruning mask became model state
        n = len(weights["prototypes"])
        weights["prototype_source"] = torch.tensor(state.get("prototype_source_ecg_ids", [-1] * n), dtype=torch.long)
        weights["prototype_pruned"] = torch.tensor(state.get("prototype_pruned", [False] * n), dtype=torch.bool)
    try:
        model = build(state["kind"], state["config"]).to(device)
        model.load_state_dict(weights)
    except Exception as exc:  # wrong shapes, unknown kind, malformed config
        raise ModelError(f"{path}: the weights do not fit the architecture it describes "
                         f"({type(exc).__name__}: {str(exc)[:300]})") from None
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise ModelError(f"{path}: non-finite (NaN or infinite) weights in {bad[:3]}; the model cannot be used")
    labels = list(state["labels"])
    n_out = model.last_layer.out_features if state["kind"] == "prototype" else model.head.out_features
    unknown = [c for c in labels if c not in LABELS]
    if unknown or len(labels) != n_out or len(set(labels)) != len(labels):
        raise ModelError(f"{path}: trained on labels {labels} with {n_out} outputs; expected distinct "
                         f"PTB-XL rhythm codes from {list(LABELS)}, one per output")
    _check_preprocessing(path, state["preprocessing"])
    if state.get("calibration") is not None:
        calibration.check(state["calibration"], n_out, str(path))
    if state["kind"] == "prototype":
        _check_extras(path, state, len(model.prototypes), n_out)
    if require_prototypes and state["kind"] != "prototype":
        raise ModelError(f"{path}: a {state['kind']!r} model has no prototypes to explain with; "
                         "use a prototype model such as models/final.pt")
    return model, state
