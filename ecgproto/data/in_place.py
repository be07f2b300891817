"""A large PTB-XL tree read where it lies (`data.in_place: true`), instead of copied into data/ptbxl.

Copying 200,000+ records into data/ptbxl, and DVC hashing and caching the copy, costs more than preparing
them (21 minutes at ten times PTB-XL) and holds the tree twice more on disk. In place, the data stage
verifies the records in their folder and writes into data/ptbxl only the metadata and a listing of every
record file it verified, with its size and modification time. The stages that read records take them from
the folder, and refuse to when a listed file has changed since, because DVC does not watch the folder:
after changing it, `dvc repro --force data` verifies it again.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ecgproto.errors import RecordError
from ecgproto.files.paths import inside

SOURCE = "records_in_place.json"  # {"folder": absolute path, "listing": LISTING, "files": count}
LISTING = "records_in_place.tsv"  # path (relative to the folder), size in bytes, mtime_ns


def write_listing(tree: Path, folder: Path, filenames) -> int:
    """Record, in `tree`, the folder and the .hea/.dat files of each record name (as in filename_lr) with
    their size and modification time. Returns the number of files listed."""
    folder = Path(folder).resolve()
    rows = []
    for name in filenames:
        for ext in (".hea", ".dat"):
            rel = f"{name}{ext}"
            st = inside(folder, rel, f"{folder}, {rel}").stat()
            rows.append((rel, st.st_size, st.st_mtime_ns))
    pd.DataFrame(rows, columns=["path", "size", "mtime_ns"]).to_csv(Path(tree) / LISTING, sep="\t", index=False)
    (Path(tree) / SOURCE).write_text(json.dumps({"folder": str(folder), "listing": LISTING, "files": len(rows)},
                                                indent=1) + "\n")
    return len(rows)


def records_root(tree: Path) -> Path:
    """Where the records of the data stage's tree lie: the tree itself, or, when it was read in place, the
    folder it names, after checking that every listed record file is still as the data stage verified it."""
    tree = Path(tree)
    if not (tree / SOURCE).exists():
        return tree
    where = tree / SOURCE
    try:
        source = json.loads(where.read_text())
        folder, count = Path(source["folder"]), source["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordError(f"{where}: not a listing written by the data stage ({exc}); run `dvc repro --force data`")
    listing = pd.read_csv(tree / LISTING, sep="\t", dtype={"path": str, "size": "int64", "mtime_ns": "int64"})
    if not folder.is_dir() or len(listing) != count:
        raise RecordError(f"{where}: the folder {folder} it names is gone or its listing is incomplete; "
                          "run `dvc repro --force data`")
    for rel, size, mtime_ns in listing.itertuples(index=False):
        try:
            st = os.stat(inside(folder, rel, f"{where}, {rel}"))
            changed = (st.st_size, st.st_mtime_ns) != (size, mtime_ns)
        except FileNotFoundError:
            changed = True
        if changed:
            raise RecordError(f"{folder / rel}: changed or removed since the data stage verified it (data.in_place "
                              "reads the folder where it lies, and DVC does not watch it); run "
                              "`dvc repro --force data` to verify the folder again")
    return folder
