import shutil

import numpy as np
import pytest
import wfdb

from ecgproto.data.ptbxl import LABELS, LEADS, RecordError, label_matrix, read_metadata, read_record, write_record

from conftest import SAMPLE, needs_sample


@needs_sample
def test_real_sample_records_match_wfdb_in_millivolts():
    md = read_metadata(SAMPLE)
    present = md.loc[1:10]
    for ecg_id, row in present.iterrows():
        x = read_record(SAMPLE / row["filename_lr"])
        ref, fields = wfdb.rdsamp(str(SAMPLE / row["filename_lr"]))
        assert x.shape == (12, 1000)
        assert fields["units"] == ["mV"] * 12
        np.testing.assert_allclose(x, ref.T, atol=1e-6)
        assert 0.05 < np.abs(x).max() < 20, ecg_id  # millivolts, not microvolts or ADC counts


@needs_sample
def test_real_labels_and_folds():
    md = read_metadata(SAMPLE)
    y = label_matrix(md)
    assert y.shape == (21837, 16)
    assert y[md.index.get_loc(2), LABELS.index("SBRAD")] == 1
    assert md["strat_fold"].value_counts().sort_index().tolist() == [
        2177, 2184, 2194, 2175, 2176, 2178, 2178, 2179, 2193, 2203]
    # FACTS.md section 2: totals per code and 667 records with none of the 16
    assert int(y[:, LABELS.index("SR")].sum()) == 16782
    assert int(y[:, LABELS.index("AFIB")].sum()) == 1514
    assert int((y.sum(1) == 0).sum()) == 667


def test_label_rule_counts_zero_likelihood_and_keeps_unlabelled():
    import pandas as pd
    md = pd.DataFrame({"scp_codes": [{"SR": 0.0, "NORM": 100.0}, {"NORM": 80.0}, {"AFIB": 0.0, "IVCD": 50.0}]})
    y = label_matrix(md)
    assert y.shape == (3, 16)
    assert y[0].tolist() == [float(c == "SR") for c in LABELS]
    assert y[1].sum() == 0
    assert y[2, LABELS.index("AFIB")] == 1 and y[2, LABELS.index("IVCD")] == 1


def test_writer_is_byte_identical_to_wfdb(tmp_path):
    x = np.random.default_rng(0).normal(0, 1, (12, 1000)).astype(np.float32)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    write_record(tmp_path / "a" / "00001_lr", x)
    digital = np.round(x.astype(np.float64) * 1000).astype(np.int16)
    wfdb.wrsamp("00001_lr", fs=100, units=["mV"] * 12, sig_name=list(LEADS), d_signal=digital.T.copy(),
                fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(tmp_path / "b"))
    for ext in ("hea", "dat"):
        assert (tmp_path / "a" / f"00001_lr.{ext}").read_bytes() == (tmp_path / "b" / f"00001_lr.{ext}").read_bytes()


@pytest.fixture
def record(tmp_path, tiny_tree):
    base = tmp_path / "00001_lr"
    for ext in (".hea", ".dat"):
        shutil.copy(tiny_tree / "records100/00000" / ("00001_lr" + ext), base.with_suffix(ext))
    return base


def _edit_header(base, old, new):
    hea = base.with_suffix(".hea")
    hea.write_text(hea.read_text().replace(old, new, 1))


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b.with_suffix(".dat").unlink(), "signal file not found"),
    (lambda b: b.with_suffix(".hea").unlink(), "header file not found"),
    (lambda b: b.with_suffix(".dat").write_bytes(b.with_suffix(".dat").read_bytes()[:5000]), "truncated"),
    (lambda b: _edit_header(b, "00001_lr 12 100 1000", "00001_lr 12 500 1000"), "expected 12 leads at 100 Hz"),
    (lambda b: _edit_header(b, "00001_lr 12 100 1000", "00001_lr 12 100 5000"), "x 5000 samples"),
    (lambda b: _edit_header(b, " V6\n", " V7\n"), "leads"),
])
def test_bad_records_raise_naming_the_record(record, mutate, message):
    mutate(record)
    with pytest.raises(RecordError, match=message) as info:
        read_record(record)
    assert "00001_lr" in str(info.value)


def test_wrong_lead_count(record):
    lines = record.with_suffix(".hea").read_text().splitlines()
    record.with_suffix(".hea").write_text("\n".join(["00001_lr 11 100 1000"] + lines[1:12]) + "\n")
    with pytest.raises(RecordError, match="11 leads"):
        read_record(record)


def test_nan_samples(record):
    raw = np.fromfile(record.with_suffix(".dat"), dtype="<i2")
    raw[12 * 500 + 3] = -32768  # WFDB's missing-sample value, lead aVR
    raw.tofile(record.with_suffix(".dat"))
    with pytest.raises(RecordError, match="NaN .* lead AVR"):
        read_record(record)


def test_unparsable_scp_codes(tmp_path, tiny_tree):
    text = (tiny_tree / "ptbxl_database.csv").read_text().splitlines()
    shutil.copy(tiny_tree / "scp_statements.csv", tmp_path)
    head, first, rest = text[0], text[1], text[2:]
    start = first.index('"{') if '"{' in first else first.index("{")
    end = first.index("}", start) + (2 if '"{' in first else 1)
    (tmp_path / "ptbxl_database.csv").write_text("\n".join([head, first[:start] + "SR;AFIB" + first[end:]] + rest))
    with pytest.raises(RecordError, match="ecg_id 1 has unparsable scp_codes"):
        read_metadata(tmp_path)


@needs_sample
def test_v103_metadata_reads_like_v101(tmp_path):
    """v1.0.3 = v1.0.1 minus the rows its changelog drops (duplicate recordings), ages > 89 stored as 300."""
    import re

    import pandas as pd

    dropped = [int(i) for i in re.findall(r"->drop row with ecg_id=(\d+)", (SAMPLE / "ptbxl_v103_changelog.txt").read_text())]
    raw = pd.read_csv(SAMPLE / "ptbxl_database.csv", index_col="ecg_id").drop(index=dropped)
    raw.loc[raw["age"] > 89, "age"] = 300
    raw.to_csv(tmp_path / "ptbxl_database.csv")
    md = read_metadata(tmp_path)
    assert len(dropped) == 38 and len(md) == 21799 and not set(dropped) & set(md.index)
    y = label_matrix(md)
    assert y.shape == (21799, 16) and y[md.index.get_loc(2), LABELS.index("SBRAD")] == 1
