"""DVC stage `transfer`: the models trained on synthetic ECGs, scored on real ones (transfer.folder).

Runs only for a synthetic training set (a model trained on real ECGs would be scored on its own
data); when the folder is absent the metrics file says so instead of a number. The folder is named
in params.yaml, not declared as a DVC dependency (it may be absent): after it changes,
`dvc repro -f transfer`."""
from pathlib import Path

from ecgproto.evaluation import transfer
from ecgproto.evaluation.metrics import MODEL_FILES

from _common import resolve, run, seeded_device, side_measurement


def main(params):
    folder = resolve(params.transfer.folder)
    skipped = None
    if params.data.source != "synthetic":
        skipped = f"trained on real ECGs (data.source: {params.data.source})"
    elif not (folder / "ptbxl_database.csv").is_file():
        skipped = f"{folder}: no PTB-XL tree there (transfer.folder)"
    models = {name: MODEL_FILES[name] for name in ("final", "baseline")}
    result = side_measurement(Path("metrics/transfer.json"), skipped, lambda: transfer.score(
        folder, models, seeded_device(params), params.evaluate.bootstrap, params.seed))
    if not result["computed"]:
        return f"not computed: {result['reason']}"
    return (f"{result['records']} real ECGs of {folder}: final macro-AUROC {result['final']['macro_auroc']:.4f}, "
            f"baseline {result['baseline']['macro_auroc']:.4f}")


run("transfer", main)
