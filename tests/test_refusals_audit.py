"""Cases an independent audit found on the second round, each now a named refusal or the right answer."""
import csv
import json
import os
import subprocess

import numpy as np
import pytest
import torch

from ecgproto.cli import main as cli
from ecgproto.data.ptbxl import write_record
from ecgproto.errors import ModelError
from ecgproto.model.checkpoint import load_checkpoint, save_checkpoint
from ecgproto.model.network import BackboneConfig, ProtoECGNet1D, PrototypeConfig

from conftest import CALIBRATION as CAL
from conftest import MODEL_META

wfdb = pytest.importorskip("wfdb")


@pytest.fixture(scope="module")
def model_file(calibrated_model_file):
    return calibrated_model_file


def _record(folder, name, seed=0, scale=1.0):
    folder.mkdir(parents=True, exist_ok=True)
    mv = 0.02 * np.random.default_rng(seed).standard_normal((12, 1000))
    mv[:, (np.arange(1000) % (60 + 20 * seed)) < 3] += scale
    write_record(folder / name, mv)
    return folder / name


def test_a_dotted_record_name_reads_its_own_files_not_another_records(tmp_path, model_file):
    _record(tmp_path, "x", seed=0)
    dotted = _record(tmp_path, "x.v2", seed=2)
    out = tmp_path / "o.csv"
    assert cli(["predict", str(tmp_path / "x"), str(dotted), "--out", str(out), "--model", str(model_file)]) == 0
    rows = list(csv.DictReader(open(out)))
    assert rows[0]["SR"] != rows[1]["SR"]  # two records, two answers


def test_a_fifo_header_is_refused_by_name_not_waited_on(tmp_path, model_file, capsys):
    os.mkfifo(tmp_path / "f.hea")
    assert cli(["predict", str(tmp_path / "f"), "--out", str(tmp_path / "o.csv"), "--model", str(model_file)]) == 1
    assert "not a regular file" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_an_output_that_is_not_a_regular_file_is_refused(tmp_path, model_file, capsys, kind):
    rec = _record(tmp_path / "in", "r")
    out = tmp_path / "o.csv"
    if kind == "fifo":
        os.mkfifo(out)
    else:
        out = "/dev/null"
    assert cli(["predict", str(rec), "--out", str(out), "--model", str(model_file)]) == 1
    assert "is not a regular file" in capsys.readouterr().err
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


def test_evaluate_external_never_writes_over_a_record(tmp_path, model_file, capsys):
    folder = tmp_path / "ee"
    folder.mkdir()
    wfdb.wrsamp("A1", fs=500, units=["mV"] * 12, p_signal=np.zeros((5000, 12)) + 0.01, fmt=["16"] * 12,
                adc_gain=[1000.0] * 12, baseline=[0] * 12, comments=["Dx: 426783006"], write_dir=str(folder),
                sig_name=["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"])
    before = (folder / "A1.dat").read_bytes()
    for target in (folder / "A1.dat", folder / ".." / "ee" / "A1.hea"):
        assert cli(["evaluate-external", str(folder), "--model", str(model_file), "--bootstrap", "5",
                    "--out", str(target)]) == 1
        assert "refusing to write over an input" in capsys.readouterr().err
    assert (folder / "A1.dat").read_bytes() == before


def test_synth_never_replaces_the_current_folder_or_a_parent(tmp_path, monkeypatch, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    for target in (".", ".."):
        assert cli(["synth", target, "--records", "100", "--overwrite"]) == 1
        assert "the current folder, one of its parents" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_the_gate_from_a_subfolder_compares_the_same_file(tmp_path, monkeypatch, capsys):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "sub" / "metrics").mkdir(parents=True)
    (tmp_path / "sub" / "metrics" / "m.json").write_text(json.dumps({"final": {"macro_auroc": 0.9}}))
    (tmp_path / "m.json").write_text(json.dumps({"final": {"macro_auroc": 0.1}}))
    subprocess.run(["git", "-C", str(tmp_path), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "m"],
                   check=True)
    monkeypatch.chdir(tmp_path / "sub")
    (tmp_path / "sub" / "metrics" / "m.json").write_text(json.dumps({"final": {"macro_auroc": 0.5}}))
    assert cli(["gate", "--file", "metrics/m.json"]) == 1  # 0.5 against sub/metrics/m.json's 0.9, not ../m.json
    assert "0.9000 at HEAD" in capsys.readouterr().err


def test_a_format_212_record_with_gain_0_is_refused_like_format_16(tmp_path):
    from ecgproto.data.wfdb_record import read_leads
    from ecgproto.errors import RecordError

    wfdb.wrsamp("g", fs=100, units=["mV"] * 12, p_signal=np.zeros((1000, 12)) + 0.1, fmt=["212"] * 12,
                adc_gain=[200.0] * 12, baseline=[0] * 12, write_dir=str(tmp_path),
                sig_name=["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"])
    hea = tmp_path / "g.hea"
    hea.write_text(hea.read_text().replace(" 200.0(0)/mV", " 0(0)/mV"))
    with pytest.raises(RecordError, match="non-positive ADC gain"):
        read_leads(tmp_path / "g")


def test_a_calibration_with_an_absurd_slope_is_refused_at_load(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, ProtoECGNet1D(BackboneConfig((8,), (1,)), PrototypeConfig(16, 1, 8, "none")), MODEL_META,
                    calibration={**CAL, "slope": [1e308] * 16})
    with pytest.raises(ModelError, match="slope or intercept beyond"):
        load_checkpoint(path)


def test_a_prototype_class_outside_the_labels_is_refused_by_name(tmp_path, capsys):
    torch.manual_seed(0)
    model = ProtoECGNet1D(BackboneConfig((8,), (1,)), PrototypeConfig(16, 1, 8, "none"))
    model.prototype_class[0] = 99
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, MODEL_META, calibration=CAL)
    assert cli(["export", str(path), "--onnx", str(tmp_path / "m.onnx")]) == 1
    assert "do not index the model's 16 labels" in capsys.readouterr().err and not (tmp_path / "m.onnx").exists()


def test_explain_of_one_record_with_out_dir_writes_its_json(tmp_path, model_file):
    rec = _record(tmp_path / "in", "r")
    assert cli(["explain", str(rec), "--out-dir", str(tmp_path / "out"), "--model", str(model_file)]) == 0
    assert json.loads((tmp_path / "out" / "r.json").read_text())["record"] == "r"
