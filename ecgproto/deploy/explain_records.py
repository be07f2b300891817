"""`ecgproto explain`: for each record, whether it can be read, then every label's calibrated probability and
threshold, and both sides of the logit of the called labels and of the closest labels not called; as text,
JSON or a figure, or a JSON and a figure per record into a folder (the model run in batches)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ecgproto.data.filters import highpass
from ecgproto.data.wfdb_record import records_in
from ecgproto.deploy.predictor import open_model
from ecgproto.deploy.preprocessing import read_ecg, to_millivolts
from ecgproto.deploy.recordings import AGGREGATION, answer
from ecgproto.errors import ConfigError, RecordError
from ecgproto.files.atomic import atomic_path, check_writable, record_inputs, refuse_inputs
from ecgproto.report.ecgplot import FIGURE_FORMATS, draw_explanation, leading_prototype
from ecgproto.trust.evidence import lead_attribution, lead_shading
from ecgproto.trust.explanation import explain_ecg, source_measurements
from ecgproto.trust.explanation_text import as_text


def explain_records(paths, model_path, runtime: str, top, as_json: bool, plot, out_dir, overwrite: bool,
                    expect_sha256=None, plots: bool = False) -> str:
    """One record: its explanation as text, JSON (as_json) and a figure (plot). Several records or folders:
    a JSON per record into out_dir, and a figure too with plots; a record that cannot be read gets a JSON
    saying why, and the others are answered."""
    many = len(paths) > 1 or any(Path(r).is_dir() for r in paths) or bool(out_dir)  # --out-dir: files, always
    if many and not out_dir:
        raise ConfigError("several records or a folder: give --out-dir, where a JSON (and with --plots a figure) per "
                          "record goes")
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
        planned = [out_dir / f"{name}.{suffix}" for name in names
                   for suffix in (("json", "png") if plots else ("json",))]
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
    texts, failed = [], []
    bar = tqdm(records, desc="explain", unit="rec", disable=not (many and sys.stderr.isatty()))
    for record in bar:
        try:
            millivolts, note = read_ecg(record)
        except RecordError as exc:
            if not many:
                raise
            failed.append(str(exc))  # a folder is not all-or-nothing: the record's JSON says why
            with atomic_path(out_dir / f"{record.name}.json") as tmp:
                tmp.write_text(json.dumps({"record": record.name, "readable": False, "reason": str(exc)}, indent=2)
                               + "\n")
            continue
        if note:
            print(note, file=sys.stderr)
        doc, w, got = explain_record(runner, millivolts, top, sources, record.name)
        if (many and plots) or plot:
            plot_one(runner, got["millivolts"][w], got["x"][w:w + 1], doc, sources, top,
                     out_dir / f"{record.name}.png" if many else Path(plot), plot_format or "png")
        if many:
            with atomic_path(out_dir / f"{record.name}.json") as tmp:
                tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
        elif as_json:
            texts.append(json.dumps(doc, indent=2, allow_nan=False))
        else:
            texts.append(as_text(doc))
    if many:
        done = (f"wrote a JSON{' and a figure' if plots else ''} for each of {len(records) - len(failed)} records to "
                f"{out_dir}")
        if failed:  # everything readable is answered; the exit code (1) says some records were not
            raise RecordError(f"{done}; {len(failed)} of {len(records)} records could not be read (their JSON says "
                              f"why), e.g. {failed[0]}")
        return done
    return "\n".join(texts)


def explain_record(runner, millivolts: np.ndarray, top, sources, name: str) -> tuple:
    """(document, explained window, recordings.answer) for one record of any length: a 10 s record is
    explained as it is; a longer one is read in windows, its calls are the aggregated ones, and the window
    that carried the first call (else the most probable label) is the one explained and drawn."""
    got = answer(runner, millivolts)
    probs = got["probabilities"]
    order = [c for c in np.argsort(-np.nan_to_num(probs, nan=-1.0)) if got["called"][c]] or \
        [int(np.nanargmax(probs))] if np.isfinite(probs).any() else [0]
    w = int(got["carried_by"][order[0]])
    one = {k: v[w:w + 1] for k, v in got["out"].items()}
    doc = explain_ecg(runner, got["millivolts"][w], got["x"][w:w + 1], one, top, sources, name)
    if len(got["starts"]) > 1:
        labels = runner.labels
        doc["record_level"] = {
            "seconds": round(millivolts.shape[1] / 100, 2), "windows": len(got["starts"]),
            "window_starts_s": [s / 100 for s in got["starts"]], "aggregation": AGGREGATION,
            "reliable": got["reliable"],
            "called": [c for c, y in zip(labels, got["called"]) if y] if got["reliable"] is not False else [],
            "probabilities": {c: (None if not np.isfinite(p) else round(float(p), 4)) for c, p in zip(labels, probs)},
            "carried_by_window_s": {c: got["starts"][int(got["carried_by"][k])] / 100
                                    for k, c in enumerate(labels) if got["called"][k]},
            "explained_window_s": [got["starts"][w] / 100, got["starts"][w] / 100 + 10]}
    return doc, w, got


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
                sources[j] = (to_millivolts(runner.source_ecgs[j], prep)[1], runner.source_codes[j],
                              sources_measured[j])
    with atomic_path(path) as tmp:
        draw_explanation(tmp, doc, shown, sources, 2, min(top or 3, 3), lead_weights=weights, fmt=fmt)
