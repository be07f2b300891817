"""Cross-validation on a real PTB-XL tree with folds 1-9 (`make real-subset-cv`, ../shared/ptbxl-real-subset).

The nine folds form three test groups of three folds. For each group the pipeline's own stages run, as
a DVC experiment (`dvc exp run evaluate -S ...`), in a clone of the repository's HEAD under the work
folder: the group is the test set, the first fold of the next group stops early, and the other five
folds train. Every ECG of the tree is thus predicted once, by a model that saw neither it nor its fold
while training or choosing an epoch. A clone of the same commit is kept, so a stopped run resumes
where it stopped (DVC reruns only what did not finish).

The out-of-fold predictions of the three groups are pooled, and for each model (final, projected,
joint, baseline) the result gives the pooled macro-AUROC with its bootstrap interval, per-label AUROC,
and the macro-AUROC of each fold with its mean and spread over the nine folds.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ecgproto.config import elided
from ecgproto.errors import ConfigError, RecordError
from ecgproto.evaluation.metrics import MODEL_FILES, evaluable, macro_auroc, read_predictions, summarise
from ecgproto.files.atomic import loads_strict
from ecgproto.tools.clone import clone_head, head, stop_group
from ecgproto.trust.explanation import agreement_figures

GROUPS = ((1, 2, 3), (4, 5, 6), (7, 8, 9))
# A label with a handful of positives has an AUROC that one ECG's rank decides (the real subset has 1 AFLT,
# 2 PSVT, 3 SVTAC, 4 BIGU): the macro over labels with at least this many positives is given beside it.
FREQUENT = 10


def plan(groups=GROUPS) -> list:
    """Per test group: the early-stopping fold (the first of the next group) and the training folds."""
    splits = []
    for k, test in enumerate(groups):
        val = groups[(k + 1) % len(groups)][0]
        train = [f for g in groups for f in g if f not in test and f != val]
        splits.append({"test": list(test), "val": [val], "train": train})
    return splits


def folds_of(folder: Path) -> dict:
    """ecg_id -> strat_fold of the tree's metadata, checked to hold folds 1-9."""
    from ecgproto.data.ptbxl import read_metadata

    metadata = read_metadata(folder)
    present = set(metadata["strat_fold"].astype(int))
    wanted = {f for g in GROUPS for f in g}
    if not wanted <= present:
        raise RecordError(f"{folder}: cross-validation needs folds {sorted(wanted)}; the tree has "
                          f"{sorted(present)}")
    return {int(e): int(f) for e, f in metadata["strat_fold"].items() if int(f) in wanted}


def _overrides(folder: Path, seed: int, split: dict, extra: list) -> list:
    args = {"data.source": "folder", "data.folder": str(folder), "seed": str(seed)}
    for name in ("train", "val", "test"):
        args[f"prepare.{name}_folds"] = json.dumps(split[name]).replace(" ", "")
    return [a for key, value in args.items() for a in ("-S", f"{key}={value}")] + \
        [a for item in extra for a in ("-S", item)]


def run_group(clone: Path, args: list, log_path: Path) -> float:
    """`dvc exp run evaluate explain` in the clone with this environment's Python; returns its wall seconds."""
    venv_bin = Path(sys.executable).parent
    env = dict(os.environ, PYTHONPATH=str(clone), PYTHONUNBUFFERED="1",
               PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    start = time.monotonic()
    with open(log_path, "a") as log:
        child = subprocess.Popen([str(venv_bin / "dvc"), "exp", "run", "evaluate", "explain", *args], cwd=clone,
                                 env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = child.wait()
        finally:  # Ctrl-C or SIGTERM here: the dvc run and its stage stop too
            stop_group(child)
    if code != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-15:])
        raise RecordError(f"the pipeline failed in {clone} (exit {code}); the end of {log_path}:\n{tail}")
    return time.monotonic() - start


def pooled(parts: list, fold_of: dict, labels: list, bootstrap: int, batch_size: int, seed: int) -> tuple:
    """Pool the groups' predictions: (summary per model, per-label AUROC per model)."""
    summary, per_label = {}, {}
    for model in MODEL_FILES:
        ids = np.concatenate([part[model][0] for part in parts])
        y = np.concatenate([part[model][1] for part in parts])
        p = np.concatenate([part[model][2] for part in parts])
        if sorted(ids.tolist()) != sorted(fold_of):
            missing = sorted(set(fold_of) - set(ids.tolist()))[:5]
            raise RecordError(f"model {model}: the out-of-fold predictions do not cover every ECG of folds 1-9 "
                              f"exactly once (e.g. missing {missing})")
        headline, per_label[model] = summarise(y, p, labels, bootstrap, batch_size, seed)
        folds = np.array([fold_of[int(e)] for e in ids])
        by_fold = {int(f): round(macro_auroc(y[folds == f], p[folds == f]), 4) for f in sorted(set(folds))}
        values = np.array(list(by_fold.values()))
        frequent = y.sum(0) >= FREQUENT
        summary[model] = {**headline, f"macro_auroc_labels_with_{FREQUENT}_positives": round(
                              macro_auroc(y[:, frequent], p[:, frequent]), 4),
                          "fold_mean": round(float(values.mean()), 4),
                          "fold_sd": round(float(values.std(ddof=1)), 4), "by_fold": by_fold}
    y = np.concatenate([part["final"][1] for part in parts])
    counts = {"records": int(len(y)), "labels_evaluated": int(evaluable(y).sum()),
              "labels_excluded": " ".join(c for c, ok in zip(labels, evaluable(y)) if not ok),
              f"labels_with_{FREQUENT}_positives": " ".join(c for c, n in zip(labels, y.sum(0)) if n >= FREQUENT)}
    return {**counts, **summary}, per_label


def across_seeds(runs: dict) -> dict:
    """Mean and spread of each model's pooled macro-AUROC over the seeds run so far."""
    seeds = sorted((k for k in runs if k.startswith("seed")), key=lambda k: int(k[4:]))
    out = {"seeds": " ".join(s[4:] for s in seeds)}
    for model in MODEL_FILES:
        values = np.array([runs[s][model]["macro_auroc"] for s in seeds])
        out[model] = {"macro_auroc_mean": round(float(values.mean()), 4),
                      "macro_auroc_min": round(float(values.min()), 4),
                      "macro_auroc_max": round(float(values.max()), 4)}
        frequent = [runs[s][model].get(f"macro_auroc_labels_with_{FREQUENT}_positives") for s in seeds]
        if None not in frequent:
            out[model][f"macro_auroc_labels_with_{FREQUENT}_positives"] = round(float(np.mean(frequent)), 4)
    return out


RUN_FIGURES = ("macro_auroc", "macro_auroc_ci_low", "macro_auroc_ci_high")
MEAN_FIGURES = ("macro_auroc_mean", "macro_auroc_min", "macro_auroc_max")


def read_results(path: Path, figures: bool = True, per_label: bool = False) -> dict:
    """The results so far, checked to have the shape this module writes (results_problem; per_label: the
    per-label file's, {recipe: {seed<N>: {model: {label: AUROC}}}}); an unreadable or mis-shaped file is an
    error naming what is wrong, never silently replaced or half used."""
    if not path.exists():
        return {}
    if not path.is_file():
        raise ConfigError(f"{path}: not a regular file; expected the JSON results file `ecgproto crossval` writes")
    try:
        doc = loads_strict(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{path}: unreadable ({str(exc)[:200]}); move it away to start a new one") from None
    problem = _runs_problem(doc) if per_label else results_problem(doc, figures)
    if problem:
        raise ConfigError(f"{path}: {problem}; not a cross-validation results file as `ecgproto crossval` writes "
                          "it (move it away to start a new one)")
    return doc


def _kind(value) -> str:
    """The JSON name of value's type."""
    if isinstance(value, bool):
        return "true/false"
    return {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number",
            type(None): "null"}.get(type(value), type(value).__name__)


def _runs_problem(doc) -> str | None:
    """{recipe: {seed<N> or mean_over_seeds: object}}, or what is not."""
    if not isinstance(doc, dict):
        return f"expected a JSON object of recipes, not {_kind(doc)}"
    for name, runs in doc.items():
        if not isinstance(runs, dict):
            return f"recipe {elided(name)}: expected an object of runs by seed, not {_kind(runs)}"
        for key, run in runs.items():
            if key != "mean_over_seeds" and not re.fullmatch(r"seed[0-9]{1,9}", key):
                return f"recipe {elided(name)}: key {elided(key)}: expected seed<N> or mean_over_seeds"
            if not isinstance(run, dict):
                return f"recipe {elided(name)}, {key}: expected an object, not {_kind(run)}"
    return None


def results_problem(doc, figures: bool = True) -> str | None:
    """What keeps a results document from being read (None when nothing does): {recipe: {"seed<N>": run,
    "mean_over_seeds": mean}}, overrides and commit as text; with figures, each model's pooled macro-AUROC and
    its interval (or, over seeds, mean, min and max) as numbers from 0 to 1, and the seeds as text."""
    problem = _runs_problem(doc)
    if problem or not figures:
        return problem
    frequent = f"macro_auroc_labels_with_{FREQUENT}_positives"
    for name, runs in doc.items():
        seeds = [k for k in runs if k != "mean_over_seeds"]
        if not seeds or "mean_over_seeds" not in runs:
            return (f"recipe {elided(name)}: expected at least one seed<N> and mean_over_seeds, found "
                    f"{elided(list(runs))}")
        for key, run in runs.items():
            where = f"recipe {elided(name)}, {key}"
            for text in ("overrides", "commit", "seeds"):
                if text in run and run[text] is not None and not isinstance(run[text], str):
                    return f"{where}: {text} = {elided(run[text])}: expected text, not {_kind(run[text])}"
            if key == "mean_over_seeds" and not isinstance(run.get("seeds"), str):
                return f"{where}: seeds: expected the seeds as text (e.g. '1 2 3'), not {_kind(run.get('seeds'))}"
            for model in MODEL_FILES:
                figures_of = run.get(model)
                if not isinstance(figures_of, dict):
                    return f"{where}: {model}: expected an object of figures, not {_kind(figures_of)}"
                wanted = MEAN_FIGURES if key == "mean_over_seeds" else RUN_FIGURES
                for field in (*wanted, *([frequent] if frequent in figures_of else [])):
                    value = figures_of.get(field)
                    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                        return (f"{where}: {model}.{field} = {elided(value)}: expected a number from 0 to 1"
                                + ("" if field in figures_of else " (missing)"))
    return None


def _check_same_recipe(results: dict, name: str, seed: int, overrides: str, out: Path) -> None:
    """The seeds under one name are averaged, so they must share one recipe."""
    for key, run in results.get(name, {}).items():
        if key.startswith("seed") and key != f"seed{seed}" and run.get("overrides") != overrides:
            raise ConfigError(f"{out}: recipe {name!r} ran {key} with overrides {run.get('overrides')!r}, not "
                              f"{overrides!r}; give this recipe another name")


def pooled_interpretability(docs: list, sizes: list) -> dict:
    """The explain stage's figures of the three groups' final models, pooled: feature agreement and the window
    check from their counts and sums (exact), the own-class share weighted by test ECGs, the own/wrong
    prototype similarity gap averaged over the groups."""
    counts, labelled = {}, {}
    for doc in docs:
        for label, c in doc.get("feature_agreement_counts", {}).items():
            c = list(c) + [None, None] * (len(c) == 2)  # runs before the per-side counts hold [both, shown]
            old = counts.get(label, [0, 0, 0, 0])
            counts[label] = [None if a is None or b is None else a + b for a, b in zip(old, c)]
        for label, (h, n) in doc.get("labelled_ecgs_showing_feature_counts", {}).items():
            labelled[label] = [labelled.get(label, [0, 0])[0] + h, labelled.get(label, [0, 0])[1] + n]
    sums = [doc["window_check_sums"] for doc in docs if "window_check_sums" in doc]

    def ratio(best, random):
        return round(best / random, 3) if random > 0 else None
    out = {k: v for k, v in agreement_figures(counts).items() if k != "feature_agreement_counts"}
    if labelled:
        out["labelled_ecgs_showing_feature_by_label"] = {k: round(h / n, 4) if n else None
                                                         for k, (h, n) in sorted(labelled.items())}
    if sums:
        n, localised = sum(x["ecgs"] for x in sums), sum(x["localised"] for x in sums)
        out.update({"window_check_share_localised": round(localised / n, 4) if n else None,
                    "window_check_best_over_random": ratio(sum(x["best"] for x in sums),
                                                           sum(x["random"] for x in sums)),
                    "window_check_best_over_random_localised": ratio(sum(x["best_localised"] for x in sums),
                                                                     sum(x["random_localised"] for x in sums))})
    weights = np.asarray(sizes, dtype=float)
    out["own_class_share_of_evidence"] = round(float(np.average(
        [doc["own_class_share_of_evidence"] for doc in docs], weights=weights)), 4)
    out["nearest_own_minus_wrong_prototype_similarity"] = round(float(np.mean(
        [doc["mean_similarity_nearest_own_class_prototype"] - doc["mean_similarity_nearest_wrong_class_prototype"]
         for doc in docs])), 4)
    return out


def _pool_clones(base: Path, fold_of: dict, params, seed: int) -> tuple:
    """Pool the predictions (and, where the explain stage ran, its figures) the three clones under `base`
    (one recipe, one seed) wrote."""
    from ecgproto.data.prepare import load_meta

    parts, docs = [], []
    for split in plan():
        clone = base / ("test" + "".join(map(str, split["test"])))
        labels = load_meta(clone / "data" / "prepared")["labels"]  # as run: an override may change them
        parts.append(read_predictions(clone / "data" / "test_predictions.csv", labels))
        figures = clone / "metrics" / "interpretability.json"
        docs.append(json.loads(figures.read_text()) if figures.is_file() else None)
    summary, per_label = pooled(parts, fold_of, labels, params.evaluate.bootstrap, params.evaluate.per_batch_size,
                                seed)
    if all(doc is not None and "feature_agreement_counts" in doc for doc in docs):
        summary["interpretability"] = pooled_interpretability(docs, [len(part["final"][0]) for part in parts])
    return summary, per_label


def repool(folder: Path, workdir: Path, out: Path, per_label_out: Path, params, progress=print) -> dict:
    """Compute every recorded run's figures again from the predictions its clones kept (after a change to
    what is computed, not to what is trained); the run's commit, overrides and times stay as recorded."""
    from ecgproto.files.atomic import write_json

    results, per_label_doc = read_results(out), read_results(per_label_out, per_label=True)  # before any work
    fold_of = folds_of(Path(folder).resolve())
    for name, runs in results.items():
        for key in [k for k in runs if k.startswith("seed")]:
            base = Path(workdir).resolve() / name / key
            clones = [base / ("test" + "".join(map(str, s["test"]))) for s in plan()]
            if not all((c / ".git").is_dir() and head(c) == runs[key].get("commit") for c in clones):
                progress(f"{name} {key}: the clones in {base} are missing or not at the recorded commit; "
                         "left as recorded")
                continue
            summary, per_label = _pool_clones(base, fold_of, params, int(key[4:]))
            kept = {k: runs[key][k] for k in ("overrides", "commit", "wall_s", "groups") if k in runs[key]}
            runs[key] = {**summary, **kept}
            per_label_doc.setdefault(name, {})[key] = per_label
        runs["mean_over_seeds"] = across_seeds(runs)
    write_json(out, results)
    write_json(per_label_out, per_label_doc)
    return results


def share_cache(clone: Path, cache: Path) -> None:
    """All clones use one DVC cache, whose run-cache lets a stage whose command, code, data and params are
    those of a stage already run elsewhere (pretrain and baseline, when two recipes differ only in the
    prototype losses) restore its outputs instead of training again."""
    cache.mkdir(parents=True, exist_ok=True)
    (clone / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {cache}\n")


def run(folder: Path, seed: int, name: str, extra: list, workdir: Path, out: Path, per_label_out: Path,
        params, progress=print) -> dict:
    """Cross-validate one recipe (params.yaml plus `extra` -S overrides) for one seed; returns its figures
    and merges them, under `name` and the seed, into `out` and `per_label_out`. `params` (this checkout's)
    gives only the bootstrap settings."""
    from ecgproto.files.atomic import write_json

    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder (a PTB-XL tree with folds 1-9 is expected)")
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"recipe name {name!r}: use letters, digits, - and _ only")
    fold_of = folds_of(folder)
    # refuse before hours of work: a file that is not one of ours, a seed run with another recipe
    results, per_label_doc = read_results(out, figures=False), read_results(per_label_out, per_label=True)
    _check_same_recipe(results, name, seed, " ".join(extra), out)
    read_results(out)
    repo = Path(subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                               check=True).stdout.strip())
    base = Path(workdir).resolve() / name / f"seed{seed}"
    commit = head(repo)  # one commit for all three groups, even if the checkout moves on meanwhile
    walls = {}
    for split in plan():
        tag = "test" + "".join(map(str, split["test"]))
        clone = base / tag
        clone_head(repo, clone, progress, keep_if_same=True, commit=commit)
        share_cache(clone, Path(workdir).resolve() / ".dvc-cache")
        # dvc exp run -S writes its overrides into the clone's params.yaml: a kept clone starts from the
        # commit's, so that an earlier run's overrides cannot linger in this one
        subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", "--", "params.yaml"], check=True)
        progress(f"{name} seed {seed}: test folds {split['test']}, early stopping on {split['val']}, "
                 f"training on {split['train']} (log: {base / (tag + '.log')})")
        walls[tag] = round(run_group(clone, _overrides(folder, seed, split, extra), base / f"{tag}.log"), 1)
    summary, per_label = _pool_clones(base, fold_of, params, seed)
    summary = {**summary, "overrides": " ".join(extra), "commit": commit, "wall_s": walls,
               "groups": " | ".join(f"test {s['test']} val {s['val']}" for s in plan())}
    results = read_results(out)  # again: another recipe may have finished meanwhile
    results.setdefault(name, {})[f"seed{seed}"] = summary
    results[name]["mean_over_seeds"] = across_seeds(results[name])
    per_label_doc = read_results(per_label_out, per_label=True)
    per_label_doc.setdefault(name, {})[f"seed{seed}"] = per_label
    write_json(out, results)
    write_json(per_label_out, per_label_doc)
    return summary


def table(summary: dict) -> str:
    lines = [f"pooled out-of-fold macro-AUROC over {summary['records']} ECGs, {summary['labels_evaluated']} labels "
             f"(none positive: {summary['labels_excluded'] or '-'})",
             f"{'model':<10} {'pooled':>7} {'95% CI':>15} {'fold mean':>9} {'fold sd':>7}"]
    for model in MODEL_FILES:
        s = summary[model]
        interval = f"{s['macro_auroc_ci_low']:.4f}-{s['macro_auroc_ci_high']:.4f}"
        lines.append(f"{model:<10} {s['macro_auroc']:>7.4f} {interval:>15} {s['fold_mean']:>9.4f} {s['fold_sd']:>7.4f}")
    figures = summary.get("interpretability")
    if figures:
        lines.append("final model's explanations, pooled: " + ", ".join(
            f"{k} {v}" for k, v in figures.items() if not isinstance(v, dict)))
        lines.append("feature agreement by label: " + ", ".join(
            f"{k} {v}" for k, v in figures["feature_agreement_by_label"].items()))
    lines.append("wall s per test group: " + ", ".join(f"{k} {v}" for k, v in summary["wall_s"].items()))
    return "\n".join(lines)


def _cell(text) -> str:
    """A table cell: a recipe name or override with '|' or a line break cannot break the markdown table."""
    return str(text).replace("|", "\\|").replace("\n", " ").replace("\r", " ")[:200]


def markdown(results: dict) -> str:
    """Every recipe and seed in the results file as one table (docs/experiments.md quotes it): pooled
    macro-AUROC (95% interval) of each model, then final and baseline over the frequent labels only.
    ConfigError for results of another shape (results_problem)."""
    problem = results_problem(results)
    if problem:
        raise ConfigError(f"cross-validation results: {problem}")
    frequent = f"macro_auroc_labels_with_{FREQUENT}_positives"
    lines = [f"| recipe | overrides | seed | {' | '.join(MODEL_FILES)} | final, {FREQUENT}+ positives | "
             f"baseline, {FREQUENT}+ positives |", "| --- | --- | ---: |" + " ---: |" * (len(MODEL_FILES) + 2)]
    for name, runs in results.items():
        for key in sorted((k for k in runs if k.startswith("seed")), key=lambda k: int(k[4:])):
            run = runs[key]
            cells = [f"{run[m]['macro_auroc']:.3f} ({run[m]['macro_auroc_ci_low']:.3f}-"
                     f"{run[m]['macro_auroc_ci_high']:.3f})" for m in MODEL_FILES]
            cells += [f"{run[m].get(frequent, float('nan')):.3f}" for m in ("final", "baseline")]
            overrides = _cell(run.get("overrides") or "(params.yaml at its commit)")
            lines.append(f"| {_cell(name)} | {overrides} | {key[4:]} | {' | '.join(cells)} |")
        mean = runs["mean_over_seeds"]
        cells = [f"**{mean[m]['macro_auroc_mean']:.3f}** ({mean[m]['macro_auroc_min']:.3f}-"
                 f"{mean[m]['macro_auroc_max']:.3f})" for m in MODEL_FILES]
        cells += [f"**{mean[m].get(frequent, float('nan')):.3f}**" for m in ("final", "baseline")]
        lines.append(f"| **{_cell(name)}, mean (range)** | | {mean['seeds']} | {' | '.join(cells)} |")
    return "\n".join(lines)
