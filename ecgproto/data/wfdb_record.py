"""Any WFDB record as 12-lead millivolts: the header parsed and checked by hand (fast: `explain` answers one
ECG in well under a second), plain format 16 (PTB-XL, and the Challenge's `.mat` files: format `16+24`)
read with NumPy, every other format wfdb reads (212, 80, ...) through wfdb itself, imported only then.

A header from outside is hostile until checked: size and file type before reading, text (UTF-8 or Latin-1
comments and names; NUL bytes are binary), units honoured (mV, uV, V; any other unit refused by name),
leads found by name in any order and case, a signal file's size checked against what the header promises
before a byte of it is read.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgproto.errors import RecordError
from ecgproto.files.paths import inside, record_file, walk_files

LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")  # PTB-XL's order
WFDB_NAN = -32768  # format-16 sample value WFDB uses for a missing sample
MAX_HEADER_BYTES = 1 << 20  # a 12-lead header is about 1 kB
MAX_SIGNAL_BYTES = 256 << 20  # a 12-lead rest ECG is kB to a few MB (2 min at 1 kHz: 2.8 MB)
MILLIVOLTS_PER = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}  # µ: micro sign; μ: Greek mu
_FORMAT = re.compile(r"^(\d+)(?:x\d+)?(?::\d+)?(?:\+(\d+))?$")  # format[xspf][:skew][+byte offset]


@dataclass(frozen=True)
class Header:
    n_sig: int
    fs: float
    n_samples: int
    fmt: tuple        # WFDB format per signal ("16", "212", ...)
    offset: tuple     # byte offset of the samples in the signal file, per signal (`16+24`: 24)
    gain: np.ndarray  # ADC units per physical unit
    baseline: np.ndarray
    units: tuple      # physical units per signal as the header spells them ("" when absent: WFDB's mV)
    sig_name: tuple
    file_names: tuple  # the signal file each lead is stored in, as the header names it


def regular_file(path: Path, what: str, limit: int, named_in: str = "") -> int:
    """The size of `path` after checking it is a regular file of at most `limit` bytes (a FIFO would hang a
    read, a huge sparse file would fill memory)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise RecordError(f"{path}: {what} not found{f' (named in {named_in})' if named_in else ''}") from None
    except OSError as exc:
        raise RecordError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise RecordError(f"{path}: is a folder; expected a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise RecordError(f"{path}: not a regular file (a FIFO, device or socket); expected a {what}")
    if info.st_size > limit:
        raise RecordError(f"{path}: {info.st_size / 2 ** 20:.0f} MB; a {what} of at most {limit / 2 ** 20:.0f} MB "
                          "is expected")
    return info.st_size


def _header_text(hea: Path) -> str:
    regular_file(hea, "header file", MAX_HEADER_BYTES)
    try:
        data = hea.read_bytes()
    except OSError as exc:
        raise RecordError(f"{hea}: cannot read the header ({exc.strerror or exc})") from None
    if b"\x00" in data:
        raise RecordError(f"{hea}: not a WFDB header (binary data: NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # every byte is a Latin-1 character: old devices write their names so


def read_header(hea: Path) -> Header:
    """Minimal WFDB header parser (~50x faster than wfdb's); a malformed header is refused by name."""
    hea = Path(hea)
    lines = [ln for ln in _header_text(hea).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    try:
        first = lines[0].split()
        n_sig, fs, n_samples = int(first[1]), float(first[2].split("/")[0].split("(")[0]), int(first[3])
        fmts, offsets, gains, baselines, units, names, files = [], [], [], [], [], [], []
        for ln in lines[1:1 + n_sig]:
            f = ln.split()
            files.append(f[0])
            match = _FORMAT.match(f[1])
            if not match:
                raise ValueError(f"format {f[1]!r}")
            fmts.append(match.group(1))
            offsets.append(int(match.group(2) or 0))
            gain_field = f[2] if len(f) > 2 else "200"  # WFDB's default gain
            gain_text, _, unit = gain_field.partition("/")
            gains.append(float(gain_text.split("(")[0]))
            zero = int(f[4]) if len(f) > 4 else 0
            baselines.append(int(gain_text.split("(")[1].rstrip(")")) if "(" in gain_text else zero)
            units.append(unit)
            names.append(" ".join(f[8:]) if len(f) > 8 else "")
    except (IndexError, ValueError) as exc:
        raise RecordError(f"{hea}: unreadable WFDB header ({exc})") from None
    if len(fmts) != n_sig or n_sig < 1:
        raise RecordError(f"{hea}: header announces {n_sig} signals but describes {len(fmts)}")
    gains = np.array(gains)
    if not (np.isfinite(fs) and fs > 0) or not np.isfinite(gains).all() or n_samples < 0:
        raise RecordError(f"{hea}: non-finite or non-positive sampling rate {fs} or ADC gain {gains.tolist()}, or "
                          f"a negative length {n_samples}; expected finite positive numbers")
    return Header(n_sig, fs, n_samples, tuple(fmts), tuple(offsets), gains, np.array(baselines), tuple(units),
                  tuple(names), tuple(files))


def unit_scale(hdr: Header, base: Path) -> np.ndarray:
    """Millivolts per physical unit of each signal; a unit that is not a voltage is refused by name."""
    scale = []
    for name, unit in zip(hdr.sig_name, hdr.units):
        key = unit.strip().lower() or "mv"  # WFDB's default unit is the millivolt
        if key not in MILLIVOLTS_PER:
            raise RecordError(f"{base}.hea: lead {name or '?'} is in {unit!r}; expected a voltage (mV, uV or V)")
        scale.append(MILLIVOLTS_PER[key])
    return np.array(scale)


def lead_order(hdr: Header, base: Path) -> list:
    """The header's signal index of each of the 12 standard leads, found by name in any order and case."""
    index = {}
    for k, name in enumerate(hdr.sig_name):
        key = name.strip().upper()
        if not key:
            raise RecordError(f"{base}.hea: signal {k + 1} has no lead name; expected the 12 standard leads by name")
        if key in index:
            raise RecordError(f"{base}.hea: lead {name!r} appears twice; expected each standard lead once")
        index[key] = k
    missing = [lead for lead in LEADS if lead not in index]
    if missing:
        raise RecordError(f"{base}.hea: leads {missing} are missing (the header names {list(hdr.sig_name)}); expected "
                          "the 12 standard leads I, II, III, aVR, aVL, aVF, V1-V6")
    return [index[lead] for lead in LEADS]


def _signal_file(base: Path, hdr: Header) -> Path:
    if len(set(hdr.file_names)) != 1:
        raise RecordError(f"{base}.hea: leads stored in several files {sorted(set(hdr.file_names))}; "
                          "expected one signal file")
    name = hdr.file_names[0]
    if "/" in name or "\\" in name:
        raise RecordError(f"{base}.hea: signal file {name!r} is not in the record's folder")
    return inside(base.parent, name, f"{base}.hea, signal file name")


def read_format16(base: Path, hdr: Header) -> np.ndarray:
    """(n_sig, n_samples) float64 physical values of a format-16 record stored in one file after its byte
    offset; the file's size is checked against the header before it is read."""
    dat = _signal_file(base, hdr)
    if len(set(hdr.offset)) != 1:
        raise RecordError(f"{base}.hea: signals start at different byte offsets {sorted(set(hdr.offset))}")
    offset, expected = hdr.offset[0], hdr.n_samples * hdr.n_sig * 2
    size = regular_file(dat, "signal file", MAX_SIGNAL_BYTES, f"{base}.hea")
    if size != offset + expected:
        raise RecordError(f"{dat}: {size} bytes; the header promises {offset} + {expected} ({hdr.n_sig} signals x "
                          f"{hdr.n_samples} samples of format 16{f' after a {offset}-byte header' if offset else ''})"
                          f"; {'truncated' if size < offset + expected else 'longer than its header says'}")
    try:
        raw = np.fromfile(dat, dtype="<i2", offset=offset)
    except OSError as exc:
        raise RecordError(f"{dat}: cannot read the signal file ({exc.strerror or exc})") from None
    digital = raw.reshape(hdr.n_samples, hdr.n_sig).T
    if (digital == WFDB_NAN).any():
        k = int(np.nonzero((digital == WFDB_NAN).any(axis=1))[0][0])
        raise RecordError(f"{base}: NaN (missing) samples in lead {hdr.sig_name[k] or k}")
    if (hdr.gain <= 0).any():
        raise RecordError(f"{base}: non-positive ADC gain {hdr.gain.tolist()}")
    return (digital - hdr.baseline[:, None]) / hdr.gain[:, None]


def _read_with_wfdb(base: Path, hdr: Header) -> np.ndarray:
    """Formats other than plain 16 (212, 80, 24, ...), through wfdb itself; files checked first."""
    for name in sorted(set(hdr.file_names)):
        if "/" in name or "\\" in name:
            raise RecordError(f"{base}.hea: signal file {name!r} is not in the record's folder")
        regular_file(inside(base.parent, name, f"{base}.hea, signal file name"), "signal file", MAX_SIGNAL_BYTES,
                     f"{base}.hea")
    import wfdb  # here: only records in another format pay for importing it

    try:
        record = wfdb.rdrecord(str(base), physical=True)
    except Exception as exc:  # wfdb raises ValueError, IndexError, ... for a file it cannot read
        raise RecordError(f"{base}: wfdb cannot read this record ({type(exc).__name__}: {str(exc)[:200]})") from None
    signal = np.asarray(record.p_signal, dtype=np.float64).T
    if signal.shape != (hdr.n_sig, hdr.n_samples):
        raise RecordError(f"{base}: wfdb read {signal.shape[1]} samples of {signal.shape[0]} signals; the header "
                          f"promises {hdr.n_samples} of {hdr.n_sig}")
    if np.isnan(signal).any():
        k = int(np.nonzero(np.isnan(signal).any(axis=1))[0][0])
        raise RecordError(f"{base}: NaN (missing) samples in lead {hdr.sig_name[k] or k}")
    return signal


def read_leads(base: Path, hdr: Header | None = None) -> np.ndarray:
    """(12, n_samples) float32 millivolts of any WFDB record, leads in PTB-XL's order, at the record's own
    rate (hdr.fs)."""
    base = Path(base)
    hdr = hdr or read_header(record_file(base, ".hea"))
    order, scale = lead_order(hdr, base), unit_scale(hdr, base)
    if hdr.n_samples < 1:
        raise RecordError(f"{base}.hea: {hdr.n_samples} samples; expected a recording")
    if (hdr.gain <= 0).any():  # every format: wfdb would put its own default gain in place of 0
        raise RecordError(f"{base}: non-positive ADC gain {hdr.gain.tolist()}; expected positive gains")
    if hdr.n_sig < 1:
        raise RecordError(f"{base}.hea: no signals; expected the 12 standard leads")
    plain = set(hdr.fmt) == {"16"} and len(set(hdr.file_names)) == 1
    physical = read_format16(base, hdr) if plain else _read_with_wfdb(base, hdr)
    with np.errstate(over="ignore", invalid="ignore"):
        millivolts = (physical[order] * scale[order, None]).astype(np.float32)
    if not np.isfinite(millivolts).all():
        raise RecordError(f"{base}: gain {hdr.gain.min():g} and baseline give non-finite millivolts; expected a "
                          "finite signal")
    return millivolts


def records_in(paths) -> list:
    """Record paths (without extension) from record paths and folders (searched recursively)."""
    records = []
    for p in map(Path, paths):
        if p.is_dir():
            found = [h.with_suffix("") for h in walk_files(p) if h.suffix == ".hea"]
            if not found:
                raise RecordError(f"{p}: folder holds no WFDB header (.hea) files")
            records += found
        else:
            records.append(p.with_suffix("") if p.suffix in (".hea", ".dat") else p)
    return records
