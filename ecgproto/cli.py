"""The `ecgproto` command."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from .errors import ConfigError, EcgprotoError, GateError, RecordError, TrainingError


def _synth(args) -> str:
    from . import config
    from .files import atomic_dir
    from .synth import generate

    realism = config.load(Path(args.params)).data.synthetic_realism  # one source: params.yaml
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: is a file; expected a folder to write the synthetic tree into")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise ConfigError(f"{out}: folder is not empty; refusing to overwrite it (pass --overwrite to replace "
                          "the whole folder)")
    with atomic_dir(out) as tmp:  # all or nothing: an interrupted run leaves the folder as it was
        generate(tmp, args.records, args.seed, realism, progress=True)
    return f"wrote {args.records} synthetic PTB-XL records to {args.out}"


MAX_METRIC = 1e6  # no metric the gate compares (AUROC, loss, counts) comes near this; a larger value is a broken file


def _metric(doc, dotted: str, where: str) -> float:
    import math

    for key in dotted.split("."):
        if not isinstance(doc, dict) or key not in doc:
            raise GateError(f"{where}: no metric {dotted!r} (missing key {key!r})")
        doc = doc[key]
    if isinstance(doc, bool) or not isinstance(doc, (int, float)):
        raise GateError(f"{where}: metric {dotted!r} is {str(doc)[:60]!r} ({type(doc).__name__}), not a number")
    value = float(doc)
    if not math.isfinite(value) or abs(value) > MAX_METRIC:
        raise GateError(f"{where}: metric {dotted!r} is {value:g}; expected a finite number of at most {MAX_METRIC:g}")
    return value


def _parse_metrics(text: str, where: str):
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise GateError(f"{where}: not valid JSON ({exc})") from None
    except RecursionError:
        raise GateError(f"{where}: JSON nested too deeply to be a metrics file") from None


def _gate(args) -> str:
    """CI's regression gate: a metric in a JSON metrics file against its value at a git revision. An
    unknown revision or a revision without the file fails: a typo must not let a regression through."""
    import subprocess

    if args.against.startswith("-") or not args.against.strip():
        raise ConfigError(f"--against {args.against!r}: expected a git revision (a name cannot start with '-')")
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GateError(f"{args.file}: cannot read the metrics file ({exc})") from None
    current = _metric(_parse_metrics(text, args.file), args.metric, args.file)
    # --end-of-options: nothing the user passes can become an option of git
    commit = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{args.against}^{{commit}}"],
                            capture_output=True, text=True)
    if commit.returncode != 0:
        raise GateError(f"--against {args.against!r}: not a git revision here (a typo, or a shallow clone "
                        "without it); the gate cannot compare and fails")
    shown = subprocess.run(["git", "show", "--end-of-options", f"{commit.stdout.strip()}:{args.file}"],
                           capture_output=True, text=True)
    if shown.returncode != 0:
        raise GateError(f"{args.against}:{args.file}: the revision has no such file; the gate cannot compare "
                        f"{args.metric} = {current:.4f} with anything and fails")
    committed = _metric(_parse_metrics(shown.stdout, f"{args.against}:{args.file}"), args.metric,
                        f"{args.against}:{args.file}")
    line = f"{args.metric}: {current:.4f} now, {committed:.4f} at {args.against} (allowed drop {args.max_drop})"
    if current < committed - args.max_drop:
        raise GateError(f"regression: {line}")
    return f"ok: {line}"


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a positive integer")
    return int(value)


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r}: expected an integer >= 0")
    return int(value)


def _number(value: str, low: float, high: float, what: str) -> float:
    import math

    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not (math.isfinite(number) and low <= number <= high):
        raise argparse.ArgumentTypeError(f"{value!r}: expected {what}")
    return number


def _fraction(value: str) -> float:
    return _number(value, 0.0, 1.0, "a number from 0 to 1")


def _seconds(value: str) -> float:
    number = _number(value, 0.0, float("inf"), "a positive number")
    if number == 0:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a positive number")
    return number


def _top(value: str):
    if value == "all":
        return None
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"--top {value!r}: expected a positive integer or 'all'")
    return int(value)


def _explain(args) -> str:
    """One record: first whether it can be read, then every label's calibrated probability and threshold,
    and both sides of the logit of the called labels and of the closest labels not called. Several
    records or folders: a JSON and a figure per record into --out-dir, the model run in batches."""
    import json

    import os

    from . import readout
    from .ecgplot import FIGURE_FORMATS
    from .files import atomic_path, check_writable, record_inputs, refuse_inputs
    from .preprocessing import preprocess, read_ecg
    from .runner import open_model

    many = len(args.record) > 1 or any(Path(r).is_dir() for r in args.record)
    if many and not args.out_dir:
        raise ConfigError("several records or a folder: give --out-dir, where a JSON and a figure per record go")
    records = _records_in(args.record)
    inputs = [Path(args.model), *(f for r in records for f in record_inputs(r))]
    plot_format = None
    if args.plot:
        plot_format = Path(args.plot).suffix.lower().lstrip(".")
        if plot_format not in FIGURE_FORMATS:
            raise ConfigError(f"--plot {args.plot}: expected a file name ending in "
                              f"{', '.join('.' + f for f in FIGURE_FORMATS)} (the figure's format)")
        check_writable(Path(args.plot), "--plot")
        refuse_inputs([args.plot], inputs, "--plot")
    if many:
        out_dir = Path(args.out_dir)
        names = [r.name for r in records]
        if len(set(names)) != len(names):
            raise ConfigError("--out-dir: two records share a name; explain them in separate runs")
        planned = [out_dir / f"{name}.{suffix}" for name in names for suffix in ("json", "png")]
        refuse_inputs(planned, inputs, "--out-dir")
        there = [p for p in planned if os.path.lexists(p)]
        if there and not args.overwrite:
            raise ConfigError(f"--out-dir {out_dir}: {len(there)} output files are already there (e.g. {there[0]}); "
                              "refusing to replace them (pass --overwrite, or choose an empty folder)")
        try:
            out_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--out-dir {out_dir}: cannot create it ({exc.strerror})") from None
        check_writable(out_dir / "x", "--out-dir")
    runner = open_model(Path(args.model), args.runtime, require_prototypes=True)
    if not runner.explainable:
        raise ConfigError(f"{args.model}: a model without prototypes has nothing to explain with; use models/final.pt")
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
            explained = _explained(runner, millivolts[n], one, args.top)
            doc = readout.as_dict(record.name, *explained)
            if many or args.plot:
                _plot(runner, millivolts[n], x[n:n + 1], one, explained[0], doc, args.top,
                      out_dir / f"{record.name}.png" if many else Path(args.plot), plot_format or "png")
            if many:
                with atomic_path(out_dir / f"{record.name}.json") as tmp:
                    tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
            elif args.json:
                texts.append(json.dumps(doc, indent=2, allow_nan=False))
            else:
                texts.append(readout.as_text(record.name, *explained))
    if many:
        return f"wrote a JSON and a figure for each of {len(records)} records to {out_dir}"
    return "\n".join(texts)


def _explained(runner, millivolts, out, top) -> tuple:
    """(entries, verdict, calibrated, rate, remarks) for one ECG from the model's outputs."""
    from .evidence import split_logits
    from .quality import best_similarity, verdict
    from .rhythm import heart_rate, remarks

    meta = runner.meta
    entries = split_logits(out["logits"], out["sims"], np.asarray(meta["last_layer_weight"]), meta["prototype_class"],
                           meta["prototype_source"], meta["groups"], runner.labels, meta.get("calibration"), top)[0]
    best = float(best_similarity(out["sims"], runner.active())[0])
    checked = verdict(millivolts, best, meta.get("guard"), meta.get("familiarity"))
    rate = heart_rate(millivolts)
    said = remarks([e["label"] for e in entries if e["called"]], rate, meta.get("cooccurrence"))
    return entries, checked, meta.get("calibration") is not None, rate, said


def _plot(runner, millivolts, x, out, entries, doc, top, path, fmt: str = "png") -> None:
    """The explanation figure: the filtered ECG as the model saw it, per-lead shading, prototypes beside
    their source ECGs when the model file carries them."""
    from .ecgplot import draw_explanation, leading_prototype
    from .evidence import interpolate_steps, lead_attribution, lead_shading
    from .files import atomic_path
    from .filters import highpass
    from .preprocessing import to_millivolts

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


def _records_in(paths) -> list:
    """Record paths (without extension) from record paths and folders (searched recursively)."""
    from .paths import walk_files

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


def _predict(args) -> str:
    """Calibrated probabilities, called labels and the guard's verdict for many records, written
    atomically to one CSV (a record per row)."""
    import pandas as pd
    from tqdm import tqdm

    from .calibration import apply, calls
    from .files import atomic_path, check_writable, record_inputs, refuse_inputs
    from .preprocessing import preprocess, read_ecg
    from .quality import best_similarity, verdict
    from .runner import open_model

    check_writable(Path(args.out), "--out")
    records = _records_in(args.records)
    refuse_inputs([args.out], [Path(args.model), *(f for r in records for f in record_inputs(r))], "--out")
    runner = open_model(Path(args.model), args.runtime)
    meta, labels = runner.meta, runner.labels
    calibration = meta.get("calibration")
    rows = []
    with tqdm(total=len(records), desc="predict", unit="rec", disable=not sys.stderr.isatty()) as bar:
        for start in range(0, len(records), args.batch_size):
            chunk = records[start:start + args.batch_size]
            read = [read_ecg(r) for r in chunk]
            for _, note in read:
                if note:
                    print(note, file=sys.stderr)
            millivolts = np.stack([signal for signal, _ in read])
            out = runner.outputs(preprocess(millivolts, meta["preprocessing"]))
            probs = apply(out["logits"], calibration)
            called_labels = calls(probs, calibration)
            best = best_similarity(out["sims"], runner.active()) if runner.explainable else np.full(len(chunk), np.nan)
            for r, mv, b, p, yes in zip(chunk, millivolts, best, probs, called_labels):
                v = verdict(mv, float(b), meta.get("guard"), meta.get("familiarity"))
                called = " ".join(c for c, y in zip(labels, yes) if y) if v["reliable"] is not False else ""
                rows.append([str(r), v["reliable"], "; ".join(v["reasons"]), called, *p.round(6)])
            bar.update(len(chunk))
    with atomic_path(Path(args.out)) as tmp:
        pd.DataFrame(rows, columns=["record", "reliable", "reason", "called", *labels]).to_csv(tmp, index=False)
    refused = sum(r[1] is False for r in rows)
    return (f"wrote calibrated probabilities of {len(labels)} labels for {len(rows)} records to {args.out}; "
            f"{refused} without a reliable rhythm call")


def _export(args) -> str:
    from .checkpoint import load_checkpoint
    from .export import export_onnx
    from .files import check_writable, refuse_inputs

    check_writable(Path(args.onnx), "--onnx")
    if Path(args.onnx).suffix != ".onnx":
        raise ConfigError(f"--onnx {args.onnx}: expected a new file name ending in .onnx (never the model itself)")
    refuse_inputs([args.onnx], [args.model], "--onnx")
    model, state = load_checkpoint(Path(args.model), require_prototypes=True)
    export_onnx(model, state, Path(args.onnx))
    size = Path(args.onnx).stat().st_size
    return f"wrote {args.onnx} ({size / 1e6:.2f} MB): ONNX model with its preprocessing, calibration and guard"


def _download(args) -> str:
    from .download import Limits, download

    limits = Limits(timeout=args.timeout, deadline=args.deadline, max_bytes=int(args.max_mb * 2 ** 20),
                    retries=args.retries)
    got = download(Path(args.out), args.base_url.rstrip("/") + "/", args.jobs, args.hr, limits,
                   progress=sys.stderr.isatty())
    speed = f", {got['mb_per_s']} MB/s" if got["mb_per_s"] else ""
    return (f"{args.out}: {got['files']} files verified against SHA256SUMS.txt ({got['fetched']} fetched, "
            f"{got['bytes'] / 1e6:.1f} MB in {got['seconds']} s{speed}; {got['already_present']} already present)")


def _bench(args) -> str:
    from . import bench, config
    from .files import write_json

    result = bench.run(config.load(Path("params.yaml")), args.repeats, progress=lambda line: print(line, file=sys.stderr))
    write_json(Path(args.out), result)
    return f"{bench.table(result)}\n\n{result['machine']}, median of {args.repeats}; written to {args.out}"


def _bench_prepare(args) -> str:
    import json

    from . import bench_prepare, config
    from .files import write_json

    params = config.load(Path("params.yaml"))
    result = bench_prepare.run(params.prepare, params.data.synthetic_realism, Path(args.workdir), args.records, args.subset,
                               progress=lambda line: print(line, file=sys.stderr))
    write_json(Path(args.out), result)
    return f"{json.dumps(result, indent=2)}\nwritten to {args.out}"


def _rehearsal(args) -> str:
    from . import config, rehearsal
    from .files import check_writable, write_json

    check_writable(Path(args.out), "--out")  # before an hour of work, not after
    realism = config.load(Path("params.yaml")).data.synthetic_realism
    result = rehearsal.run(Path(args.workdir), args.records, args.seed, realism, args.interrupt_at,
                           progress=lambda line: print(line, file=sys.stderr, flush=True))
    write_json(Path(args.out), result)
    if result["make_ptbxl"]["exit_code"] != 0:
        raise TrainingError(f"make ptbxl failed (exit {result['make_ptbxl']['exit_code']}); what it printed is in "
                            f"{Path(args.workdir) / 'rehearsal.log'}, the partial figures in {args.out}")
    return f"{rehearsal.table(result)}\nwritten to {args.out}"


def _crossval(args) -> str:
    from . import config, crossval

    out, per_label = Path(args.out), Path(args.out).with_name(Path(args.out).stem + "_per_label.json")
    progress = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.summary:  # print what has been measured, run nothing
        return crossval.markdown(crossval.read_results(out))
    if args.repool:
        crossval.repool(Path(args.folder), Path(args.workdir), out, per_label, config.load(Path("params.yaml")),
                        progress=progress)
        return crossval.markdown(crossval.read_results(out))
    overrides = args.set or []
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"-S {item!r}: expected key=value, as dvc exp run -S takes it")
    summary = crossval.run(Path(args.folder), args.seed, args.name, overrides, Path(args.workdir), out, per_label,
                           config.load(Path("params.yaml")), progress=progress)
    return f"{crossval.table(summary)}\nwritten to {out} and {per_label} under {args.name!r}, seed{args.seed}"


def _recipe(args) -> str:
    from . import recipe

    return recipe.dvc_args(args.name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecgproto", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("synth", help="write a synthetic PTB-XL tree (exact PTB-XL layout, 100 Hz)")
    p.add_argument("out", help="output folder (new or empty)")
    p.add_argument("--records", type=_positive_int, default=2000)
    p.add_argument("--seed", type=_count, default=42)
    p.add_argument("--params", default="params.yaml", help="its data.synthetic_realism sets how hard the ECGs are "
                   "(default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT even if it holds files (all of them go)")
    p.set_defaults(func=_synth)

    p = sub.add_parser("download", help="download PTB-XL (metadata + 100 Hz records), verified and resumable")
    p.add_argument("out", help="folder to download into (rerun to resume)")
    p.add_argument("--base-url", default="https://physionet.org/files/ptb-xl/1.0.3/",
                   help="release folder on the server (default: %(default)s)")
    p.add_argument("--jobs", type=_positive_int, default=8, help="parallel connections")
    p.add_argument("--hr", action="store_true", help="also the 500 Hz records (about 2.6 GB more)")
    p.add_argument("--retries", type=_count, default=3, help="retries per file, with exponential backoff")
    p.add_argument("--timeout", type=_seconds, default=30.0, help="seconds without data before a retry")
    p.add_argument("--deadline", type=_seconds, default=300.0, help="seconds per file and attempt, at most")
    p.add_argument("--max-mb", type=_seconds, default=64.0, help="size cap per file in MB (default: %(default)s)")
    p.set_defaults(func=_download)

    p = sub.add_parser("explain", help="explain one ECG: probabilities and the prototypes behind them")
    p.add_argument("record", nargs="+", help="WFDB record path(s) without extension (100 Hz; 500 Hz is resampled), "
                   "or folders of records")
    p.add_argument("--out-dir", help="with several records or a folder: a JSON and a PNG per record go here")
    p.add_argument("--model", default="models/final.pt", help="prototype model file (default: %(default)s)")
    p.add_argument("--top", type=_top, default=3, help="prototypes per side (for, against) per label, or 'all' (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON: a list of labels with their prototypes")
    p.add_argument("--plot", help="also draw the explanation into this figure file (.png, .svg or .pdf)")
    p.add_argument("--overwrite", action="store_true", help="with --out-dir: replace JSON and figure files already "
                   "there (an input is never replaced)")
    p.add_argument("--runtime", choices=("auto", "torch", "onnx"), default="auto",
                   help="auto: onnx for a .onnx model file (no PyTorch import), torch otherwise")
    p.set_defaults(func=_explain)

    p = sub.add_parser("predict", help="label probabilities for many records into a CSV file")
    p.add_argument("records", nargs="+", help="WFDB record paths (without extension) or folders of records")
    p.add_argument("--out", required=True, help="CSV file to write (record, one column per label)")
    p.add_argument("--model", default="models/final.pt", help="model file (default: %(default)s)")
    p.add_argument("--batch-size", type=_positive_int, default=256)
    p.add_argument("--runtime", choices=("auto", "torch", "onnx"), default="auto",
                   help="auto: onnx for a .onnx model file (no PyTorch import), torch otherwise")
    p.set_defaults(func=_predict)

    p = sub.add_parser("export", help="write the final prototype model as ONNX, to run without PyTorch")
    p.add_argument("model", help="prototype model file, e.g. models/final.pt")
    p.add_argument("--onnx", required=True, help="ONNX file to write, e.g. models/final.onnx")
    p.set_defaults(func=_export)

    p = sub.add_parser("bench", help="efficiency benchmark: default model vs published-size ResNet-18")
    p.add_argument("--out", default="benchmarks/bench.json", help="result file (default: %(default)s)")
    p.add_argument("--repeats", type=_positive_int, default=5, help="timed repeats per measure; the median is quoted")
    p.set_defaults(func=_bench)

    p = sub.add_parser("bench-prepare", help="prepare at full PTB-XL scale vs the straightforward loop")
    p.add_argument("--workdir", default="data/bench", help="where the synthetic tree is generated (kept)")
    p.add_argument("--records", type=_positive_int, default=21837, help="records to generate (default: full PTB-XL)")
    p.add_argument("--subset", type=_positive_int, default=300, help="records timed with the straightforward loop")
    p.add_argument("--out", default="benchmarks/prepare.json", help="result file (default: %(default)s)")
    p.set_defaults(func=_bench_prepare)

    p = sub.add_parser("rehearsal", help="make ptbxl at full size against a local PhysioNet-like server, timed")
    p.add_argument("--workdir", default="data/rehearsal", help="synthetic tree (kept) and the clone that runs")
    p.add_argument("--records", type=_positive_int, default=21799, help="records (default: PTB-XL 1.0.3's count)")
    p.add_argument("--seed", type=int, default=42, help="SEED for make ptbxl")
    p.add_argument("--interrupt-at", type=_fraction, default=0.4, help="share of files after which the download "
                   "is interrupted once (default: %(default)s)")
    p.add_argument("--out", default="benchmarks/rehearsal.json", help="result file (default: %(default)s)")
    p.set_defaults(func=_rehearsal)

    p = sub.add_parser("crossval", help="pooled out-of-fold macro-AUROC on a real tree with folds 1-9 (3 test groups)")
    p.add_argument("--folder", default="../shared/ptbxl-real-subset", help="PTB-XL tree (default: %(default)s)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--name", default="params", help="the recipe's name in the results (default: %(default)s, "
                   "params.yaml as it is)")
    p.add_argument("-S", dest="set", action="append", metavar="KEY=VALUE", help="a params override, as for dvc exp run")
    p.add_argument("--workdir", default="data/cv", help="the clones that run, kept so that a stopped run resumes")
    p.add_argument("--out", default="metrics/real_subset_cv.json", help="results, merged by recipe and seed "
                   "(per-label AUROC beside it in *_per_label.json)")
    p.add_argument("--summary", action="store_true", help="print the results so far as a markdown table; run nothing")
    p.add_argument("--repool", action="store_true", help="recompute every recorded run's figures from the "
                   "predictions its clones kept; train nothing")
    p.set_defaults(func=_crossval)

    p = sub.add_parser("recipe", help="a named recipe (ecgproto/recipes/NAME.yaml) as dvc exp run -S arguments")
    p.add_argument("name", help="e.g. published")
    p.set_defaults(func=_recipe)

    p = sub.add_parser("gate", help="fail when a metric dropped more than --max-drop below a git revision's")
    p.add_argument("--file", default="metrics/evaluate.json", help="JSON metrics file in the workspace "
                   "(default: %(default)s)")
    p.add_argument("--metric", default="final.macro_auroc", help="dotted key of the metric, higher is better "
                   "(default: %(default)s)")
    p.add_argument("--against", default="HEAD", help="git revision whose committed file is the reference; an "
                   "unknown revision or a missing file fails (default: %(default)s)")
    p.add_argument("--max-drop", type=_fraction, default=0.02, help="largest allowed drop below the reference "
                   "(default: %(default)s)")
    p.set_defaults(func=_gate)
    return parser


def main(argv=None) -> int:
    from .files import stop_on_sigterm

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    stop_on_sigterm()
    try:
        message = args.func(args)
    except EcgprotoError as exc:
        print(f"ecgproto {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ecgproto {args.command}: interrupted; files already complete were kept, no partial file was",
              file=sys.stderr)
        return 130
    if message:
        print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
