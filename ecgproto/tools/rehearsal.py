"""Full-size dress rehearsal of `make ptbxl` on this machine (`make rehearsal`), and the scale rehearsal
at ten times PTB-XL's size (`make rehearsal-10x`, run_folder: a synthetic tree read as `data.source:
folder`, no download, epochs capped).

A synthetic PTB-XL 1.0.3 tree of the real release's size (21,799 records, its layout and SHA256SUMS.txt)
is served on 127.0.0.1 by the PhysioNet-like server the download tests use. A fresh clone of the
repository's HEAD then does what a user does against PhysioNet, only the URL differs: the download is
started, stopped part-way (SIGTERM, which it handles as Ctrl-C) and resumed by `make ptbxl`, which runs
the whole DAG.

Measured from outside, so the pipeline runs unchanged: wall time and peak resident memory per stage
(the stage's process tree, sampled from /proc every 0.5 s), download files/s and MB/s (the server's
request log), epochs and seconds per epoch per training stage (the stages' "epoch N" log lines), the
machine's load while it ran (so that a busy machine shows), and what the resume fetched again. Memory is
given twice: the resident set, which counts the pages of memory-mapped files the process has touched (the
prepared arrays: page cache the kernel can drop), and the anonymous part alone (what the process itself
holds, and what running out of memory means).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ecgproto.data.synth import kept_tree
from ecgproto.errors import ConfigError
from ecgproto.tools.clone import clone_head, head, stop_group

VERSION = "1.0.3"
TARGET_SECONDS = 90 * 60   # the targets on a 2-core machine
TARGET_RSS_MB = 6 * 1024
STAGE = re.compile(r"stages/(\w+)\.py")


def _children() -> dict:
    """pid -> (ppid, rss in MB, anonymous rss in MB, command line) of every process now running."""
    page_mb = os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    procs = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            _, rss_pages, file_pages = (int(v) for v in Path(entry.path, "statm").read_text().split()[:3])
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):  # the process ended while we looked
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        procs[int(entry.name)] = (ppid, rss_pages * page_mb, (rss_pages - file_pages) * page_mb, cmdline)
    return procs


def _descendants(kids: dict, root: int) -> set:
    """Every process below root, from a ppid -> [pid] map."""
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        for kid in kids.get(pid, []):
            if kid not in found:
                found.add(kid)
                todo.append(kid)
    return found


class Monitor:
    """Samples a process tree: total RSS (and its anonymous part), and per pipeline stage its first/last
    sighting and peak RSS (and anonymous RSS)."""

    def __init__(self, root_pid: int, interval: float = 0.5):
        self.root, self.interval = root_pid, interval
        self.stages: dict = {}      # name -> {"start", "end", "peak_rss_mb", "peak_anon_mb"}
        self.peak_rss_mb = self.peak_anon_mb = 0.0
        self.loads: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            now = time.monotonic()
            procs = _children()
            kids = {}
            for pid, (ppid, *_) in procs.items():
                kids.setdefault(ppid, []).append(pid)
            tree = (_descendants(kids, self.root) | {self.root}) & set(procs)
            self.peak_rss_mb = max(self.peak_rss_mb, sum(procs[p][1] for p in tree))
            self.peak_anon_mb = max(self.peak_anon_mb, sum(procs[p][2] for p in tree))
            self.loads.append(os.getloadavg()[0])

            def stage_of(pid):
                m = STAGE.search(procs[pid][3]) if pid in procs else None
                return m.group(1) if m else None

            for pid in tree:
                # the stage's topmost process (DVC's shell, or python itself), with all below it
                if not (name := stage_of(pid)) or stage_of(procs[pid][0]):
                    continue
                group = [pid, *(k for k in _descendants(kids, pid) if k in procs)]
                rss, anon = (sum(procs[k][i] for k in group) for i in (1, 2))
                s = self.stages.setdefault(name, {"start": now, "end": now, "peak_rss_mb": 0.0, "peak_anon_mb": 0.0})
                s["end"] = now
                s["peak_rss_mb"], s["peak_anon_mb"] = max(s["peak_rss_mb"], rss), max(s["peak_anon_mb"], anon)
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join()


class LogReader:
    """Tees a process's output to a file, timing each line; notes the epochs each stage logs."""

    def __init__(self, stream, log_path: Path, echo=None):
        self.stream, self.log_path, self.echo = stream, log_path, echo
        self.epochs: dict = {}      # stage -> [(monotonic time, epoch)]
        self.stage = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        with open(self.log_path, "a", encoding="utf-8") as log:
            for raw in iter(self.stream.readline, b""):
                line = raw.decode(errors="replace").rstrip("\n")
                log.write(line + "\n")
                log.flush()
                if self.echo:
                    self.echo(line)
                if m := re.search(r"Running stage '(\w+)'", line):
                    self.stage = m.group(1)
                elif (m := re.search(r"epoch (\d+): loss", line)) and self.stage:
                    self.epochs.setdefault(self.stage, []).append((time.monotonic(), int(m.group(1))))

    def join(self):
        self._thread.join()


def _throughput(log: list, root: Path) -> dict:
    """Files, bytes and rates of a stretch of the server's request log."""
    if not log:
        return {"files": 0, "seconds": 0.0, "files_per_s": None, "mb_per_s": None}
    paths = [p for _, p in log]
    size = sum((root / p).stat().st_size for p in paths if (root / p).is_file())
    seconds = max(log[-1][0] - log[0][0], 1e-6)
    return {"files": len(paths), "mb": round(size / 1e6, 1), "seconds": round(seconds, 1),
            "files_per_s": round(len(paths) / seconds, 1), "mb_per_s": round(size / 1e6 / seconds, 2)}


def stage_rows(monitor: Monitor, reader: LogReader) -> dict:
    """Per stage: wall seconds, peak memory (resident and anonymous), epochs and median seconds per epoch."""
    rows = {}
    for name, s in monitor.stages.items():
        row = {"seconds": round(s["end"] - s["start"], 1), "peak_rss_mb": round(s["peak_rss_mb"]),
               "peak_anon_mb": round(s["peak_anon_mb"])}
        epochs = reader.epochs.get(name, [])
        if epochs:
            gaps = [b[0] - a[0] for a, b in zip(epochs, epochs[1:])]
            row["epochs"] = epochs[-1][1]
            row["seconds_per_epoch"] = round(sorted(gaps)[len(gaps) // 2], 1) if gaps else None
        rows[name] = row
    return rows


def _repository() -> Path:
    return Path(subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                               check=True).stdout.strip())


def _measured(result: dict, monitor: Monitor, reader: LogReader, clone: Path, code: int) -> float:
    """Into result: the per-stage rows, the mean load and (after a finished run) the clone's test AUROC;
    returns the seconds the stages took together."""
    result["stages"] = stage_rows(monitor, reader)
    result["mean_load"] = round(sum(monitor.loads) / max(len(monitor.loads), 1), 2)
    evaluate = clone / "metrics" / "evaluate.json"
    if code == 0 and evaluate.is_file():
        import json
        doc = json.loads(evaluate.read_text())
        result["test_macro_auroc"] = {m: doc.get(m, {}).get("macro_auroc") for m in ("final", "baseline")}
    return sum(r["seconds"] for r in result["stages"].values())


def run(workdir: Path, records: int, seed: int, realism, interrupt_share: float,
        progress=print) -> dict:
    from ecgproto.tools.physionet_server import LocalPhysioNet

    if not 0 < interrupt_share < 1:
        raise ConfigError(f"interrupt share {interrupt_share}: expected a fraction between 0 and 1")
    repo = _repository()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    venv = Path(sys.executable).parent.parent  # this environment serves the clone: no second install
    tree = kept_tree(workdir / f"ptb-xl-synthetic-{records}" / VERSION, records, 42, realism, progress)
    wanted = sum(1 for line in (tree / "SHA256SUMS.txt").read_text().splitlines() if line.strip())
    clone = workdir / "repo"
    commit = clone_head(repo, clone, progress)
    log_path = workdir / "rehearsal.log"
    log_path.write_text("")
    # the clone's code, not this checkout's editable install, even if this checkout changes meanwhile
    env = dict(os.environ, PYTHONPATH=str(clone), PYTHONUNBUFFERED="1")
    server = LocalPhysioNet(tree, VERSION)
    children = []  # each in its own process group, so that stopping one stops its whole tree
    result = {"records": records, "commit": commit, "cpus": os.cpu_count(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    try:
        # 1. the download, interrupted part-way as a user's Ctrl-C would
        progress(f"download from {server.url}, interrupted after {interrupt_share:.0%} of the files")
        start = time.monotonic()
        target = clone / "data" / "download" / f"ptb-xl-{VERSION}"
        first = subprocess.Popen([str(venv / "bin" / "ecgproto"), "download", str(target), "--base-url", server.url],
                                 cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        children.append(first)
        reader = LogReader(first.stdout, log_path)
        while first.poll() is None and len(server.faults.log) < interrupt_share * wanted:
            time.sleep(0.05)
        # SIGTERM, which the CLI treats as Ctrl-C: a job started with `&` by a script ignores SIGINT
        first.send_signal(signal.SIGTERM)
        code = first.wait()
        reader.join()
        first_log = list(server.faults.log)
        kept = {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file() and not p.name.startswith(".")}
        first_seconds = time.monotonic() - start
        # 2. `make ptbxl`, as the README says, with the URL of the local server
        progress(f"make ptbxl SEED={seed} (log: {log_path})")
        start = time.monotonic()
        make = subprocess.Popen(["make", "-C", str(clone), f"VENV={venv}", "-o", str(venv / ".installed"), "ptbxl",
                                 f"SEED={seed}", f"ARGS=-S data.ptbxl_url={server.base}"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        children.append(make)
        monitor = Monitor(make.pid)
        reader = LogReader(make.stdout, log_path, echo=progress)
        make_code = make.wait()
        reader.join()
        monitor.stop()
        make_seconds = time.monotonic() - start
    finally:  # stopped (Ctrl-C, SIGTERM) or failed: no make, dvc or stage is left running behind us
        for child in children:
            stop_group(child)
        server.stop()
    resume_log = server.faults.log[len(first_log):]
    resumed = {p for _, p in resume_log} - {"SHA256SUMS.txt"}
    in_flight = {p for _, p in first_log} - kept - {"SHA256SUMS.txt"}
    result["download"] = {
        "files_in_manifest": wanted,
        "interrupted": {"exit_code": code, "files_kept": len(kept - {"SHA256SUMS.txt"}),
                        **_throughput(first_log, tree)},
        "resumed": _throughput(resume_log, tree),
        "fetched_again": {"verified_before_interrupt": len(resumed & kept),
                          "in_flight_at_interrupt": len(resumed & in_flight)},
    }
    stage_seconds = _measured(result, monitor, reader, clone, make_code)
    result["make_ptbxl"] = {"exit_code": make_code, "seconds": round(make_seconds, 1),
                            "dvc_and_make_seconds": round(make_seconds - stage_seconds, 1),
                            "peak_rss_mb": round(monitor.peak_rss_mb), "peak_anon_mb": round(monitor.peak_anon_mb)}
    result["total_seconds"] = round(first_seconds + make_seconds, 1)
    finished = make_code == 0  # a run that failed part-way meets no target, however quick it was
    result["targets"] = {"make ptbxl finished": finished,
                         "whole run within 90 min": finished and result["total_seconds"] <= TARGET_SECONDS,
                         "peak memory under 6 GB": finished and monitor.peak_rss_mb <= TARGET_RSS_MB}
    return result


PTBXL_RECORDS = 21799
TARGET_10X_ANON_MB = 4 * 1024  # the scale rehearsal's memory target (#26); prepare in memory would need ~27 GB


def run_folder(workdir: Path, records: int, seed: int, realism, overrides: list, progress=print,
               keep_clone: bool = False) -> dict:
    """The whole DAG on a synthetic tree of `records` records read in place (`data.source: folder`,
    `data.in_place: true`: no download, no copy), as `dvc exp run` in a clone of HEAD with the given -S
    overrides (the epoch caps), timed per stage from outside like `run`. keep_clone: the clone of a stopped
    run is kept, at its own commit (the result records it), so the stages it completed are not run again
    (DVC skips them; they have no row then); the run-cache is never used, so whatever runs is measured,
    not restored."""
    repo = _repository()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    venv_bin = Path(sys.executable).parent
    tree = kept_tree(workdir / f"ptb-xl-synthetic-{records}" / VERSION, records, 42, realism, progress)
    clone = workdir / "repo"
    if keep_clone and (clone / ".git").is_dir():  # the stopped run's clone, at its own commit (recorded)
        commit = head(clone)
    else:
        commit = clone_head(repo, clone, progress)
    log_path = workdir / "rehearsal.log"
    with open(log_path, "a") as log:  # a resumed run's log follows the stopped one's
        log.write(f"--- rehearsal started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
    env = dict(os.environ, PYTHONPATH=str(clone), PYTHONUNBUFFERED="1",
               PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    sets = ["data.source=folder", f"data.folder={tree}", "data.in_place=true", f"seed={seed}", *overrides]
    shutil.rmtree(clone / ".dvc" / "cache" / "runs", ignore_errors=True)  # what runs is measured, not restored
    command = [str(venv_bin / "dvc"), "exp", "run", *(a for item in sets for a in ("-S", item))]
    result = {"records": records, "scale": round(records / PTBXL_RECORDS, 2), "commit": commit,
              "cpus": os.cpu_count(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "command": " ".join(command[1:])}
    progress(f"{result['command']} (in {clone}; log: {log_path})")
    start = time.monotonic()
    child = subprocess.Popen(command, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        monitor = Monitor(child.pid)
        reader = LogReader(child.stdout, log_path, echo=progress)
        code = child.wait()
        reader.join()
        monitor.stop()
    finally:  # stopped (Ctrl-C, SIGTERM) or failed: no dvc or stage is left running behind us
        stop_group(child)
    seconds = time.monotonic() - start
    stage_seconds = _measured(result, monitor, reader, clone, code)
    result["pipeline"] = {"exit_code": code, "seconds": round(seconds, 1),
                          "dvc_seconds": round(seconds - stage_seconds, 1),
                          "peak_rss_mb": round(monitor.peak_rss_mb), "peak_anon_mb": round(monitor.peak_anon_mb)}
    result["total_seconds"] = round(seconds, 1)
    finished = code == 0
    result["targets"] = {"every stage finished": finished,
                         "peak anonymous memory <= 4 GB": finished and monitor.peak_anon_mb <= TARGET_10X_ANON_MB}
    return result


def table(result: dict) -> str:
    """The figures as a text table, for `make rehearsal` (download, then make ptbxl) and `make rehearsal-10x`."""
    lines = [f"rehearsal: {result['records']} records, commit {result['commit'][:8]}, "
             f"{result['cpus']} CPUs, mean load {result['mean_load']}",
             f"{'step':<18}{'wall s':>9}{'peak MB':>9}{'anon MB':>9}{'epochs':>8}{'s/epoch':>9}"]
    d = result.get("download")
    for key, label in (("interrupted", "download (stopped)"), ("resumed", "download (resume)")) if d else ():
        row = d[key]
        lines.append(f"{label:<18}{row['seconds']:>9.1f}{'':>9}{'':>9}{'':>8}{'':>9}  {row['files']} files, "
                     f"{row['files_per_s']} files/s, {row['mb_per_s']} MB/s")
    for name, row in result["stages"].items():
        lines.append(f"{name:<18}{row['seconds']:>9.1f}{row['peak_rss_mb']:>9}{row.get('peak_anon_mb', ''):>9}"
                     f"{row.get('epochs', ''):>8}{row.get('seconds_per_epoch') or '':>9}")
    m = result.get("make_ptbxl") or result["pipeline"]
    lines.append(f"{'dvc + make':<18}{m.get('dvc_and_make_seconds', m.get('dvc_seconds')):>9.1f}")
    lines.append(f"{'total':<18}{result['total_seconds']:>9.1f}{m['peak_rss_mb']:>9}{m.get('peak_anon_mb', ''):>9}"
                 f"   (exit {m['exit_code']})")
    if d:
        again = d["fetched_again"]
        lines.append(f"resume fetched again: {again['verified_before_interrupt']} verified files, "
                     f"{again['in_flight_at_interrupt']} in flight at the interrupt")
    lines += [f"{goal}: {'met' if ok else 'NOT met'}" for goal, ok in result["targets"].items()]
    return "\n".join(lines)
