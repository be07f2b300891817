"""Verified, resumable download of PTB-XL from PhysioNet (or any server with the same layout).

The server's SHA256SUMS.txt is the manifest: every file is checked against it, written under a
temporary name and renamed only once verified, so a stopped run leaves only whole, verified files
and the next run fetches just what is missing.
"""
from __future__ import annotations

import errno
import logging
import os
import random
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from .checksums import read_checksums, sha256

log = logging.getLogger(__name__)
PHYSIONET = "https://physionet.org/files/ptb-xl/"
METADATA = ("ptbxl_database.csv", "scp_statements.csv")


class DownloadError(RuntimeError):
    """A download that could not complete; the message names the file(s) and what happened."""


class _Permanent(Exception):
    """A failure that retrying cannot fix (HTTP 404, a full disk)."""


def version_url(base_url: str, version: str) -> str:
    return f"{base_url.rstrip('/')}/{version}/"


def wanted_files(sums: dict, include_500hz: bool = False) -> list:
    """The metadata and the 100 Hz records (500 Hz too when asked) that the manifest lists."""
    missing = [m for m in METADATA if m not in sums]
    if missing:
        raise DownloadError(f"SHA256SUMS.txt does not list {missing}: not a PTB-XL release")
    folders = ("records100/", "records500/") if include_500hz else ("records100/",)
    records = sorted(f for f in sums if f.startswith(folders) and f.endswith((".hea", ".dat")))
    return [*METADATA, *records]


def _fetch(url: str, target: Path, digest: str | None, timeout: float) -> int:
    """One attempt: stream url to a temporary file beside target, verify, rename. Returns bytes."""
    tmp = target.with_name(f".{target.name}.part")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as f:
            size = 0
            while chunk := response.read(1 << 16):
                f.write(chunk)
                size += len(chunk)
        if digest is not None and sha256(tmp) != digest:
            raise ValueError("SHA-256 does not match SHA256SUMS.txt")
        os.replace(tmp, target)
        return size
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise _Permanent(f"not found on the server (HTTP 404 at {url})") from None
        raise
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise _Permanent(f"disk full while writing {target}") from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def fetch_with_retries(url: str, target: Path, digest: str | None, retries: int, timeout: float,
                       backoff: float) -> int:
    """_fetch, retried with exponential backoff and jitter; raises DownloadError naming target."""
    for attempt in range(retries + 1):
        try:
            return _fetch(url, target, digest, timeout)
        except _Permanent as exc:
            raise DownloadError(f"{target.name}: {exc}") from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, ValueError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, (socket.timeout, TimeoutError)):
                reason = f"the server stopped answering (no data for {timeout:g} s)"
            if attempt == retries:
                raise DownloadError(f"{target.name}: {reason} (after {retries + 1} attempts, {url})") from None
            time.sleep(backoff * 2 ** attempt * (1 + random.random()))
    raise AssertionError("unreachable")


def download(out: Path, url: str, jobs: int = 8, include_500hz: bool = False, retries: int = 3,
             timeout: float = 30.0, backoff: float = 0.5, progress: bool = False) -> dict:
    """Download a PTB-XL release from `url` (ending in the version folder) into `out`.

    Files already present and matching the manifest are kept; the rest are fetched by `jobs` parallel
    connections. Returns counts and throughput; raises DownloadError listing every file that failed
    (the verified ones stay, so the next call resumes)."""
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.rglob(".*.part"):  # left by a process that was killed mid-file
        stale.unlink()
    fetch_with_retries(url + "SHA256SUMS.txt", out / "SHA256SUMS.txt", None, retries, timeout, backoff)
    sums = read_checksums(out / "SHA256SUMS.txt")
    files = wanted_files(sums, include_500hz)
    todo = [f for f in files if not ((out / f).is_file() and sha256(out / f) == sums[f])]
    start, fetched, failures = time.perf_counter(), 0, []
    with ThreadPoolExecutor(max_workers=jobs) as pool, \
            tqdm(total=len(todo), desc="download", unit="file", disable=not progress) as bar:
        futures = {pool.submit(fetch_with_retries, url + f, out / f, sums[f], retries, timeout, backoff): f
                   for f in todo}
        for future in as_completed(futures):
            try:
                fetched += future.result()
            except DownloadError as exc:
                failures.append(str(exc))
            bar.update(1)
    seconds = time.perf_counter() - start
    if failures:
        shown = "; ".join(sorted(failures)[:5])
        raise DownloadError(f"{len(failures)} of {len(todo)} files failed ({shown}"
                            f"{'; ...' if len(failures) > 5 else ''}). {len(todo) - len(failures)} verified files "
                            f"were kept in {out}: run again to fetch the rest.")
    return {"files": len(files), "fetched": len(todo), "already_present": len(files) - len(todo),
            "bytes": fetched, "seconds": round(seconds, 2),
            "mb_per_s": round(fetched / 1e6 / seconds, 2) if seconds > 0 and todo else None}
