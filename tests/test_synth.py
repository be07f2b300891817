import filecmp

import numpy as np
import pytest
from scipy.signal import find_peaks

from ecgproto import synth
from ecgproto.ptbxl import LABELS, LEADS, read_metadata, read_record


def test_layout_and_columns(tiny_tree):
    md = read_metadata(tiny_tree)
    assert list(md.reset_index().columns) == synth.DATABASE_COLUMNS
    assert (tiny_tree / "scp_statements.csv").is_file()
    assert set(md["strat_fold"]) <= set(range(1, 11))
    x = read_record(tiny_tree / md["filename_lr"].iloc[0])
    assert x.shape == (12, 1000) and x.dtype == np.float32
    header = (tiny_tree / (md["filename_lr"].iloc[0] + ".hea")).read_text().splitlines()
    assert header[0].split()[1:] == ["12", "100", "1000"]
    assert [ln.split()[-1] for ln in header[1:]] == list(LEADS)
    assert all(" 16 1000.0(0)/mV " in ln for ln in header[1:])


def test_patients_never_cross_folds(tiny_tree):
    md = read_metadata(tiny_tree)
    assert md.groupby("patient_id")["strat_fold"].nunique().max() == 1
    assert md["patient_id"].nunique() < len(md)  # some patients have several records


def test_same_seed_same_bytes(tiny_tree, tmp_path):
    again = tmp_path / "again"
    synth.generate(again, n_records=160, seed=7)
    for rel in ["ptbxl_database.csv", "records100/00000/00042_lr.dat", "records100/00000/00042_lr.hea"]:
        assert filecmp.cmp(tiny_tree / rel, again / rel, shallow=False), rel
    other = tmp_path / "other"
    synth.generate(other, n_records=5, seed=8)
    assert not filecmp.cmp(tiny_tree / "records100/00000/00001_lr.dat",
                           other / "records100/00000/00001_lr.dat", shallow=False)


def test_limb_leads_obey_einthoven_and_goldberger(tiny_tree):
    x = read_record(tiny_tree / "records100/00000/00003_lr")
    lead = {name: x[i] for i, name in enumerate(LEADS)}
    tol = 0.0011  # one quantisation step of 1 uV plus rounding of the derived lead
    assert np.abs(lead["III"] - (lead["II"] - lead["I"])).max() <= tol
    assert np.abs(lead["AVR"] + (lead["I"] + lead["II"]) / 2).max() <= tol
    assert np.abs(lead["AVL"] - (lead["I"] - lead["II"] / 2)).max() <= tol
    assert np.abs(lead["AVF"] - (lead["II"] - lead["I"] / 2)).max() <= tol


def test_default_size_gives_every_code_ten_val_and_test_positives():
    categories, conduction, _, folds = synth._record_plan(2000, np.random.default_rng(42))
    y = np.array([[c in synth.codes_of(cat, cond) for c in LABELS] for cat, cond in zip(categories, conduction)])
    for fold in (9, 10):
        counts = y[folds == fold].sum(0)
        assert counts.min() >= 10, dict(zip(LABELS, counts))
    totals = y.sum(0)
    assert LABELS[int(totals.argmax())] == "SR"
    assert (y.sum(1) == 0).sum() > 0  # some records carry none of the 16 codes


def _beats(category, conduction=(), seed=0):
    rng = np.random.default_rng(seed)
    x = synth.simulate(category, conduction, synth.Patient(rng), rng)
    # ventricular activity: energy of the derivative over all leads, peaks at least 250 ms apart
    energy = np.abs(np.diff(x, axis=1)).sum(0)
    peaks, _ = find_peaks(energy, height=0.4 * np.percentile(energy, 99.5), distance=25)
    return x, np.diff(peaks) / 100.0


@pytest.mark.parametrize("seed", range(3))
def test_rates_follow_the_rhythm_criteria(seed):
    _, rr = _beats("SBRAD", seed=seed)
    assert 60 / np.median(rr) < 60
    _, rr = _beats("STACH", seed=seed)
    assert 60 / np.median(rr) > 100
    _, rr = _beats("SR", seed=seed)
    assert 58 <= 60 / np.median(rr) <= 100 and rr.std() / rr.mean() < 0.06


@pytest.mark.parametrize("seed", range(3))
def test_afib_is_irregular_and_sinus_is_not(seed):
    _, rr_af = _beats("AFIB", seed=seed)
    _, rr_sr = _beats("SR", seed=seed)
    assert rr_af.std() / rr_af.mean() > 2 * rr_sr.std() / rr_sr.mean()


def test_pacing_spikes_are_one_sample_wide():
    rng = np.random.default_rng(1)
    x = synth.simulate("PACE", (), synth.Patient(rng), rng)
    second_diff = np.abs(np.diff(x[7], 2))  # V2
    spikes = np.flatnonzero(second_diff > 1.0)
    assert 8 <= len(np.unique(spikes // 20)) <= 14  # one spike per paced beat at 60-72/min over 10 s
