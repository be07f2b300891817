"""DVC stage `baseline`: the same backbone with a plain linear head, BCE only, same training settings."""
from pathlib import Path

import torch

from ecgproto.data.prepare import load_meta, load_split
from ecgproto.model.checkpoint import save_checkpoint
from ecgproto.model.distributed import is_writer
from ecgproto.model.network import LinearHeadNet, backbone_config
from ecgproto.model.pretrain import start_from
from ecgproto.model.train import bce_loss, fit

from _common import run, seeded_device, training_curves


def main(params):
    dev = seeded_device(params)
    meta = load_meta("data/prepared")
    train, val = load_split("data/prepared", "train"), load_split("data/prepared", "val")
    model = LinearHeadNet(backbone_config(params.model), len(meta["labels"])).to(dev)
    pretrained = start_from(model, Path("models/pretrained"), dev)
    loss_fn = bce_loss(torch.tensor(meta["pos_weight"], device=dev))
    best, epoch = fit(model, train, val, params.train, loss_fn, dev, params.seed, training_curves("baseline"))
    if not is_writer():  # the other torchrun workers trained beside it; rank 0 writes
        return "trained"
    save_checkpoint(Path("models/baseline.pt"), model, meta, best_epoch=epoch)
    start = " (from the pretrained backbone)" if pretrained else ""
    return f"best validation macro-AUROC {best:.4f} at epoch {epoch}{start}"


run("baseline", main, distributed=True)
