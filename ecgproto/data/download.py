"""Verified, resumable download of PTB-XL from PhysioNet (or any server with the same layout).

The server's SHA256SUMS.txt is the manifest: every file is checked against it, written under a
temporary name and renamed only once verified, so a stopped run leaves only whole, verified files
and the next run fetches just what is missing. The server is not trusted: manifest paths must stay
inside the download folder, each file has a deadline and a size cap, a redirect is followed only to the
base URL's own scheme and host (never file:, ftp: or another server), and Ctrl-C (or SIGTERM) stops the
workers within one network read.
"""
from __future__ import annotations

import errno
import http.client
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from ecgproto.data.checksums import read_checksums, sha256
from ecgproto.errors import DownloadError, RecordError
from ecgproto.files.atomic import raise_if_stopped
from ecgproto.files.paths import inside
from ecgproto.files.urls import origin as _origin
from ecgproto.files.urls import shown

log = logging.getLogger(__name__)
PHYSIONET = "https://physionet.org/files/ptb-xl/"
METADATA = ("ptbxl_database.csv", "scp_statements.csv")


class _Permanent(Exception):
    """A failure that retrying cannot fix (HTTP 404, a full disk, a file over the size cap)."""


class _Deadline(Exception):
    """One attempt took longer than the per-file deadline (a trickling server)."""


class _Stopped(Exception):
    """The user stopped the download (Ctrl-C, SIGTERM): no retry, no further file."""


def check_url(url: str) -> None:
    """DownloadError unless `url` is an http(s) URL: file:, ftp: and the like are never fetched."""
    try:
        _origin(url)
    except ValueError as exc:
        raise DownloadError(f"base URL {exc}") from None


class _SameOrigin(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to the scheme, host and port of the URL first asked for; anything else
    (another server, https to http, file:, ftp:) fails naming both URLs, and is not retried."""

    def __init__(self, first: str):
        super().__init__()
        self.first = first

    def http_error_302(self, req, fp, code, msg, headers):
        # before urllib's own handling, which would retry a refused scheme (file:) as a network error
        target = urllib.parse.urljoin(req.full_url, headers.get("location") or headers.get("uri") or "")
        try:
            same = _origin(target) == _origin(self.first)
        except ValueError:
            same = False
        if not same:
            raise _Permanent(f"the server redirects {self.first} to {target[:200]}, not the base URL's scheme and "
                             "host; refusing to follow it")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _open(url: str, timeout: float):
    """urlopen for http(s) only, with redirects kept to the URL's own scheme and host."""
    _origin(url)  # ValueError for another scheme: never handed to urllib's file: or ftp: handlers
    opener = urllib.request.build_opener(_SameOrigin(url))
    return opener.open(url, timeout=timeout)


@dataclass(frozen=True)
class Limits:
    """How long and how much the server may take: per read, per attempt, per file."""
    timeout: float = 30.0           # seconds without data before an attempt fails
    deadline: float = 300.0         # seconds for one attempt at one file, however the data trickles
    max_bytes: int = 64 * 2 ** 20   # PTB-XL's largest file (the metadata) is a few MB; a record ~24 kB
    retries: int = 3
    backoff: float = 0.5


def version_url(base_url: str, version: str) -> str:
    return f"{base_url.rstrip('/')}/{version}/"


def wanted_files(sums: dict, include_500hz: bool = False) -> list:
    """The metadata and the 100 Hz records (500 Hz too when asked) that the manifest lists."""
    if not any(f.startswith("records100/") for f in sums):
        raise DownloadError("SHA256SUMS.txt lists no 100 Hz record (records100/): not a PTB-XL release")
    missing = [m for m in METADATA if m not in sums]
    if missing:
        raise DownloadError(f"SHA256SUMS.txt does not list {missing}: not a PTB-XL release")
    folders = ("records100/", "records500/") if include_500hz else ("records100/",)
    records = sorted(f for f in sums if f.startswith(folders) and f.endswith((".hea", ".dat")))
    return [*METADATA, *records]


def _fetch(url: str, target: Path, digest: str | None, limits: Limits, stop: threading.Event) -> int:
    """One attempt: stream url to a temporary file beside target, verify, rename. Returns bytes."""
    tmp = target.with_name(f".{target.name}.part")
    target.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    try:
        with _open(url, limits.timeout) as response, open(tmp, "wb") as f:
            announced = response.headers.get("Content-Length")
            if announced and announced.isdigit() and int(announced) > limits.max_bytes:
                raise _Permanent(f"the server announces {int(announced)} bytes, over the cap of {limits.max_bytes}")
            size = 0
            # read1: whatever one network read brings, so a trickling server cannot hold a call for long
            while chunk := response.read1(1 << 16):
                if stop.is_set():
                    raise _Stopped()
                size += len(chunk)
                if size > limits.max_bytes:
                    raise _Permanent(f"more than {limits.max_bytes} bytes (the size cap); not a PTB-XL file")
                if time.monotonic() - start > limits.deadline:
                    raise _Deadline(f"not complete after {limits.deadline:g} s (the per-file deadline)")
                f.write(chunk)
        if digest is not None and sha256(tmp) != digest:
            raise ValueError("SHA-256 does not match SHA256SUMS.txt")
        os.replace(tmp, target)
        return size
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise _Permanent(f"not found on the server (HTTP 404 at {shown(url)})") from None
        raise
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise _Permanent(f"disk full while writing {target}") from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def fetch_with_retries(url: str, target: Path, digest: str | None, limits: Limits,
                       stop: threading.Event | None = None) -> int:
    """_fetch, retried with exponential backoff and jitter; raises DownloadError naming target."""
    stop = stop or threading.Event()
    check_url(url)
    for attempt in range(limits.retries + 1):
        try:
            return _fetch(url, target, digest, limits, stop)
        except _Permanent as exc:
            raise DownloadError(f"{target.name}: {exc}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError, OSError, http.client.HTTPException,
                _Deadline) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):  # socket.timeout is TimeoutError
                reason = f"the server stopped answering (no data for {limits.timeout:g} s)"
            if attempt == limits.retries:
                raise DownloadError(f"{target.name}: {reason} (after {limits.retries + 1} attempts, "
                                    f"{shown(url)})") from None
            if stop.wait(limits.backoff * 2 ** attempt * (1 + random.random())):
                raise _Stopped()
    raise AssertionError("unreachable")


def _discard(fresh: Path, out: Path, created: bool) -> None:
    fresh.unlink(missing_ok=True)
    if created and not any(out.iterdir()):  # a failed first call leaves no empty folder behind
        out.rmdir()


def download(out: Path, url: str, jobs: int = 8, include_500hz: bool = False, limits: Limits = Limits(),
             progress: bool = False) -> dict:
    """Download a PTB-XL release from `url` (ending in the version folder) into `out`.

    Files already present and matching the manifest are kept; the rest are fetched by `jobs` parallel
    connections. Returns counts and throughput; raises DownloadError listing every file that failed
    (the verified ones stay, so the next call resumes). On KeyboardInterrupt the workers stop at their
    next network read, queued files are dropped, and the interrupt is raised again."""
    from tqdm import tqdm

    check_url(url)  # before anything is created
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DownloadError(f"{out}: exists and is not a folder; expected a folder to download into")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    # the manifest is checked before it replaces the one a resumed download verified its files against
    manifest, fresh = out / "SHA256SUMS.txt", out / ".SHA256SUMS.txt.new"
    try:
        fetch_with_retries(url + "SHA256SUMS.txt", fresh, None, limits, stop)
        sums = read_checksums(fresh)
        files = wanted_files(sums, include_500hz)
        os.replace(fresh, manifest)
    except (RecordError, DownloadError) as exc:  # named as the server's, which it is; the old one stays
        _discard(fresh, out, created)
        kept = f"; {manifest} was kept as it was" if manifest.exists() else ""
        served = f"{shown(url)}SHA256SUMS.txt"  # the server's manifest, as served
        message = str(exc).replace(str(fresh), served).replace(fresh.name, "SHA256SUMS.txt")
        raise type(exc)(message + kept) from None
    except BaseException:
        _discard(fresh, out, created)
        raise
    targets = {f: inside(out, f, f"{out / 'SHA256SUMS.txt'}, {f}") for f in files}
    for target in targets.values():  # our own temporary files, left by a process killed mid-file
        target.with_name(f".{target.name}.part").unlink(missing_ok=True)
    todo = [f for f in files if not (targets[f].is_file() and sha256(targets[f]) == sums[f])]
    start, fetched, failures = time.perf_counter(), 0, []
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        with tqdm(total=len(todo), desc="download", unit="file", disable=not progress) as bar:
            futures = {pool.submit(fetch_with_retries, url + f, targets[f], sums[f], limits, stop): f for f in todo}
            for future in as_completed(futures):
                raise_if_stopped()
                try:
                    fetched += future.result()
                except DownloadError as exc:
                    failures.append(str(exc))
                bar.update(1)
    except BaseException:  # Ctrl-C, SIGTERM (raised as KeyboardInterrupt by the CLI and stages)
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    seconds = time.perf_counter() - start
    if failures:
        listed = "; ".join(sorted(failures)[:5])
        raise DownloadError(f"{len(failures)} of {len(todo)} files failed ({listed}"
                            f"{'; ...' if len(failures) > 5 else ''}). {len(todo) - len(failures)} verified files "
                            f"were kept in {out}: run again to fetch the rest.")
    return {"files": len(files), "fetched": len(todo), "already_present": len(files) - len(todo),
            "bytes": fetched, "seconds": round(seconds, 2),
            "mb_per_s": round(fetched / 1e6 / seconds, 2) if seconds > 0 and todo else None}
