"""`ecgproto predict`: calibrated probabilities, called labels and the guard's verdict for many records,
written atomically to one CSV (a record per row)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ecgproto.data.wfdb_record import records_in
from ecgproto.deploy.predictor import open_model
from ecgproto.deploy.preprocessing import preprocess, read_ecg
from ecgproto.errors import RecordError
from ecgproto.files.atomic import atomic_path, check_writable, record_inputs, refuse_inputs
from ecgproto.trust.calibration import apply, assessable, calls
from ecgproto.trust.guard import best_similarity, verdict


def predict_records(paths, out_path, model_path, runtime: str, batch_size: int, expect_sha256=None) -> str:
    """Calibrated probabilities, called labels and the guard's verdict for many records, written
    atomically to one CSV (a record per row)."""
    import pandas as pd  # here: `explain` must not pay for importing pandas
    from tqdm import tqdm

    check_writable(Path(out_path), "--out")
    records = records_in(paths)
    refuse_inputs([out_path], [Path(model_path), *(f for r in records for f in record_inputs(r))], "--out")
    runner = open_model(Path(model_path), runtime, expect_sha256=expect_sha256)
    meta, labels = runner.meta, runner.labels
    calibration = meta.get("calibration")
    has_prototype = None
    if runner.explainable:
        has_prototype = [any(g >= 0 and meta["prototype_class"][j] == c for j, g in enumerate(meta["groups"]))
                         for c in labels]
    assessable_mask = np.array([why is None for why in assessable(calibration, len(labels), has_prototype)])
    rows, unreadable = [], []
    with tqdm(total=len(records), desc="predict", unit="rec", disable=not sys.stderr.isatty()) as bar:
        for start in range(0, len(records), batch_size):
            chunk, read = [], []
            for record in records[start:start + batch_size]:
                try:  # one unreadable record gets its row with the reason; the others are answered
                    signal, note = read_ecg(record)
                except RecordError as exc:
                    unreadable.append([str(record), False, f"unreadable: {exc}", "", *[np.nan] * len(labels)])
                    continue
                if note:
                    print(note, file=sys.stderr)
                chunk.append(record)
                read.append(signal)
            bar.update(batch_size if start + batch_size <= len(records) else len(records) - start)
            if not chunk:
                continue
            millivolts = np.stack(read)
            out = runner.outputs(preprocess(millivolts, meta["preprocessing"]))
            probs = apply(out["logits"], calibration)
            called_labels = calls(probs, calibration, has_prototype)
            probs = np.where(assessable_mask[None, :], probs.round(6), np.nan)  # no probability it cannot assess
            best = best_similarity(out["sims"], runner.active()) if runner.explainable else np.full(len(chunk), np.nan)
            for r, mv, b, p, yes in zip(chunk, millivolts, best, probs, called_labels):
                v = verdict(mv, float(b), meta.get("guard"), meta.get("familiarity"))
                called = " ".join(c for c, y in zip(labels, yes) if y) if v["reliable"] is not False else ""
                rows.append([str(r), v["reliable"], "; ".join(v["reasons"]), called, *p])
    rows += unreadable
    with atomic_path(Path(out_path)) as tmp:
        pd.DataFrame(rows, columns=["record", "reliable", "reason", "called", *labels]).to_csv(tmp, index=False)
    refused = sum(r[1] is False for r in rows) - len(unreadable)
    summary = (f"wrote calibrated probabilities of {len(labels)} labels for {len(rows) - len(unreadable)} records to "
               f"{out_path}; {refused} without a reliable rhythm call")
    if unreadable:  # the CSV is written; the exit code (1) says that some records could not be read
        raise RecordError(f"{summary}; {len(unreadable)} of {len(records)} records could not be read (their rows say "
                          f"why), e.g. {unreadable[0][2][len('unreadable: '):]}")
    return summary
