"""Atomic writes: a temporary file or folder beside the destination, then a rename, so an interrupted
run never leaves a half-written output under its final name. Temporary names carry the writer's
process id, so that the next writer can sweep what a killed process (SIGKILL) left behind."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

_stop = {"requested": False}


def stop_on_sigterm() -> None:
    """Treat SIGTERM (a `kill`, a CI timeout) like Ctrl-C: KeyboardInterrupt unwinds the stack and
    every atomic write removes its temporary file or folder on the way out."""
    def handler(signum, frame):
        _stop["requested"] = True
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, handler)


def raise_if_stopped() -> None:
    """Called once per iteration by the long loops. Python drops an exception raised while a finalizer
    or weakref callback runs ("Exception ignored in ..."), so a SIGTERM landing there would be lost and
    the loop would run on; the flag makes the next iteration stop instead."""
    if _stop["requested"]:
        raise KeyboardInterrupt("SIGTERM")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process; a pid no process can have
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_stale(path: Path) -> list:
    """Remove the temporary files and folders for `path` that a dead process left; returns them."""
    path = Path(path)
    # only names this module makes (ecgproto-pid), so that a user's own ".NAME.pid7.x.tmp" is never touched
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.ecgproto-pid(\d+)\..*\.tmp\Z")
    removed = []
    if not path.parent.is_dir():
        return removed
    for entry in path.parent.iterdir():
        match = pattern.match(entry.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


def _mode_for(path: Path) -> int:
    """The existing file's mode, else 0666 less the umask."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _prefix(path: Path) -> str:
    return f".{path.name}.ecgproto-pid{os.getpid()}."


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; on success it is renamed to `path`, on error removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _mode_for(path))  # mkstemp makes 0600; the file gets the mode a plain open() would give
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_dir(path: Path):
    """Yield a temporary folder beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_json(path: Path, obj) -> None:
    """Strict JSON: a NaN or infinity raises ValueError instead of writing invalid JSON."""
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def _unique_keys(pairs: list) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key[:60]!r} appears twice in one object")
        out[key] = value
    return out


def loads_strict(text):
    """JSON from outside (a model's metadata, a metrics file): a repeated key is an error (ValueError), not
    the last one silently kept."""
    return json.loads(text, object_pairs_hook=_unique_keys)


def check_writable(path: Path, what: str) -> Path:
    """Refuse, before any work, an output path that cannot be written (a folder, a missing or
    read-only parent), naming the option `what`."""
    from ecgproto.errors import ConfigError

    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ConfigError(f"{what} {path}: is a folder; expected a file name")
    if path.exists() and not path.is_file():  # /dev/null, a FIFO: an atomic rename would replace the device
        raise ConfigError(f"{what} {path}: is not a regular file (a device, FIFO or socket); expected a file name")
    if not parent.is_dir():
        raise ConfigError(f"{what} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: folder {parent} is not writable")
    return path


def refuse_inputs(outputs, inputs, what: str) -> None:
    """Refuse, before any work, an output that is (or resolves to, through a symlink, '..' or a hard link)
    one of the command's inputs: an output never replaces an input. Inputs are indexed once by resolved path
    and by (device, inode), so a folder of thousands of records is checked in linear time."""
    from ecgproto.errors import ConfigError

    by_path, by_inode = {}, {}
    for source in map(Path, inputs):
        by_path.setdefault(os.path.realpath(source), source)
        try:
            info = os.stat(source)
            by_inode.setdefault((info.st_dev, info.st_ino), source)
        except OSError:  # not there (yet): only its path can collide
            pass
    for out in map(Path, outputs):
        source = by_path.get(os.path.realpath(out))
        if source is None:
            try:
                info = os.stat(out)
                source = by_inode.get((info.st_dev, info.st_ino))
            except OSError:
                source = None
        if source is not None:
            raise ConfigError(f"{what} {out}: is the input {source}; refusing to write over an input "
                              "(choose another output path)")


def record_inputs(base: Path) -> list:
    """The files a WFDB record is read from: its header, the signal files the header names, and the
    usual signal files beside it (.dat, .mat), whether or not they exist yet."""
    import stat

    from ecgproto.files.paths import record_file

    base = Path(base)
    found = [record_file(base, ".hea"), record_file(base, ".dat"), record_file(base, ".mat")]
    try:
        if not stat.S_ISREG(os.stat(found[0]).st_mode):  # a FIFO would hang the read: the reader refuses it later
            return found
        with open(found[0], "rb") as f:
            lines = f.read(65536).decode("latin-1").splitlines()
    except OSError:
        return found
    body = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    for line in body[1:]:
        name = line.split()[0] if line.split() else ""
        if name and "/" not in name and "\\" not in name and name != "~":
            found.append(base.parent / name)
    return found
