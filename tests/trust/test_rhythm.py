"""Heart rate from the signal, checked against wfdb's GQRS detector, and the remarks it feeds."""
import numpy as np
import pytest

from ecgproto.deploy.preprocessing import read_ecg
from ecgproto.trust.rhythm import heart_rate, remarks

from conftest import SAMPLE, needs_sample


@needs_sample
def test_the_rate_agrees_with_wfdb_gqrs_on_the_real_sample_and_record_2_is_bradycardic():
    import wfdb.processing

    records = sorted((SAMPLE / "records100").rglob("*.hea"))  # the 10 records the sample holds
    assert len(records) == 10
    for name in records:
        millivolts, _ = read_ecg(name.with_suffix(""))
        ours = heart_rate(millivolts)["rate_per_min"]
        beats = wfdb.processing.gqrs_detect(millivolts[1].astype(float), fs=100)
        theirs = 60 / np.median(np.diff(beats) / 100)
        assert ours == pytest.approx(theirs, abs=5), name
    assert heart_rate(read_ecg(SAMPLE / "records100/00000/00002_lr")[0])["rate_per_min"] < 60  # SBRAD


def test_remarks_name_a_label_the_rate_contradicts_and_a_pair_never_seen_together():
    rate = {"beats": 11, "rate_per_min": 62.0, "rr_variation": 0.02}
    said = remarks(["STACH", "AFIB"], rate, {"STACH": {"AFIB": 0.0}, "AFIB": {"STACH": 0.0}})
    assert any("STACH is called, but the measured rate is 62/min" in s for s in said)
    assert any("AFIB is called, but the RR intervals are regular" in s for s in said)
    assert any("STACH and AFIB never occur together" in s for s in said)
    assert remarks(["SR"], rate, {"SR": {}}) == []


def test_a_flat_line_has_no_rate():
    assert heart_rate(np.zeros((12, 1000)))["rate_per_min"] is None


def test_signals_without_beats_have_no_rate_and_noise_does_not_invent_beats():
    t = np.arange(1000) / 100
    rng = np.random.default_rng(0)
    for name, mv in [("ramp", np.tile(np.linspace(-30, 30, 1000), (12, 1))),
                     ("slow sine", np.tile(np.sin(2 * np.pi * 1.2 * t), (12, 1))),
                     ("noise", rng.normal(0, 0.1, (12, 1000)))]:
        assert heart_rate(mv)["rate_per_min"] is None, name


@needs_sample
def test_added_noise_leaves_the_rate_of_a_real_record():
    millivolts, _ = read_ecg(SAMPLE / "records100/00000/00001_lr")
    noisy = millivolts + np.random.default_rng(0).normal(0, 0.1, millivolts.shape)
    assert heart_rate(noisy)["rate_per_min"] == pytest.approx(heart_rate(millivolts)["rate_per_min"], abs=3)
