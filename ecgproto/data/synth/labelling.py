"""Which records to draw and how they are labelled: the category plan (shares, patients, folds), the
PTB-XL codes of each category, and one reader's labelling errors (a share of records misread)."""
from __future__ import annotations

import numpy as np

from ecgproto.data.ptbxl import LABELS

# Primary categories and their share of records: SR first, the rest in the real ordering with floors
# so that every code has enough positives in the validation and test folds at the default size.
# "EAR" (ectopic atrial rhythm, inverted P) carries none of the 16 codes, like PTB-XL's unlabelled rows.
CATEGORY_SHARE = {
    "SR": 0.27, "AFIB": 0.08, "STACH": 0.06, "SARRH": 0.055, "SBRAD": 0.055, "PACE": 0.05,
    "SVARR": 0.05, "BIGU": 0.05, "AFLT": 0.05, "SVTAC": 0.05, "PSVT": 0.05, "TRIGU": 0.05,
    "2AVB": 0.05, "3AVB": 0.05, "EAR": 0.03,
}
SINUS = ("SR", "STACH", "SARRH", "SBRAD")
# Rhythms whose underlying pacemaker is the sinus node also carry SR, as in PTB-XL (SR+BIGU is common).
CARRIES_SR = ("SVARR", "BIGU", "TRIGU")

CONDUCTION = ("1AVB", "IVCD", "2AVB", "3AVB")

OTHER_CLASSES = {"CLBBB": "CD", "CRBBB": "CD", "IMI": "MI", "ASMI": "MI", "LVH": "HYP", "NDT": "STTC"}
OTHER_CODES = {"CLBBB": "complete left bundle branch block", "CRBBB": "complete right bundle branch block",
               "IMI": "inferior myocardial infarction", "ASMI": "anteroseptal myocardial infarction",
               "LVH": "left ventricular hypertrophy", "NDT": "non-diagnostic T abnormalities",
               "PVC": "ventricular premature complex"}
# One reader's errors: what a true category is most often read as (a rhythm misread).
READ_AS = {
    "SR": ("SARRH", "SBRAD", "STACH"), "SARRH": ("SR",), "SBRAD": ("SR",), "STACH": ("SR", "SVTAC"),
    "AFIB": ("AFLT", "SVARR"), "AFLT": ("AFIB", "STACH"), "SVTAC": ("STACH", "PSVT"), "PSVT": ("SVTAC",),
    "SVARR": ("SR", "AFIB"), "BIGU": ("TRIGU", "SVARR"), "TRIGU": ("BIGU",), "2AVB": ("3AVB", "SR"),
    "3AVB": ("2AVB",), "PACE": ("SR",), "EAR": ("SR",),
}


def record_plan(n_records: int, rng):
    """Categories, conduction add-ons, patients and folds for n_records, deterministic in rng."""
    shares = np.array(list(CATEGORY_SHARE.values()))
    counts = np.floor(shares / shares.sum() * n_records).astype(int)
    counts[0] += n_records - counts.sum()  # rounding remainder goes to SR
    categories = [str(c) for c in np.repeat(list(CATEGORY_SHARE), counts)]
    rng.shuffle(categories)
    conduction = []
    for c in categories:
        add = []
        if c in SINUS and rng.random() < 0.2:
            add.append("1AVB")
        if (c in SINUS and rng.random() < 0.15) or (c == "AFIB" and rng.random() < 0.25):
            add.append("IVCD")
        conduction.append(tuple(add))
    # patients: SR records are grouped 1-3 per patient (folds are per patient, as in PTB-XL); every other
    # record is its own patient so that the fold deal below stays exact
    patient_of, pid, i = np.empty(n_records, dtype=int), 0, 0
    sr_records = [r for r, c in enumerate(categories) if c == "SR"]
    while i < len(sr_records):
        k = int(rng.choice([1, 1, 1, 1, 1, 1, 2, 2, 3]))
        patient_of[sr_records[i:i + k]] = pid
        pid, i = pid + 1, i + k
    for r, c in enumerate(categories):
        if c != "SR":
            patient_of[r], pid = pid, pid + 1
    # stratified folds: each category's patients dealt round-robin starting with folds 10 and 9, so that
    # validation and test get every code
    category_of_patient = {patient_of[r]: c for r, c in enumerate(categories)}
    fold_cycle = [10, 9, 1, 2, 3, 4, 5, 6, 7, 8]
    fold_of_patient, next_slot = {}, {}
    for patient in rng.permutation(pid):
        c = category_of_patient[patient]
        slot = next_slot.get(c, 0)
        fold_of_patient[patient] = fold_cycle[slot % 10]
        next_slot[c] = slot + 1
    folds = np.array([fold_of_patient[patient_of[r]] for r in range(n_records)])
    return categories, conduction, patient_of, folds


def codes_of(category: str, conduction: tuple) -> dict:
    """scp_codes dict as PTB-XL writes it: rhythm statements with likelihood 0.0, others 50-100."""
    codes = {}
    if category in CARRIES_SR:
        codes["SR"] = 0.0
    if category in LABELS:
        codes[category] = 100.0 if category in CONDUCTION else 0.0
    for c in conduction:
        codes[c] = 100.0
    if not codes:
        codes["NORM"] = 80.0  # a diagnostic statement outside the 16 rhythm codes
    return codes


# How precisely one reader measures on paper at 25 mm/s: rate (/min), PR (s), QRS (x 90 ms).
READER_SD = {"rate": 1.0, "pr": 0.006, "qrs": 0.04}


def _read_measures(category: str, conduction: tuple, measures: dict, rng) -> tuple:
    """The reader labels rate, PR and QRS by their own measurement: near a criterion it can fall on the
    other side (a rate of 61/min read as bradycardia, a PR of 196 ms as first-degree block)."""
    found = [c for c in conduction if c not in ("1AVB", "IVCD")]
    if "rate" in measures and category in ("SR", "SBRAD", "STACH"):
        seen = measures["rate"] + READER_SD["rate"] * rng.standard_normal()
        category = "SBRAD" if seen < 60 else "STACH" if seen >= 100 else "SR"
    if "pr" in measures and measures["pr"] + READER_SD["pr"] * rng.standard_normal() > 0.2:
        found.append("1AVB")
    if "qrs" in measures and measures["qrs"] + READER_SD["qrs"] * rng.standard_normal() > 1.22:
        found.append("IVCD")
    return category, tuple(c for c in CONDUCTION if c in found)


def read_by_one_reader(category: str, conduction: tuple, measures: dict, rng, rate: float) -> tuple:
    """(category, conduction, error) as one reader labels the record. With rate > 0 the reader labels rate,
    PR and QRS by a measurement of READER_SD precision, and with probability `rate` also makes one plain
    error: a rhythm misread (READ_AS) or, for half of the records with a conduction finding, that
    finding missed. error describes how the labels differ from the truth ("" when they do not)."""
    u = rng.random(2)
    if rate == 0:
        return category, conduction, ""
    read, read_conduction = _read_measures(category, conduction, measures, rng)
    measured = "" if (read, read_conduction) == (category, conduction) else \
        f"measured as {'+'.join((read,) + read_conduction)}"
    if u[0] >= rate:
        return read, read_conduction, measured
    category, conduction = read, read_conduction
    also = f"{measured}; " if measured else ""
    if conduction and u[1] < 0.5:
        missed = conduction[int(rng.integers(len(conduction)))]
        return category, tuple(c for c in conduction if c != missed), f"{also}missed {missed}"
    options = READ_AS[category]
    wrong = options[int(rng.integers(len(options)))]
    return wrong, conduction, f"{also}{category} read as {wrong}"
