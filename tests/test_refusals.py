"""Hostile and careless input, second round: an output never replaces an input, the gate never passes
what it cannot compare, units and byte offsets are honoured, recipe names stay names, and files that are
not regular files are refused by name."""
import json
import os
import subprocess

import numpy as np
import pytest
import torch

from ecgproto.cli import main as cli
from ecgproto.data.ptbxl import LABELS, write_record
from ecgproto.data.wfdb_record import LEADS, read_leads
from ecgproto.errors import RecordError
from ecgproto.model.checkpoint import save_checkpoint
from ecgproto.model.network import BackboneConfig, ProtoECGNet1D, PrototypeConfig

META = {"labels": list(LABELS), "highpass_hz": 0.5, "filter_order": 1,
        "scaler": {"mean": [0.0] * 12, "std": [1.0] * 12}}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "final.pt"
    torch.manual_seed(0)
    save_checkpoint(path, ProtoECGNet1D(BackboneConfig((8,), (1,)), PrototypeConfig(len(LABELS), 1, 8, "none")), META)
    return path


def _record(folder, name="rec", seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(1000) / 100
    mv = 0.05 * np.random.default_rng(seed).standard_normal((12, 1000))
    mv[:, (np.arange(1000) % 80) < 3] += 1.0  # beats every 0.8 s
    write_record(folder / name, mv + 0.1 * np.sin(t))
    return folder / name


def _snapshot(*paths):
    return {str(p): p.read_bytes() for p in paths}


@pytest.mark.parametrize("target", ["hea", "dat", "model", "symlink", "dotdot", "hardlink"])
def test_predict_and_explain_never_write_over_an_input(tmp_path, model_file, target, capsys):
    rec = _record(tmp_path / "in")
    model = tmp_path / "final.pt"
    model.write_bytes(model_file.read_bytes())
    out = {"hea": rec.with_suffix(".hea"), "dat": rec.with_suffix(".dat"), "model": model,
           "symlink": tmp_path / "link.csv", "dotdot": tmp_path / "in" / ".." / "in" / "rec.dat",
           "hardlink": tmp_path / "hard.csv"}[target]
    if target == "symlink":
        out.symlink_to(rec.with_suffix(".dat"))
    if target == "hardlink":
        os.link(rec.with_suffix(".hea"), out)
    before = _snapshot(rec.with_suffix(".hea"), rec.with_suffix(".dat"), model)
    assert cli(["predict", str(rec), "--out", str(out), "--model", str(model)]) == 1
    assert "refusing to write over an input" in capsys.readouterr().err
    if target in ("symlink", "hardlink"):  # a figure name that leads to an input
        plot = tmp_path / "plot.png"
        (plot.symlink_to if target == "symlink" else lambda src: os.link(src, plot))(rec.with_suffix(".dat"))
        assert cli(["explain", str(rec), "--plot", str(plot), "--model", str(model)]) == 1
        assert "refusing to write over an input" in capsys.readouterr().err
    assert _snapshot(rec.with_suffix(".hea"), rec.with_suffix(".dat"), model) == before


def test_a_plot_is_written_only_in_a_format_it_can_honour(tmp_path, model_file, capsys):
    rec = _record(tmp_path / "in")
    assert cli(["explain", str(rec), "--plot", str(tmp_path / "case.txt"), "--model", str(model_file)]) == 1
    assert "expected a file name ending in .png, .svg, .pdf" in capsys.readouterr().err
    assert not (tmp_path / "case.txt").exists()
    assert cli(["explain", str(rec), "--plot", str(tmp_path / "case.svg"), "--model", str(model_file)]) == 0
    assert (tmp_path / "case.svg").read_text().lstrip().startswith("<?xml")


def test_out_dir_never_replaces_a_file_unless_overwrite_says_so(tmp_path, model_file, capsys):
    _record(tmp_path / "in", "a", 1)
    _record(tmp_path / "in", "b", 2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.json").write_text("mine")
    args = ["explain", str(tmp_path / "in"), "--out-dir", str(out), "--model", str(model_file), "--plots"]
    assert cli(args) == 1
    assert "refusing to replace them" in capsys.readouterr().err
    assert (out / "a.json").read_text() == "mine" and not (out / "b.json").exists()
    assert cli(args + ["--overwrite"]) == 0
    assert json.loads((out / "a.json").read_text())["record"] == "a"
    # --overwrite never extends to an input: a figure name that is a link to a record's signal file
    (out / "b.png").unlink()
    (out / "b.png").symlink_to(tmp_path / "in" / "b.dat")
    before = (tmp_path / "in" / "b.dat").read_bytes()
    assert cli(args + ["--overwrite"]) == 1
    assert "refusing to write over an input" in capsys.readouterr().err
    assert (tmp_path / "in" / "b.dat").read_bytes() == before


def test_export_refuses_its_own_input_through_a_link(tmp_path, model_file, capsys):
    link = tmp_path / "same.onnx"
    link.symlink_to(model_file)
    before = model_file.read_bytes()
    assert cli(["export", str(model_file), "--onnx", str(link)]) == 1
    assert "refusing to write over an input" in capsys.readouterr().err
    assert model_file.read_bytes() == before


def _repo(tmp_path, value):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "m.json").write_text(json.dumps({"final": {"macro_auroc": value}}))
    subprocess.run(["git", "-C", str(tmp_path), "add", "m.json"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "m"],
                   check=True)


@pytest.mark.parametrize("against, doc, message", [
    ("no-such-revision", {"final": {"macro_auroc": 0.9}}, "not a git revision here"),
    ("HEAD~5", {"final": {"macro_auroc": 0.9}}, "not a git revision here"),
    ("HEAD", {"final": {"macro_auroc": "0.9"}}, "not a number"),
    ("HEAD", {"final": {"macro_auroc": True}}, "not a number"),
    ("HEAD", {"final": {"macro_auroc": 1e300}}, "expected a finite number"),
])
def test_the_gate_fails_what_it_cannot_compare(tmp_path, monkeypatch, capsys, against, doc, message):
    _repo(tmp_path, 0.9)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.json").write_text(json.dumps(doc))
    assert cli(["gate", "--file", "m.json", "--against", against]) == 1
    assert message in capsys.readouterr().err


def test_the_gate_fails_a_file_missing_at_the_revision_and_deep_json(tmp_path, monkeypatch, capsys):
    _repo(tmp_path, 0.9)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "other.json").write_text(json.dumps({"final": {"macro_auroc": 0.9}}))
    assert cli(["gate", "--file", "other.json", "--metric", "final.macro_auroc"]) == 1
    assert "the revision has no such file" in capsys.readouterr().err
    (tmp_path / "deep.json").write_text("[" * 100000 + "]" * 100000)
    assert cli(["gate", "--file", "deep.json"]) == 1
    assert "nested too deeply" in capsys.readouterr().err
    assert cli(["gate", "--file", "m.json"]) == 0


@pytest.mark.parametrize("name", ["../../params", "/etc/passwd", "published.yaml", "", "recipes/published"])
def test_a_recipe_is_a_name_never_a_path(name, capsys):
    assert cli(["recipe", name]) == 1
    assert "a recipe is a name, not a path" in capsys.readouterr().err


def _rewrite_units(rec, unit, scale):
    """The same record stored in another unit: samples unchanged, ADC units per unit scaled (1 mV = 1000 uV)."""
    lines = rec.with_suffix(".hea").read_text().splitlines()
    out = [lines[0]] + [ln.replace("1000.0(0)/mV", f"{1000.0 * scale:g}(0)/{unit}") for ln in lines[1:]]
    rec.with_suffix(".hea").write_text("\n".join(out) + "\n")


@pytest.mark.parametrize("unit, scale", [("uV", 1e-3), ("µV", 1e-3), ("V", 1e3), ("mV", 1.0)])
def test_units_are_honoured(tmp_path, unit, scale):
    rec = _record(tmp_path)
    expected = read_leads(rec)
    _rewrite_units(rec, unit, scale)
    assert np.allclose(read_leads(rec), expected, atol=1e-6)


def test_a_unit_that_is_not_a_voltage_is_refused_by_name(tmp_path):
    rec = _record(tmp_path)
    _rewrite_units(rec, "mmHg", 1.0)
    with pytest.raises(RecordError, match=r"lead I is in 'mmHg'; expected a voltage"):
        read_leads(rec)


def test_a_byte_offset_is_honoured_and_a_valid_record_is_never_called_truncated(tmp_path):
    wfdb = pytest.importorskip("wfdb")
    rec = _record(tmp_path)
    expected = read_leads(rec)
    data = rec.with_suffix(".dat").read_bytes()
    (tmp_path / "rec.mat").write_bytes(b"M" * 24 + data)
    hea = rec.with_suffix(".hea").read_text().replace("rec.dat 16 ", "rec.mat 16+24 ")
    rec.with_suffix(".hea").write_text(hea)
    assert np.allclose(read_leads(rec), expected)
    assert np.allclose(read_leads(rec), wfdb.rdrecord(str(rec)).p_signal.T, atol=1e-6)
    (tmp_path / "rec.mat").write_bytes(b"M" * 24 + data[:-2])
    with pytest.raises(RecordError, match="truncated"):
        read_leads(rec)


def test_a_fifo_or_folder_is_refused_before_it_is_read(tmp_path):
    rec = _record(tmp_path)
    rec.with_suffix(".dat").unlink()
    os.mkfifo(rec.with_suffix(".dat"))  # reading it would hang forever
    with pytest.raises(RecordError, match="not a regular file"):
        read_leads(rec)
    os.unlink(rec.with_suffix(".dat"))
    rec.with_suffix(".dat").mkdir()
    with pytest.raises(RecordError, match="is a folder"):
        read_leads(rec)


def test_a_sparse_signal_file_is_refused_by_its_size_without_reading_it(tmp_path):
    rec = _record(tmp_path)
    with open(rec.with_suffix(".dat"), "r+b") as f:
        f.truncate(2 * 2 ** 30)  # 2 GB, sparse: no disk used
    with pytest.raises(RecordError, match="MB; a signal file"):
        read_leads(rec)


def test_non_ascii_comments_and_names_are_read_binary_is_refused(tmp_path):
    rec = _record(tmp_path)
    text = rec.with_suffix(".hea").read_text()
    rec.with_suffix(".hea").write_text(text + "# Patient: Müller, 心电图\n", encoding="utf-8")
    assert read_leads(rec).shape == (12, 1000)
    rec.with_suffix(".hea").write_bytes(text.encode() + "# Station: Zürich\n".encode("latin-1"))
    assert read_leads(rec).shape == (12, 1000)
    rec.with_suffix(".hea").write_bytes(b"\x00\x01" + text.encode())
    with pytest.raises(RecordError, match="NUL bytes"):
        read_leads(rec)


def test_leads_are_found_by_name_in_any_order_and_case_and_missing_ones_named(tmp_path):
    rec = _record(tmp_path)
    expected = read_leads(rec)
    lines = rec.with_suffix(".hea").read_text().splitlines()
    renamed = [ln.replace(" AVR", " aVR").replace(" AVL", " avl") for ln in lines[1:]]
    rec.with_suffix(".hea").write_text("\n".join([lines[0]] + renamed) + "\n")
    assert np.array_equal(read_leads(rec), expected)
    rec.with_suffix(".hea").write_text("\n".join([lines[0]] + [ln.replace(" V4", " X4") for ln in lines[1:]]) + "\n")
    with pytest.raises(RecordError, match=r"leads \['V4'\] are missing"):
        read_leads(rec)
    assert LEADS[3] == "AVR"


def test_a_folder_or_fifo_given_as_model_is_named(tmp_path, capsys):
    rec = _record(tmp_path / "in")
    assert cli(["predict", str(rec), "--out", str(tmp_path / "o.csv"), "--model", str(tmp_path)]) == 1
    assert "is a folder; expected a model file" in capsys.readouterr().err
    os.mkfifo(tmp_path / "m.onnx")
    assert cli(["predict", str(rec), "--out", str(tmp_path / "o.csv"), "--model", str(tmp_path / "m.onnx")]) == 1
    assert "not a regular file" in capsys.readouterr().err
