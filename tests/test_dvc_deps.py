"""dvc.yaml must declare what each stage really uses: exactly the code files its script runs (so `dvc repro`
neither calls stale outputs up to date nor reruns a stage for code it never runs), and every params.yaml key
its script reads."""
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from ecgproto.tools.code_deps import code_deps, imported_files, is_code, rewrite, stage_scripts

from conftest import PARAMS, REPO

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def code_deps_declared(stage: dict) -> list:
    return [d for d in map(str, stage["deps"]) if is_code(d)]


def _params_read(script: Path) -> set:
    """params.<section>[.<key>] chains in a stage script."""
    return set(re.findall(r"\bparams\.(?!yaml\b)([a-z_]+(?:\.[a-z_0-9]+)?)", script.read_text()))


def declared_params(stage: dict) -> list:
    out = []
    for p in stage.get("params", []):
        out += list(p) if isinstance(p, dict) else [p]
    return out


@pytest.mark.parametrize("name", sorted(DVC))
def test_each_stage_declares_exactly_the_code_it_runs(name):
    """Missing code would leave stale outputs up to date; extra code would rerun a stage for an edit it never
    runs (a docstring in cli.py retraining every model). `make deps` regenerates the lists."""
    script = stage_scripts()[name]
    wanted, declared = code_deps(script), code_deps_declared(DVC[name])
    assert declared == wanted, (f"stage {name}: dvc.yaml lists {sorted(set(declared) - set(wanted))} that it never "
                                f"runs and misses {sorted(set(wanted) - set(declared))}; run `make deps`")
    assert len(wanted) > 3  # the scan itself works: every stage reaches into ecgproto


def test_the_scan_follows_lazy_imports_and_package_inits():
    found = imported_files(REPO / "stages/evaluate.py")
    assert REPO / "ecgproto/model/inference.py" in found  # imported inside a function
    assert REPO / "ecgproto/model/__init__.py" in found


def test_report_and_explanation_code_reruns_no_training():
    """The point of exact deps: the report's and the explanations' own modules are not training code."""
    for module in ("ecgproto/report/markdown.py", "ecgproto/report/ecgplot.py", "ecgproto/trust/explanation_text.py",
                   "ecgproto/cli.py", "ecgproto/deploy/explain_records.py"):
        users = {name for name, stage in DVC.items() if module in code_deps_declared(stage)}
        assert not users & {"data", "prepare", "pretrain", "baseline", "train_joint", "project", "train_classifier"}, \
            f"{module} is declared by training stages {sorted(users)}"


def test_rewriting_dvc_yaml_keeps_data_deps_and_comments():
    text = (REPO / "dvc.yaml").read_text()
    assert rewrite(text, {name: code_deps(s) for name, s in stage_scripts().items()}) == text
    changed = rewrite(text, {"report": ["stages/report.py"]})
    report = yaml.safe_load(changed)["stages"]["report"]["deps"]
    assert code_deps_declared({"deps": report}) == ["stages/report.py"] and "metrics/evaluate.json" in report
    assert changed.count("#") == text.count("#")


@pytest.mark.parametrize("name", sorted(DVC))
def test_every_params_key_a_stage_script_reads_is_declared(name):
    stage = DVC[name]
    script = REPO / re.search(r"python (stages/\w+\.py)", stage["cmd"]).group(1)
    declared = declared_params(stage)
    for key in _params_read(script):
        ok = any(key == d or key.startswith(d + ".") or d.startswith(key + ".") for d in declared)
        assert ok, f"stage {name} reads params.{key}, which dvc.yaml does not declare"


def test_stages_that_build_a_backbone_declare_every_key_it_reads():
    """A stage that declares `model` key by key must declare each key the backbone reads, or a changed
    key (model.input_norm was one) leaves its cached model in place. (evaluate builds only the
    published-size model this way, its widths and depths from ecgproto/recipes/published.yaml.)"""
    from ecgproto.model.network import backbone_config

    class Recorder:
        def __init__(self, values):
            self.values, self.read = values, set()

        def __getattr__(self, name):
            self.read.add(name)
            return self.values[name]

    model = Recorder(dataclasses.asdict(PARAMS.model))
    backbone_config(model)
    for name in ("baseline",):
        declared = declared_params(DVC[name])
        missing = sorted(k for k in model.read if "model" not in declared and f"model.{k}" not in declared)
        assert not missing, f"stage {name} builds a backbone that reads model.{missing}, not declared in dvc.yaml"
