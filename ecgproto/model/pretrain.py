"""Synthetic pretraining of the backbone (stage `pretrain`, off unless pretrain.synthetic_records > 0).

The plain baseline first learns on synthetic ECGs of ecgproto.synth, which carry physiology the real
subset barely has (2AVB, 3AVB, PACE and TRIGU have no positives there), then stage `baseline` starts
from that backbone and learns on the pipeline's own training folds. The synthetic tree is generated,
prepared (folds 1-8 train, 9 stops early; its own scaler) and dropped; only the model file stays.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import torch

from ecgproto.errors import ModelError
from ecgproto.model.network import LinearHeadNet, backbone_config

MODEL_FILE = "baseline.pt"


def pretrain(params, workdir: Path, device, on_epoch=None) -> tuple:
    """(model, its prepare meta, best validation macro-AUROC, epoch): the plain baseline trained on
    synthetic ECGs."""
    from ecgproto.data.prepare import pos_weights, prepare
    from ecgproto.data.synth import generate
    from ecgproto.model.train import bce_loss, fit

    settings = params.pretrain
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".pretrain-") as tmp:
        tree = Path(tmp) / "ptbxl"
        generate(tree, settings.synthetic_records, settings.synthetic_seed, params.data.synthetic_realism)
        split_params = dataclasses.replace(params.prepare, train_folds=tuple(range(1, 9)), val_folds=(9,),
                                           test_folds=(10,), skip_bad_records=False)
        splits, meta = prepare(tree, split_params)
    model = LinearHeadNet(backbone_config(params.model), len(meta["labels"])).to(device)
    loss_fn = bce_loss(torch.tensor(pos_weights(splits["train"].labels, params.prepare.pos_weight_max), device=device))
    train = dataclasses.replace(params.train, max_epochs=settings.max_epochs)
    best, epoch = fit(model, splits["train"], splits["val"], train, loss_fn, device, params.seed,
                      on_epoch or (lambda step, values: None))
    return model, meta, best, epoch


def start_from(model: LinearHeadNet, folder: Path, device) -> bool:
    """Copy the pretrained backbone in `folder` into `model`; False when pretraining is off (no file)."""
    from ecgproto.model.checkpoint import load_checkpoint

    path = Path(folder) / MODEL_FILE
    if not path.exists():
        return False
    pretrained, _ = load_checkpoint(path, device)
    if pretrained.backbone_cfg != model.backbone_cfg:
        raise ModelError(f"{path}: backbone {pretrained.backbone_cfg} differs from params.yaml's "
                         f"{model.backbone_cfg}; rerun stage pretrain")
    model.backbone.load_state_dict(pretrained.backbone.state_dict())
    return True
