"""`prepare`: PTB-XL tree -> filtered, scaled arrays per split, class weights, label co-occurrence."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgproto.config import PrepareParams
from ecgproto.data.filters import LeadScaler, highpass
from ecgproto.data.in_place import records_root
from ecgproto.data.ptbxl import N_SAMPLES, label_matrix, read_metadata, read_signals
from ecgproto.data.wfdb_record import LEADS
from ecgproto.errors import RecordError
from ecgproto.evaluation.metrics import evaluable
from ecgproto.files.atomic import atomic_dir, read_json, write_json

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
MIN_RECORDS = 10  # per split, for training and evaluation: fewer cannot give a meaningful AUROC
CHUNK = 1024  # records read, filtered and scaled at a time (48 MB of float32): the memory prepare needs


@dataclass
class Split:
    signals: np.ndarray  # (N, 12, 1000) float32, filtered and scaled
    labels: np.ndarray   # (N, C) float32 multi-hot
    ecg_ids: np.ndarray  # (N,) int64

    def row_of(self) -> dict:
        """ecg_id -> row index in this split."""
        return {int(e): i for i, e in enumerate(self.ecg_ids)}


def pos_weights(labels: np.ndarray, cap: float = 0) -> np.ndarray:
    """BCE pos_weight per class: negatives / positives on the training folds, at most `cap` (0: no cap;
    a class with 4 positives in 900 ECGs would otherwise weigh each of them 224 times).

    A class with no training positive gets 1.0: its positive term never occurs in training, so the
    weight has no effect, but it must stay finite for the loss and for anyone reading it.
    """
    pos = labels.sum(axis=0)
    neg = len(labels) - pos
    weights = np.where(pos > 0, neg / np.maximum(pos, 1), 1.0)
    return (np.minimum(weights, cap) if cap > 0 else weights).astype(np.float32)


def jaccard_cooccurrence(labels: np.ndarray) -> np.ndarray:
    """(C, C) Jaccard index |i and j| / |i or j| over records, diagonal 1 (0 where neither occurs)."""
    y = labels.astype(np.float64)
    both = y.T @ y
    either = y.sum(0)[:, None] + y.sum(0)[None, :] - both
    jac = np.divide(both, either, out=np.zeros_like(both), where=either > 0)
    np.fill_diagonal(jac, 1.0)
    return jac.astype(np.float32)


def _signals_array(out_dir, name: str, n: int) -> np.ndarray:
    """(n, 12, 1000) float32: an .npy file opened memory-mapped in out_dir (out of core), else in memory."""
    shape = (n, len(LEADS), N_SAMPLES)
    if out_dir is None:
        return np.empty(shape, dtype=np.float32)
    return np.lib.format.open_memmap(Path(out_dir) / f"{name}_signals.npy", mode="w+", dtype=np.float32, shape=shape)


def _read_split(root: Path, filenames: list, out: np.ndarray, params: PrepareParams, progress: bool) -> tuple:
    """Read, filter (and, below, scale) one split into `out` a chunk of records at a time; returns (kept mask,
    error messages). Skipped records leave their row to be compacted away."""
    kept, errors = np.ones(len(filenames), dtype=bool), []
    for start in range(0, len(filenames), CHUNK):
        names = filenames[start:start + CHUNK]
        block, ok, bad = read_signals(root, names, skip_bad=params.skip_bad_records, progress=False)
        rows = start + np.flatnonzero(ok)
        out[rows] = highpass(block, params.highpass_hz, params.filter_order)
        kept[start:start + len(names)] = ok
        errors += bad
        if progress:
            log.info("read %d of %d records", min(start + CHUNK, len(filenames)), len(filenames))
    return kept, errors


def _compact(out_dir, name: str, signals: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The rows of kept records only (a rare path: records skipped with prepare.skip_bad_records), copied a
    chunk at a time into a new file that then replaces the split's."""
    if kept.all():
        return signals
    if out_dir is None:
        return signals[kept]
    folder = Path(out_dir) / "compact"
    folder.mkdir(exist_ok=True)
    compact, done = _signals_array(folder, name, int(kept.sum())), 0
    for start in range(0, len(signals), CHUNK):
        block = signals[start:start + CHUNK][kept[start:start + CHUNK]]
        compact[done:done + len(block)] = block
        done += len(block)
    compact.flush()
    del compact, signals
    (folder / f"{name}_signals.npy").replace(Path(out_dir) / f"{name}_signals.npy")
    folder.rmdir()
    return np.load(Path(out_dir) / f"{name}_signals.npy", mmap_mode="r+")


def prepare(root: Path, params: PrepareParams, progress: bool = False, out_dir=None):
    """Read, label, filter, split and scale. Returns (splits dict, meta dict). With out_dir the signals of
    each split are written there as .npy files, memory-mapped, a chunk of records at a time: memory no longer
    grows with the number of ECGs (the scaler is fitted on the training split in blocks, with the same
    arithmetic as in memory, so the result is the same to the bit)."""
    root = Path(root)
    metadata = read_metadata(root)
    fold_of_split = {"train": params.train_folds, "val": params.val_folds, "test": params.test_folds}
    wanted = metadata["strat_fold"].isin(set().union(*fold_of_split.values()))
    metadata = metadata[wanted]
    folds = metadata["strat_fold"].to_numpy()
    index = {name: np.flatnonzero(np.isin(folds, f)) for name, f in fold_of_split.items()}
    for name, idx in index.items():
        if len(idx) == 0:
            raise RecordError(f"{root}: no records in the {name} split (prepare.{name}_folds = "
                              f"{list(fold_of_split[name])}); the folds present are {sorted(set(folds))}")
    filenames, records = metadata["filename_lr"].tolist(), records_root(root)  # the tree, or the folder read in place
    arrays, kept_all, skipped = {}, np.ones(len(metadata), dtype=bool), []
    for name, idx in index.items():
        signals = _signals_array(out_dir, name, len(idx))
        kept, errors = _read_split(records, [filenames[i] for i in idx], signals, params, progress)
        for message in errors:
            log.warning("skipped: %s", message)
        kept_all[idx] = kept
        arrays[name] = _compact(out_dir, name, signals, kept)
    skipped = metadata.index[~kept_all].tolist()
    metadata, folds = metadata[kept_all], folds[kept_all]
    labels = label_matrix(metadata, params.labels)
    index = {name: np.flatnonzero(np.isin(folds, f)) for name, f in fold_of_split.items()}
    scaler = (LeadScaler.fit(arrays["train"]) if params.standardize else LeadScaler.identity(len(LEADS)))
    for name, signals in arrays.items():
        for start in range(0, len(signals), CHUNK):
            block = signals[start:start + CHUNK]  # a view: scaled in place, in the file when memory-mapped
            scaler.transform(block)
            if not np.isfinite(block).all():  # read_record refuses non-finite input; this guards the arithmetic
                raise RecordError(f"{root}: non-finite values after filtering and scaling; nothing was written")
        if isinstance(signals, np.memmap):
            signals.flush()
    ecg_ids = metadata.index.to_numpy().astype(np.int64)
    splits = {name: Split(arrays[name], labels[idx], ecg_ids[idx]) for name, idx in index.items()}
    train_y = splits["train"].labels
    meta = {
        "labels": list(params.labels),
        "scaler": scaler.to_dict(),
        "highpass_hz": params.highpass_hz,
        "filter_order": params.filter_order,
        "pos_weight": pos_weights(train_y, params.pos_weight_max).tolist(),
        "cooccurrence": jaccard_cooccurrence(train_y).tolist(),
        "folds": {name: list(f) for name, f in fold_of_split.items()},
        "skipped_ecg_ids": skipped,
        "trained_on": dataset_provenance(root, splits),
    }
    return splits, meta


def dataset_provenance(root: Path, splits: dict) -> dict:
    """What a model trained on these splits was trained on: simulated or real ECGs (a synthetic tree carries
    SYNTHETIC.json), the tree's manifest (SHA256SUMS.txt) hash, and the records per split."""
    import hashlib

    synthetic = (root / "SYNTHETIC.json").is_file()
    manifest = root / "SHA256SUMS.txt"
    return {"data": "synthetic" if synthetic else "real",
            "description": "simulated ECGs (ecgproto's synthetic PTB-XL)" if synthetic else "real ECGs (PTB-XL layout)",
            "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None,
            "records": {name: int(len(split.ecg_ids)) for name, split in splits.items()}}


def check_trainable(splits: dict, meta: dict) -> None:
    """Refuse, before any training, splits too small for the stages that follow: each needs
    MIN_RECORDS records, and validation and test need a code with both a positive and a negative
    (else early stopping and the test metrics are undefined)."""
    for name, s in splits.items():
        folds = meta["folds"][name]
        if len(s.ecg_ids) < MIN_RECORDS:
            raise RecordError(f"{len(s.ecg_ids)} records in the {name} split (prepare.{name}_folds = {folds}); "
                              f"training and evaluation need at least {MIN_RECORDS}: use more data or other folds")
        if name != "train" and not evaluable(s.labels).any():
            raise RecordError(f"no code has both a positive and a negative in the {name} split "
                              f"(prepare.{name}_folds = {folds}), so no AUROC can be computed there; "
                              "use more data or other folds")


def label_counts(splits: dict, meta: dict) -> dict:
    """Small flat metrics: records per split, then positives per code in their own block per split."""
    out = {"records": {name: int(len(s.ecg_ids)) for name, s in splits.items()},
           "skipped_records": len(meta["skipped_ecg_ids"])}
    for name, s in splits.items():
        out[f"positives_{name}"] = {code: int(n) for code, n in zip(meta["labels"], s.labels.sum(0))}
    # rare codes can be absent from a split: nothing crashes, and this says where
    out["codes_without_positives"] = {name: " ".join(c for c, n in out[f"positives_{name}"].items() if n == 0)
                                      for name in splits}
    return out


def save(out_dir: Path, splits: dict, meta: dict) -> None:
    """All or nothing: the folder appears complete or not at all (in-memory splits; the stage writes the
    signals memory-mapped and calls save_small inside its own atomic folder)."""
    with atomic_dir(out_dir) as tmp:
        for name, s in splits.items():
            np.save(tmp / f"{name}_signals.npy", s.signals)
        save_small(tmp, splits, meta)


def save_small(out_dir: Path, splits: dict, meta: dict) -> None:
    """Labels, ecg_ids and meta.json beside the signals."""
    for name, s in splits.items():
        np.save(out_dir / f"{name}_labels.npy", s.labels)
        np.save(out_dir / f"{name}_ecg_ids.npy", s.ecg_ids)
    write_json(out_dir / "meta.json", meta)


def load_split(prepared_dir: Path, name: str, mmap: bool = True) -> Split:
    d = Path(prepared_dir)
    mode = "r" if mmap else None
    return Split(np.load(d / f"{name}_signals.npy", mmap_mode=mode),
                 np.load(d / f"{name}_labels.npy"), np.load(d / f"{name}_ecg_ids.npy"))


def load_meta(prepared_dir: Path) -> dict:
    return read_json(Path(prepared_dir) / "meta.json")
