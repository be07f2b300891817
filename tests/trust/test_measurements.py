"""What is measured before interpreting: the rate against wfdb's GQRS on real records, PR/QRS/QT against the
synthetic generator's truth, regularity and ectopic beats; and the remarks it feeds, in both directions."""

import numpy as np
import pandas as pd
import pytest

from ecgproto.data.ptbxl import read_metadata, read_record
from ecgproto.data.synth import generate
from ecgproto.deploy.preprocessing import read_ecg
from ecgproto.trust.measurements import measure
from ecgproto.trust.remarks import remarks

from conftest import PARAMS, SAMPLE, needs_sample


@needs_sample
def test_the_rate_agrees_with_wfdb_gqrs_within_3_per_min_on_the_real_sample():
    import wfdb.processing

    records = sorted((SAMPLE / "records100").rglob("*.hea"))  # the 10 records the sample holds
    assert len(records) == 10
    for name in records:
        millivolts, _ = read_ecg(name.with_suffix(""))
        ours = measure(millivolts)["rate_per_min"]
        beats = wfdb.processing.gqrs_detect(millivolts[1].astype(float), fs=100)
        theirs = 60 / np.median(np.diff(beats) / 100)
        assert ours == pytest.approx(theirs, abs=3), name
    assert measure(read_ecg(SAMPLE / "records100/00000/00002_lr")[0])["rate_per_min"] < 60  # SBRAD


@pytest.fixture(scope="module")
def sinus_truth(tmp_path_factory):
    """Sinus records of a synthetic tree (default realism) with the generator's true intervals."""
    root = tmp_path_factory.mktemp("truth") / "tree"
    generate(root, 500, 21, PARAMS.data.synthetic_realism)
    md, truth = read_metadata(root), pd.read_csv(root / "synthetic_truth.csv").set_index("ecg_id")
    rows = []
    for ecg_id, row in md.iterrows():
        t = truth.loc[ecg_id]
        if t.category in ("SR", "SBRAD", "STACH"):
            rows.append({**measure(read_record(root / row["filename_lr"])), "truth": t})
    return rows


def _within(rows, key, truth_key, tol):
    errors = np.array([np.inf if r[key] is None else abs(r[key] - r["truth"][truth_key]) for r in rows])
    return float(np.mean(errors <= tol))


def test_pr_qrs_and_rate_agree_with_the_generators_truth(sinus_truth):
    plain = [r for r in sinus_truth if pd.isna(r["truth"].other_codes) and pd.isna(r["truth"].conduction)]
    assert len(plain) >= 40
    assert _within(sinus_truth, "rate_per_min", "rate_per_min", 3) >= 0.95
    # records without morphology codes or conduction add-ons: measured on what the waves really are
    assert _within(plain, "qrs_ms", "qrs_ms", 20) >= 0.95
    assert _within(plain, "pr_ms", "pr_ms", 20) >= 0.85
    # all sinus records, bundle branch blocks and infarction Q waves included, where QRS onset and end blur
    assert _within(sinus_truth, "qrs_ms", "qrs_ms", 20) >= 0.8
    assert _within(sinus_truth, "qt_ms", "qt_ms", 40) >= 0.8


def _beats_at(times_s, n=1000, fs=100, width=3):
    mv = 0.02 * np.random.default_rng(0).standard_normal((12, n))
    for t in times_s:
        i = int(t * fs)
        mv[:, i:i + width] += 1.0
    return mv


def test_regular_irregular_and_a_single_premature_beat():
    regular = measure(_beats_at(np.arange(0.3, 10, 0.8)))
    assert regular["rate_per_min"] == pytest.approx(75, abs=1) and regular["irregular"] is False
    rng = np.random.default_rng(3)
    irregular = measure(_beats_at(np.cumsum(rng.uniform(0.45, 1.1, 14))[:12]))
    assert irregular["irregular"] is True
    times = list(np.arange(0.3, 10, 0.8))
    times[6] -= 0.3  # one premature beat, then a compensatory pause
    one = measure(_beats_at(times))
    assert one["ectopic_beats"] == 1 and one["irregular"] is False  # one ectopic beat does not make it irregular


def test_no_rate_without_beats():
    t = np.arange(1000) / 100
    rng = np.random.default_rng(0)
    for name, mv in [("flat", np.zeros((12, 1000))), ("ramp", np.tile(np.linspace(-30, 30, 1000), (12, 1))),
                     ("slow sine", np.tile(np.sin(2 * np.pi * 1.2 * t), (12, 1))),
                     ("noise", rng.normal(0, 0.1, (12, 1000)))]:
        assert measure(mv)["rate_per_min"] is None, name


@needs_sample
def test_added_noise_leaves_the_rate_of_a_real_record():
    millivolts, _ = read_ecg(SAMPLE / "records100/00000/00001_lr")
    noisy = millivolts + np.random.default_rng(0).normal(0, 0.1, millivolts.shape)
    assert measure(noisy)["rate_per_min"] == pytest.approx(measure(millivolts)["rate_per_min"], abs=3)


BASE = {"rate_per_min": 75.0, "irregular": False, "rr_irregularity": 0.02, "ectopic_beats": 0, "rr_ms": [800] * 11,
        "pr_ms": 160, "qrs_ms": 90}


@pytest.mark.parametrize("measured, called, expected", [
    ({"rate_per_min": 50.0}, ["SR"], "under 60/min), but no label for a slow rhythm"),
    ({"rate_per_min": 103.0}, ["SR"], "over 100/min), but no label for a fast rhythm"),
    ({"rate_per_min": 62.0}, ["STACH"], "STACH is called, but the measured rate is 62/min"),
    ({"irregular": True, "rr_irregularity": 0.2}, ["SR"], "irregular (median successive RR difference 20%"),
    ({}, ["AFIB"], "AFIB is called, but the RR intervals are regular"),
    ({"rate_per_min": 140.0}, ["AFIB"], "consider atrial flutter"),
    ({"pr_ms": 90}, ["SR"], "PR is 90 ms (under 120 ms)"),
    ({}, ["SR", "BIGU"], "BIGU is called, but no premature beat was found"),
    ({"pr_ms": 240}, ["SR"], "PR is 240 ms (over 200 ms), but 1AVB is not called"),
    ({"pr_ms": 150}, ["SR", "1AVB"], "1AVB is called, but the measured PR is 150 ms"),
    ({"qrs_ms": 140}, ["SR"], "QRS is 140 ms (over 120 ms), but IVCD is not called"),
    ({"qrs_ms": 90}, ["SR", "IVCD"], "IVCD is called, but the measured QRS is 90 ms"),
    ({"rate_per_min": 83.0}, [], "a regular rhythm at 83/min is measured, but no rhythm label is called"),
    ({"qtc_bazett_ms": 567}, ["SR"], "QTc (Bazett) is 567 ms (over 500 ms), which no label of this model covers"),
    ({"rate_per_min": 83.0}, ["IVCD"], "no rhythm label is called (a sinus rhythm would be SR)"),
])
def test_remarks_in_both_directions(measured, called, expected):
    said = remarks(called, {**BASE, **measured}, None)
    assert any(expected in s for s in said), said


def test_a_finding_that_points_to_a_label_the_model_cannot_assess_says_so_and_flutter_has_no_pr():
    said = remarks(["SR"], {**BASE, "rate_per_min": 110.0}, None, not_assessable=["STACH"])
    assert any(s.endswith("(STACH: not assessable by this model)") for s in said)
    assert not any("PR" in s for s in remarks(["AFIB"], {**BASE, "pr_ms": 284, "rate_per_min": 129.0}, None))


def test_an_irregular_rhythm_has_no_pr_or_qt_and_a_qt_into_the_next_beat_is_dropped():
    rng = np.random.default_rng(3)
    irregular = measure(_beats_at(np.cumsum(rng.uniform(0.45, 1.1, 14))[:12]))
    assert irregular["irregular"] and irregular["pr_ms"] is None and irregular["qt_ms"] is None


def test_ptbxl_conventions_are_not_contradictions_and_a_consistent_call_gets_no_remark():
    co = {"SR": {"STACH": 0.0, "AFIB": 0.0}, "STACH": {"SR": 0.0}, "AFIB": {"SR": 0.0}}
    assert remarks(["SR"], BASE, co) == [] and remarks(["SR", "1AVB"], {**BASE, "pr_ms": 240}, co) == []
    said = remarks(["SR", "STACH"], {**BASE, "rate_per_min": 110.0}, co)
    assert not any("never occur together" in s for s in said)  # PTB-XL codes one sinus statement per record
    assert any("SR and AFIB never occur together" in s for s in remarks(["SR", "AFIB"], {**BASE, "irregular": True,
                                                                                         "rr_irregularity": 0.2}, co))
