"""DVC stage `train_classifier`, after projection. classifier.retrain = last_layer: only the last layer, BCE
+ L1 on the wrong-class weights, on fixed similarities. addon: the add-on too, each prototype tied to its
source ECG. Pruned prototypes keep weight 0 either way."""
import dataclasses
from pathlib import Path

import numpy as np
import torch
from _common import device, run, training_curves

from ecgproto.explain import ModelError
from ecgproto.prepare import load_meta, load_split
from ecgproto.train import (freeze_all_but, load_checkpoint, predict, save_checkpoint, train_addon_after_projection,
                            train_last_layer)


def source_signals(state, train, path):
    """(P, leads, samples) the source ECG of every prototype (zeros where it has none) and a has-source mask."""
    row = {int(e): i for i, e in enumerate(train.ecg_ids)}
    sources = state["prototype_source_ecg_ids"]
    missing = [e for e in sources if e >= 0 and e not in row]
    if missing:
        raise ModelError(f"{path}: source ECGs {missing[:5]} are not in data/prepared's training split; "
                         f"run `dvc repro project` to project onto the current data")
    x = np.zeros((len(sources),) + train.signals.shape[1:], dtype=np.float32)
    for j, e in enumerate(sources):
        if e >= 0:
            x[j] = train.signals[row[e]]
    return x, np.array([e >= 0 for e in sources])


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
        x, has_source = source_signals(state, train, path)
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
