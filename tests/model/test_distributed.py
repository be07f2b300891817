"""Training in several processes: the baseline stage relaunches itself under torchrun (two gloo workers on
CPU), writes one model, and validates about as well as one process on the same data."""
import dataclasses
import json
import re

import pytest
import yaml

from ecgproto.errors import ConfigError

from conftest import PARAMS, TINY, run_stage, stage_workspace


def _baseline(ws, processes: int) -> tuple:
    raw = yaml.safe_load((ws / "params.yaml").read_text())
    raw["train"]["processes"] = processes
    (ws / "params.yaml").write_text(yaml.safe_dump(raw))
    result = run_stage(ws, "baseline")
    assert result.returncode == 0, result.stderr
    found = re.search(r"best validation macro-AUROC ([0-9.]+) at epoch (\d+)", result.stderr)
    assert found, result.stderr
    return float(found.group(1)), int(found.group(2)), result.stderr


@pytest.mark.slow
def test_the_baseline_under_torchrun_with_two_processes_writes_one_model_and_validates_alike(tiny_tree, tmp_path):
    def tiny(raw):
        for section in ("model", "train"):
            raw[section].update(TINY[section])
        raw["train"].update(max_epochs=4, patience=4)
        raw["pretrain"]["synthetic_records"] = 0
    ws = stage_workspace(tmp_path, tiny_tree, tiny)
    assert run_stage(ws, "prepare").returncode == 0
    one, _, _ = _baseline(ws, 1)
    (ws / "models/baseline.pt").rename(tmp_path / "one_process.pt")
    two, epoch, log = _baseline(ws, 2)
    assert "training in 2 processes under torchrun" in log
    assert "[rank 0]" in log and "[rank 1]" not in log  # rank 0 speaks and writes for the group
    assert sorted(p.name for p in (ws / "models").iterdir()) == ["baseline.pt"]
    curves = json.loads((ws / "dvclive/baseline/metrics.json").read_text())
    assert curves["step"] >= epoch - 1  # one writer: the curves of one run
    # the same data, the same global batch: the two runs differ by their record order and crops only
    assert two == pytest.approx(one, abs=0.1)


def test_processes_must_share_the_batch_evenly_and_cannot_weigh_records():
    with pytest.raises(ConfigError, match="train.batch_size = 32 over train.processes = 3"):
        dataclasses.replace(PARAMS.train, processes=3).validate()
    with pytest.raises(ConfigError, match="train.balanced_sampling"):
        dataclasses.replace(PARAMS.train, processes=2, balanced_sampling=True).validate()
    with pytest.raises(ConfigError, match="train.processes"):
        dataclasses.replace(PARAMS.train, processes=0).validate()
    dataclasses.replace(PARAMS.train, processes=4).validate()
