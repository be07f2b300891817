"""The deployable install: `pip install .` without extras pulls neither PyTorch nor DVC, and its `ecgproto
explain --model final.onnx` answers on a record. Builds a fresh virtualenv from the package registry (a few
minutes; skipped, with the reason, when the registry cannot be reached)."""
import subprocess
import sys

import pytest
import torch

from ecgproto.deploy.export import export_onnx
from ecgproto.model.checkpoint import load_checkpoint, save_checkpoint
from ecgproto.model.network import BackboneConfig, ProtoECGNet1D, PrototypeConfig

from conftest import MODEL_META, REPO, SAMPLE, needs_sample


def _registry_reachable(tmp_path) -> bool:
    probe = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d",
                            str(tmp_path / "probe"), "six"], capture_output=True, text=True, timeout=120)
    return probe.returncode == 0


@pytest.mark.slow
@needs_sample
def test_the_core_install_explains_with_onnx_and_has_no_torch_or_dvc(tmp_path):
    if not _registry_reachable(tmp_path):
        pytest.skip("the package registry cannot be reached: the core install cannot be built here")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin/pip"), "install", "--quiet", str(REPO)], capture_output=True, text=True,
                         timeout=1200)
    assert pip.returncode == 0, pip.stderr[-2000:]
    for missing in ("torch", "dvc", "pandas", "sklearn"):  # pandas may come with wfdb; torch and dvc never
        found = subprocess.run([str(venv / "bin/python"), "-c", f"import {missing}"], capture_output=True)
        if missing in ("torch", "dvc"):
            assert found.returncode != 0, f"the core install pulled {missing}"
    torch.manual_seed(0)
    pt = tmp_path / "final.pt"
    save_checkpoint(pt, ProtoECGNet1D(BackboneConfig((8, 16), (1, 1)), PrototypeConfig(16, 2, 8, "none")),
                    MODEL_META, calibration={"slope": [1.0] * 16, "intercept": [0.0] * 16, "threshold": [0.5] * 16,
                                             "fitted": [True] * 16, "positives": [10] * 16})
    model, state = load_checkpoint(pt, require_prototypes=True)
    export_onnx(model, state, tmp_path / "final.onnx")
    run = subprocess.run([str(venv / "bin/ecgproto"), "explain", str(SAMPLE / "records100/00000/00001_lr"),
                          "--model", str(tmp_path / "final.onnx")], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("record 00001_lr\nmeasured: HR ")
    # the package's data files travel in the wheel: the SNOMED-CT table and the named recipes
    read = ("from importlib import resources; "
            "print(resources.files('ecgproto.data').joinpath('tables', 'snomed_rhythm.csv').read_text().count('\\n'), "
            "resources.files('ecgproto.recipes').joinpath('published.yaml').is_file())")
    data = subprocess.run([str(venv / "bin/python"), "-c", read], capture_output=True, text=True, cwd=tmp_path)
    assert data.returncode == 0 and data.stdout.split() == ["20", "True"], data.stderr[-1000:] + data.stdout
