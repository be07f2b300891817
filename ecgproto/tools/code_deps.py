"""The code each DVC stage really runs: the modules its script imports, followed through the package (lazy,
function-level imports included), so that dvc.yaml can list exactly those files and an edit to the report's
wording reruns the report, not the training. `python -m ecgproto.tools.code_deps --write` (`make deps`)
rewrites the code lines of every stage's deps in dvc.yaml; tests/test_dvc_deps.py checks they are exact."""
from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _module_file(name: str, repo: Path) -> list:
    """The files that importing dotted `name` executes: each package's __init__.py on the way, and the
    module itself (a stage's own helper under stages/ too)."""
    parts = name.split(".")
    found = [repo / "stages" / f"{name}.py"] if len(parts) == 1 else []
    for i in range(1, len(parts) + 1):
        found += [repo.joinpath(*parts[:i], "__init__.py"), repo.joinpath(*parts[:i - 1], parts[i - 1] + ".py")]
    return [p for p in found if p.is_file()]


def _imports(path: Path, repo: Path) -> set:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = ".".join(path.parent.relative_to(repo).parts[:len(path.parent.relative_to(repo).parts)
                                                              - node.level + 1])
            module = f"{base}.{node.module}" if node.module else base
            names = [module] + [f"{module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            found.update(_module_file(name, repo))
    return found


def imported_files(script: Path, repo: Path = REPO) -> set:
    """Every file of this repository that running `script` can execute (transitively)."""
    seen, todo = set(), [Path(script)]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo += _imports(path, repo)
    return seen


def stage_scripts(repo: Path = REPO) -> dict:
    """{stage name: its script} from dvc.yaml."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    return {name: repo / re.search(r"python (stages/\w+\.py)", s["cmd"]).group(1) for name, s in stages.items()}


def code_deps(script: Path, repo: Path = REPO) -> list:
    """The stage's code deps as dvc.yaml lists them: its script first, then the rest sorted."""
    rest = sorted((p.relative_to(repo).as_posix() for p in imported_files(script, repo) if p != script),
                  key=lambda name: (not name.startswith("stages/"), name))
    return [script.relative_to(repo).as_posix(), *rest]


def is_code(dep: str) -> bool:
    return dep.startswith(("stages/", "ecgproto"))


def rewrite(text: str, wanted: dict) -> str:
    """dvc.yaml's text with each stage's code deps replaced by wanted[stage] (comments and data deps kept)."""
    out, stage, in_deps = [], None, False
    for line in text.splitlines():
        stage_match = re.match(r"^  (\w+):\s*$", line)
        if stage_match:
            stage, in_deps = stage_match.group(1), False
        elif re.match(r"^    deps:\s*$", line):
            in_deps = True
            out.append(line)
            out += [f"      - {dep}" for dep in wanted.get(stage, [])]
            continue
        elif in_deps and not re.match(r"^      - ", line):
            in_deps = False
        item = re.match(r"^      - (\S+)", line)
        if in_deps and item and is_code(item.group(1)):
            continue  # replaced above
        out.append(line)
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite dvc.yaml (otherwise print what it would list)")
    args = parser.parse_args(argv)
    wanted = {name: code_deps(script) for name, script in stage_scripts().items()}
    if args.write:
        path = REPO / "dvc.yaml"
        path.write_text(rewrite(path.read_text(), wanted))
    else:
        for name, deps in wanted.items():
            print(f"{name}: {' '.join(deps)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
