"""CI's regression gate: a metric of a JSON metrics file against its value committed at a git revision.
Whatever it cannot compare (an unknown revision, a file missing there, a value that is no number) fails."""
from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

from ecgproto.errors import ConfigError, GateError
from ecgproto.files.atomic import loads_strict

MAX_METRIC = 1e6  # no metric the gate compares (AUROC, loss, counts) comes near this; a larger value is a broken file


def metric_value(doc, dotted: str, where: str) -> float:
    for key in dotted.split("."):
        if not isinstance(doc, dict) or key not in doc:
            raise GateError(f"{where}: no metric {dotted!r} (missing key {key!r})")
        doc = doc[key]
    if isinstance(doc, bool) or not isinstance(doc, (int, float)):
        raise GateError(f"{where}: metric {dotted!r} is {str(doc)[:60]!r} ({type(doc).__name__}), not a number")
    value = float(doc)
    if not math.isfinite(value) or abs(value) > MAX_METRIC:
        raise GateError(f"{where}: metric {dotted!r} is {value:g}; expected a finite number of at most {MAX_METRIC:g}")
    return value


def parse_metrics(text: str, where: str):
    try:
        return loads_strict(text)
    except json.JSONDecodeError as exc:
        raise GateError(f"{where}: not valid JSON ({exc})") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise GateError(f"{where}: not a usable metrics file ({str(exc)[:120]})") from None
    except RecursionError:
        raise GateError(f"{where}: JSON nested too deeply to be a metrics file") from None


def gate(file: str, metric: str, against: str, max_drop: float) -> str:
    """CI's regression gate: a metric in a JSON metrics file against its value at a git revision. An
    unknown revision or a revision without the file fails: a typo must not let a regression through."""
    if against.startswith("-") or not against.strip():
        raise ConfigError(f"--against {against!r}: expected a git revision (a name cannot start with '-')")
    if Path(file).exists() and not Path(file).is_file():  # a FIFO would hang the read
        raise GateError(f"{file}: not a regular file; expected a JSON metrics file")
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GateError(f"{file}: cannot read the metrics file ({exc})") from None
    current = metric_value(parse_metrics(text, file), metric, file)
    # --end-of-options: nothing the user passes can become an option of git
    commit = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{against}^{{commit}}"],
                            capture_output=True, text=True)
    if commit.returncode != 0:
        raise GateError(f"--against {against!r}: not a git revision here (a typo, or a shallow clone "
                        "without it); the gate cannot compare and fails")
    # the committed file at the same place as the workspace's: "REV:./x" is relative to the current folder, as
    # the file is (a bare "REV:x" would be relative to the repository's root, another file from a subfolder)
    path = Path(file)
    if path.is_absolute():
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True).stdout.strip()
        spec = f"{commit.stdout.strip()}:{os.path.relpath(path.resolve(), top)}"
    else:
        spec = f"{commit.stdout.strip()}:./{path.as_posix()}"
    shown = subprocess.run(["git", "show", "--end-of-options", spec], capture_output=True)
    if shown.returncode != 0:
        raise GateError(f"{against}:{file}: the revision has no such file; the gate cannot compare "
                        f"{metric} = {current:.4f} with anything and fails")
    try:
        committed_text = shown.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise GateError(f"{against}:{file}: not UTF-8 text; not a metrics file") from None
    committed = metric_value(parse_metrics(committed_text, f"{against}:{file}"), metric,
                        f"{against}:{file}")
    line = f"{metric}: {current:.4f} now, {committed:.4f} at {against} (allowed drop {max_drop})"
    if current < committed - max_drop:
        raise GateError(f"regression: {line}")
    return f"ok: {line}"
