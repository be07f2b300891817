"""The `data` step: materialise a PTB-XL tree at a path, from the synthetic generator or a local copy."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from .config import DataParams
from .files import atomic_dir
from .ptbxl import RecordError
from .synth import generate

TREE_FILES = ("ptbxl_database.csv", "scp_statements.csv", "SHA256SUMS.txt", "RECORDS")


def sha256(path: Path, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            h.update(chunk)
    return h.hexdigest()


def read_checksums(path: Path) -> dict:
    """PhysioNet's SHA256SUMS.txt: '<hex>  <relative path>' per line."""
    sums = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise RecordError(f"{path}, line {n}: expected '<sha256>  <file>', got {line!r}")
        sums[parts[1].strip().lstrip("*")] = parts[0].lower()
    return sums


def copy_tree(src: Path, dst: Path) -> int:
    """Copy the metadata and 100 Hz records of a PTB-XL tree, verifying each file that SHA256SUMS.txt
    lists. Returns the number of verified files."""
    src = Path(src)
    if not (src / "ptbxl_database.csv").is_file():
        raise RecordError(f"{src}: not a PTB-XL tree (no ptbxl_database.csv)")
    sums = read_checksums(src / "SHA256SUMS.txt") if (src / "SHA256SUMS.txt").is_file() else {}
    verified = 0
    for name in TREE_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    shutil.copytree(src / "records100", dst / "records100",
                    ignore=lambda d, names: [n for n in names if not (Path(d, n).is_dir()
                                                                    or n.endswith((".hea", ".dat")))])
    for rel, digest in sums.items():
        target = dst / rel
        if target.is_file():
            if sha256(target) != digest:
                raise RecordError(f"{src / rel}: SHA-256 does not match {src / 'SHA256SUMS.txt'}")
            verified += 1
    return verified


def materialise(out: Path, params: DataParams, progress: bool = False) -> str:
    """Write the PTB-XL tree for `params` to `out` atomically; returns a one-line summary."""
    with atomic_dir(out) as tmp:
        if params.source == "synthetic":
            generate(tmp, params.synthetic_records, params.synthetic_seed, progress=progress)
            return f"synthetic PTB-XL: {params.synthetic_records} records, seed {params.synthetic_seed}"
        verified = copy_tree(Path(params.folder), tmp)
        return f"copied PTB-XL tree from {params.folder}: {verified} files verified against SHA256SUMS.txt"
