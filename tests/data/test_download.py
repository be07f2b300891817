"""Download against a PhysioNet-like server on 127.0.0.1: full, resumed after a kill, and the
failures (corrupted file, missing file, hanging server). No test touches the internet."""
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest

from ecgproto.data.checksums import read_checksums, sha256
from ecgproto.data.download import DownloadError, Limits, download
from ecgproto.data.prepare import prepare
from ecgproto.data.ptbxl import RecordError
from ecgproto.data.source import materialise
from ecgproto.tools.physionet_server import LocalPhysioNet

from conftest import PARAMS, SAMPLE, needs_sample


@pytest.fixture
def server(tiny_tree):
    s = LocalPhysioNet(tiny_tree)
    yield s
    s.stop()


def _all_verified(out, killed=False):
    """Files present under their final name all match SHA256SUMS.txt; no temporary .part file is left,
    except right after a kill, which may interrupt a file mid-write (the next run removes it)."""
    sums = read_checksums(out / "SHA256SUMS.txt")
    present = [f for f in sums if (out / f).is_file()]
    assert all(sha256(out / f) == sums[f] for f in present)
    if not killed:
        assert not list(out.rglob(".*.part"))
    return present


def test_full_download_is_verified_and_feeds_prepare_unchanged(server, tiny_tree, tmp_path):
    got = download(tmp_path / "dl", server.url, jobs=4)
    sums = read_checksums(tiny_tree / "SHA256SUMS.txt")
    wanted = [f for f in sums if f.startswith("records100/")] + ["ptbxl_database.csv", "scp_statements.csv"]
    assert got["files"] == got["fetched"] == len(wanted) and got["bytes"] > 0
    assert sorted(_all_verified(tmp_path / "dl")) == sorted(wanted)
    params = PARAMS.prepare
    ours, _ = prepare(tmp_path / "dl", params)
    theirs, _ = prepare(tiny_tree, params)
    for split in ours:
        assert np.array_equal(ours[split].signals, theirs[split].signals)
        assert np.array_equal(ours[split].labels, theirs[split].labels)
    again = download(tmp_path / "dl", server.url)  # nothing left to fetch
    assert again["fetched"] == 0 and again["already_present"] == got["files"]


def test_a_killed_download_resumes_where_it_stopped(server, tmp_path):
    server.faults.delay = 0.01
    out = tmp_path / "dl"
    proc = subprocess.Popen([sys.executable, "-m", "ecgproto.cli", "download", str(out), "--base-url", server.url,
                             "--jobs", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.rglob("*.dat"))) < 40:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _all_verified(out, killed=True)  # whatever is there under a final name is whole and verified
    assert 40 <= len(before) < 330
    server.faults.requests.clear()
    server.faults.delay = 0.0
    got = download(out, server.url)
    assert got["already_present"] == len(before)
    assert not set(server.faults.requests) & set(before)  # only SHA256SUMS.txt and the rest
    assert got["already_present"] + got["fetched"] == got["files"]
    assert len(_all_verified(out)) == got["files"]


def test_a_file_corrupted_on_the_server_fails_after_retries_and_is_not_kept(server, tmp_path):
    bad = "records100/00000/00005_lr.dat"
    server.faults.corrupt.add(bad)
    with pytest.raises(DownloadError, match=r"1 of \d+ files failed \(00005_lr.dat: SHA-256 does not match"):
        download(tmp_path / "dl", server.url, limits=Limits(retries=2, backoff=0.01))
    assert server.faults.requests.count(bad) == 3
    assert not (tmp_path / "dl" / bad).exists()
    assert len(_all_verified(tmp_path / "dl")) > 300  # the rest is kept for the next run


def test_a_missing_file_is_named_and_not_retried(server, tmp_path):
    gone = "records100/00000/00007_lr.hea"
    server.faults.missing.add(gone)
    with pytest.raises(DownloadError, match=r"00007_lr.hea: not found on the server \(HTTP 404"):
        download(tmp_path / "dl", server.url, limits=Limits(retries=3, backoff=0.01))
    assert server.faults.requests.count(gone) == 1


def test_a_server_that_stops_answering_gives_a_clear_error(server, tmp_path):
    stuck = "records100/00000/00003_lr.dat"
    server.faults.hang.add(stuck)
    start = time.perf_counter()
    with pytest.raises(DownloadError, match="00003_lr.dat: the server stopped answering"):
        download(tmp_path / "dl", server.url, limits=Limits(retries=1, timeout=0.3, backoff=0.01))
    assert time.perf_counter() - start < 20
    assert not (tmp_path / "dl" / stuck).exists()


@needs_sample
def test_the_real_sample_served_locally_feeds_the_data_stage_and_prepare(tmp_path):
    s = LocalPhysioNet(SAMPLE, version="1.0.1")
    try:
        params = replace(PARAMS.data, source="ptbxl", ptbxl_url=s.base, ptbxl_version="1.0.1",
                            download_dir=str(tmp_path / "download"), missing_records="drop")
        summary = materialise(tmp_path / "ptbxl", params)
        with pytest.raises(RecordError, match=r"21827 of 21837 records are not in the tree .*missing_records: drop"):
            materialise(tmp_path / "ptbxl2", replace(params, missing_records="error"))
    finally:
        s.stop()
    assert "dropped 21827 metadata rows" in summary and not (tmp_path / "ptbxl2").exists()
    splits, meta = prepare(tmp_path / "ptbxl", PARAMS.prepare)
    assert {k: len(v.ecg_ids) for k, v in splits.items()} == {"train": 7, "val": 2, "test": 1}
    assert meta["labels"][8] == "SBRAD" and splits["train"].labels[:, 8].sum() == 1  # record 2 (fold 2)


def test_the_data_stage_reports_a_failed_download_and_keeps_what_it_had(server, tiny_tree, tmp_path):
    from conftest import run_stage, stage_workspace

    server.faults.missing.add("records100/00000/00009_lr.dat")

    def use_server(raw):
        raw["data"].update(source="ptbxl", ptbxl_url=server.base, ptbxl_version="1.0.3", download_jobs=2)

    ws = stage_workspace(tmp_path, tiny_tree, use_server)
    before = sorted(p.relative_to(ws) for p in (ws / "data/ptbxl").rglob("*"))
    result = run_stage(ws, "data")
    assert result.returncode == 1
    assert "00009_lr.dat: not found on the server (HTTP 404" in result.stderr and "run again" in result.stderr
    assert sorted(p.relative_to(ws) for p in (ws / "data/ptbxl").rglob("*")) == before  # old tree untouched
    kept = ws / "data/download/ptb-xl-1.0.3"
    assert len(_all_verified(kept)) == 2 * 160 + 2 - 1  # records + 2 CSV files, all but the missing one


def test_a_refused_manifest_never_replaces_the_verified_one_and_no_password_is_printed(server, tmp_path):
    out = tmp_path / "dl"
    download(out, server.url, jobs=4)
    before = (out / "SHA256SUMS.txt").read_bytes()
    server.faults.replace["SHA256SUMS.txt"] = b"0" * 64 + b"  ../outside.dat\n"  # a path out of the folder
    with pytest.raises(RecordError) as refused:
        download(out, server.url, jobs=4)
    assert (out / "SHA256SUMS.txt").read_bytes() == before and not list(out.glob(".SHA256SUMS*"))
    assert f"{server.url}SHA256SUMS.txt, line 1" in str(refused.value) and "was kept as it was" in str(refused.value)
    good = before.decode()
    for served, expected in ((good + good.splitlines()[-1] + "\n", "is listed twice"),  # a file twice
                             ("".join(line + "\n" for line in good.splitlines() if "records100/" not in line),
                              "lists no 100 Hz record")):
        server.faults.replace["SHA256SUMS.txt"] = served.encode()
        with pytest.raises((RecordError, DownloadError), match=expected):
            download(out, server.url, jobs=4)
        assert (out / "SHA256SUMS.txt").read_bytes() == before
    for url in (server.url.replace("http://", "http://someone:s3cret@"),  # with a port, and without
                "http://someone:s3cret@127.0.0.1/files/ptb-xl/1.0.3/"):
        with pytest.raises(DownloadError, match="a user name or password in the URL is not supported") as failed:
            download(out, url, limits=Limits(retries=0))
        assert "http://***@127.0.0.1" in str(failed.value) and "s3cret" not in str(failed.value)


def test_a_first_download_that_fails_leaves_no_empty_folder(server, tmp_path):
    server.faults.missing.add("SHA256SUMS.txt")
    with pytest.raises(DownloadError, match="SHA256SUMS.txt: not found"):
        download(tmp_path / "new" / "dl", server.url, limits=Limits(retries=0))
    assert not (tmp_path / "new" / "dl").exists()
