"""End to end: the whole DAG with DVC on tiny params in a temporary copy, then an experiment that
changes one loss weight and must rerun only train_joint and what follows it."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ecgproto.data.prepare import load_split
from ecgproto.model.checkpoint import load_checkpoint
from ecgproto.model.inference import latents

from conftest import REPO, sh, tiny_workspace


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return tiny_workspace(tmp_path_factory.mktemp("pipeline"))


@pytest.mark.slow
def test_repro_runs_every_stage_and_writes_metrics(workspace):
    out = sh("dvc repro", workspace)
    for stage in ("check_params", "data", "prepare", "pretrain", "train_joint", "project", "train_classifier", "export",
                  "baseline", "evaluate", "transfer", "explain", "report"):
        assert f"Running stage '{stage}'" in out
    transferred = json.loads((workspace / "metrics/transfer.json").read_text())
    assert transferred["computed"] or "no PTB-XL tree there" in transferred["reason"]
    metrics = json.loads((workspace / "metrics/evaluate.json").read_text())
    for model in ("final", "joint", "baseline"):
        assert 0.0 <= metrics[model]["macro_auroc"] <= 1.0
        assert metrics[model]["macro_auroc_ci_low"] <= metrics[model]["macro_auroc_ci_high"]
    per_label = json.loads((workspace / "metrics/per_label.json").read_text())
    assert set(per_label["final"]) == set(per_label["test_positives"])
    roc = json.loads((workspace / "plots/roc/final.json").read_text())
    assert roc and set(roc[0]) == {"model", "label", "fpr", "tpr"}
    rows = (workspace / "models/projection.csv").read_text().splitlines()
    assert rows[0] == "prototype,class,source_ecg_id,similarity_before,similarity_after,pruned" and len(rows) == 33
    # joint.backbone: frozen_baseline: the prototype model's backbone is the baseline's, bit for bit
    joint = torch.load(workspace / "models/joint.pt", weights_only=True)["state_dict"]
    baseline = torch.load(workspace / "models/baseline.pt", weights_only=True)["state_dict"]
    backbone = [k for k in baseline if k.startswith("backbone.")]
    assert backbone and all(torch.equal(joint[k], baseline[k]) for k in backbone)
    # pruned prototypes (params.yaml: project.prune) have no weight in the final model
    final = torch.load(workspace / "models/final.pt", weights_only=True)
    pruned = final["state_dict"]["prototype_pruned"]
    assert not final["state_dict"]["last_layer.weight"][:, pruned].any()
    # classifier.retrain: addon moved the add-on, yet every projected prototype is its source ECG's latent
    model, _ = load_checkpoint(workspace / "models/final.pt")
    train = load_split(workspace / "data/prepared", "train")
    row = {int(e): i for i, e in enumerate(train.ecg_ids)}
    sources = final["state_dict"]["prototype_source"].tolist()
    sourced = [j for j, e in enumerate(sources) if e >= 0]
    rows = [row[sources[j]] for j in sourced]
    assert final["classifier_retrain"] == "addon"
    torch.testing.assert_close(model.prototypes[sourced].detach(), latents(model, train.signals[rows], "cpu"))
    projected = torch.load(workspace / "models/projected.pt", weights_only=True)["state_dict"]
    assert not torch.equal(projected["addon.0.weight"], final["state_dict"]["addon.0.weight"])
    gallery = sorted(p.stem for p in (workspace / "reports/explain/gallery").glob("*.png"))
    assert gallery == sorted(per_label["test_positives"])
    cases = json.loads((workspace / "reports/explain/cases.json").read_text())
    for case in cases:
        assert case["figure"] is None or (workspace / "reports/explain" / case["figure"]).is_file()
    figures = json.loads((workspace / "metrics/interpretability.json").read_text())
    assert figures["prototypes"] + figures["pruned"] == 32 and 0 <= figures["class_purity_top10"] <= 1
    assert 0 < figures["own_class_share_of_evidence"] <= 1 and 0 <= figures["guard_pass_rate_test"] <= 1
    assert 0 < figures["window_check_ecgs"] <= metrics["records"] and "feature_agreement" in figures
    summary = json.loads((workspace / "metrics/summary.json").read_text())  # what `dvc metrics show` prints
    assert summary["final_macro_auroc"] == metrics["final"]["macro_auroc"] and len(summary) < 40
    assert final["calibration"]["fitted_on"] == "validation folds [9]" and final["guard"] and final["familiarity"]
    assert {"ece_uncalibrated", "ece_calibrated", "brier_calibrated"} <= set(metrics["final"])
    text = (workspace / "reports/report.md").read_text()
    assert text.splitlines()[2].startswith("> **SYNTHETIC DATA.**")
    assert "backbone is the baseline's trained backbone, kept fixed" in text
    assert "retrained the add-on and the last layer with every prototype tied to its source ECG" in text
    for figure in ("figures/roc.png", "figures/curves.png", "explain/gallery/AFIB.png"):
        assert f"]({figure})" in text and (workspace / "reports" / figure).is_file()
    # the prototypes' source ECGs travel in the model file and are the training ECGs they came from
    stored = final["source_signals"].float().numpy()
    np.testing.assert_allclose(stored[sourced], np.asarray(train.signals)[rows], atol=2e-2, rtol=1e-2)
    assert len(final["source_codes"]) == len(sources)
    # the exported ONNX model: the same logits on the test fold (1e-4) and the same calls
    from ecgproto.deploy.onnx_model import DeployedModel
    from ecgproto.model.inference import predict
    from ecgproto.trust.calibration import apply

    test = load_split(workspace / "data/prepared", "test")
    deployed = DeployedModel(workspace / "models/final.onnx").predict(np.asarray(test.signals))
    ours = predict(model, test.signals, "cpu")
    np.testing.assert_allclose(deployed["logits"], ours["logits"], atol=1e-4)
    cuts = np.asarray(final["calibration"]["threshold"])
    assert np.array_equal(apply(deployed["logits"], final["calibration"]) >= cuts,
                          apply(ours["logits"], final["calibration"]) >= cuts)
    assert "up to date" in sh("dvc status", workspace)


@pytest.mark.slow
def test_calibration_and_thresholds_come_from_the_validation_folds_only(workspace):
    """The classifier stage runs, and fits the same calibration, with the test arrays taken away."""
    before = torch.load(workspace / "models/final.pt", weights_only=True)["calibration"]
    stash = workspace / "stash"
    stash.mkdir()
    moved = sorted((workspace / "data/prepared").glob("test_*.npy"))
    assert moved
    for path in moved:
        path.rename(stash / path.name)
    try:
        sh("python stages/train_classifier.py", workspace)
    finally:
        for path in moved:
            (stash / path.name).rename(path)
        stash.rmdir()
    assert torch.load(workspace / "models/final.pt", weights_only=True)["calibration"] == before


@pytest.mark.slow
def test_changing_a_loss_weight_reruns_only_what_depends_on_it(workspace):
    sh("git add -A && git commit -qm base", workspace)
    out = sh("dvc exp run -S loss.clst=0.8", workspace)
    for stage in ("data", "prepare", "baseline"):
        assert f"Stage '{stage}' didn't change, skipping" in out
    for stage in ("train_joint", "project", "train_classifier", "evaluate", "explain",
                  "report"):
        assert f"Running stage '{stage}'" in out
    shown = json.loads(sh("dvc exp show --json", workspace))
    experiments = [e for commit in shown for e in (commit.get("experiments") or [])]
    assert experiments, shown
    exp = experiments[0]["revs"][0]["data"]
    assert exp["params"]["params.yaml"]["data"]["loss"]["clst"] == 0.8
    assert "final_macro_auroc" in exp["metrics"]["metrics/summary.json"]["data"]


def test_stages_import_the_ecgproto_beside_them(tmp_path):
    """`dvc exp run --temp` runs a copy of the repository; its stages must run the copy's code, not the
    editable install's (the original checkout, which may have changed meanwhile)."""
    for name in ("stages", "ecgproto"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "stages/probe.py").write_text("import _common\nimport ecgproto\nprint(ecgproto.__file__)\n")
    out = subprocess.run([sys.executable, "stages/probe.py"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()).resolve().is_relative_to(tmp_path.resolve())
