"""DVC stage `external`: the final and baseline models scored on other hospitals' ECGs (external.folder, the
PhysioNet/CinC Challenge format: any rate and length, SNOMED-CT labels). When the folder is absent the
metrics file says so instead of a number. The folder is named in params.yaml, not declared as a DVC
dependency (it may be absent): after it changes, `dvc repro -f external`."""
from pathlib import Path

from ecgproto.deploy.predictor import open_model
from ecgproto.evaluation.external import MIN_POSITIVES, evaluate_external
from ecgproto.evaluation.metrics import MODEL_FILES

from _common import log, resolve, run, seeded_device, side_measurement


def main(params):
    seeded_device(params)
    folder = resolve(params.external.folder)
    key = f"macro_auroc_labels_with_{MIN_POSITIVES}_positives"

    def score():
        runners = {name: open_model(Path(MODEL_FILES[name])) for name in ("final", "baseline")}
        return evaluate_external(folder, runners, params.evaluate.bootstrap, params.seed, progress=log.info)
    skipped = None if folder.is_dir() else f"{folder}: no such folder (external.folder)"
    result = side_measurement(Path("metrics/external.json"), skipped, score)
    if not result["computed"]:
        return f"not computed: {result['reason']}"
    return (f"{result['scored']} of {result['records']} ECGs of {folder} scored ({len(result['unreadable'])} "
            f"unreadable, {result['refused_by_guard']} refused by the guard): final {key} {result['final'][key]}, "
            f"baseline {result['baseline'][key]}")


run("external", main)
