import dataclasses
import filecmp

import numpy as np
import pandas as pd
import pytest
from scipy.signal import find_peaks

from ecgproto.config import SyntheticRealism
from ecgproto.data import synth
from ecgproto.data.synth.heart import sinus
from ecgproto.data.ptbxl import LABELS, LEADS, read_metadata, read_record

from conftest import PARAMS

REALISM = PARAMS.data.synthetic_realism
# The rhythm checks run on the rhythm as generated, with params.yaml's morphology, borderline cases and
# label noise but without recording nuisance, which this crude beat detector would count as beats
# (nuisance has its own test below; the Einthoven check runs on the written, noisy records).
RHYTHM = dataclasses.replace(REALISM, nuisance=0.0)


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
    synth.generate(again, 160, 7, PARAMS.data.synthetic_realism)
    # SHA256SUMS.txt holds the hash of every other file: equal manifests, equal trees
    for rel in ["SHA256SUMS.txt", "ptbxl_database.csv", "records100/00000/00042_lr.dat", "synthetic_truth.csv"]:
        assert filecmp.cmp(tiny_tree / rel, again / rel, shallow=False), rel
    other = tmp_path / "other"
    synth.generate(other, 5, 8, PARAMS.data.synthetic_realism)
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
    categories, conduction, _, folds = synth.record_plan(2000, np.random.default_rng(42))
    y = np.array([[c in synth.codes_of(cat, cond) for c in LABELS] for cat, cond in zip(categories, conduction)])
    for fold in (9, 10):
        counts = y[folds == fold].sum(0)
        assert counts.min() >= 10, dict(zip(LABELS, counts))
    totals = y.sum(0)
    assert LABELS[int(totals.argmax())] == "SR"
    assert (y.sum(1) == 0).sum() > 0  # some records carry none of the 16 codes


def _beats(category, conduction=(), seed=0):
    rng = np.random.default_rng(seed)
    x, _ = synth.simulate(category, conduction, synth.Patient(rng, RHYTHM), rng, RHYTHM)
    # ventricular activity: energy of the derivative over all leads, peaks at least 250 ms apart
    energy = np.abs(np.diff(x, axis=1)).sum(0)
    peaks, _ = find_peaks(energy, height=0.4 * np.percentile(energy, 99.5), distance=25)
    return x, np.diff(peaks) / 100.0


@pytest.mark.parametrize("seed", range(3))
def test_rates_follow_the_rhythm_criteria(seed):
    # borderline draws sit within a beat of the criteria, and one RR is measured to a sample (10 ms, about
    # 0.6/min at 60/min and 1.7/min at 100/min): the criteria hold to that resolution
    _, rr = _beats("SBRAD", seed=seed)
    assert 60 / np.median(rr) < 61
    _, rr = _beats("STACH", seed=seed)
    assert 60 / np.median(rr) > 98.5
    _, rr = _beats("SR", seed=seed)
    assert 59 <= 60 / np.median(rr) <= 101.5 and rr.std() / rr.mean() < 0.06


@pytest.mark.parametrize("seed", range(3))
def test_afib_is_irregular_and_sinus_is_not(seed):
    _, rr_af = _beats("AFIB", seed=seed)
    _, rr_sr = _beats("SR", seed=seed)
    assert rr_af.std() / rr_af.mean() > 2 * rr_sr.std() / rr_sr.mean()


def test_pacing_spikes_are_one_sample_wide():
    rng = np.random.default_rng(1)
    x, _ = synth.simulate("PACE", (), synth.Patient(rng, RHYTHM), rng, RHYTHM)
    second_diff = np.abs(np.diff(x[7], 2))  # V2
    spikes = np.flatnonzero(second_diff > 1.0)
    assert 8 <= len(np.unique(spikes // 20)) <= 14  # one spike per paced beat at 60-72/min over 10 s


# --- what makes real ECGs hard (data.synthetic_realism): each feature shows in the written signals

CLEAN = SyntheticRealism(morphology=0.0, nuisance=0.0, borderline=0.0, label_noise=0.0)


def _record(category, realism, seed, conduction=(), morph=None):
    rng = np.random.default_rng(seed)
    patient = synth.Patient(rng, realism)
    if morph is not None:
        patient.morph = set(morph)
    x, notes = synth.simulate(category, conduction, patient, rng, realism)
    return x, notes


def _qrs_ms(x):
    """Median width (ms) of the spells where the summed |derivative| exceeds 30% of its 99th percentile."""
    energy = np.abs(np.diff(x, axis=1)).sum(0)
    above = energy > 0.3 * np.percentile(energy, 99)
    edges = np.flatnonzero(np.diff(above.astype(int)))
    spells = [b - a for a, b in zip(edges[::2], edges[1::2]) if b - a > 1]
    return 10 * float(np.median(spells))


def test_bundle_branch_block_widens_the_qrs_without_a_conduction_code():
    plain = np.median([_qrs_ms(_record("SR", CLEAN, s, morph=())[0]) for s in range(5)])
    lbbb = np.median([_qrs_ms(_record("SR", CLEAN, s, morph=("CLBBB",))[0]) for s in range(5)])
    assert lbbb > plain + 20, (plain, lbbb)
    assert "IVCD" not in synth.codes_of("SR", ())  # the code set comes from the conduction tuple only


def test_inferior_infarction_puts_q_waves_in_the_inferior_leads():
    def initial_deflection(morph):
        x, _ = _record("SR", CLEAN, 3, morph=morph)
        lead_iii = x[LEADS.index("III")]
        energy = np.abs(np.diff(x, axis=1)).sum(0)
        peaks, _ = find_peaks(energy, height=0.4 * energy.max(), distance=30)
        # the most negative value in the first 30 ms of each QRS (peak of activity minus 40 ms onwards)
        return np.median([lead_iii[p - 4:p - 1].min() - lead_iii[p - 8] for p in peaks if p > 10])
    assert initial_deflection(("IMI",)) < initial_deflection(()) - 0.05


def test_morphology_prevalence_follows_the_scale(tmp_path):
    for scale in (0.0, 1.0):
        realism = SyntheticRealism(morphology=scale, nuisance=0.0, borderline=0.0, label_noise=0.0)
        synth.generate(tmp_path / str(scale), 600, 3, realism)
        truth = pd.read_csv(tmp_path / str(scale) / "synthetic_truth.csv", keep_default_na=False)
        share = truth["other_codes"].str.contains("IMI|ASMI|LVH|BBB|NDT").mean()
        if scale == 0:
            assert share == 0
        else:  # about 1 - prod(1 - prevalence) of patients: 0.41
            assert 0.3 < share < 0.55, share


def test_nuisance_adds_wander_and_muscle_noise():
    def band_power(realism, low, high):
        powers = []
        for seed in range(20):
            x, _ = _record("SR", realism, seed)
            spectrum = np.abs(np.fft.rfft(x - x.mean(1, keepdims=True), axis=1)) ** 2
            f = np.fft.rfftfreq(x.shape[1], 0.01)
            powers.append(spectrum[:, (f >= low) & (f < high)].sum())
        return np.mean(powers)
    noisy = SyntheticRealism(morphology=0.0, nuisance=2.0, borderline=0.0, label_noise=0.0)
    assert band_power(noisy, 0.1, 0.5) > 1.5 * band_power(CLEAN, 0.1, 0.5)   # breathing
    assert band_power(noisy, 25, 45) > 1.5 * band_power(CLEAN, 25, 45)      # muscle


def test_borderline_rates_crowd_the_criteria():
    near = SyntheticRealism(morphology=0.0, nuisance=0.0, borderline=1.0, label_noise=0.0)
    rates = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        x, _ = synth.simulate("SBRAD", (), synth.Patient(rng, near), rng, near)
        energy = np.abs(np.diff(x, axis=1)).sum(0)
        peaks, _ = find_peaks(energy, height=0.4 * np.percentile(energy, 99.5), distance=25)
        rates.append(60 / np.median(np.diff(peaks) / 100))
    assert all(53 < r < 61.5 for r in rates), rates  # near 60/min, still bradycardia by the generator's rate


def test_label_noise_rate_and_truth_file(tmp_path):
    realism = SyntheticRealism(morphology=0.0, nuisance=0.0, borderline=0.0, label_noise=0.2)
    synth.generate(tmp_path / "t", 800, 5, realism)
    truth = pd.read_csv(tmp_path / "t" / "synthetic_truth.csv", keep_default_na=False)
    noisy = truth["reader_error"] != ""
    assert 0.15 < noisy.mean() < 0.27  # 0.2 plain errors, a few more from measuring near a criterion
    md = read_metadata(tmp_path / "t")
    for _, row in truth[noisy].head(30).iterrows():
        honest = synth.codes_of(row["category"], tuple(c for c in row["conduction"].split(";") if c))
        written = {c for c in md.loc[row["ecg_id"], "scp_codes"] if c in LABELS}
        assert written != {c for c in honest if c in LABELS}, row.to_dict()


def test_a_single_pvc_replaces_a_conducted_beat():
    def peaks(pvc):
        rng = np.random.default_rng(4)
        w = synth.Waves(np.eye(3))
        times = sinus(w, synth.Patient(rng, CLEAN), rng, 70, 0.16, 1.0, pvc=pvc)
        amplitude = np.abs(w.render()).sum(0)  # the broad PVC has a small derivative but a large amplitude
        found, _ = find_peaks(amplitude, height=0.5 * amplitude.max(), distance=30)
        return times, found
    times, plain = peaks(False)
    same_times, with_pvc = peaks(True)
    assert np.array_equal(times, same_times)
    # one early beat instead of one on time: as many complexes, and one RR pair sums to two sinus cycles
    assert len(with_pvc) == len(plain)
    rr = np.diff(with_pvc) / 100
    early = int(rr.argmin())  # the coupling interval, then the compensatory pause
    assert rr[early] < 0.75 * np.median(rr) and np.isclose(rr[early] + rr[early + 1], 2 * np.median(rr), atol=0.08)


def test_a_kept_tree_is_reused_only_when_whole_and_alike(tmp_path):
    import json

    root = tmp_path / "kept"
    synth.kept_tree(root, 20, 1, CLEAN, progress=lambda line: None)
    stamp = (root / "SHA256SUMS.txt").stat().st_mtime_ns
    synth.kept_tree(root, 20, 1, CLEAN, progress=lambda line: None)
    assert (root / "SHA256SUMS.txt").stat().st_mtime_ns == stamp  # same size, seed, realism: kept
    synth.kept_tree(root, 20, 1, REALISM, progress=lambda line: None)
    assert json.loads((root / "SYNTHETIC.json").read_text())["realism"]["label_noise"] == REALISM.label_noise
    (root / "SYNTHETIC.json").write_text("[not an object")
    synth.kept_tree(root, 20, 1, REALISM, progress=lambda line: None)
    assert json.loads((root / "SYNTHETIC.json").read_text())["records"] == 20
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]  # no temporary folder left
