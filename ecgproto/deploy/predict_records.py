"""`ecgproto predict`: calibrated probabilities, called labels and the guard's verdict for many records,
written atomically to one CSV (a record per row)."""
from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np

from ecgproto.data.wfdb_record import records_in
from ecgproto.deploy.predictor import open_model
from ecgproto.deploy.preprocessing import read_ecg
from ecgproto.deploy.provenance import DEMO, model_note
from ecgproto.deploy.recordings import answer, has_prototype
from ecgproto.errors import RecordError
from ecgproto.files.atomic import atomic_path, check_writable, record_inputs, refuse_inputs
from ecgproto.trust.calibration import assessable


def predict_records(paths, out_path, model_path, runtime: str, expect_sha256=None) -> str:
    """Calibrated probabilities, called labels and the guard's verdict for many records of any length
    (deploy/recordings.py), written atomically to one CSV (a record per row)."""
    from tqdm import tqdm

    check_writable(Path(out_path), "--out")
    records = records_in(paths)
    refuse_inputs([out_path], [Path(model_path), *(f for r in records for f in record_inputs(r))], "--out")
    runner = open_model(Path(model_path), runtime, expect_sha256=expect_sha256)
    labels = runner.labels
    about = model_note(runner.meta.get("provenance"))
    model = about["warning"] if about["warning"] == DEMO else f"trained on {about['trained_on']}"
    if about["warning"]:
        print(f"{model_path}: {about['warning']}", file=sys.stderr)
    rows, unreadable = [], []
    for record in tqdm(records, desc="predict", unit="rec", disable=not sys.stderr.isatty()):
        try:  # one unreadable record gets its row with the reason; the others are answered
            millivolts, note = read_ecg(record)
        except RecordError as exc:
            unreadable.append([str(record), False, f"unreadable: {exc}", "", 0, model, *[np.nan] * len(labels)])
            continue
        if note:
            print(note, file=sys.stderr)
        got = answer(runner, millivolts)
        reasons = sorted({r for v in got["verdicts"] if v["reliable"] is False for r in v["reasons"]})
        called = " ".join(c for c, y in zip(labels, got["called"]) if y) if got["reliable"] is not False else ""
        rows.append([str(record), got["reliable"], "; ".join(reasons), called, len(got["starts"]), model,
                     *got["probabilities"].round(6)])
    rows += unreadable
    with atomic_path(Path(out_path)) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)  # the csv module, not pandas: the deployable install has no pandas
        writer.writerow(["record", "reliable", "reason", "called", "windows", "model", *labels])
        writer.writerows([_cell(v) for v in row] for row in rows)
    refused = sum(r[1] is False for r in rows) - len(unreadable)
    reasons = assessable(runner.meta.get("calibration"), len(labels), has_prototype(runner))
    assessed = sum(why is None for why in reasons)
    summary = (f"wrote calibrated probabilities of the {assessed} of {len(labels)} labels this model can assess for "
               f"{len(rows) - len(unreadable)} records to {out_path}; {refused} without a reliable rhythm call")
    if not assessed:
        summary += " (this model file has no calibration: every probability cell is empty, nothing is called)"
    if unreadable:  # the CSV is written; the exit code (1) says that some records could not be read
        raise RecordError(f"{summary}; {len(unreadable)} of {len(records)} records could not be read (their rows say "
                          f"why), e.g. {unreadable[0][2][len('unreadable: '):]}")
    return summary


def _cell(value):
    """A CSV cell: empty for a missing value (None, NaN), as pandas would write it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value
