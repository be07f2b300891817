"""DVC stage `train_classifier`, after projection. classifier.retrain = last_layer: only the last layer, BCE
+ L1 on the wrong-class weights, on fixed similarities. addon: the add-on too, each prototype tied to its
source ECG. Pruned prototypes keep weight 0 either way."""
import dataclasses
from pathlib import Path

import torch
from _common import device, run, training_curves

from ecgproto.prepare import load_meta, load_split
from ecgproto.projection import source_signals
from ecgproto.checkpoint import load_checkpoint, save_checkpoint
from ecgproto.train import (freeze_all_but, predict, train_addon_after_projection,
                            train_last_layer)


def main(params):
    dev = device(params)
    meta = load_meta("data/prepared")
    train, val = load_split("data/prepared", "train"), load_split("data/prepared", "val")
    path = Path("models/projected.pt")
    model, state = load_checkpoint(path, dev)
    pruned = state.get("prototype_pruned", [False] * len(model.prototypes))
    active = [not p for p in pruned]
    pos_weight = torch.tensor(meta["pos_weight"], device=dev)
    curves = training_curves("train_classifier")
    if params.classifier.retrain == "addon":
        x, has_source = source_signals(state["prototype_source_ecg_ids"], train, path)
        settings = dataclasses.replace(params.train, lr=params.classifier.addon_lr)
        best, epoch = train_addon_after_projection(model, train, val, x, has_source, settings, pos_weight,
                                                   params.loss.l1, dev, params.seed, curves, active=active)
        summary = f"add-on and last layer: best validation macro-AUROC {best:.4f} at epoch {epoch}"
    else:
        freeze_all_but(model, model.last_layer.weight)
        best = train_last_layer(model, predict(model, train.signals, dev)["sims"], train.labels,
                                predict(model, val.signals, dev)["sims"], val.labels, pos_weight, params.loss.l1,
                                params.classifier.lr, params.classifier.steps, dev, curves, active=active)
        summary = f"last layer: best validation macro-AUROC {best:.4f}"
    save_checkpoint(Path("models/final.pt"), model, meta, classifier_retrain=params.classifier.retrain,
                    prototype_source_ecg_ids=state["prototype_source_ecg_ids"], prototype_pruned=pruned)
    return summary


run("train_classifier", main)
