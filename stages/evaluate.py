"""DVC stage `evaluate`: test-fold metrics for the final, projected, joint and baseline models, ROC plot
data, and every test ECG's probabilities (data/test_predictions.csv: what the cross-validation pools)."""
from pathlib import Path

from ecgproto.data.prepare import load_meta, load_split
from ecgproto.evaluation import metrics as evaluation
from ecgproto.evaluation.metrics import MODEL_FILES
from ecgproto.files.atomic import write_json
from ecgproto.model.checkpoint import load_checkpoint
from ecgproto.model.inference import predict
from ecgproto.model.network import count_macs, count_parameters
from ecgproto.recipes import published_size_model
from ecgproto.trust.calibration import calibration_errors

from _common import run, seeded_device


def main(params):
    dev = seeded_device(params)
    meta = load_meta("data/prepared")
    test = load_split("data/prepared", "test")
    labels = meta["labels"]
    evaluable = evaluation.evaluable(test.labels)
    test_folds = meta["folds"]["test"]
    # On the real subset (no fold 10) the evaluated fold is also the early-stopping fold: say so.
    split = "validation" if set(test_folds) & set(meta["folds"]["val"]) else "test"
    headline = {"evaluated_on": f"{split} folds {' '.join(map(str, test_folds))}", "records": int(len(test.ecg_ids)),
                "labels_evaluated": int(evaluable.sum()),
                "labels_excluded": " ".join(c for c, ok in zip(labels, evaluable) if not ok)}
    per_label = {"test_positives": {c: int(n) for c, n in zip(labels, test.labels.sum(0))}}
    sizes, probs_of = {}, {}
    for name, path in MODEL_FILES.items():
        model, state = load_checkpoint(Path(path), dev)
        out = predict(model, test.signals, dev)
        probs = probs_of[name] = out["probs"]
        headline[name], per_label[name] = evaluation.summarise(
            test.labels, probs, labels, params.evaluate.bootstrap, params.evaluate.per_batch_size, params.seed)
        if state.get("calibration") is not None:  # the final model: calibration error before and after
            headline[name].update(calibration_errors(out["logits"], test.labels, state["calibration"]))
        write_json(Path(f"plots/roc/{name}.json"), evaluation.roc_points(test.labels, probs, labels, name))
        sizes[name] = {"parameters": count_parameters(model.cpu()), "macs_per_ecg": count_macs(model.cpu()),
                       "file_bytes": Path(path).stat().st_size}
    published = published_size_model(params)
    sizes["published_resnet18"] = {"parameters": count_parameters(published), "macs_per_ecg": count_macs(published)}
    for key in ("parameters", "macs_per_ecg"):
        sizes[f"published_over_final_{key}"] = round(sizes["published_resnet18"][key] / sizes["final"][key], 2)
    evaluation.write_predictions(Path("data/test_predictions.csv"), test.ecg_ids, test.labels, probs_of, labels)
    write_json(Path("metrics/evaluate.json"), headline)
    write_json(Path("metrics/per_label.json"), per_label)
    write_json(Path("metrics/model_size.json"), sizes)
    return ", ".join(f"{n} macro-AUROC {headline[n]['macro_auroc']:.4f}" for n in MODEL_FILES)


run("evaluate", main)
