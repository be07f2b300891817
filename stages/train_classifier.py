"""DVC stage `train_classifier`, after projection. classifier.retrain = last_layer: only the last layer, BCE
+ L1 on the wrong-class weights, on fixed similarities. addon: the add-on too, each prototype tied to its
source ECG. Pruned prototypes keep weight 0 either way. Then, into the final model file: per-class
calibration and thresholds (validation folds only), and the guard's settings with the training ECGs'
best-similarity quantiles. The test folds are never read here."""
import dataclasses
from pathlib import Path

import torch

from ecgproto.data.prepare import load_meta, load_split
from ecgproto.model.checkpoint import load_checkpoint, save_checkpoint
from ecgproto.model.distributed import is_writer
from ecgproto.model.inference import predict
from ecgproto.model.projection import source_signals
from ecgproto.model.train import freeze_all_but, train_addon_after_projection, train_last_layer
from ecgproto.trust import calibration
from ecgproto.trust.guard import best_similarity, familiarity_reference

from _common import run, seeded_device, training_curves


def provenance(meta: dict) -> dict:
    """What the model was trained on, and from which code: it travels in the model file (.pt and .onnx) and
    `explain` and `predict` print it (a model trained on simulated ECGs says so on every answer)."""
    import hashlib
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return {**meta.get("trained_on", {"data": "unknown"}),
            "commit": commit.stdout.strip() if commit.returncode == 0 else None,
            "params_sha256": hashlib.sha256(Path("params.yaml").read_bytes()).hexdigest()}


def main(params):
    dev = seeded_device(params)
    meta = load_meta("data/prepared")
    train, val = load_split("data/prepared", "train"), load_split("data/prepared", "val")
    path = Path("models/projected.pt")
    model, _ = load_checkpoint(path, dev, require_prototypes=True)
    pos_weight = torch.tensor(meta["pos_weight"], device=dev)
    curves = training_curves("train_classifier")
    if params.classifier.retrain == "addon":
        x = source_signals(model, train, str(path))
        best, epoch = train_addon_after_projection(model, train, val, x, pos_weight, params, dev, curves)
        summary = f"add-on and last layer: best validation macro-AUROC {best:.4f} at epoch {epoch}"
    else:
        freeze_all_but(model, model.last_layer.weight)
        best = train_last_layer(model, predict(model, train.signals, dev)["sims"], train.labels,
                                predict(model, val.signals, dev)["sims"], val.labels, pos_weight, params, dev, curves)
        summary = f"last layer: best validation macro-AUROC {best:.4f}"
    if not is_writer():  # the other torchrun workers trained beside it; rank 0 calibrates and writes
        return "trained"
    calib = calibration.fit(predict(model, val.signals, dev)["logits"], val.labels, meta["folds"]["val"])
    train_best = best_similarity(predict(model, train.signals, dev)["sims"], model.active().bool().cpu().numpy())
    reference = familiarity_reference(train_best, params.guard.familiarity_percentile)
    # the few source ECGs of the prototypes travel with the model, so `ecgproto explain --plot` can show
    # them with no training data at hand (float16: half the size, far below the grid's resolution)
    codes = [" ".join(c for c, v in zip(meta["labels"], train.labels[row]) if v > 0) if row is not None else ""
             for row in (train.row_of().get(s) for s in model.prototype_source.tolist())]
    save_checkpoint(Path("models/final.pt"), model, meta, classifier_retrain=params.classifier.retrain,
                    provenance=provenance(meta),
                    calibration=calib, familiarity=reference, guard=dataclasses.asdict(params.guard),
                    explain={"duplicate_cosine": params.explain.duplicate_cosine},
                    source_signals=torch.from_numpy(source_signals(model, train, str(path))).half(),
                    source_codes=codes, cooccurrence={a: dict(zip(meta["labels"], row)) for a, row in
                                                      zip(meta["labels"], meta["cooccurrence"])})
    return summary


run("train_classifier", main, distributed=True)
