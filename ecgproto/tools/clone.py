"""A fresh clone of this repository's committed HEAD, for commands that run the pipeline beside the
user's workspace (the rehearsal, the cross-validation) without touching it."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path


def head(repo: Path) -> str:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def is_dirty(repo: Path) -> bool:
    """Uncommitted changes to tracked files (which a clone of HEAD does not carry)."""
    return bool(subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip())


def clone_head(repo: Path, clone: Path, progress, keep_if_same: bool = False, commit: str | None = None) -> str:
    """Clone `repo` into `clone` at `commit` (default: its HEAD now) and return the commit. keep_if_same:
    an existing clone at that commit is kept (its DVC cache and lock let an interrupted run resume);
    any other is replaced."""
    if is_dirty(repo):
        progress(f"note: {repo} has uncommitted changes; what runs is the committed HEAD")
    commit = commit or head(repo)
    if keep_if_same and (clone / ".git").is_dir() and head(clone) == commit:
        return commit
    if clone.exists():
        shutil.rmtree(clone)
    clone.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "--quiet", str(repo), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", commit], check=True)
    return head(clone)


def stop_group(child: subprocess.Popen) -> None:
    """Stop a child started with start_new_session=True and everything it started (make, dvc, a stage):
    SIGTERM, which the stages treat as Ctrl-C, then SIGKILL after 30 s."""
    if child.poll() is not None:
        return
    os.killpg(child.pid, signal.SIGTERM)
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
