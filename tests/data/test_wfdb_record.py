"""Any WFDB record the public 12-lead databases ship: format 212 and the Challenge's 16+24 `.mat` files read
equal to wfdb, leads in any order, rates resampled, lengths over 10 s kept whole, under 10 s refused by name;
every record of ../shared/challenge-sample equal to wfdb's reading after the same resampling."""
import numpy as np
import pytest

from ecgproto.data.ptbxl import LEADS
from ecgproto.deploy.preprocessing import read_ecg, resample_to
from ecgproto.errors import RecordError

from conftest import SHARED

wfdb = pytest.importorskip("wfdb")
CHALLENGE = SHARED / "challenge-sample"
NAMES = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def _signal(seconds, fs, seed=0):
    t = np.arange(int(seconds * fs)) / fs
    rng = np.random.default_rng(seed)
    beats = (np.sin(2 * np.pi * t / 0.8) > 0.97).astype(float)
    return (beats[:, None] * rng.uniform(0.5, 1.5, 12) + 0.05 * rng.standard_normal((len(t), 12))).round(3)


def _write(tmp_path, name, seconds, fs, fmt="16", order=None):
    signal = _signal(seconds, fs)
    names = NAMES if order is None else [NAMES[k] for k in order]
    data = signal if order is None else signal[:, order]
    wfdb.wrsamp(name, fs=fs, units=["mV"] * 12, sig_name=names, p_signal=data, fmt=[fmt] * 12,
                adc_gain=[200.0] * 12, baseline=[0] * 12, write_dir=str(tmp_path))
    return tmp_path / name


def _wfdb_mv(base):
    record = wfdb.rdrecord(str(base))
    names = [n.upper() for n in record.sig_name]
    return record.p_signal.T[[names.index(lead) for lead in LEADS]]


@pytest.mark.parametrize("fmt", ["212", "16", "24"])
def test_formats_read_equal_to_wfdb(tmp_path, fmt):
    base = _write(tmp_path, f"r{fmt}", 10, 100, fmt)
    mv, note = read_ecg(base)
    assert note is None and np.allclose(mv, _wfdb_mv(base), atol=1e-6)


def test_leads_in_any_order_are_put_in_ptbxl_order(tmp_path):
    order = list(np.random.default_rng(1).permutation(12))
    shuffled = _write(tmp_path, "shuffled", 10, 100, order=order)
    plain = _write(tmp_path, "plain", 10, 100)
    assert np.allclose(read_ecg(shuffled)[0], read_ecg(plain)[0], atol=1e-6)


@pytest.mark.parametrize("fs", [250, 257, 360, 1000])
def test_rates_are_resampled_to_100_hz(tmp_path, fs):
    base = _write(tmp_path, f"r{fs}", 10, fs)
    mv, note = read_ecg(base)
    assert mv.shape == (12, 1000) and f"resampled from {fs} Hz" in note
    assert np.allclose(mv, resample_to(_wfdb_mv(base).astype(np.float32), fs)[:, :1000], atol=1e-5)


def test_a_30_s_record_is_kept_whole_and_a_5_s_or_50_hz_record_is_refused_by_name(tmp_path):
    assert read_ecg(_write(tmp_path, "long", 30, 500))[0].shape == (12, 3000)
    with pytest.raises(RecordError, match=r"short: 5 s long; expected at least 10 s"):
        read_ecg(_write(tmp_path, "short", 5, 500))
    with pytest.raises(RecordError, match="sampled at 50 Hz; expected at least 100 Hz"):
        read_ecg(_write(tmp_path, "slow", 10, 50))


@pytest.mark.skipif(not CHALLENGE.is_dir(), reason=f"Challenge sample not found at {CHALLENGE}")
def test_every_challenge_sample_record_reads_as_wfdb_does():
    records = sorted(CHALLENGE.rglob("*.hea"))
    assert len(records) == 47
    for hea in records:
        base = hea.with_suffix("")
        mv, _ = read_ecg(base)
        fs = wfdb.rdheader(str(base)).fs
        expected = _wfdb_mv(base).astype(np.float32)
        if fs != 100:
            expected = resample_to(expected, fs)
        assert mv.shape[1] >= 1000 and np.allclose(mv, expected[:, :mv.shape[1]], atol=1e-6), base
