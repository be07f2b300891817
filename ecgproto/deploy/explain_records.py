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
from ecgproto.trust import explanation_text as readout
from ecgproto.trust.evidence import interpolate_steps, lead_attribution, lead_shading, split_logits
from ecgproto.trust.guard import best_similarity, verdict
from ecgproto.trust.rhythm import heart_rate, remarks


def explain_records(paths, model_path, runtime: str, top, as_json: bool, plot, out_dir, overwrite: bool) -> str:
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
    runner = open_model(Path(model_path), runtime, require_prototypes=True)
    if not runner.explainable:
        raise ConfigError(f"{model_path}: a model without prototypes has nothing to explain with; use models/final.pt")
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
            explained = explained_one(runner, millivolts[n], one, top)
            doc = readout.as_dict(record.name, *explained)
            if many or plot:
                plot_one(runner, millivolts[n], x[n:n + 1], one, explained[0], doc, top,
                      out_dir / f"{record.name}.png" if many else Path(plot), plot_format or "png")
            if many:
                with atomic_path(out_dir / f"{record.name}.json") as tmp:
                    tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
            elif as_json:
                texts.append(json.dumps(doc, indent=2, allow_nan=False))
            else:
                texts.append(readout.as_text(record.name, *explained))
    if many:
        return f"wrote a JSON and a figure for each of {len(records)} records to {out_dir}"
    return "\n".join(texts)


def explained_one(runner, millivolts, out, top) -> tuple:
    """(entries, verdict, calibrated, rate, remarks) for one ECG from the model's outputs."""

    meta = runner.meta
    entries = split_logits(out["logits"], out["sims"], np.asarray(meta["last_layer_weight"]), meta["prototype_class"],
                           meta["prototype_source"], meta["groups"], runner.labels, meta.get("calibration"), top)[0]
    best = float(best_similarity(out["sims"], runner.active())[0])
    checked = verdict(millivolts, best, meta.get("guard"), meta.get("familiarity"))
    rate = heart_rate(millivolts)
    said = remarks([e["label"] for e in entries if e["called"]], rate, meta.get("cooccurrence"))
    return entries, checked, meta.get("calibration") is not None, rate, said


def plot_one(runner, millivolts, x, out, entries, doc, top, path, fmt: str = "png") -> None:
    """The explanation figure: the filtered ECG as the model saw it, per-lead shading, prototypes beside
    their source ECGs when the model file carries them."""

    meta = runner.meta
    title = f"record {doc['record']}" + ("" if doc["reliable"] is not False else
                                         " - NO RELIABLE RHYTHM CALL: " + "; ".join(doc["reasons"]))
    entries = entries if doc["reliable"] is not False else []  # an unreadable ECG gets no explained label
    leading = leading_prototype(entries)
    weights = lead_shading(lead_attribution(runner.outputs, x, leading)) if leading is not None else None
    prep = meta["preprocessing"]
    shown = highpass(millivolts[None], prep["highpass_hz"], prep["filter_order"])[0]
    source = None
    if runner.source_ecgs is not None:  # the prototypes' source ECGs travel in a .pt model file
        def source(j):
            src = runner.source_ecgs[j:j + 1]
            local = interpolate_steps(runner.outputs(src)["local"][0, j], src.shape[-1])
            return to_millivolts(src[0], prep)[1], runner.source_codes[j], local
    with atomic_path(path) as tmp:
        draw_explanation(tmp, shown, title, entries, interpolate_steps(out["local"][0], x.shape[-1]),
                         len(runner.labels), min(top or 5, 5), source, lead_weights=weights, fmt=fmt)
