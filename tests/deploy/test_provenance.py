"""Every answer says what its model was trained on: a model trained on simulated ECGs says DEMO MODEL in text,
JSON and CSV; a real-data model names its data and commit; a model file without the record says so."""
import csv
import json

import numpy as np
import pytest
import torch

from ecgproto.cli import main
from ecgproto.data.ptbxl import write_record
from ecgproto.deploy.provenance import DEMO, model_note
from ecgproto.model.checkpoint import save_checkpoint
from ecgproto.model.network import BackboneConfig, ProtoECGNet1D, PrototypeConfig

from conftest import MODEL_META

CAL = {"slope": [1.0] * 16, "intercept": [0.0] * 16, "threshold": [0.5] * 16, "fitted": [True] * 16,
       "positives": [10] * 16}
SYNTHETIC = {"data": "synthetic", "description": "simulated ECGs (ecgproto's synthetic PTB-XL)",
             "manifest_sha256": "ab" * 32, "records": {"train": 1600, "val": 200, "test": 200},
             "commit": "0123456789abcdef", "params_sha256": "cd" * 32}
REAL = {**SYNTHETIC, "data": "real", "description": "real ECGs (PTB-XL layout)", "records": {"train": 1442}}


def _model(tmp_path, provenance):
    torch.manual_seed(0)
    path = tmp_path / "final.pt"
    extra = {"provenance": provenance} if provenance is not None else {}
    save_checkpoint(path, ProtoECGNet1D(BackboneConfig((8, 16), (1, 1)), PrototypeConfig(16, 2, 8, "none")),
                    MODEL_META, calibration=CAL, **extra)
    return path


def _record(tmp_path):
    mv = 0.02 * np.random.default_rng(0).standard_normal((12, 1000))
    mv[:, (np.arange(1000) % 80) < 3] += 1.0
    write_record(tmp_path / "rec", mv)
    return tmp_path / "rec"


@pytest.mark.parametrize("provenance, expected", [(SYNTHETIC, DEMO), (REAL, "real ECGs (PTB-XL layout) (train 1442), "
                                                                             "commit 0123456789ab"),
                                                  (None, "does not say what it was trained on")])
def test_every_answer_says_what_the_model_was_trained_on(tmp_path, capsys, provenance, expected):
    model, record = _model(tmp_path, provenance), _record(tmp_path)
    assert main(["explain", str(record), "--model", str(model)]) == 0
    assert expected in capsys.readouterr().out
    assert main(["explain", str(record), "--model", str(model), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert expected in json.dumps(doc["model"])
    assert (doc["model"]["warning"] == DEMO) == (provenance is SYNTHETIC)
    assert main(["predict", str(record), "--out", str(tmp_path / "p.csv"), "--model", str(model)]) == 0
    row = next(csv.DictReader(open(tmp_path / "p.csv")))
    assert (row["model"] == DEMO) == (provenance is SYNTHETIC) and (provenance is not REAL or "commit" in row["model"])


def test_a_hostile_provenance_block_is_shown_only_in_bounded_plain_fields():
    note = model_note({"data": "real", "description": "x" * 10000, "records": {"train": [1, 2]}, "commit": {"a": 1},
                       "evil": "y" * 100})
    assert len(note["trained_on"]) < 200 and "evil" not in note and note["warning"] is None
