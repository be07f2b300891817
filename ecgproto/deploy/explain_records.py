"""`ecgproto explain`: for each record, whether it can be read, then every label's calibrated probability and
threshold, and both sides of the logit of the called labels and of the closest labels not called; as text,
JSON or a figure, or a JSON and a figure per record into a folder (the model run in batches)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from ecgproto.data.filters import highpass
from ecgproto.data.wfdb_record import records_in
from ecgproto.deploy.predictor import open_model
from ecgproto.deploy.preprocessing import preprocess, read_ecg, to_millivolts
from ecgproto.errors import ConfigError
from ecgproto.files.atomic import atomic_path, check_writable, record_inputs, refuse_inputs
from ecgproto.report.ecgplot import FIGURE_FORMATS, draw_explanation, leading_prototype
from ecgproto.trust.evidence import lead_attribution, lead_shading
from ecgproto.trust.explanation import explain_ecg, source_measurements
from ecgproto.trust.explanation_text import as_text


def explain_records(paths, model_path, runtime: str, top, as_json: bool, plot, out_dir, overwrite: bool,
                    expect_sha256=None) -> str:
    """One record: first whether it can be read, then every label's calibrated probability and threshold,
    and both sides of the logit of the called labels and of the closest labels not called. Several
    records or folders: a JSON and a figure per record into --out-dir, the model run in batches."""
    many = len(paths) > 1 or any(Path(r).is_dir() for r in paths)
    if many and not out_dir:
        raise ConfigError("several records or a folder: give --out-dir, where a JSON and a figure per record go")
    records = records_in(paths)
    inputs = [Path(model_path), *(f for r in records for f in record_inputs(r))]
    plot_format = None
    if plot:
        plot_format = Path(plot).suffix.lower().lstrip(".")
        if plot_format not in FIGURE_FORMATS:
            raise ConfigError(f"--plot {plot}: expected a file name ending in "
                              f"{', '.join('.' + f for f in FIGURE_FORMATS)} (the figure's format)")
        check_writable(Path(plot), "--plot")
        refuse_inputs([plot], inputs, "--plot")
    if many:
        out_dir = Path(out_dir)
        names = [r.name for r in records]
        if len(set(names)) != len(names):
            raise ConfigError("--out-dir: two records share a name; explain them in separate runs")
        planned = [out_dir / f"{name}.{suffix}" for name in names for suffix in ("json", "png")]
        refuse_inputs(planned, inputs, "--out-dir")
        there = [p for p in planned if os.path.lexists(p)]
        if there and not overwrite:
            raise ConfigError(f"--out-dir {out_dir}: {len(there)} output files are already there (e.g. {there[0]}); "
                              "refusing to replace them (pass --overwrite, or choose an empty folder)")
        try:
            out_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--out-dir {out_dir}: cannot create it ({exc.strerror})") from None
        check_writable(out_dir / "x", "--out-dir")
    runner = open_model(Path(model_path), runtime, require_prototypes=True, expect_sha256=expect_sha256)
    if not runner.explainable:
        raise ConfigError(f"{model_path}: a model without prototypes has nothing to explain with; use models/final.pt")
    sources = source_measurements(runner)
    texts = []
    for start in range(0, len(records), 64):
        chunk = records[start:start + 64]
        read = [read_ecg(r) for r in chunk]
        for _, note in read:
            if note:
                print(note, file=sys.stderr)
        millivolts = np.stack([signal for signal, _ in read])
        x = preprocess(millivolts, runner.meta["preprocessing"])
        out = runner.outputs(x)
        for n, record in enumerate(chunk):
            one = {k: v[n:n + 1] for k, v in out.items()}
            doc = explain_ecg(runner, millivolts[n], x[n:n + 1], one, top, sources, record.name)
            if many or plot:
                plot_one(runner, millivolts[n], x[n:n + 1], doc, sources, top,
                         out_dir / f"{record.name}.png" if many else Path(plot), plot_format or "png")
            if many:
                with atomic_path(out_dir / f"{record.name}.json") as tmp:
                    tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
            elif as_json:
                texts.append(json.dumps(doc, indent=2, allow_nan=False))
            else:
                texts.append(as_text(doc))
    if many:
        return f"wrote a JSON and a figure for each of {len(records)} records to {out_dir}"
    return "\n".join(texts)


def default_model() -> Path:
    """models/final.onnx when it is there beside models/final.pt (no PyTorch import: answers in well under a
    second), else models/final.pt."""
    onnx = Path("models/final.onnx")
    return onnx if onnx.is_file() else Path("models/final.pt")


def plot_one(runner, millivolts, x, doc, sources_measured, top, path, fmt: str = "png") -> None:
    """The explanation figure: the filtered ECG as the model saw it, lead shading for the leading evidence,
    each shown prototype's source ECG (when the model file carries them) with its own measurements."""
    prep = runner.meta["preprocessing"]
    entries = doc["labels"]
    leading = leading_prototype(entries)
    weights = lead_shading(lead_attribution(runner.outputs, x, leading)) if leading is not None else None
    shown = highpass(millivolts[None], prep["highpass_hz"], prep["filter_order"])[0]
    sources = {}
    if runner.source_ecgs is not None:  # the prototypes' source ECGs travel in the model file
        for e in entries:
            for p in e["evidence_for"]:
                j = p["index"]
                sources[j] = (to_millivolts(runner.source_ecgs[j], prep)[1], runner.source_codes[j], sources_measured[j])
    with atomic_path(path) as tmp:
        draw_explanation(tmp, doc, shown, sources, 2, min(top or 3, 3), lead_weights=weights, fmt=fmt)
