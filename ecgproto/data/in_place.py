"""A large PTB-XL tree read where it lies (`data.in_place: true`), instead of copied into data/ptbxl.

Copying 200,000+ records into data/ptbxl, and DVC hashing and caching the copy, costs more than preparing
them (21 minutes at ten times PTB-XL) and holds the tree twice more on disk. In place, the data stage
verifies the records in their folder and writes into data/ptbxl only the metadata and a listing of every
record file it verified: size, modification and change times, device and inode, taken before the file was
hashed and checked again after. The stages that read records take them from the folder, and refuse to when
the listing does not cover the metadata's records or a listed file has changed since, because DVC does not
watch the folder: after changing it, `dvc repro --force data` verifies it again.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from ecgproto.errors import RecordError
from ecgproto.files.paths import inside

SOURCE = "records_in_place.json"  # {"folder": absolute path, "listing": LISTING, "files": count}
LISTING = "records_in_place.tsv"  # path (relative to the folder), then FIELDS
FIELDS = ("size", "mtime_ns", "ctime_ns", "dev", "ino")  # ctime cannot be set back by a user, unlike mtime
MAX_LISTING_BYTES = 2 ** 30
AGAIN = "run `dvc repro --force data` to verify the folder again"


def record_files(filenames) -> list:
    """The files of each record name (as in filename_lr): its header and its signal file."""
    return [f"{name}{ext}" for name in filenames for ext in (".hea", ".dat")]


def fingerprint(path: Path, where: str) -> tuple:
    """FIELDS of path, which must be a regular file (not a link, FIFO or folder)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise RecordError(f"{path}: not found ({where})") from None
    if not stat.S_ISREG(st.st_mode):
        raise RecordError(f"{path}: not a regular file (a link, FIFO or folder); expected a record file ({where})")
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino


def take_listing(folder: Path, filenames) -> dict:
    """{relative path: fingerprint} of the record files of `filenames` in folder: taken before hashing."""
    folder = Path(folder).resolve()
    return {rel: fingerprint(inside(folder, rel, f"{folder}, {rel}"), f"{folder}, {rel}")
            for rel in record_files(filenames)}


def write_listing(tree: Path, folder: Path, listing: dict) -> int:
    """Record, in `tree`, the folder and the listing taken before the files were hashed, after checking
    that no file changed while they were (a download or sync still writing into the folder). Returns the
    number of files listed."""
    folder = Path(folder).resolve()
    for rel, taken in listing.items():
        if fingerprint(folder / rel, f"{folder}, {rel}") != taken:  # the paths were checked when taken
            raise RecordError(f"{folder / rel}: changed while the data stage verified it; is something still "
                              "writing into the folder? Nothing was written")
    rows = ["\t".join(("path",) + FIELDS)] + ["\t".join((rel, *map(str, fp))) for rel, fp in listing.items()]
    (Path(tree) / LISTING).write_text("\n".join(rows) + "\n")
    (Path(tree) / SOURCE).write_text(json.dumps({"folder": str(folder), "listing": LISTING, "files": len(listing)},
                                                indent=1) + "\n")
    return len(listing)


def _read_listing(tree: Path) -> tuple:
    """(folder, {path: fingerprint}) as the data stage wrote them; RecordError naming the file otherwise."""
    where, table = tree / SOURCE, tree / LISTING
    try:
        source = json.loads(where.read_text())
        folder, count = Path(source["folder"]), source["files"]
        if not folder.is_absolute() or not isinstance(count, int) or isinstance(count, bool):
            raise ValueError("'folder' must be an absolute path and 'files' a count")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise RecordError(f"{where}: not as the data stage writes it ({exc}); {AGAIN}") from None
    try:
        if not table.is_file() or table.stat().st_size > MAX_LISTING_BYTES:
            raise ValueError("missing, not a regular file, or over 1 GB")
        lines = table.read_text(encoding="utf-8").splitlines()
        if not lines or lines[0].split("\t") != ["path", *FIELDS]:
            raise ValueError(f"the first line must be the columns {['path', *FIELDS]}")
        listing = {}
        for n, line in enumerate(lines[1:], start=2):
            cells = line.split("\t")
            if len(cells) != 1 + len(FIELDS) or not cells[0] or not all(c.isdigit() and len(c) < 25 for c in cells[1:]):
                raise ValueError(f"line {n} is not a path and {len(FIELDS)} whole numbers")
            listing[cells[0]] = tuple(int(c) for c in cells[1:])
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RecordError(f"{table}: not as the data stage writes it ({exc}); {AGAIN}") from None
    if len(listing) != count:
        raise RecordError(f"{table}: {len(listing)} files listed, {where} says {count}; {AGAIN}")
    return folder, listing


def records_root(tree: Path) -> Path:
    """Where the records of the data stage's tree lie: the tree itself, or, when it was read in place, the
    folder it names, after checking that the listing covers every record of the tree's metadata and that
    every listed file is still the one the data stage verified."""
    from ecgproto.data.ptbxl import read_metadata

    tree = Path(tree)
    if not os.path.lexists(tree / SOURCE):
        return tree
    folder, listing = _read_listing(tree)
    if not folder.is_dir():
        raise RecordError(f"{folder}: the folder {tree / SOURCE} names is gone or not a folder; {AGAIN}")
    unlisted = [rel for rel in record_files(read_metadata(tree)["filename_lr"]) if rel not in listing]
    if unlisted:
        raise RecordError(f"{tree / LISTING}: does not list {len(unlisted)} record files of "
                          f"{tree / 'ptbxl_database.csv'} (first: {unlisted[0]}); {AGAIN}")
    for rel, taken in listing.items():
        path = inside(folder, rel, f"{tree / LISTING}, {rel}")  # '..', absolute, a link out: refused by name
        try:
            same = fingerprint(path, f"{tree / LISTING}, {rel}") == taken
        except RecordError:  # gone, or no longer a regular file
            same = False
        if not same:
            raise RecordError(f"{folder / rel}: changed, replaced or removed since the data stage verified it "
                              f"(data.in_place reads the folder where it lies, and DVC does not watch it); {AGAIN}")
    return folder
