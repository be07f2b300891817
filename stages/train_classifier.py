"""DVC stage `train_classifier`: only the last layer, BCE + L1 on the wrong-class weights; pruned
prototypes keep weight 0."""
from pathlib import Path

import torch
from _common import device, run, training_curves

from ecgproto.prepare import load_meta, load_split
from ecgproto.train import load_checkpoint, predict, save_checkpoint, train_last_layer


def main(params):
    dev = device(params)
    meta = load_meta("data/prepared")
    train, val = load_split("data/prepared", "train"), load_split("data/prepared", "val")
    model, state = load_checkpoint(Path("models/projected.pt"), dev)
    pruned = state.get("prototype_pruned", [False] * len(model.prototypes))
    for p in model.parameters():
        p.requires_grad_(False)
    model.last_layer.weight.requires_grad_(True)
    best = train_last_layer(model, predict(model, train.signals, dev)["sims"], train.labels,
                            predict(model, val.signals, dev)["sims"], val.labels,
                            torch.tensor(meta["pos_weight"], device=dev), params.loss.l1,
                            params.classifier.lr, params.classifier.steps, dev, training_curves("train_classifier"),
                            active=[not p for p in pruned])
    save_checkpoint(Path("models/final.pt"), model, meta,
                    prototype_source_ecg_ids=state["prototype_source_ecg_ids"], prototype_pruned=pruned)
    return f"best validation macro-AUROC {best:.4f}"


run("train_classifier", main)
