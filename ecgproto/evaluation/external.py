"""What a PTB-XL-trained model is worth on other hospitals' ECGs: every record of a folder (the PhysioNet/CinC
Challenge format: WFDB headers with SNOMED-CT diagnoses on a `#Dx:` line, any rate and length; or a PTB-XL
tree), labelled through the package's SNOMED-CT -> SCP table (data/tables/snomed_rhythm.csv), answered like
`ecgproto predict` (10 s windows, mean calibrated probability over those the guard passes), scored per label
with its positives and a bootstrap interval, and a macro over the labels with at least MIN_POSITIVES.
Records that cannot be read are counted and listed, never fatal."""
from __future__ import annotations

import csv
from collections import Counter
from importlib import resources
from pathlib import Path

import numpy as np

from ecgproto.data.wfdb_record import records_in
from ecgproto.deploy.preprocessing import read_ecg
from ecgproto.deploy.recordings import answer
from ecgproto.errors import RecordError
from ecgproto.evaluation import metrics
from ecgproto.files.paths import record_file

MIN_POSITIVES = 5  # a label with fewer positives in the folder is shown, not averaged


def snomed_table() -> dict:
    """{SNOMED-CT code: (name, SCP code)} from the package's table."""
    text = resources.files("ecgproto.data").joinpath("tables", "snomed_rhythm.csv").read_text(encoding="utf-8")
    return {row["snomed"]: (row["name"], row["scp"]) for row in csv.DictReader(text.splitlines())}


def diagnoses(hea: Path) -> list:
    """The SNOMED-CT codes on a Challenge header's `#Dx:` line ([] when it has none)."""
    if not hea.is_file():  # a FIFO or folder named like a header: the reader names it later
        return []
    with open(hea, "rb") as f:
        text = f.read(1 << 20).decode("latin-1")
    for line in text.splitlines():
        text = line.lstrip("#").strip()  # "#Dx: ..." as the Challenge writes it, "# Dx: ..." as wfdb does
        if line.startswith("#") and text.startswith("Dx:"):
            return [c.strip() for c in text[3:].split(",") if c.strip()]
    return []


def labelled_records(folder: Path, labels) -> tuple:
    """(records, (N, C) label matrix, Counter of SNOMED codes the table leaves unmapped) of a Challenge folder;
    a record without a #Dx line is not a labelled record and is left out (counted by the caller)."""
    table = snomed_table()
    records, rows, unmapped, unlabelled = [], [], Counter(), []
    for record in records_in([folder]):
        codes = diagnoses(record_file(record, ".hea"))
        if not codes:
            unlabelled.append(record)
            continue
        scp = {table[c][1] for c in codes if c in table}
        unmapped.update(c for c in codes if c not in table)
        records.append(record)
        rows.append([1.0 if code in scp else 0.0 for code in labels])
    return records, np.array(rows, dtype=np.float32).reshape(-1, len(labels)), unmapped, unlabelled


def _score(y: np.ndarray, p: np.ndarray, labels, bootstrap: int, seed: int) -> dict:
    per_label = metrics.per_label_auroc(y, p)
    positives = y.sum(axis=0)
    counted = np.isfinite(per_label) & (positives >= MIN_POSITIVES)
    out = {"per_label": {c: {"auroc": None if not np.isfinite(a) else round(float(a), 4), "positives": int(n)}
                         for c, a, n in zip(labels, per_label, positives) if n > 0},
           f"macro_auroc_labels_with_{MIN_POSITIVES}_positives": None, "labels_averaged": [
               c for c, k in zip(labels, counted) if k]}
    if counted.any():
        out[f"macro_auroc_labels_with_{MIN_POSITIVES}_positives"] = round(float(np.mean(per_label[counted])), 4)
        low, high = metrics.bootstrap_interval(y[:, counted], p[:, counted], bootstrap, seed)
        out["ci95"] = [round(low, 4), round(high, 4)]
    return out


def evaluate_external(folder: Path, runners: dict, bootstrap: int, seed: int, progress=None) -> dict:
    """{records, unreadable, refused_by_guard, unmapped codes, per model: scores} for every runner (name:
    deploy.predictor.Runner) on the labelled records of `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RecordError(f"{folder}: not a folder; expected a folder of PhysioNet/CinC Challenge records")
    first = next(iter(runners.values()))
    labels = list(first.labels)
    records, y, unmapped, unlabelled = labelled_records(folder, labels)
    if not records:
        raise RecordError(f"{folder}: no record with a '#Dx:' line of SNOMED-CT codes; expected PhysioNet/CinC "
                          "Challenge headers")
    probs = {name: [] for name in runners}
    kept, unreadable, refused, by_source = [], [], 0, Counter()
    for k, record in enumerate(records):
        try:
            millivolts, _ = read_ecg(record)
        except RecordError as exc:
            unreadable.append({"record": str(record.relative_to(folder)), "reason": str(exc)})
            continue
        answers = {name: answer(runner, millivolts) for name, runner in runners.items()}
        refused += answers[next(iter(runners))]["reliable"] is False
        for name, got in answers.items():
            probs[name].append(got["scores"])
        kept.append(k)
        by_source[record.parent.name] += 1
        if progress and (k + 1) % 50 == 0:
            progress(f"{k + 1} of {len(records)} records")
    if not kept:
        raise RecordError(f"{folder}: none of its {len(records)} labelled records could be read, e.g. "
                          f"{unreadable[0]['record']}: {unreadable[0]['reason']}")
    y = y[kept]
    result = {"computed": True, "folder": str(folder), "records": len(records), "scored": len(kept),
              "records_by_folder": dict(sorted(by_source.items())), "unlabelled": len(unlabelled),
              "unreadable": unreadable, "refused_by_guard": int(refused),
              "unmapped_snomed_codes": dict(unmapped.most_common()),
              "aggregation": "mean calibrated probability over the 10 s windows the guard passes (stride 5 s)"}
    for name in runners:
        result[name] = _score(y, np.array(probs[name]).reshape(len(kept), len(labels)), labels, bootstrap, seed)
    return result
