"""PTB-XL layout: metadata, the 16 rhythm labels, and fast reading of the 100 Hz WFDB records.

The same code reads real PTB-XL (v1.0.1, v1.0.3), the third-party real subset and the synthetic
dataset that ecgproto writes itself, because all three share the layout.
"""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from ecgproto.errors import RecordError
from ecgproto.files.atomic import raise_if_stopped
from ecgproto.files.paths import inside, record_file
from ecgproto.data.wfdb_record import LEADS, read_header, read_leads

# The 16 codes of ProtoECGNet's "1D rhythm" group, in the published order.
LABELS = ("1AVB", "IVCD", "3AVB", "2AVB", "SR", "AFIB", "STACH", "SARRH",
          "SBRAD", "PACE", "SVARR", "BIGU", "AFLT", "SVTAC", "PSVT", "TRIGU")
# scp_statements.csv's description of each of the 16 codes (PTB-XL v1.0.3)
CODE_NAMES = {
    "1AVB": "first degree AV block", "IVCD": "non-specific intraventricular conduction disturbance (block)",
    "3AVB": "third degree AV block", "2AVB": "second degree AV block", "SR": "sinus rhythm",
    "AFIB": "atrial fibrillation", "STACH": "sinus tachycardia", "SARRH": "sinus arrhythmia",
    "SBRAD": "sinus bradycardia", "PACE": "normal functioning artificial pacemaker",
    "SVARR": "supraventricular arrhythmia", "BIGU": "bigeminal pattern (unknown origin, SV or Ventricular)",
    "AFLT": "atrial flutter", "SVTAC": "supraventricular tachycardia",
    "PSVT": "paroxysmal supraventricular tachycardia",
    "TRIGU": "trigeminal pattern (unknown origin, SV or Ventricular)",
}
FS = 100
N_SAMPLES = 1000


def read_metadata(root: Path):
    """ptbxl_database.csv indexed by ecg_id, with `scp_codes` parsed into dicts."""
    path = Path(root) / "ptbxl_database.csv"
    if not path.is_file():
        raise RecordError(f"{path}: not found; expected a PTB-XL tree with ptbxl_database.csv")
    import pandas as pd  # here: reading one record (`ecgproto explain`) must not pay for pandas

    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise RecordError(f"{path}: not a readable CSV ({type(exc).__name__}: {exc})") from None
    missing = {"ecg_id", "scp_codes", "strat_fold", "filename_lr", "patient_id"} - set(df.columns)
    if missing:
        raise RecordError(f"{path}: missing columns {sorted(missing)}")
    df = df.set_index("ecg_id")
    bad_name = [f for f in df["filename_lr"] if not isinstance(f, str) or not f]
    if bad_name:
        raise RecordError(f"{path}: filename_lr {bad_name[0]!r} is not a record path")
    # v1.0.3 removed duplicate ids; keep the first row so both versions read the same way.
    df = df[~df.index.duplicated(keep="first")]
    df["scp_codes"] = [_parse_scp_codes(s, ecg_id, path) for ecg_id, s in df["scp_codes"].items()]
    bad_fold = ~df["strat_fold"].isin(range(1, 11))
    if bad_fold.any():
        ecg_id = df.index[bad_fold][0]
        raise RecordError(f"{path}: ecg_id {ecg_id} has strat_fold {df.loc[ecg_id, 'strat_fold']!r}; "
                          "expected an integer 1-10")
    return df


def _parse_scp_codes(text, ecg_id, path) -> dict:
    try:
        codes = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        codes = None
    if not isinstance(codes, dict):
        raise RecordError(f"{path}: ecg_id {ecg_id} has unparsable scp_codes {text!r}; "
                          "expected a dict string such as \"{'SR': 0.0}\"")
    return codes


def label_matrix(metadata, labels=LABELS) -> np.ndarray:
    """(N, C) float32 multi-hot matrix by the published rule: a code is positive when it is a key of
    the record's scp_codes, whatever its likelihood (0.0 counts). Records with no code stay as zeros."""
    index = {code: j for j, code in enumerate(labels)}
    y = np.zeros((len(metadata), len(labels)), dtype=np.float32)
    for i, codes in enumerate(metadata["scp_codes"]):
        for code in codes:
            j = index.get(code)
            if j is not None:
                y[i, j] = 1.0
    return y


def read_record(path_without_ext: Path, fs: int = FS) -> np.ndarray:
    """One 10 s PTB-XL record as (12, 10 x fs) float32 millivolts, validated against the layout
    (fs = 100 for records100, 500 for records500): format 16, 12 leads in PTB-XL's order."""
    base = Path(path_without_ext)
    hdr = read_header(record_file(base, ".hea"))
    n_samples = N_SAMPLES * fs // FS
    expected = (len(LEADS), float(fs), n_samples)
    if (hdr.n_sig, hdr.fs, hdr.n_samples) != expected:
        raise RecordError(f"{base}: header has {hdr.n_sig} leads at {hdr.fs:g} Hz x {hdr.n_samples} samples; "
                          f"expected {expected[0]} leads at {fs} Hz x {n_samples} samples")
    if set(hdr.fmt) != {"16"}:
        raise RecordError(f"{base}: WFDB format {sorted(set(hdr.fmt))}; expected 16 (PTB-XL)")
    names = tuple(n.upper() for n in hdr.sig_name)
    if names != LEADS:
        raise RecordError(f"{base}: leads {names}; expected {LEADS}")
    return read_leads(base, hdr)


def write_record(path_without_ext: Path, millivolts: np.ndarray, fs: int = FS) -> None:
    """Write (12, 10 x fs) millivolts as a PTB-XL record: format 16, gain 1000/mV, baseline 0.

    Byte-identical to wfdb.wrsamp with the same fields (a test checks this); wfdb's own writer spends
    ~95 ms per record in header validation, which would dominate generating a dataset.
    """
    base = Path(path_without_ext)
    digital = np.clip(np.round(np.asarray(millivolts, dtype=np.float64) * 1000), -32767, 32767).astype("<i2")
    n_samples = N_SAMPLES * fs // FS
    if digital.shape != (len(LEADS), n_samples):
        raise ValueError(f"{base}: signal shape {digital.shape}; expected {(len(LEADS), n_samples)}")
    checksums = digital.astype(np.int64).sum(axis=1) % 65536
    lines = [f"{base.name} {len(LEADS)} {fs} {n_samples}"]
    lines += [f"{base.name}.dat 16 1000.0(0)/mV 16 0 {digital[k, 0]} {checksums[k]} 0 {lead}"
              for k, lead in enumerate(LEADS)]
    record_file(base, ".hea").write_text("\n".join(lines) + "\n")
    digital.T.tofile(record_file(base, ".dat"))


def read_signals(root: Path, filenames, skip_bad: bool = False, progress: bool = False):
    """Read many records into one (N, 12, 1000) float32 array.

    Returns (signals, kept_mask). With skip_bad the bad records are left out and reported through the
    mask; otherwise the first bad record raises RecordError naming it.
    """
    from tqdm import tqdm

    root = Path(root)
    out = np.empty((len(filenames), len(LEADS), N_SAMPLES), dtype=np.float32)
    kept = np.ones(len(filenames), dtype=bool)
    errors = []
    for i, name in enumerate(tqdm(filenames, desc="read records", disable=not progress, unit="rec")):
        raise_if_stopped()
        path = inside(root, name, f"{root / 'ptbxl_database.csv'}, filename_lr")  # never skipped: not a bad record but a bad tree
        try:
            out[i] = read_record(path)
        except RecordError as exc:
            if not skip_bad:
                raise
            kept[i] = False
            errors.append(str(exc))
    return out[kept] if not kept.all() else out, kept, errors
