"""Stage `transfer`: synthetic-trained models scored on a real PTB-XL tree they never saw."""
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from ecgproto.data.ptbxl import LABELS, label_matrix, read_metadata
from ecgproto.errors import RecordError
from ecgproto.evaluation import transfer
from ecgproto.model.checkpoint import save_checkpoint
from ecgproto.model.network import BackboneConfig, LinearHeadNet, ProtoECGNet1D, PrototypeConfig

from conftest import MODEL_META


def _models(folder):
    torch.manual_seed(0)
    backbone = BackboneConfig((8, 16), (1, 1), input_norm="lead")
    files = {"final": folder / "final.pt", "baseline": folder / "baseline.pt"}
    prototype_model = ProtoECGNet1D(backbone, PrototypeConfig(len(LABELS), 1, 8, "none")).eval()
    save_checkpoint(files["final"], prototype_model, MODEL_META)
    save_checkpoint(files["baseline"], LinearHeadNet(backbone, len(LABELS)).eval(), MODEL_META)
    return files


def test_scores_every_record_over_the_codes_present(tmp_path, tiny_tree):
    files = _models(tmp_path)
    result = transfer.score(tiny_tree, files, torch.device("cpu"), bootstrap=20, seed=0)
    y = label_matrix(read_metadata(tiny_tree), list(LABELS))
    present = {c for c, n in zip(LABELS, y.sum(0)) if 0 < n < len(y)}
    assert result["records"] == len(y) == 160
    for name in files:
        r = result[name]
        assert set(r["per_code"]) == present
        assert r["ci95"][0] <= r["macro_auroc"] <= r["ci95"][1]
        assert np.isclose(r["macro_auroc"], np.mean(list(r["per_code"].values())), atol=1e-4)


def test_an_unreadable_record_is_left_out_and_counted(tmp_path, tiny_tree):
    tree = tmp_path / "tree"
    shutil.copytree(tiny_tree, tree)
    record = tree / read_metadata(tree)["filename_lr"].iloc[5]
    record.with_suffix(".dat").write_bytes(b"\0" * 100)  # truncated
    result = transfer.score(tree, _models(tmp_path), torch.device("cpu"), bootstrap=5, seed=0)
    assert result["records"] == 159 and result["unreadable_records"] == 1


def test_a_folder_with_nothing_to_score_is_refused_by_name(tmp_path, tiny_tree):
    tree = tmp_path / "tree"
    shutil.copytree(tiny_tree, tree)
    db = pd.read_csv(tree / "ptbxl_database.csv")
    db["scp_codes"] = "{'NORM': 100.0}"  # no code has a positive
    db.to_csv(tree / "ptbxl_database.csv", index=False)
    with pytest.raises(RecordError, match="nothing to score"):
        transfer.score(tree, _models(tmp_path), torch.device("cpu"), bootstrap=5, seed=0)
