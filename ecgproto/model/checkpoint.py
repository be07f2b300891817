"""Model files: save everything needed to rebuild and use a model, and load one safely.

A model file from outside is hostile until checked: it is read with torch.load(weights_only=True),
which unpickles only tensors, numbers, strings, lists, tuples and dicts and never runs code, and its
contents are validated (kind, architecture within config.py's bounds before anything is built, labels,
preprocessing, finite weights) before use. Every model file carries the SHA-256 digest of everything
else in it (weights and metadata, see model_digest), written when it is saved and checked when it is
loaded, so an edited or damaged file is refused; a file from before digests loads with a warning that
nothing was verified, and never where a digest is expected (--expect-sha256).
"""
from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import torch

from ecgproto.config import MAX_MODEL_FILE_BYTES, elided
from ecgproto.data.ptbxl import LABELS, N_SAMPLES
from ecgproto.deploy.preprocessing import MAX_FILTER_ORDER, usable_preprocessing
from ecgproto.errors import ModelError
from ecgproto.files.atomic import atomic_path
from ecgproto.files.paths import model_file
from ecgproto.model.network import build, config_problem
from ecgproto.trust import calibration
from ecgproto.trust import guard as quality

REQUIRED = ("kind", "config", "state_dict", "labels", "preprocessing")
DIGEST_KEY = "sha256"
HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
log = logging.getLogger(__name__)


def model_digest(state: dict) -> str:
    """SHA-256 (hex) of a model file's contents but its own digest: every key in sorted order, each value
    typed and length-prefixed, tensors by dtype, shape and their bytes. The same model gives the same digest
    on any device; TypeError for a value a model file cannot hold."""
    h = hashlib.sha256(b"ecgproto model digest 1\0")
    _feed(h, {k: v for k, v in state.items() if k != DIGEST_KEY})
    return h.hexdigest()


def _feed(h, value) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{list(value.shape)}{t.numel()}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("a mapping with keys other than strings")
        h.update(f"D{len(value)}|".encode())
        for key in sorted(value):
            _feed(h, key)
            _feed(h, value[key])
    elif isinstance(value, (list, tuple)):
        h.update(f"L{len(value)}|".encode())
        for item in value:
            _feed(h, item)
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        h.update(f"S{len(data)}|".encode() + data)
    elif value is None or isinstance(value, bool):
        h.update(f"{value}|".encode())
    elif isinstance(value, int):
        h.update(f"I{value}|".encode())  # ValueError for an integer of over 4300 digits
    elif isinstance(value, float):
        h.update(f"F{value.hex()}|".encode())
    else:
        raise TypeError(f"a {type(value).__name__}")


def save_checkpoint(path: Path, model, meta: dict, **extra) -> None:
    """Kind, architecture, weights, the label set and the preprocessing fitted in `prepare` (filter,
    scaler), plus the stage's extras (plain values only)."""
    state = {"kind": model.kind, "config": model.config(), "state_dict": model.state_dict(),
             "labels": meta["labels"], "preprocessing": {k: meta[k] for k in ("highpass_hz", "filter_order", "scaler")},
             **extra}
    state[DIGEST_KEY] = model_digest(state)  # deterministic: the same model still gives the same bytes
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
    if signals is not None and not (isinstance(signals, torch.Tensor) and signals.is_floating_point()
                                    and tuple(signals.shape) == (n_protos, 12, N_SAMPLES)
                                    and torch.isfinite(signals).all()):
        got = f"{list(signals.shape)} {signals.dtype}" if isinstance(signals, torch.Tensor) else type(signals).__name__
        problems.append(f"source_signals ({got[:80]}; expected finite numbers of shape [{n_protos}, 12, {N_SAMPLES}]: "
                        "an ECG per prototype)")
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


def check_digest(path, stored, computed: str | None, expect_sha256: str | None, what: str = "model file") -> None:
    """Refuse a file whose stored digest is not the digest of its contents (`computed`), or, with
    expect_sha256, any other file; a file without a digest (stored None, from before digests) is used with a
    warning that nothing was verified, unless a digest is expected."""
    if stored is None:
        if expect_sha256:
            raise ModelError(f"{path}: has no digest (a {what} from before digests), so it cannot be checked "
                             f"against --expect-sha256 {expect_sha256}; write it again with the current version")
        log.warning(f"{path}: WARNING: no digest (a {what} from before digests): its weights and metadata are "
                    "not verified")
        return
    if not (isinstance(stored, str) and HEX_DIGEST.fullmatch(stored)) or stored != computed:
        raise ModelError(f"{path}: digest does not match: edited or damaged (stored {elided(stored, 20)}, contents "
                         f"{(computed or 'not readable')[:16]}...); use the {what} as it was written")
    if expect_sha256 and stored != expect_sha256.lower():
        raise ModelError(f"{path}: digest {stored} is not the expected {expect_sha256.lower()} (--expect-sha256): "
                         f"another {what}, or another version of it")


def _check_size(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_MODEL_FILE_BYTES:
        raise ModelError(f"{path}: {size / 2 ** 20:,.0f} MiB, over the {MAX_MODEL_FILE_BYTES / 2 ** 20:,.0f} MiB a "
                         "model file within config.py's bounds can take; refused before reading it")


def load_checkpoint(path: Path, device="cpu", require_prototypes: bool = False, expect_sha256: str | None = None):
    """(model, checkpoint dict) from an ecgproto model file, checked before use; ModelError otherwise. In order:
    a regular file of bounded size, plain data only, the architecture within bounds (before it is built), the
    weights, labels, preprocessing and extras, then the digest (and expect_sha256, when given)."""
    path = model_file(path, "model file not found (train one with `dvc repro`; the final model is models/final.pt)")
    if path.suffix == ".onnx":
        raise ModelError(f"{path}: an ONNX model; run it with --runtime onnx (or leave --runtime at auto)")
    _check_size(path)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # UnpicklingError for a disallowed object, others for a file that is no archive
        raise ModelError(f"{path}: refused: not a plain ecgproto model file ({type(exc).__name__}; a model file "
                         "that would run code is never loaded)") from None
    if not (isinstance(state, dict) and all(k in state for k in REQUIRED) and isinstance(state["state_dict"], dict)):
        raise ModelError(f"{path}: not an ecgproto model file (expected the keys {list(REQUIRED)})")
    problem = config_problem(state["kind"], state["config"])
    if problem:
        raise ModelError(f"{path}: {problem}; refused before anything is built")
    weights = dict(state["state_dict"])
    try:
        if state["kind"] == "prototype" and "prototype_source" not in weights and "prototypes" in weights:
            # model files written before the prototype sources and the pruning mask became model state
            n = len(weights["prototypes"])
            weights["prototype_source"] = torch.tensor(state.get("prototype_source_ecg_ids", [-1] * n),
                                                       dtype=torch.long)
            weights["prototype_pruned"] = torch.tensor(state.get("prototype_pruned", [False] * n), dtype=torch.bool)
        model = build(state["kind"], state["config"]).to(device)
        model.load_state_dict(weights)
    except Exception as exc:  # wrong shapes, unknown kind, malformed config
        raise ModelError(f"{path}: the weights do not fit the architecture it describes "
                         f"({type(exc).__name__}: {str(exc)[:300]})") from None
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise ModelError(f"{path}: non-finite (NaN or infinite) weights in {bad[:3]}; the model cannot be used")
    labels = list(state["labels"]) if isinstance(state["labels"], (list, tuple)) else None
    n_out = model.last_layer.out_features if state["kind"] == "prototype" else model.head.out_features
    if labels is None or not all(isinstance(c, str) and c in LABELS for c in labels) or len(set(labels)) != n_out \
            or len(labels) != n_out:
        raise ModelError(f"{path}: trained on labels {elided(state['labels'])} with {n_out} outputs; expected distinct "
                         f"PTB-XL rhythm codes from {list(LABELS)}, one per output")
    _check_preprocessing(path, state["preprocessing"])
    if state.get("calibration") is not None:
        calibration.check(state["calibration"], n_out, str(path))
    if state["kind"] == "prototype":
        _check_extras(path, state, len(model.prototypes), n_out)
    try:
        computed = model_digest(state)
    except (TypeError, ValueError, RecursionError):  # a value no model file of ours holds
        computed = None
    check_digest(path, state.get(DIGEST_KEY), computed, expect_sha256)
    if require_prototypes and state["kind"] != "prototype":
        raise ModelError(f"{path}: a {state['kind']!r} model has no prototypes to explain with; "
                         "use a prototype model such as models/final.pt")
    return model, state
