"""`make rehearsal`'s measuring parts (the full run takes an hour: `make rehearsal`, not a test)."""
import io
import subprocess
import sys

from ecgproto.tools.rehearsal import LogReader, Monitor, _throughput


def test_monitor_times_a_stage_and_its_memory(tmp_path):
    script = tmp_path / "stages" / "fake.py"
    script.parent.mkdir()
    script.write_text("import time\nx = bytearray(80 * 2**20)\nx[::4096] = b'1' * len(x[::4096])\ntime.sleep(1.5)\n")
    proc = subprocess.Popen(["sh", "-c", f"{sys.executable} {script}; true"])  # a shell, then python, as DVC runs it
    monitor = Monitor(proc.pid, interval=0.1)
    proc.wait()
    monitor.stop()
    stage = monitor.stages["fake"]
    assert 1.0 < stage["end"] - stage["start"] < 5
    assert stage["peak_rss_mb"] > 80
    assert monitor.peak_rss_mb >= stage["peak_rss_mb"]


def test_log_reader_counts_epochs_per_stage(tmp_path):
    lines = ["Running stage 'baseline':", "10:00:01 baseline: epoch 1: loss 0.5, val macro-AUROC 0.8",
             "10:00:02 baseline: epoch 2: loss 0.4, val macro-AUROC 0.9", "Running stage 'evaluate':",
             "10:00:05 evaluate: final macro-AUROC 0.9"]
    reader = LogReader(io.BytesIO("\n".join(lines).encode() + b"\n"), tmp_path / "log.txt")
    reader.join()
    assert [e for _, e in reader.epochs["baseline"]] == [1, 2] and "evaluate" not in reader.epochs
    assert (tmp_path / "log.txt").read_text().splitlines() == lines


def test_throughput_from_the_request_log(tmp_path):
    (tmp_path / "a.dat").write_bytes(b"x" * 1000)
    (tmp_path / "b.dat").write_bytes(b"x" * 3000)
    row = _throughput([(10.0, "a.dat"), (12.0, "b.dat")], tmp_path)
    assert row["files"] == 2 and row["files_per_s"] == 1.0 and row["mb"] == 0.0
    assert _throughput([], tmp_path)["files_per_s"] is None


def test_a_failed_make_writes_the_partial_figures_and_exits_1(tmp_path, monkeypatch, capsys):
    import json

    from ecgproto.cli import main
    from ecgproto.tools import rehearsal

    failed = {"records": 10, "commit": "0" * 40, "cpus": 2, "mean_load": 1.0, "total_seconds": 5.0,
              "download": {}, "stages": {}, "make_ptbxl": {"exit_code": 2, "seconds": 4.0, "peak_rss_mb": 100},
              "targets": {"make ptbxl finished": False}}
    monkeypatch.setattr(rehearsal, "run", lambda *args, **kwargs: failed)
    out = tmp_path / "rehearsal.json"
    assert main(["rehearsal", "--workdir", str(tmp_path / "work"), "--out", str(out)]) == 1
    assert json.loads(out.read_text())["make_ptbxl"]["exit_code"] == 2
    assert "make ptbxl failed (exit 2)" in capsys.readouterr().err
