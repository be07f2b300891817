"""The `data` step: materialise a PTB-XL tree at a path, from the synthetic generator, a local copy or
a verified download."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pandas as pd

from ecgproto.data.checksums import read_checksums, sha256
from ecgproto.config import DataParams
from ecgproto.data.download import Limits, download, version_url
from ecgproto.errors import RecordError
from ecgproto.files.atomic import atomic_dir
from ecgproto.files.paths import inside, walk_files
from ecgproto.data.ptbxl import read_metadata
from ecgproto.data.synth import generate

log = logging.getLogger(__name__)

TREE_FILES = ("ptbxl_database.csv", "scp_statements.csv", "SHA256SUMS.txt", "RECORDS")


def copy_tree(src: Path, dst: Path) -> int:
    """Copy the metadata and 100 Hz records of a PTB-XL tree, verifying each file that SHA256SUMS.txt
    lists. Every file must lie inside src (a symbolic link out is refused). Returns the number of
    verified files; 0 when src has no SHA256SUMS.txt (nothing could be verified: a warning says so)."""
    src = Path(src)
    if not (src / "ptbxl_database.csv").is_file():
        raise RecordError(f"{src}: not a PTB-XL tree (no ptbxl_database.csv)")
    if (src / "SHA256SUMS.txt").is_file():
        sums = read_checksums(src / "SHA256SUMS.txt")
    else:
        sums = {}
        log.warning("%s has no SHA256SUMS.txt: its files are copied but NOTHING is verified", src)
    for name in TREE_FILES:
        if (src / name).is_file():
            shutil.copyfile(inside(src, name, f"{src}, {name}"), dst / name)
    for path in walk_files(src / "records100"):
        rel = path.relative_to(src).as_posix()
        if rel.endswith((".hea", ".dat")):
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(inside(src, rel, f"{src}, {rel}"), dst / rel)
    verified = 0
    for rel, digest in sums.items():
        target = inside(dst, rel, f"{src / 'SHA256SUMS.txt'}, {rel}")
        if target.is_file():
            if sha256(target) != digest:
                raise RecordError(f"{src / rel}: SHA-256 does not match {src / 'SHA256SUMS.txt'}")
            verified += 1
    return verified


def check_records(root: Path, policy: str) -> int:
    """Make sure every metadata row has its 100 Hz record. policy 'error' raises naming the first
    missing one; 'drop' rewrites this tree's ptbxl_database.csv without those rows, lists their ecg_ids
    in dropped_records.txt and removes SHA256SUMS.txt (it no longer describes the metadata).
    Returns the number of rows dropped."""
    root = Path(root)
    read_metadata(root)  # checks the columns and values, names the file when they are wrong
    metadata = pd.read_csv(root / "ptbxl_database.csv", index_col="ecg_id")  # rewritten as it is
    where = f"{root / 'ptbxl_database.csv'}, filename_lr"
    present = [inside(root, f"{f}.hea", where).is_file() and inside(root, f"{f}.dat", where).is_file()
               for f in metadata["filename_lr"]]
    missing = metadata.index[[not ok for ok in present]]
    if len(missing) == 0:
        return 0
    first = metadata.loc[missing[0], "filename_lr"]
    if policy != "drop":
        raise RecordError(f"{root / 'ptbxl_database.csv'}: {len(missing)} of {len(metadata)} records are not in the "
                          f"tree (first: {first}); download them, or set data.missing_records: drop to keep only "
                          "the records present")
    metadata[present].to_csv(root / "ptbxl_database.csv")
    (root / "dropped_records.txt").write_text("".join(f"{i}\n" for i in missing))
    (root / "SHA256SUMS.txt").unlink(missing_ok=True)
    return len(missing)


def materialise(out: Path, params: DataParams, progress: bool = False) -> str:
    """Write the PTB-XL tree for `params` to `out` atomically; returns a one-line summary."""
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
        verified = copy_tree(src, tmp)
        dropped = check_records(tmp, params.missing_records)
        note = f"; dropped {dropped} metadata rows without a record (dropped_records.txt)" if dropped else ""
        checked = (f"{verified} files verified against SHA256SUMS.txt" if verified
                   else "WARNING: no file verified (no SHA256SUMS.txt, or it lists none of the files)")
        return f"{origin}: {checked}{note}"
