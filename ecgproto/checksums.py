"""SHA-256 checksums in PhysioNet's SHA256SUMS.txt format: how every PTB-XL file is verified."""
from __future__ import annotations

import hashlib
from pathlib import Path

from .ptbxl import RecordError


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


def write_checksums(root: Path) -> int:
    """Write SHA256SUMS.txt for every file under root, in PhysioNet's format. Returns the count."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "SHA256SUMS.txt")
    lines = [f"{sha256(p)}  {p.relative_to(root).as_posix()}\n" for p in files]
    (root / "SHA256SUMS.txt").write_text("".join(lines))
    return len(files)
