"""DVC stage `train_joint`: everything but the last layer, composite loss, early stopping."""
from pathlib import Path

import torch
from _common import backbone_config, device, prototype_config, run, training_curves

from ecgproto.model import ProtoECGNet1D
from ecgproto.prepare import load_meta, load_split
from ecgproto.train import fit, freeze_all_but, prototype_loss, save_checkpoint


def main(params):
    dev = device(params)
    meta = load_meta("data/prepared")
    train, val = load_split("data/prepared", "train"), load_split("data/prepared", "val")
    model = ProtoECGNet1D(backbone_config(params), prototype_config(params, len(meta["labels"]))).to(dev)
    trained = [model.backbone, model.addon, model.prototypes]
    if params.joint.train_last_layer:
        trained.append(model.last_layer)
    freeze_all_but(model, *trained)
    loss_fn = prototype_loss(torch.tensor(meta["pos_weight"], device=dev),
                             torch.tensor(meta["cooccurrence"], device=dev), params.loss)
    best, epoch = fit(model, train, val, params.train, loss_fn, dev, params.seed, training_curves("train_joint"))
    save_checkpoint(Path("models/joint.pt"), model, meta, best_epoch=epoch)
    return f"best validation macro-AUROC {best:.4f} at epoch {epoch}"


run("train_joint", main)
