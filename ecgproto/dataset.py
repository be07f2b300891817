"""The `data` step: materialise a PTB-XL tree at a path, from the synthetic generator, a local copy or
a verified download."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from .config import DataParams
from .files import atomic_dir
from .checksums import read_checksums, sha256
from .download import download, version_url
from .ptbxl import RecordError
from .synth import generate

TREE_FILES = ("ptbxl_database.csv", "scp_statements.csv", "SHA256SUMS.txt", "RECORDS")


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


def check_records(root: Path, policy: str) -> int:
    """Make sure every metadata row has its 100 Hz record. policy 'error' raises naming the first
    missing one; 'drop' rewrites this tree's ptbxl_database.csv without those rows, lists their ecg_ids
    in dropped_records.txt and removes SHA256SUMS.txt (it no longer describes the metadata).
    Returns the number of rows dropped."""
    root = Path(root)
    metadata = pd.read_csv(root / "ptbxl_database.csv", index_col="ecg_id")
    present = [(root / f"{f}.hea").is_file() and (root / f"{f}.dat").is_file() for f in metadata["filename_lr"]]
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
            generate(tmp, params.synthetic_records, params.synthetic_seed, progress=progress)
            return f"synthetic PTB-XL: {params.synthetic_records} records, seed {params.synthetic_seed}"
        if params.source == "ptbxl":
            src = Path(params.download_dir) / f"ptb-xl-{params.ptbxl_version}"
            got = download(src, version_url(params.ptbxl_url, params.ptbxl_version), params.download_jobs,
                           params.download_500hz, progress=progress)
            origin = (f"downloaded PTB-XL {params.ptbxl_version} to {src} ({got['fetched']} files fetched, "
                      f"{got['already_present']} already verified)")
        else:
            src, origin = Path(params.folder), f"copied PTB-XL tree from {params.folder}"
        verified = copy_tree(src, tmp)
        dropped = check_records(tmp, params.missing_records)
        note = f"; dropped {dropped} metadata rows without a record (dropped_records.txt)" if dropped else ""
        return f"{origin}: {verified} files verified against SHA256SUMS.txt{note}"
