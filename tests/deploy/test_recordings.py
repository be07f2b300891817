"""Records over 10 s: read in windows, each through the guard and the model, calls aggregated; and the
external evaluation on Challenge-format folders (SNOMED-CT labels)."""
import json

import numpy as np
import pytest

from ecgproto.cli import main
from ecgproto.data.ptbxl import LABELS
from ecgproto.deploy.predictor import open_model
from ecgproto.deploy.recordings import answer, window_starts
from ecgproto.evaluation.external import diagnoses, evaluate_external, snomed_table

from conftest import SHARED

wfdb = pytest.importorskip("wfdb")


@pytest.fixture(scope="module")
def model_file(calibrated_model_file):
    return calibrated_model_file


def _challenge_record(folder, name, seconds, fs, dx):
    t = np.arange(int(seconds * fs)) / fs
    beats = (np.sin(2 * np.pi * t / 0.8) > 0.97).astype(float)
    signal = beats[:, None] * np.linspace(0.5, 1.5, 12) + 0.02 * np.random.default_rng(len(name)).standard_normal(
        (len(t), 12))
    wfdb.wrsamp(name, fs=fs, units=["mV"] * 12, p_signal=signal, fmt=["16"] * 12, adc_gain=[1000.0] * 12,
                baseline=[0] * 12, sig_name=["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"],
                comments=["Age: 60", "Sex: Male", f"Dx: {dx}"], write_dir=str(folder))
    return folder / name


def test_window_starts_cover_the_record_to_its_end():
    assert window_starts(1000) == [0]
    assert window_starts(3000) == [0, 500, 1000, 1500, 2000]
    assert window_starts(3250) == [0, 500, 1000, 1500, 2000, 2250]


def test_a_30_s_record_is_read_in_windows_and_the_calls_aggregated(tmp_path, model_file, capsys):
    record = _challenge_record(tmp_path, "long", 30, 500, "426783006")
    runner = open_model(model_file)
    from ecgproto.deploy.preprocessing import read_ecg

    got = answer(runner, read_ecg(record)[0])
    assert len(got["starts"]) == 5 and got["window_probabilities"].shape == (5, 16)
    assert np.allclose(got["scores"], got["window_probabilities"].mean(axis=0))  # every window passes here
    assert main(["explain", str(record), "--model", str(model_file), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    level = doc["record_level"]
    assert level["windows"] == 5 and level["seconds"] == 30 and "mean of the calibrated" in level["aggregation"]
    assert set(level["carried_by_window_s"]) == set(level["called"])
    assert main(["predict", str(record), "--out", str(tmp_path / "p.csv"), "--model", str(model_file)]) == 0


def test_snomed_table_and_dx_lines(tmp_path):
    table = snomed_table()
    assert table["426783006"][1] == "SR" and table["164889003"][1] == "AFIB"
    assert {scp for _, scp in table.values()} <= set(LABELS)
    record = _challenge_record(tmp_path, "a", 10, 500, "164889003,59118001")
    assert diagnoses(record.with_suffix(".hea")) == ["164889003", "59118001"]


def test_external_evaluation_counts_unreadable_records_and_unmapped_codes(tmp_path, model_file):
    for k in range(6):
        _challenge_record(tmp_path, f"sr{k}", 10 + 5 * k, 500, "426783006")
        _challenge_record(tmp_path, f"af{k}", 10, 250, "164889003,59118001")
    (tmp_path / "af5.dat").write_bytes(b"\x00" * 10)  # unreadable: truncated
    result = evaluate_external(tmp_path, {"final": open_model(model_file)}, 50, 0)
    assert result["records"] == 12 and result["scored"] == 11 and len(result["unreadable"]) == 1
    assert result["unmapped_snomed_codes"] == {"59118001": 6}
    final = result["final"]
    assert final["per_label"]["SR"]["positives"] == 6 and final["per_label"]["AFIB"]["positives"] == 5
    assert final["labels_averaged"] == ["SR", "AFIB"] and 0 <= final["macro_auroc_labels_with_5_positives"] <= 1


@pytest.mark.skipif(not (SHARED / "challenge-sample").is_dir(), reason="Challenge sample absent")
def test_every_challenge_sample_record_gets_an_answer(tmp_path, model_file):
    out = tmp_path / "calls.csv"
    assert main(["predict", str(SHARED / "challenge-sample"), "--out", str(out), "--model", str(model_file)]) == 0
    import pandas as pd

    table = pd.read_csv(out)
    assert len(table) == 47 and not table["reason"].fillna("").str.startswith("unreadable").any()


def test_a_record_over_an_hour_is_refused_from_its_header_before_any_sample_is_read(tmp_path):
    from ecgproto.data.ptbxl import RecordError
    from ecgproto.deploy.preprocessing import MAX_SAMPLES, read_ecg

    hea = tmp_path / "holter.hea"  # 6 h at 500 Hz; its signal file is absent: only the header is read
    hea.write_text(f"holter 12 500 {6 * 3600 * 500}\n" + "".join(
        f"holter.dat 16 1000/mV 16 0 0 0 0 {lead}\n" for lead in
        ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]))
    with pytest.raises(RecordError, match=rf"holter: 360.0 min at 500 Hz .* expected at most {MAX_SAMPLES} "):
        read_ecg(tmp_path / "holter")
    (tmp_path / "holter.hea").write_text(hea.read_text().replace(f" {6 * 3600 * 500}\n", f" {59 * 60 * 2950}\n", 1)
                                         .replace(" 500 ", " 2950 ", 1))  # under an hour, but at 2950 Hz
    with pytest.raises(RecordError, match=r"59.0 min at 2950 Hz"):
        read_ecg(tmp_path / "holter")
