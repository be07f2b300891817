"""Stage `transfer`: synthetic-trained models scored on a real PTB-XL tree they never saw."""
import numpy as np
import torch

from ecgproto import transfer
from ecgproto.checkpoint import save_checkpoint
from ecgproto.model import BackboneConfig, LinearHeadNet, ProtoECGNet1D, PrototypeConfig
from ecgproto.ptbxl import LABELS, label_matrix, read_metadata

META = {"labels": list(LABELS), "highpass_hz": 0.5, "filter_order": 1,
        "scaler": {"mean": [0.0] * 12, "std": [0.5] * 12}}


def test_scores_every_record_over_the_codes_present(tmp_path, tiny_tree):
    torch.manual_seed(0)
    backbone = BackboneConfig((8, 16), (1, 1), input_norm="lead")
    files = {"final": tmp_path / "final.pt", "baseline": tmp_path / "baseline.pt"}
    save_checkpoint(files["final"], ProtoECGNet1D(backbone, PrototypeConfig(len(LABELS), 1, 8, "none")).eval(), META)
    save_checkpoint(files["baseline"], LinearHeadNet(backbone, len(LABELS)).eval(), META)
    result = transfer.score(tiny_tree, files, torch.device("cpu"), bootstrap=20, seed=0)
    y = label_matrix(read_metadata(tiny_tree), list(LABELS))
    present = {c for c, n in zip(LABELS, y.sum(0)) if 0 < n < len(y)}
    assert result["records"] == len(y) == 160
    for name in files:
        r = result[name]
        assert set(r["per_code"]) == present
        assert r["ci95"][0] <= r["macro_auroc"] <= r["ci95"][1]
        assert np.isclose(r["macro_auroc"], np.mean(list(r["per_code"].values())), atol=1e-4)
