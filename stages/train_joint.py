"""DVC stage `train_joint`: add-on, prototypes, the last layer (joint.train_last_layer) and the backbone,
unless joint.backbone is frozen_baseline (then the baseline's trained backbone, fixed); composite loss,
early stopping."""
import dataclasses
from pathlib import Path

import torch

from ecgproto.data.prepare import load_meta, load_split
from ecgproto.errors import ModelError
from ecgproto.model.checkpoint import load_checkpoint, save_checkpoint
from ecgproto.model.distributed import is_writer
from ecgproto.model.network import prototype_model
from ecgproto.model.train import fit, freeze_all_but, prototype_loss

from _common import run, seeded_device, training_curves


def baseline_backbone(path: Path, expected, dev):
    """The trained backbone of the baseline checkpoint, which must match params.yaml's architecture."""
    baseline, _ = load_checkpoint(path, dev)
    if baseline.kind != "linear" or baseline.backbone_cfg != expected:
        raise ModelError(f"{path}: expected the baseline with backbone {expected}, found a {baseline.kind!r} model "
                         f"with {getattr(baseline, 'backbone_cfg', None)}; run `dvc repro baseline` first")
    return baseline.backbone


def main(params):
    dev = seeded_device(params)
    meta = load_meta("data/prepared")
    train, val = load_split("data/prepared", "train"), load_split("data/prepared", "val")
    model = prototype_model(params.model, len(meta["labels"])).to(dev)
    trained = [model.addon, model.prototypes]
    if params.joint.backbone == "frozen_baseline":
        model.freeze_backbone(baseline_backbone(Path("models/baseline.pt"), model.backbone_cfg, dev))
    else:
        trained.append(model.backbone)
    if params.joint.train_last_layer:
        trained.append(model.last_layer)
    freeze_all_but(model, *trained)
    loss_fn = prototype_loss(torch.tensor(meta["pos_weight"], device=dev),
                             torch.tensor(meta["cooccurrence"], device=dev), params.loss)
    settings = dataclasses.replace(params.train, lr=params.joint.lr)
    best, epoch = fit(model, train, val, settings, loss_fn, dev, params.seed, training_curves("train_joint"))
    if not is_writer():  # the other torchrun workers trained beside it; rank 0 writes
        return "trained"
    save_checkpoint(Path("models/joint.pt"), model, meta, best_epoch=epoch)
    return f"best validation macro-AUROC {best:.4f} at epoch {epoch} ({params.joint.backbone} backbone)"


run("train_joint", main, distributed=True)
