"""dvc.yaml must declare what each stage really uses, so that `dvc repro` never calls stale outputs up to
date: every module a stage imports (transitively, within this repository) is covered by a declared
dependency, and every params.yaml key its script reads is declared."""
import ast
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from conftest import PARAMS, REPO

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _local_imports(path: Path) -> set:
    """Files of this repository imported by `path` (stages import `_common` and `ecgproto.*`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative, inside the package
                base = path.parent.relative_to(REPO).as_posix().replace("/", ".")
                names = [f"{base}.{node.module}" if node.module else base]
                names += [f"{n}.{a.name}" for n in names[:1] for a in node.names]
            elif node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            for candidate in (REPO / (name.replace(".", "/") + ".py"), REPO / "stages" / (name + ".py"),
                              REPO / name.replace(".", "/") / "__init__.py"):
                if candidate.is_file():
                    found.add(candidate)
    return found


def imported_files(script: Path) -> set:
    seen, todo = set(), [script]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo += _local_imports(path)
    return seen


def covered(path: Path, deps) -> bool:
    rel = path.relative_to(REPO).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


def _params_read(script: Path) -> set:
    """params.<section>[.<key>] chains in a stage script."""
    return set(re.findall(r"\bparams\.(?!yaml\b)([a-z_]+(?:\.[a-z_0-9]+)?)", script.read_text()))


def declared_params(stage: dict) -> list:
    out = []
    for p in stage.get("params", []):
        out += list(p) if isinstance(p, dict) else [p]
    return out


@pytest.mark.parametrize("name", sorted(DVC))
def test_every_imported_module_is_a_declared_dependency(name):
    stage = DVC[name]
    script = REPO / re.search(r"python (stages/\w+\.py)", stage["cmd"]).group(1)
    deps = [str(d) for d in stage["deps"]]
    missing = sorted(p.relative_to(REPO).as_posix() for p in imported_files(script) if not covered(p, deps))
    assert not missing, f"stage {name} imports {missing}, which dvc.yaml does not declare"
    assert len(imported_files(script)) > 2  # the scan itself works: every stage reaches into ecgproto


@pytest.mark.parametrize("name", sorted(DVC))
def test_every_params_key_a_stage_script_reads_is_declared(name):
    stage = DVC[name]
    script = REPO / re.search(r"python (stages/\w+\.py)", stage["cmd"]).group(1)
    declared = declared_params(stage)
    for key in _params_read(script):
        ok = any(key == d or key.startswith(d + ".") or d.startswith(key + ".") for d in declared)
        assert ok, f"stage {name} reads params.{key}, which dvc.yaml does not declare"


def test_the_check_finds_a_removed_dependency():
    """The scan is not vacuous: without the package among its deps, a stage is reported."""
    stage = DVC["evaluate"]
    script = REPO / "stages/evaluate.py"
    deps = [d for d in map(str, stage["deps"]) if d != "ecgproto"]
    assert any(not covered(p, deps) for p in imported_files(script))
    assert REPO / "ecgproto/inference.py" in imported_files(script)


def test_stages_that_build_a_backbone_declare_every_key_it_reads():
    """A stage that declares `model` key by key must declare each key the backbone reads, or a changed
    key (model.input_norm was one) leaves its cached model in place. (evaluate builds only the
    published-size model this way, its widths and depths from ecgproto/recipes/published.yaml.)"""
    from ecgproto.model import backbone_config

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
