"""End to end: the whole DAG with DVC on tiny params in a temporary copy, then an experiment that
changes one loss weight and must rerun only train_joint and what follows it."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import REPO
from ecgproto.prepare import load_split
from ecgproto.inference import latents
from ecgproto.checkpoint import load_checkpoint

BIN = Path(sys.executable).parent
TINY = {
    "data": {"synthetic_records": 150},
    "model": {"widths": [8, 16], "depths": [1, 1], "latent_dim": 16, "prototypes_per_class": 2},
    "train": {"max_epochs": 2, "patience": 2, "batch_size": 16, "crop_samples": 800},
    "classifier": {"steps": 20},
    "evaluate": {"bootstrap": 20},
}


def _sh(cmd, cwd):
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, shell=True)
    assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def tiny_workspace(ws: Path) -> Path:
    """A git repository at `ws` holding the pipeline (stages, ecgproto, dvc.yaml) on TINY params."""
    for name in ("stages", "ecgproto", ".dvc"):
        shutil.copytree(REPO / name, ws / name, ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache"))
    shutil.copy(REPO / "dvc.yaml", ws)
    shutil.copytree(REPO / "benchmarks", ws / "benchmarks")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (ws / ".gitignore").write_text("/data/\n/models/\n")
    _sh("git init -q && git config user.email t@t && git config user.name t && git add -A && git commit -qm init", ws)
    return ws


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return tiny_workspace(tmp_path_factory.mktemp("pipeline"))


def test_repro_runs_every_stage_and_writes_metrics(workspace):
    out = _sh("dvc repro", workspace)
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
    assert 0 < figures["deletion_ecgs"] <= metrics["records"]
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
    from ecgproto.calibration import apply
    from ecgproto.deployed import DeployedModel
    from ecgproto.inference import predict

    test = load_split(workspace / "data/prepared", "test")
    deployed = DeployedModel(workspace / "models/final.onnx").predict(np.asarray(test.signals))
    ours = predict(model, test.signals, "cpu")
    np.testing.assert_allclose(deployed["logits"], ours["logits"], atol=1e-4)
    cuts = np.asarray(final["calibration"]["threshold"])
    assert np.array_equal(apply(deployed["logits"], final["calibration"]) >= cuts,
                          apply(ours["logits"], final["calibration"]) >= cuts)
    assert "up to date" in _sh("dvc status", workspace)


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
        _sh("python stages/train_classifier.py", workspace)
    finally:
        for path in moved:
            (stash / path.name).rename(path)
        stash.rmdir()
    assert torch.load(workspace / "models/final.pt", weights_only=True)["calibration"] == before


def test_changing_a_loss_weight_reruns_only_what_depends_on_it(workspace):
    _sh("git add -A && git commit -qm base", workspace)
    out = _sh("dvc exp run -S loss.clst=0.8", workspace)
    for stage in ("data", "prepare", "baseline"):
        assert f"Stage '{stage}' didn't change, skipping" in out
    for stage in ("train_joint", "project", "train_classifier", "evaluate", "explain",
                  "report"):
        assert f"Running stage '{stage}'" in out
    shown = json.loads(_sh("dvc exp show --json", workspace))
    experiments = [e for commit in shown for e in (commit.get("experiments") or [])]
    assert experiments, shown
    exp = experiments[0]["revs"][0]["data"]
    assert exp["params"]["params.yaml"]["data"]["loss"]["clst"] == 0.8
    assert "final" in exp["metrics"]["metrics/evaluate.json"]["data"]


def test_stages_import_the_ecgproto_beside_them(tmp_path):
    """`dvc exp run --temp` runs a copy of the repository; its stages must run the copy's code, not the
    editable install's (the original checkout, which may have changed meanwhile)."""
    for name in ("stages", "ecgproto"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "stages/probe.py").write_text("import _common\nimport ecgproto\nprint(ecgproto.__file__)\n")
    out = subprocess.run([sys.executable, "stages/probe.py"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()).resolve().is_relative_to(tmp_path.resolve())
