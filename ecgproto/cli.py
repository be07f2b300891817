"""ecgproto: interpretable, prototype-based ECG rhythm classification. `explain` and `predict` answer for
ECG records with a trained model; the pipeline itself runs with `dvc repro` (README.md); the other commands
generate data, download PTB-XL, export, benchmark, cross-validate and gate."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ecgproto.errors import ConfigError, EcgprotoError, TrainingError


def _synth(args) -> str:
    from ecgproto import config
    from ecgproto.data.synth import generate
    from ecgproto.files.atomic import atomic_dir

    out = Path(args.out).resolve()  # "." and "..": the temporary folder goes beside the real one, never inside
    here = Path.cwd().resolve()
    if out == here or out in here.parents or out.parent == out:
        raise ConfigError(f"{args.out}: the current folder, one of its parents or the root; give a folder of its own "
                          "for the synthetic tree (it is replaced whole)")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: is a file; expected a folder to write the synthetic tree into")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise ConfigError(f"{out}: folder is not empty; refusing to overwrite it (pass --overwrite to replace "
                          "the whole folder)")
    realism = config.load(Path(args.params)).data.synthetic_realism  # one source: params.yaml
    with atomic_dir(out) as tmp:  # all or nothing: an interrupted run leaves the folder as it was
        generate(tmp, args.records, args.seed, realism, progress=True)
    return f"wrote {args.records} synthetic PTB-XL records to {args.out}"


def _gate(args) -> str:
    from ecgproto.tools.gate import gate

    return gate(args.file, args.metric, args.against, args.max_drop)


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


def _scale(value: str) -> float:
    return _number(value, 0.01, 100.0, "a factor from 0.01 to 100")


def _seconds(value: str) -> float:
    number = _number(value, 0.0, float("inf"), "a positive number")
    if number == 0:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a positive number")
    return number


def _sha256(value: str) -> str:
    import re

    if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise argparse.ArgumentTypeError(f"{value[:80]!r}: expected a SHA-256 digest, 64 hexadecimal characters "
                                         "(as `ecgproto export` prints it)")
    return value.lower()


def _top(value: str):
    if value == "all":
        return None
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"--top {value!r}: expected a positive integer or 'all'")
    return int(value)


def _explain(args) -> str:
    from ecgproto.deploy.explain_records import explain_records
    from ecgproto.deploy.predictor import default_model

    return explain_records(args.record, args.model or default_model(), args.runtime, args.top, args.json, args.plot,
                           args.out_dir, args.overwrite, expect_sha256=args.expect_sha256, plots=args.plots)


def _predict(args) -> str:
    from ecgproto.deploy.predict_records import predict_records
    from ecgproto.deploy.predictor import default_model

    return predict_records(args.records, args.out, args.model or default_model(), args.runtime,
                           expect_sha256=args.expect_sha256)


def _external(args) -> str:
    from ecgproto.deploy.predictor import open_model
    from ecgproto.evaluation.external import MIN_POSITIVES, evaluate_external
    from ecgproto.files.atomic import check_writable, refuse_inputs, write_json

    models = {"final": args.model, **({"baseline": args.baseline} if args.baseline else {})}
    if args.out:
        from ecgproto.data.wfdb_record import records_in
        from ecgproto.files.atomic import record_inputs

        check_writable(Path(args.out), "--out")
        records = records_in([args.folder]) if Path(args.folder).is_dir() else []
        refuse_inputs([args.out], [*models.values(), *(f for r in records for f in record_inputs(r))], "--out")
    runners = {name: open_model(Path(path)) for name, path in models.items()}
    folders = [Path(args.folder)]
    if args.by_folder:
        folders = sorted(p for p in Path(args.folder).iterdir() if p.is_dir())
    key = f"macro_auroc_labels_with_{MIN_POSITIVES}_positives"
    lines, results = [], {}

    def shown(value):  # None: no AUROC (too few positives, or every record positive)
        return "n/a" if value is None else value
    for folder in folders:
        result = evaluate_external(folder, runners, args.bootstrap, args.seed)
        results[folder.name] = result
        per_label = ", ".join(f"{c} {shown(v['auroc'])} ({v['positives']})"
                              for c, v in result["final"]["per_label"].items())
        lines.append(f"{folder}: {result['scored']} of {result['records']} scored, {len(result['unreadable'])} "
                     f"unreadable, {result['refused_by_guard']} refused by the guard; final {key} "
                     f"{shown(result['final'][key])}" + (f", baseline {shown(result['baseline'][key])}"
                                                         if "baseline" in result else "")
                     + f"; final per label (positives; n/a: too few positives or all positive): {per_label}")
    if args.out:
        write_json(Path(args.out), results if args.by_folder else results[folders[0].name])
    return "\n".join(lines)


def _export(args) -> str:
    from ecgproto.deploy.export import export_onnx
    from ecgproto.files.atomic import check_writable, refuse_inputs
    from ecgproto.model.checkpoint import load_checkpoint

    check_writable(Path(args.onnx), "--onnx")
    if Path(args.onnx).suffix != ".onnx":
        raise ConfigError(f"--onnx {args.onnx}: expected a new file name ending in .onnx (never the model itself)")
    refuse_inputs([args.onnx], [args.model], "--onnx")
    model, state = load_checkpoint(Path(args.model), require_prototypes=True)
    digest = export_onnx(model, state, Path(args.onnx))
    size = Path(args.onnx).stat().st_size
    source = f" ({args.model}'s is {state['sha256']})" if state.get("sha256") else ""
    return (f"wrote {args.onnx} ({size / 1e6:.2f} MB): ONNX model with its preprocessing, calibration and guard\n"
            f"digest (sha256 of its weights and metadata) {digest}{source}: pass it to predict or explain as "
            "--expect-sha256 to run this model and no other")


def _download(args) -> str:
    from ecgproto.data.download import Limits, download

    limits = Limits(timeout=args.timeout, deadline=args.deadline, max_bytes=int(args.max_mb * 2 ** 20),
                    retries=args.retries)
    got = download(Path(args.out), args.base_url.rstrip("/") + "/", args.jobs, args.hr, limits,
                   progress=sys.stderr.isatty())
    speed = f", {got['mb_per_s']} MB/s" if got["mb_per_s"] else ""
    return (f"{args.out}: {got['files']} files verified against SHA256SUMS.txt ({got['fetched']} fetched, "
            f"{got['bytes'] / 1e6:.1f} MB in {got['seconds']} s{speed}; {got['already_present']} already present)")


def _bench(args) -> str:
    from ecgproto import config
    from ecgproto.files.atomic import write_json
    from ecgproto.report.bench_table import table
    from ecgproto.tools import bench

    result = bench.run(config.load(Path("params.yaml")), args.repeats,
                       progress=lambda line: print(line, file=sys.stderr))
    write_json(Path(args.out), result)
    return f"{table(result)}\n\n{result['machine']}, median of {args.repeats}; written to {args.out}"


def _bench_prepare(args) -> str:
    import json

    from ecgproto import config
    from ecgproto.files.atomic import write_json
    from ecgproto.tools import bench_prepare

    params = config.load(Path("params.yaml"))
    result = bench_prepare.run(params.prepare, params.data.synthetic_realism, Path(args.workdir), args.records,
                               args.subset, progress=lambda line: print(line, file=sys.stderr))
    write_json(Path(args.out), result)
    return f"{json.dumps(result, indent=2)}\nwritten to {args.out}"


def _rehearsal(args) -> str:
    from ecgproto import config
    from ecgproto.files.atomic import check_writable, write_json
    from ecgproto.tools import rehearsal

    check_writable(Path(args.out), "--out")  # before an hour of work, not after
    realism = config.load(Path("params.yaml")).data.synthetic_realism
    progress = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    workdir = Path(args.workdir)
    if args.scale is None:
        result = rehearsal.run(workdir, args.records, args.seed, realism, args.interrupt_at, progress)
        what, run = "make ptbxl", result["make_ptbxl"]
    else:  # the scale rehearsal: a tree `scale` times PTB-XL's size, read in place, epochs capped by -S
        records = round(args.scale * rehearsal.PTBXL_RECORDS)
        workdir = workdir if args.workdir != "data/rehearsal" else Path(f"data/rehearsal{args.scale:g}x")
        result = rehearsal.run_folder(workdir, records, args.seed, realism, args.set, progress, args.keep_clone)
        what, run = "dvc exp run", result["pipeline"]
    write_json(Path(args.out), result)
    if run["exit_code"] != 0:
        raise TrainingError(f"{what} failed (exit {run['exit_code']}); what it printed is in "
                            f"{workdir / 'rehearsal.log'}, the partial figures in {args.out}")
    return f"{rehearsal.table(result)}\nwritten to {args.out}"


def _crossval(args) -> str:
    from ecgproto import config
    from ecgproto.tools import crossval

    out, per_label = Path(args.out), Path(args.out).with_name(Path(args.out).stem + "_per_label.json")
    progress = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.summary:  # print what has been measured, run nothing
        if not out.is_file():
            raise ConfigError(f"--out {out}: no cross-validation results there yet (run `make real-subset-cv`)")
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
    from ecgproto import recipes as recipe

    return recipe.dvc_args(args.name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecgproto", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("synth", help="write a synthetic PTB-XL tree (exact PTB-XL layout, 100 Hz)")
    p.add_argument("out", help="output folder (new or empty)")
    p.add_argument("--records", type=_positive_int, default=2000, help="how many records (default: %(default)s)")
    p.add_argument("--seed", type=_count, default=42, help="the same seed, size and realism give the same bytes "
                   "(default: %(default)s)")
    p.add_argument("--params", default="params.yaml", help="its data.synthetic_realism sets how hard the ECGs are "
                   "(default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT even if it holds files (all of them go)")
    p.set_defaults(func=_synth)

    p = sub.add_parser("download", help="download PTB-XL (metadata + 100 Hz records), verified and resumable")
    p.add_argument("out", help="folder to download into (rerun to resume)")
    p.add_argument("--base-url", default="https://physionet.org/files/ptb-xl/1.0.3/",
                   help="release folder on the server (default: %(default)s)")
    p.add_argument("--jobs", type=_positive_int, default=8, help="parallel connections (default: %(default)s)")
    p.add_argument("--hr", action="store_true", help="also the 500 Hz records (about 2.6 GB more)")
    p.add_argument("--retries", type=_count, default=3, help="retries per file, with exponential backoff")
    p.add_argument("--timeout", type=_seconds, default=30.0, help="seconds without data before a retry")
    p.add_argument("--deadline", type=_seconds, default=300.0, help="seconds per file and attempt, at most")
    p.add_argument("--max-mb", type=_seconds, default=64.0, help="size cap per file in MB (default: %(default)s)")
    p.set_defaults(func=_download)

    p = sub.add_parser(
        "explain", help="explain one ECG: probabilities and the prototypes behind them",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="What the explanation prints:\n"
        "  measured      HR, RR regularity, PR, QRS, QT/QTc, axis, from the signal, before any label\n"
        "  logit         the model's score for a label: the sum of similarity x weight over its prototypes\n"
        "  prior         the calibration's intercept: what the number that decides is before this ECG counts\n"
        "  calibrated logit = prior + slope x (evidence for + against + rest); called at or above the threshold\n"
        "  evidence for / against   prototypes (each a real training ECG) that raise / lower the logit\n"
        "  rest          the prototypes not listed (with --top 3, the smaller ones)\n"
        "  near-copies   prototypes almost equal to one shown (cosine >= explain.duplicate_cosine), summed\n"
        "  familiarity percentile   where this ECG's best prototype similarity falls among the training\n"
        "                ECGs'; below guard.familiarity_percentile: no reliable call; below the warning\n"
        "                percentile: a warning\n"
        "  not assessable   labels with too few validation positives, a degenerate calibration or no\n"
        "                prototype: no probability, never called")
    p.add_argument("record", nargs="+", help="WFDB record path(s) without extension (any format wfdb reads; rates "
                   "above 100 Hz resampled; records over 10 s read in windows), or folders of records")
    p.add_argument("--out-dir", help="with several records or a folder: a JSON per record goes here (and a "
                   "figure with --plots)")
    p.add_argument("--model", help="prototype model file (default: models/final.onnx when it exists, else "
                   "models/final.pt; the same answer, the ONNX one without importing PyTorch)")
    p.add_argument("--top", type=_top, default=3,
                   help="prototypes per side (for, against) per label, or 'all' (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the explanation document as JSON: the record, the "
                   "model, the signal checks, the measurements, the remarks, each label with its decomposition and "
                   "prototypes, and the labels not assessable")
    p.add_argument("--plot", help="also draw the explanation into this figure file (.png, .svg or .pdf)")
    p.add_argument("--plots", action="store_true", help="with --out-dir: a figure per record too (about a second "
                   "each; JSON alone takes milliseconds)")
    p.add_argument("--overwrite", action="store_true", help="with --out-dir: replace JSON and figure files already "
                   "there (an input is never replaced)")
    p.add_argument("--runtime", choices=("auto", "torch", "onnx"), default="auto",
                   help="auto: onnx for a .onnx model file (no PyTorch import), torch otherwise")
    p.add_argument("--expect-sha256", type=_sha256, metavar="HEX", help="refuse the model file unless its digest "
                   "is this one (`ecgproto export` prints it)")
    p.set_defaults(func=_explain)

    p = sub.add_parser("predict", help="label probabilities for many records into a CSV file",
                       description="One CSV row per record: record (its path), reliable (the guard's verdict: True, "
                       "False, or empty for a model without a guard), reason (why not reliable, or 'unreadable: ...'), "
                       "called (the labels called, space-separated), windows (how many 10 s windows were read; "
                       "a record over 10 s is read every 5 s and its probabilities are the mean over the windows "
                       "the guard passes), model (what the model was trained on: 'DEMO MODEL: ...' for simulated "
                       "ECGs), then one column per label with its calibrated "
                       "probability, empty for a label the model cannot assess. Exit 1 when a record could not be "
                       "read (its row says why; the others are answered).")
    p.add_argument("records", nargs="+", help="WFDB record paths (without extension) or folders of records")
    p.add_argument("--out", required=True, help="CSV file to write (record, one column per label)")
    p.add_argument("--model", help="model file (default: models/final.onnx when it exists, else models/final.pt)")
    p.add_argument("--runtime", choices=("auto", "torch", "onnx"), default="auto",
                   help="auto: onnx for a .onnx model file (no PyTorch import), torch otherwise")
    p.add_argument("--expect-sha256", type=_sha256, metavar="HEX", help="refuse the model file unless its digest "
                   "is this one (`ecgproto export` prints it)")
    p.set_defaults(func=_predict)

    p = sub.add_parser("evaluate-external", help="score models on other hospitals' ECGs (Challenge format, SNOMED-CT)")
    p.add_argument("folder", help="a folder of PhysioNet/CinC Challenge records (WFDB headers with '#Dx:' lines)")
    p.add_argument("--model", default="models/final.pt", help="model file (default: %(default)s)")
    p.add_argument("--baseline", help="a second model file scored beside it, e.g. models/baseline.pt")
    p.add_argument("--by-folder", action="store_true", help="score each subfolder (source database) on its own")
    p.add_argument("--bootstrap", type=_positive_int, default=1000, help="bootstrap resamples (default: %(default)s)")
    p.add_argument("--seed", type=_count, default=0, help="bootstrap seed (default: %(default)s)")
    p.add_argument("--out", help="also write the result as JSON here")
    p.set_defaults(func=_external)

    p = sub.add_parser("export", help="write the final prototype model as ONNX, to run without PyTorch")
    p.add_argument("model", help="prototype model file, e.g. models/final.pt")
    p.add_argument("--onnx", required=True, help="ONNX file to write, e.g. models/final.onnx")
    p.set_defaults(func=_export)

    p = sub.add_parser("bench", help="efficiency benchmark: default model vs published-size ResNet-18")
    p.add_argument("--out", default="data/bench.json", help="result file (default: %(default)s, a scratch path; "
                   "`make bench` writes the committed benchmarks/bench.json)")
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
    p.add_argument("--scale", type=_scale, default=None, help="instead: the whole DAG on a synthetic tree "
                   "this many times PTB-XL's size, read in place (data.source folder), no download")
    p.add_argument("--keep-clone", action="store_true", help="with --scale: resume in the clone of a stopped run "
                   "(at its own commit, recorded), so that its completed stages are not run again")
    p.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                   help="with --scale: a params override for the run (the epoch caps), as for dvc exp run")
    p.add_argument("--out", default="benchmarks/rehearsal.json", help="result file (default: %(default)s)")
    p.set_defaults(func=_rehearsal)

    p = sub.add_parser("crossval", help="pooled out-of-fold macro-AUROC on a real tree with folds 1-9 (3 test groups)")
    p.add_argument("--folder", default="../shared/ptbxl-real-subset", help="PTB-XL tree (default: %(default)s)")
    p.add_argument("--seed", type=int, default=42, help="the pipeline's seed for this run (default: %(default)s)")
    p.add_argument("--name", default="params", help="the recipe's name in the results (default: %(default)s, "
                   "params.yaml as it is)")
    p.add_argument("-S", dest="set", action="append", metavar="KEY=VALUE", help="a params override, as for dvc exp run")
    p.add_argument("--workdir", default="data/cv", help="the clones that run, kept so that a stopped run resumes "
                   "(default: %(default)s)")
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
    from ecgproto.files.atomic import stop_on_sigterm

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
        try:
            print(message)
        except BrokenPipeError:  # `ecgproto explain ... | head`: the reader has gone, nothing is lost
            sys.stderr.close()
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
