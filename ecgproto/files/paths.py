"""Paths that come from outside (a manifest line, a metadata row, a WFDB header) must stay inside
their root: no absolute paths, no '..', no symlink that leads out. And folder walks that never
follow a symlink, so a link loop cannot trap them."""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ecgproto.errors import RecordError


def inside(root: Path, relative: str, where: str) -> Path:
    """root / relative, refused (RecordError naming `where`) unless it resolves inside root."""
    text = str(relative)
    parts = PurePosixPath(text.replace("\\", "/")).parts
    if not text or "\x00" in text or text.startswith(("/", "\\")) or (len(text) > 1 and text[1] == ":") \
            or ".." in parts:
        raise RecordError(f"{where}: path {text!r} is not a plain relative path inside {root} "
                          "(absolute paths and '..' are refused)")
    root = Path(root)
    path = root.joinpath(*parts)
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
        raise RecordError(f"{where}: path {text!r} leads outside {root} through a symbolic link")
    return path


def walk_files(root: Path):
    """Every file under root (sorted), never descending into a symbolic link to a folder."""
    out = []
    for folder, _, files in os.walk(root, followlinks=False):
        out += [Path(folder, f) for f in files if os.path.isfile(os.path.join(folder, f))]
    return sorted(out)


def model_file(path: Path, missing: str) -> Path:
    """A model file path checked before it is opened: not a folder, not a FIFO/device/socket, present
    (`missing` says what to do otherwise). ModelError names the path."""
    from ecgproto.errors import ModelError

    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path}: is a folder; expected a model file (e.g. models/final.pt or models/final.onnx)")
    if path.exists() and not path.is_file():
        raise ModelError(f"{path}: not a regular file (a FIFO, device or socket); expected a model file")
    if not path.is_file():
        raise ModelError(f"{path}: {missing}")
    return path


def record_file(base: Path, extension: str) -> Path:
    """A WFDB record's file: base + extension. Not Path.with_suffix, which would read record `x.v2`'s header
    from `x.hea`, another record's."""
    return Path(f"{base}{extension}")
