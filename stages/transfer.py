"""DVC stage `transfer`: the models trained on synthetic ECGs, scored on real ones (transfer.folder).

Runs only for a synthetic training set (a model trained on real ECGs would be scored on its own
data); when the folder is absent the metrics file says so instead of a number. The folder is named
in params.yaml, not declared as a DVC dependency (it may be absent): after it changes,
`dvc repro -f transfer`."""
from pathlib import Path

from ecgproto.errors import RecordError
from ecgproto.evaluation import transfer
from ecgproto.evaluation.metrics import MODEL_FILES
from ecgproto.files.atomic import write_json

from _common import resolve, run, seeded_device


def main(params):
    folder = resolve(params.transfer.folder)
    if params.data.source != "synthetic":
        result = {"computed": False, "reason": f"trained on real ECGs (data.source: {params.data.source})"}
    elif not (folder / "ptbxl_database.csv").is_file():
        result = {"computed": False, "reason": f"{folder}: no PTB-XL tree there (transfer.folder)"}
    else:
        models = {name: MODEL_FILES[name] for name in ("final", "baseline")}
        try:
            result = {"computed": True, **transfer.score(folder, models, seeded_device(params),
                                                         params.evaluate.bootstrap, params.seed)}
        except RecordError as exc:  # an optional side measurement: say why, do not stop the pipeline
            result = {"computed": False, "reason": str(exc)}
    write_json(Path("metrics/transfer.json"), result)
    if not result["computed"]:
        return f"not computed: {result['reason']}"
    return (f"{result['records']} real ECGs of {folder}: final macro-AUROC {result['final']['macro_auroc']:.4f}, "
            f"baseline {result['baseline']['macro_auroc']:.4f}")


run("transfer", main)
