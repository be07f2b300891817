"""Benchmark of `prepare` at full PTB-XL scale, beside the straightforward per-record, per-lead loop.

A synthetic PTB-XL of full size is generated once (kept in the work folder for later runs), then
`prepare` runs in a fresh process so that its peak memory is its own.
"""
from __future__ import annotations

import multiprocessing
import resource
import time
from pathlib import Path

from ecgproto.config import PrepareParams
from ecgproto.data.ptbxl import LABELS

FULL_SIZE = 21837  # records in PTB-XL v1.0.1


def _prepare_in_process(root: str, out: str, params: PrepareParams) -> dict:
    from ecgproto.data import prepare as prep

    start = time.perf_counter()
    splits, meta = prep.prepare(Path(root), params)
    prep.save(Path(out), splits, meta)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "records": sum(len(s.ecg_ids) for s in splits.values()),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def straightforward(root: Path, filenames, cutoff_hz: float = 0.5, order: int = 1):
    """The obvious way: wfdb.rdsamp per record, scipy filtfilt per lead in a Python loop."""
    import numpy as np
    import wfdb
    from scipy.signal import butter, filtfilt

    b, a = butter(order, cutoff_hz, btype="highpass", fs=100)
    out = []
    for name in filenames:
        signal, _ = wfdb.rdsamp(str(root / name))
        out.append(np.stack([filtfilt(b, a, signal[:, k]) for k in range(signal.shape[1])]).astype(np.float32))
    return np.stack(out)


def run(params: PrepareParams, realism, workdir: Path, records: int = FULL_SIZE, subset: int = 300,
        progress=print) -> dict:
    import pandas as pd

    from ecgproto.data.synth import kept_tree

    workdir = Path(workdir)
    root = kept_tree(workdir / f"ptbxl-synthetic-{records}", records, 42, realism, progress)
    progress("prepare (fresh process)")
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        ours = pool.apply(_prepare_in_process, (str(root), str(workdir / "prepared"), params))
    filenames = pd.read_csv(root / "ptbxl_database.csv")["filename_lr"].tolist()[:subset]
    progress(f"straightforward loop on {len(filenames)} records")
    start = time.perf_counter()
    straightforward(root, filenames)
    naive_seconds = time.perf_counter() - start
    ours_rate = ours["records"] / ours["seconds"]
    naive_rate = len(filenames) / naive_seconds
    return {
        "records": ours["records"], "labels": len(LABELS),
        "prepare_seconds": round(ours["seconds"], 2), "prepare_records_per_s": round(ours_rate, 1),
        "prepare_peak_rss_mb": round(ours["peak_rss_mb"], 1),
        "straightforward_records": len(filenames), "straightforward_records_per_s": round(naive_rate, 1),
        "straightforward_estimated_full_seconds": round(ours["records"] / naive_rate, 1),
        "speedup": round(ours_rate / naive_rate, 1),
        "goals": {"whole PTB-XL prepared in < 60 s": ours["seconds"] < 60,
                  "peak memory < 4 GB": ours["peak_rss_mb"] < 4096},
    }
