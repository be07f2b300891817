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
from ecgproto.data.in_place import LISTING, write_listing
from ecgproto.errors import RecordError
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


def _verify(sums: dict, dst: Path, records: Path, manifest: Path) -> int:
    """Check each file SHA256SUMS.txt lists against its digest, where the data stage keeps it: the copied
    metadata in dst, a record in dst when copied or in `records` when read in place. Returns the count."""
    verified = 0
    for rel, digest in sums.items():
        target = inside(dst, rel, f"{manifest}, {rel}")
        if not target.is_file() and records != dst:
            target = inside(records, rel, f"{manifest}, {rel}")
        if target.is_file():
            if sha256(target) != digest:
                raise RecordError(f"{records / rel}: SHA-256 does not match {manifest}")
            verified += 1
    return verified


def copy_tree(src: Path, dst: Path, records_in_place: bool = False) -> int:
    """Copy the metadata and 100 Hz records of a PTB-XL tree, verifying each file that SHA256SUMS.txt
    lists; with records_in_place only the metadata is copied and the records are verified where they lie.
    Every file must lie inside src (a symbolic link out is refused). Returns the number of verified files;
    0 when src has no SHA256SUMS.txt (nothing could be verified: a warning says so)."""
    src = Path(src)
    sums = _tree_checksums(src)
    for name in TREE_FILES:
        if (src / name).is_file():
            shutil.copyfile(inside(src, name, f"{src}, {name}"), dst / name)
    if not records_in_place:
        for path in walk_files(src / "records100"):
            rel = path.relative_to(src).as_posix()
            if rel.endswith((".hea", ".dat")):
                (dst / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(inside(src, rel, f"{src}, {rel}"), dst / rel)
    if records_in_place:  # only the 100 Hz records the pipeline reads, as when copied
        sums = {rel: d for rel, d in sums.items() if rel in TREE_FILES or rel.startswith("records100/")}
    return _verify(sums, dst, src if records_in_place else dst, src / "SHA256SUMS.txt")


def check_records(root: Path, policy: str, records: Path | None = None) -> int:
    """Make sure every metadata row has its 100 Hz record (under `records`, by default the tree itself).
    policy 'error' raises naming the first missing one; 'drop' rewrites this tree's ptbxl_database.csv
    without those rows, lists their ecg_ids in dropped_records.txt and removes SHA256SUMS.txt (it no
    longer describes the metadata). Returns the number of rows dropped."""
    root = Path(root)
    records = root if records is None else Path(records)
    read_metadata(root)  # checks the columns and values, names the file when they are wrong
    metadata = pd.read_csv(root / "ptbxl_database.csv", index_col="ecg_id")  # rewritten as it is
    where = f"{root / 'ptbxl_database.csv'}, filename_lr"
    present = [inside(records, f"{f}.hea", where).is_file() and inside(records, f"{f}.dat", where).is_file()
               for f in metadata["filename_lr"]]
    missing = metadata.index[[not ok for ok in present]]
    if len(missing) == 0:
        return 0
    first = metadata.loc[missing[0], "filename_lr"]
    if policy != "drop":
        place = "the tree" if records == root else records
        raise RecordError(f"{root / 'ptbxl_database.csv'}: {len(missing)} of {len(metadata)} records are not in "
                          f"{place} (first: {first}); download them, or set data.missing_records: drop to keep only "
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
        if params.in_place:
            origin = f"{origin.replace('copied', 'read')}, records in place"
        verified = copy_tree(src, tmp, records_in_place=params.in_place)
        dropped = check_records(tmp, params.missing_records, src if params.in_place else tmp)
        note = f"; dropped {dropped} metadata rows without a record (dropped_records.txt)" if dropped else ""
        if params.in_place:  # what the later stages check before they read a record from src
            files = write_listing(tmp, src, read_metadata(tmp)["filename_lr"])
            note += f"; {files} record files listed in {LISTING}"
        checked = (f"{verified} files verified against SHA256SUMS.txt" if verified
                   else "WARNING: no file verified (no SHA256SUMS.txt, or it lists none of the files)")
        return f"{origin}: {checked}{note}"
