import dataclasses
import hashlib

import pytest

from ecgproto.data.checksums import read_checksums
from ecgproto.data.ptbxl import RecordError, read_metadata
from ecgproto.data.source import materialise

from conftest import PARAMS, REAL_SUBSET


def _write_sums(root):
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(root)}"
             for p in sorted(root.rglob("*")) if p.is_file() and p.name != "SHA256SUMS.txt"]
    (root / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")


def test_folder_source_copies_and_verifies(tmp_path, tiny_tree):
    import shutil
    src = tmp_path / "src"
    shutil.copytree(tiny_tree, src)
    _write_sums(src)
    out = tmp_path / "out"
    summary = materialise(out, dataclasses.replace(PARAMS.data, source="folder", folder=str(src)))
    assert "verified" in summary
    assert len(read_metadata(out)) == 160
    assert (out / "records100/00000/00001_lr.dat").read_bytes() == (src / "records100/00000/00001_lr.dat").read_bytes()


def test_checksum_mismatch_names_the_file_and_leaves_nothing(tmp_path, tiny_tree):
    import shutil
    src = tmp_path / "src"
    shutil.copytree(tiny_tree, src)
    _write_sums(src)
    dat = src / "records100/00000/00005_lr.dat"
    dat.write_bytes(b"\0\0" + dat.read_bytes()[2:])
    out = tmp_path / "out"
    with pytest.raises(RecordError, match="00005_lr.dat: SHA-256 does not match"):
        materialise(out, dataclasses.replace(PARAMS.data, source="folder", folder=str(src)))
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["src"]  # no temporary folder left behind


def test_malformed_checksum_line(tmp_path):
    (tmp_path / "SHA256SUMS.txt").write_text("abc  file\n")
    with pytest.raises(RecordError, match="line 1"):
        read_checksums(tmp_path / "SHA256SUMS.txt")


@pytest.mark.skipif(not (REAL_SUBSET / "SHA256SUMS.txt").is_file(), reason=f"real subset not found at {REAL_SUBSET}")
def test_real_subset_sums_parse():
    sums = read_checksums(REAL_SUBSET / "SHA256SUMS.txt")
    assert "ptbxl_database.csv" in sums and sum(k.endswith(".dat") for k in sums) == 1625
