"""SHA-256 checksums in PhysioNet's SHA256SUMS.txt format: how every PTB-XL file is verified."""
from __future__ import annotations

import hashlib
from pathlib import Path

from ecgproto.errors import RecordError
from ecgproto.files.paths import inside, walk_files


def sha256(path: Path, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            h.update(chunk)
    return h.hexdigest()


def read_checksums(path: Path) -> dict:
    """PhysioNet's SHA256SUMS.txt: '<hex>  <relative path>' per line. Every path must stay inside the
    manifest's folder (no absolute path, no '..', no symbolic link out): a RecordError names the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RecordError(f"{path}: not a text file; expected '<sha256>  <file>' lines") from None
    sums = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64 or any(c not in "0123456789abcdefABCDEF" for c in parts[0]):
            raise RecordError(f"{path}, line {n}: expected '<sha256>  <file>', got {line!r}")
        name = parts[1].strip().lstrip("*")
        inside(path.parent, name, f"{path}, line {n}")
        key = "/".join(part for part in name.split("/") if part not in ("", "."))  # records100//x = records100/x
        if key in sums:
            raise RecordError(f"{path}, line {n}: {name!r} is listed twice; a manifest lists each file once")
        sums[key] = parts[0].lower()
    return sums


def write_checksums(root: Path) -> int:
    """Write SHA256SUMS.txt for every file under root, in PhysioNet's format. Returns the count."""
    root = Path(root)
    files = [p for p in walk_files(root) if p.name != "SHA256SUMS.txt"]
    lines = [f"{sha256(p)}  {p.relative_to(root).as_posix()}\n" for p in files]
    (root / "SHA256SUMS.txt").write_text("".join(lines))
    return len(files)
