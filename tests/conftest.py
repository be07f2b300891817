import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ecgproto import config
from ecgproto.data.ptbxl import LABELS
from ecgproto.data.synth import generate

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ECGPROTO_SHARED", REPO.parent / "shared"))
SAMPLE = SHARED / "ptbxl-sample"
REAL_SUBSET = SHARED / "ptbxl-real-subset"

PARAMS = config.load(REPO / "params.yaml")  # tests vary it with dataclasses.replace, never a second copy
# what `prepare` stores and a model file carries, for models built in a test
MODEL_META = {"labels": list(LABELS), "highpass_hz": 0.5, "filter_order": 1,
              "scaler": {"mean": [0.0] * 12, "std": [0.5] * 12}}

# a calibration that lets every label be assessed (enough validation positives, a real slope)
CALIBRATION = {"slope": [1.0] * len(LABELS), "intercept": [0.0] * len(LABELS), "threshold": [0.5] * len(LABELS),
               "fitted": [True] * len(LABELS), "positives": [10] * len(LABELS)}

needs_sample = pytest.mark.skipif(not (SAMPLE / "ptbxl_database.csv").is_file(),
                                  reason=f"real PTB-XL sample not found at {SAMPLE}")


@pytest.fixture(scope="session")
def tiny_tree(tmp_path_factory):
    """A small synthetic PTB-XL tree, written once per test session; tests must not modify it."""
    root = tmp_path_factory.mktemp("synth") / "ptbxl"
    generate(root, 160, 7, PARAMS.data.synthetic_realism)
    return root


# The end-to-end runs: the whole DAG with DVC in a temporary git repository on tiny params.
BIN = Path(sys.executable).parent
TINY = {
    "data": {"synthetic_records": 150},
    "model": {"widths": [8, 16], "depths": [1, 1], "latent_dim": 16, "prototypes_per_class": 2},
    "train": {"max_epochs": 2, "patience": 2, "batch_size": 16, "crop_samples": 800},
    "classifier": {"steps": 20},
    "evaluate": {"bootstrap": 20},
}


def sh(cmd, cwd):
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
    sh("git init -q && git config user.email t@t && git config user.name t && git add -A && git commit -qm init", ws)
    return ws


def stage_workspace(tmp_path, tree, params_edit=None):
    """A temporary copy of the repo's stage scripts and params with data/ptbxl = tree."""
    shutil.copytree(REPO / "stages", tmp_path / "stages")
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    if params_edit:
        params_edit(raw)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    shutil.copytree(tree, tmp_path / "data" / "ptbxl")
    return tmp_path


def run_stage(ws, name):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, f"stages/{name}.py"], cwd=ws, env=env, capture_output=True, text=True)


@pytest.fixture(scope="session")
def calibrated_model_file(tmp_path_factory):
    """A tiny prototype model file (random weights) whose labels can all be assessed."""
    import torch

    from ecgproto.model.checkpoint import save_checkpoint
    from ecgproto.model.network import BackboneConfig, ProtoECGNet1D, PrototypeConfig

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("calibrated") / "final.pt"
    save_checkpoint(path, ProtoECGNet1D(BackboneConfig((8, 16), (1, 1)), PrototypeConfig(len(LABELS), 2, 8, "none")),
                    MODEL_META, calibration=CALIBRATION)
    return path
