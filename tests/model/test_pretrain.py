"""Synthetic pretraining: the backbone `baseline` starts from, and the checks around it."""
import dataclasses

import pytest
import torch
import yaml

from ecgproto.config import ConfigError, from_dict
from ecgproto.errors import ModelError
from ecgproto.model.checkpoint import save_checkpoint
from ecgproto.model.network import LinearHeadNet, backbone_config
from ecgproto.model.pretrain import MODEL_FILE, pretrain, start_from

from conftest import PARAMS, REPO


def _tiny(**pretrain):
    return dataclasses.replace(
        PARAMS, model=dataclasses.replace(PARAMS.model, widths=(8, 16), depths=(1, 1)),
        train=dataclasses.replace(PARAMS.train, batch_size=16, patience=1),
        pretrain=dataclasses.replace(PARAMS.pretrain, synthetic_records=200, max_epochs=1, **pretrain))


def test_the_baseline_starts_from_the_pretrained_backbone_and_only_a_matching_one(tmp_path):
    params = _tiny()
    model, meta, best, epoch = pretrain(params, tmp_path, "cpu")
    assert epoch == 1 and 0 <= best <= 1 and list(tmp_path.iterdir()) == []  # the synthetic tree is gone
    save_checkpoint(tmp_path / MODEL_FILE, model, meta, best_epoch=epoch)
    fresh = LinearHeadNet(backbone_config(params.model), 16)
    assert start_from(fresh, tmp_path, "cpu")
    for a, b in zip(fresh.backbone.state_dict().values(), model.backbone.state_dict().values()):
        assert torch.equal(a, b)
    assert not start_from(fresh, tmp_path / "off", "cpu")  # pretraining off: nothing to start from
    other = LinearHeadNet(backbone_config(dataclasses.replace(params.model, widths=(8, 32))), 16)
    with pytest.raises(ModelError, match=f"{MODEL_FILE}: backbone .* rerun stage pretrain"):
        start_from(other, tmp_path, "cpu")


def test_a_synthetic_demo_is_never_pretrained_on_its_own_test_ecgs():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["pretrain"].update(synthetic_records=500, synthetic_seed=raw["data"]["synthetic_seed"])
    with pytest.raises(ConfigError, match="pretrain.synthetic_seed = data.synthetic_seed"):
        from_dict(raw)
    raw["data"].update(source="folder", folder="ptbxl")  # real training data: the same seed is harmless
    from_dict(raw)
