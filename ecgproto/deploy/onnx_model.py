"""The deployed model: an ONNX file (export.py) run by onnxruntime, with no PyTorch import.

The file is checked before use: its size, then its metadata must be ecgproto's, with finite numbers of
the right shapes, then its digest: the SHA-256 of the file as written, its own digest entry zeroed
(`ecgproto export` prints it), so any edit to the graph, the weights or the metadata is refused. A file
exported before digests loads with a warning that nothing was verified. A deployment needs the .onnx
file and numpy, onnxruntime and this package (scipy only for 500 Hz records or a filter order other
than 1).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import math
from pathlib import Path

import numpy as np

from ecgproto.data.ptbxl import LABELS, N_SAMPLES
from ecgproto.deploy.preprocessing import usable_preprocessing
from ecgproto.errors import ModelError
from ecgproto.files.atomic import loads_strict
from ecgproto.files.paths import model_file
from ecgproto.trust.calibration import check as check_calibration
from ecgproto.trust.guard import malformed

FORMAT = "ecgproto-onnx-1"
DIGEST_PROP = "ecgproto_sha256"  # beside the "ecgproto" metadata
UNSEALED = "0" * 64


def _digest_entry(hexdigest: str) -> bytes:
    """The digest's metadata entry as ONNX's protobuf serialises it: key (field 1), then the 64-character value."""
    key = DIGEST_PROP.encode()
    return b"\x0a" + bytes([len(key)]) + key + b"\x12\x40" + hexdigest.encode("ascii")


def file_digest(data: bytes, stored: str) -> str | None:
    """SHA-256 (hex) of a serialised model whose digest entry holds `stored`, with that entry zeroed; None
    unless the entry occurs exactly once."""
    entry = _digest_entry(stored)
    if data.count(entry) != 1:
        return None
    return hashlib.sha256(data.replace(entry, _digest_entry(UNSEALED))).hexdigest()


def seal(data: bytes) -> tuple:
    """(bytes, digest): a serialised model written with DIGEST_PROP = UNSEALED, its digest written in."""
    digest = file_digest(data, UNSEALED)
    if digest is None:
        raise ValueError(f"the serialised model does not hold one {DIGEST_PROP} entry to seal")
    return data.replace(_digest_entry(UNSEALED), _digest_entry(digest)), digest


class DeployedModel:
    """predict(x) -> {'logits', 'sims', 'local', 'probs'} on preprocessed ECGs (N, 12, T)."""

    def __init__(self, path: Path, threads: int = 1, expect_sha256: str | None = None):
        import onnxruntime as ort

        from ecgproto.config import MAX_MODEL_FILE_BYTES

        path = model_file(path, "ONNX model file not found (write one with `ecgproto export`)")
        if path.stat().st_size > MAX_MODEL_FILE_BYTES:
            raise ModelError(f"{path}: {path.stat().st_size / 2 ** 20:,.0f} MiB, over the "
                             f"{MAX_MODEL_FILE_BYTES / 2 ** 20:,.0f} MiB a model file within config.py's bounds can "
                             "take; refused before reading it")
        data = path.read_bytes()  # one read: the bytes checked are the bytes run
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            props = self.session.get_modelmeta().custom_metadata_map
            raw, stored = props.get("ecgproto"), props.get(DIGEST_PROP)
        except Exception as exc:  # onnxruntime raises its own types for a file that is not a model
            raise ModelError(f"{path}: not a usable ONNX model ({type(exc).__name__}: {str(exc)[:200]})") from None
        self.meta = _checked(raw, path)
        self.weight = np.asarray(self.meta["last_layer_weight"], dtype=np.float64)
        self.source_ecgs, self.source_codes = _sources(self.meta, path)
        self._check_graph(path)
        self.sha256 = _check_digest(path, data, stored, expect_sha256)

    def _check_graph(self, path) -> None:
        """The graph must be the one the metadata describes: input `ecg`, our three outputs, C and P."""
        n_labels, n_protos = self.weight.shape
        try:
            names = [o.name for o in self.session.get_outputs()]
            out = self.session.run(None, {"ecg": np.zeros((1, 12, 1000), np.float32)})
            ok = (names == ["logits", "similarities", "local_similarities"] and out[0].shape == (1, n_labels)
                  and out[1].shape == (1, n_protos) and out[2].ndim == 3 and out[2].shape[:2] == (1, n_protos))
        except Exception:  # onnxruntime's own errors for a graph with other inputs
            ok = False
        if not ok:
            raise ModelError(f"{path}: the ONNX graph does not match its ecgproto metadata (expected input 'ecg' "
                             f"and outputs logits ({n_labels}), similarities and local_similarities ({n_protos}))")

    def predict(self, x: np.ndarray, batch_size: int = 256) -> dict:
        return batched_outputs(lambda batch: self.session.run(None, {"ecg": batch}), x, batch_size)


def _check_digest(path, data: bytes, stored, expect_sha256: str | None) -> str | None:
    """The file's digest, refused unless it is the digest of the file as written (and expect_sha256, when
    given); a file exported before digests (none stored) is used with a warning, unless a digest is expected."""
    import logging

    if stored is None:
        if expect_sha256:
            raise ModelError(f"{path}: has no digest (exported before digests), so it cannot be checked against "
                             f"--expect-sha256 {expect_sha256}; export it again with `ecgproto export`")
        logging.getLogger(__name__).warning(f"{path}: WARNING: no digest (exported before digests): its weights "
                                            "and metadata are not verified")
        return None
    ok = len(stored) == 64 and all(c in "0123456789abcdef" for c in stored)
    computed = file_digest(data, stored) if ok else None
    if computed != stored:
        raise ModelError(f"{path}: digest does not match: edited or damaged (stored {stored[:16]!r}, contents "
                         f"{(computed or 'not readable')[:16]}...); use the file as `ecgproto export` wrote it")
    if expect_sha256 and stored != expect_sha256.lower():
        raise ModelError(f"{path}: digest {stored} is not the expected {expect_sha256.lower()} (--expect-sha256): "
                         "another model, or another version of it")
    return stored


def batched_outputs(run, x: np.ndarray, batch_size: int = 256) -> dict:
    """{'logits', 'sims', 'local', 'probs'} over x in batches; run(float32 batch) -> (logits, sims, local).
    One loop for both runtimes (the ONNX session here, the same graph in PyTorch in runner.py)."""
    parts = [run(np.ascontiguousarray(x[i:i + batch_size], dtype=np.float32)) for i in range(0, len(x), batch_size)]
    logits, sims, local = (np.concatenate([p[k] for p in parts]) for k in range(3))
    return {"logits": logits, "sims": sims, "local": local, "probs": 1 / (1 + np.exp(-logits))}


def _sources(meta: dict, path):
    """(P, 12, T) source ECGs and their codes from the metadata, or (None, None) when it has none."""
    stored = meta.get("source_signals")
    if stored is None:
        return None, None
    n_protos = len(meta["prototype_class"])
    shape = [n_protos, 12, N_SAMPLES]  # an ECG per prototype, as prepared
    try:
        text, codes = stored["float16_base64"], meta["source_codes"]
        # the shape and the length of the text before anything is decoded: a claim of a huge array is refused
        ok = (stored["shape"] == shape and all(type(v) is int for v in stored["shape"]) and isinstance(text, str)
              and len(text) == 4 * math.ceil(n_protos * 12 * N_SAMPLES * 2 / 3))
        if ok:
            array = np.frombuffer(base64.b64decode(text, validate=True), dtype=np.float16)
            array = array.reshape(shape).astype(np.float32)
            ok = (np.isfinite(array).all() and isinstance(codes, list) and len(codes) == n_protos
                  and all(isinstance(c, str) for c in codes))
    except (KeyError, TypeError, ValueError, binascii.Error):
        ok = False
    if not ok:
        raise ModelError(f"{path}: malformed source ECGs in the ecgproto metadata (expected float16 of shape {shape}, "
                         "base64, and a code text per prototype)")
    return array, codes


def _checked(raw, path) -> dict:
    try:
        meta = loads_strict(raw) if raw else None
    except ValueError as exc:
        if "appears twice" in str(exc):
            raise ModelError(f"{path}: the ecgproto metadata is ambiguous: {exc}") from None
        meta = None  # not JSON, an integer of thousands of digits
    except RecursionError:  # nested too deep
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"{path}: not an ecgproto ONNX model (no '{FORMAT}' metadata)")
    try:
        labels, weight = meta["labels"], np.asarray(meta["last_layer_weight"], dtype=np.float64)
        n_protos = len(meta["prototype_class"])
        integer = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
        ok = (weight.shape == (len(labels), n_protos) and np.isfinite(weight).all()
              and len(labels) == len(set(labels)) and all(c in LABELS for c in labels)
              and all(c in labels for c in meta["prototype_class"])
              and len(meta["prototype_source"]) == len(meta["groups"]) == n_protos
              and all(integer(s) and -1 <= s < 2 ** 31 for s in meta["prototype_source"])
              and all(integer(g) and -1 <= g < n_protos for g in meta["groups"]))
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise ModelError(f"{path}: ecgproto metadata with missing, mis-shaped or non-finite values")
    if meta.get("calibration") is not None:
        check_calibration(meta["calibration"], len(labels), str(path))
    problems = malformed(meta.get("guard"), meta.get("familiarity"), meta.get("cooccurrence"), len(labels))
    if problems or not usable_preprocessing(meta.get("preprocessing")):
        raise ModelError(f"{path}: malformed {', '.join(problems) or 'preprocessing'} in the ecgproto metadata")
    return meta
