"""The `data` step: materialise a PTB-XL tree at a path, from the synthetic generator, a local copy or
a verified download."""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pandas as pd

from ecgproto.data.checksums import read_checksums, sha256
from ecgproto.config import DataParams
from ecgproto.data.download import Limits, download, version_url
from ecgproto.data.in_place import LISTING, take_listing, write_listing
from ecgproto.errors import ConfigError, RecordError
from ecgproto.files.atomic import atomic_dir
from ecgproto.files.paths import inside, walk_files
from ecgproto.data.ptbxl import read_metadata
from ecgproto.data.synth import generate

log = logging.getLogger(__name__)

TREE_FILES = ("ptbxl_database.csv", "scp_statements.csv", "SHA256SUMS.txt", "RECORDS")


def _tree_checksums(src: Path) -> dict:
    if not (src / "ptbxl_database.csv").is_file():
        raise RecordError(f"{src}: not a PTB-XL tree (no ptbxl_database.csv)")
    if (src / "SHA256SUMS.txt").is_file():
        return read_checksums(src / "SHA256SUMS.txt")
    log.warning("%s has no SHA256SUMS.txt: its files are used but NOTHING is verified", src)
    return {}


def _copy_metadata(src: Path, dst: Path) -> None:
    for name in TREE_FILES:
        if (src / name).is_file():
            shutil.copyfile(inside(src, name, f"{src}, {name}"), dst / name)


def _verify(sums: dict, root: Path, manifest: Path) -> int:
    """Check each file of `sums` that is under root against its digest; returns the number checked."""
    verified = 0
    for rel, digest in sums.items():
        target = inside(root, rel, f"{manifest}, {rel}")
        if target.is_file():
            if sha256(target) != digest:
                raise RecordError(f"{manifest.parent / rel}: SHA-256 does not match {manifest}")
            verified += 1
    return verified


def copy_tree(src: Path, dst: Path) -> int:
    """Copy the metadata and 100 Hz records of a PTB-XL tree, verifying each file that SHA256SUMS.txt
    lists. Every file must lie inside src (a symbolic link out is refused). Returns the number of
    verified files; 0 when src has no SHA256SUMS.txt (nothing could be verified: a warning says so)."""
    src = Path(src)
    sums = _tree_checksums(src)
    _copy_metadata(src, dst)
    for path in walk_files(src / "records100"):
        rel = path.relative_to(src).as_posix()
        if rel.endswith((".hea", ".dat")):
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(inside(src, rel, f"{src}, {rel}"), dst / rel)
    return _verify(sums, dst, src / "SHA256SUMS.txt")


def read_in_place(src: Path, dst: Path, policy: str) -> tuple:
    """data.in_place: copy and verify the metadata, then fingerprint the records its rows name where they
    lie (before hashing), verify them against SHA256SUMS.txt, and list them in dst once no file changed
    meanwhile. Returns (files verified, metadata rows dropped, record files listed, listed but unverified)."""
    src = Path(src).resolve()
    sums = _tree_checksums(src)
    _copy_metadata(src, dst)
    manifest = src / "SHA256SUMS.txt"
    verified = _verify({k: v for k, v in sums.items() if k in TREE_FILES}, dst, manifest)  # before a drop rewrites
    dropped = check_records(dst, policy, src, shown=src / "ptbxl_database.csv")
    listing = take_listing(src, read_metadata(dst)["filename_lr"])
    verified += _verify({rel: sums[rel] for rel in listing if rel in sums}, src, manifest)
    write_listing(dst, src, listing)
    return verified, dropped, len(listing), sum(rel not in sums for rel in listing) if sums else 0


def check_records(root: Path, policy: str, records: Path | None = None, shown: Path | None = None) -> int:
    """Make sure every metadata row has its 100 Hz record (under `records`, by default the tree itself).
    policy 'error' raises naming the first missing one; 'drop' rewrites this tree's ptbxl_database.csv
    without those rows, lists their ecg_ids in dropped_records.txt and removes SHA256SUMS.txt (it no
    longer describes the metadata); `shown`: the metadata file errors name (the tree's own by default).
    Returns the number of rows dropped."""
    root = Path(root)
    records = root if records is None else Path(records)
    shown = root / "ptbxl_database.csv" if shown is None else shown
    read_metadata(root)  # checks the columns and values, names the file when they are wrong
    metadata = pd.read_csv(root / "ptbxl_database.csv", index_col="ecg_id")  # rewritten as it is
    where = f"{shown}, filename_lr"
    present = [inside(records, f"{f}.hea", where).is_file() and inside(records, f"{f}.dat", where).is_file()
               for f in metadata["filename_lr"]]
    missing = metadata.index[[not ok for ok in present]]
    if len(missing) == 0:
        return 0
    first = metadata.loc[missing[0], "filename_lr"]
    if policy != "drop":
        place = "the tree" if records == root else records
        raise RecordError(f"{shown}: {len(missing)} of {len(metadata)} records are not in "
                          f"{place} (first: {first}); download them, or set data.missing_records: drop to keep only "
                          "the records present")
    metadata[present].to_csv(root / "ptbxl_database.csv")
    (root / "dropped_records.txt").write_text("".join(f"{i}\n" for i in missing))
    (root / "SHA256SUMS.txt").unlink(missing_ok=True)
    return len(missing)


def _outside(out: Path, source: Path, key: str) -> None:
    """The data stage replaces `out` whole: a source that is out or lies inside it would be deleted with it."""
    if os.path.commonpath([os.path.realpath(out), os.path.realpath(source)]) == os.path.realpath(out):
        raise ConfigError(f"{key} = {source}: is {out} or inside it, which the data stage replaces; the tree "
                          f"would be deleted with it: choose a folder outside {out}")


def materialise(out: Path, params: DataParams, progress: bool = False) -> str:
    """Write the PTB-XL tree for `params` to `out` atomically; returns a one-line summary."""
    if params.source == "folder":
        _outside(out, Path(params.folder), "data.folder")
    elif params.source == "ptbxl":
        _outside(out, Path(params.download_dir), "data.download_dir")
    with atomic_dir(out) as tmp:
        if params.source == "synthetic":
            generate(tmp, params.synthetic_records, params.synthetic_seed, params.synthetic_realism, progress=progress)
            return f"synthetic PTB-XL: {params.synthetic_records} records, seed {params.synthetic_seed}"
        if params.source == "ptbxl":
            src = Path(params.download_dir) / f"ptb-xl-{params.ptbxl_version}"
            limits = Limits(deadline=params.download_deadline_s, max_bytes=int(params.download_max_mb * 2 ** 20))
            got = download(src, version_url(params.ptbxl_url, params.ptbxl_version), params.download_jobs,
                           params.download_500hz, limits, progress=progress)
            origin = (f"downloaded PTB-XL {params.ptbxl_version} to {src} ({got['fetched']} files fetched, "
                      f"{got['already_present']} already verified)")
        else:
            src, origin = Path(params.folder), f"copied PTB-XL tree from {params.folder}"
        if params.in_place:  # the later stages check the listing before they read a record from src
            verified, dropped, listed, unverified = read_in_place(src, tmp, params.missing_records)
            origin = f"{origin.replace('copied', 'read')}, records in place ({listed} files listed in {LISTING}"
            origin += f"; {unverified} of them not in SHA256SUMS.txt, so not verified)" if unverified else ")"
        else:
            verified = copy_tree(src, tmp)
            dropped = check_records(tmp, params.missing_records, shown=src / "ptbxl_database.csv")
        note = f"; dropped {dropped} metadata rows without a record (dropped_records.txt)" if dropped else ""
        checked = (f"{verified} files verified against SHA256SUMS.txt" if verified
                   else "WARNING: no file verified (no SHA256SUMS.txt, or it lists none of the files)")
        return f"{origin}: {checked}{note}"
