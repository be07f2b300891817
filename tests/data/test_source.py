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


@pytest.mark.parametrize("in_place", [False, True])  # in place, the record is checked where it lies
def test_checksum_mismatch_names_the_file_and_leaves_nothing(tmp_path, tiny_tree, in_place):
    import shutil
    src = tmp_path / "src"
    shutil.copytree(tiny_tree, src)
    _write_sums(src)
    dat = src / "records100/00000/00005_lr.dat"
    dat.write_bytes(b"\0\0" + dat.read_bytes()[2:])
    out = tmp_path / "out"
    with pytest.raises(RecordError, match="00005_lr.dat: SHA-256 does not match"):
        materialise(out, dataclasses.replace(PARAMS.data, source="folder", folder=str(src), in_place=in_place))
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


def _in_place_tree(tmp_path, tiny_tree):
    import shutil
    src = tmp_path / "src"
    shutil.copytree(tiny_tree, src)
    _write_sums(src)
    out = tmp_path / "out"
    summary = materialise(out, dataclasses.replace(PARAMS.data, source="folder", folder=str(src), in_place=True))
    return src, out, summary


def test_in_place_verifies_records_where_they_lie_and_copies_only_metadata(tmp_path, tiny_tree):
    from ecgproto.data.in_place import records_root
    src, out, summary = _in_place_tree(tmp_path, tiny_tree)
    assert "records in place (320 files listed in records_in_place.tsv)" in summary and "323 files verified" in summary
    assert not (out / "records100").exists() and len(read_metadata(out)) == 160
    assert records_root(out) == src.resolve() and records_root(src) == src  # a copied tree is its own root


def test_in_place_record_changed_afterwards_is_refused_by_readers(tmp_path, tiny_tree):
    import os
    from ecgproto.data.in_place import records_root
    from ecgproto.data.prepare import prepare
    src, out, _ = _in_place_tree(tmp_path, tiny_tree)
    dat = src / "records100/00000/00007_lr.dat"
    st = dat.stat()
    os.utime(dat, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # same bytes, touched: DVC would not know
    with pytest.raises(RecordError, match="00007_lr.dat: changed, replaced or removed since the data stage.*--force data"):
        records_root(out)
    with pytest.raises(RecordError, match="00007_lr.dat: changed"):
        prepare(out, PARAMS.prepare)
    dat.unlink()
    with pytest.raises(RecordError, match="00007_lr.dat: changed, replaced or removed"):
        records_root(out)


def test_in_place_prepares_the_same_arrays_as_a_copy(tmp_path, tiny_tree):
    import numpy as np
    from ecgproto.data.prepare import prepare
    src, out, _ = _in_place_tree(tmp_path, tiny_tree)
    copied = tmp_path / "copied"
    materialise(copied, dataclasses.replace(PARAMS.data, source="folder", folder=str(src)))
    a, _ = prepare(out, PARAMS.prepare)
    b, _ = prepare(copied, PARAMS.prepare)
    for name in a:
        assert np.array_equal(a[name].signals, b[name].signals)


def test_in_place_is_refused_for_the_synthetic_source():
    from ecgproto.config import ConfigError
    with pytest.raises(ConfigError, match="data.in_place: true applies to data.source folder or ptbxl"):
        dataclasses.replace(PARAMS.data, in_place=True).validate()


def test_in_place_sees_new_content_behind_a_restored_mtime_and_a_swapped_file(tmp_path, tiny_tree):
    import os
    import shutil
    from ecgproto.data.in_place import records_root
    src, out, _ = _in_place_tree(tmp_path, tiny_tree)
    dat = src / "records100/00000/00009_lr.dat"
    st = dat.stat()
    dat.write_bytes(b"\1\1" + dat.read_bytes()[2:])
    os.utime(dat, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime: only ctime tells
    with pytest.raises(RecordError, match="00009_lr.dat: changed, replaced"):
        records_root(out)
    src2, out2, _ = _in_place_tree(tmp_path / "b", tiny_tree)
    other = src2 / "records100/00000/00010_lr.dat"
    shutil.copy2(other, tmp_path / "swap.dat")
    os.replace(tmp_path / "swap.dat", other)  # a new file (inode) under the old name, mtime copied
    with pytest.raises(RecordError, match="00010_lr.dat: changed, replaced"):
        records_root(out2)


def test_in_place_refuses_a_listing_that_does_not_cover_the_metadata_or_is_damaged(tmp_path, tiny_tree):
    from ecgproto.data.in_place import LISTING, SOURCE, records_root
    src, out, _ = _in_place_tree(tmp_path, tiny_tree)
    lines = (out / LISTING).read_text().splitlines()
    (out / LISTING).write_text("\n".join(lines[:3]) + "\n")
    (out / SOURCE).write_text((out / SOURCE).read_text().replace('"files": 320', '"files": 2'))
    with pytest.raises(RecordError, match="does not list 318 record files of .*ptbxl_database.csv"):
        records_root(out)
    for bad in ("path\tsize\n", lines[0] + "\nx.dat\t1\t2\n", lines[0] + "\nx.dat\t1\t2\t3\t4\t-5\n", ""):
        (out / LISTING).write_text(bad)
        with pytest.raises(RecordError, match=f"{LISTING}: not as the data stage writes it"):
            records_root(out)
    (out / SOURCE).write_text('{"folder": "relative/path", "files": 2}')
    with pytest.raises(RecordError, match=f"{SOURCE}: not as the data stage writes it"):
        records_root(out)


def test_in_place_refuses_a_record_changed_while_it_was_hashed(tmp_path, tiny_tree, monkeypatch):
    import shutil
    from ecgproto.data import source
    src = tmp_path / "src"
    shutil.copytree(tiny_tree, src)
    _write_sums(src)
    real = source.take_listing

    def then_write(folder, names):  # a sync still writing into the folder after the listing was taken
        taken = real(folder, names)
        dat = src / "records100/00000/00011_lr.dat"
        dat.write_bytes(dat.read_bytes())
        return taken
    monkeypatch.setattr(source, "take_listing", then_write)
    with pytest.raises(RecordError, match="00011_lr.dat: changed while the data stage verified it"):
        materialise(tmp_path / "out", dataclasses.replace(PARAMS.data, source="folder", folder=str(src), in_place=True))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("in_place", [True, False])
def test_a_folder_that_is_the_output_or_inside_it_is_refused_before_anything_is_deleted(tmp_path, tiny_tree, in_place):
    import shutil
    from ecgproto.config import ConfigError
    out = tmp_path / "out"
    shutil.copytree(tiny_tree, out)
    _write_sums(out)
    for folder in (out, out / "records100"):
        with pytest.raises(ConfigError, match=f"data.folder = {folder}: is {out} or inside it"):
            materialise(out, dataclasses.replace(PARAMS.data, source="folder", folder=str(folder), in_place=in_place))
    assert len(list((out / "records100").rglob("*.dat"))) == 160
