"""The generated report: results next to the published figures, per-label results, figures,
interpretability and efficiency, all read from the pipeline's outputs (nothing typed in by hand
except the published figures, quoted from the papers)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ecgproto.evaluation.metrics import MODEL_FILES  # noqa: E402

MODELS = tuple(MODEL_FILES)
MODEL_NAMES = {"final": "prototype model, final (after projection + classifier stage)",
               "projected": "prototype model, right after projection",
               "joint": "prototype model, after the joint stage",
               "baseline": "plain 1D ResNet (same backbone, linear head)"}

# params.yaml joint.backbone: what "final against baseline" compares
BACKBONE_NOTE = {
    "frozen_baseline": "The prototype model's backbone is the baseline's trained backbone, kept fixed in the joint "
                       "stage (`joint.backbone: frozen_baseline`): final against baseline compares a prototype head "
                       "with a linear head on the same features.",
    "scratch": "The prototype model's backbone was trained in its joint stage (`joint.backbone: scratch`, the "
               "published recipe), separately from the baseline's.",
}

# params.yaml classifier.retrain: what the classifier stage trained after projection
CLASSIFIER_NOTE = {
    "addon": "After projection, the classifier stage retrained the add-on and the last layer with every prototype "
             "tied to its source ECG (`classifier.retrain: addon`), so each prototype is still exactly the latent "
             "of a real training ECG.",
    "last_layer": "After projection, the classifier stage retrained the last layer only (`classifier.retrain: "
                  "last_layer`, the published recipe).",
}
CLASSIFIER_STEP = {"addon": "epoch", "last_layer": "Adam step (full batch)"}

# Sethi et al., "ProtoECGNet: case-based interpretable deep learning for multi-label ECG classification with
# contrastive learning", MLHC 2025 (rhythm branch); the course replication that proposed this project; and
# Strodthoff et al., "Deep learning for ECG analysis: benchmarks and insights from PTB-XL", IEEE JBHI 2021.
PUBLISHED = (
    ("ProtoECGNet rhythm branch, branch classifier, with contrastive loss", "macro-AUROC, 16 labels, per-batch mean",
     0.8808),
    ("Course replication, plain 1D ResNet-18", "macro-AUROC, 16 labels, per-batch mean", 0.8682),
    ("Course replication, ProtoECGNet rhythm branch after joint stage", "macro-AUROC, 16 labels, per-batch mean",
     0.8819),
    ("Course replication, after projection + classifier", "macro-AUROC, 16 labels, per-batch mean", 0.8779),
    ("PTB-XL benchmark, rhythm task, xresnet1d101", "macro-AUROC, 12 labels, unlabelled records dropped", 0.957),
)


def roc_figure(roc: dict, path: Path) -> None:
    """One panel per evaluated label, one curve per model. roc: model -> flat {label, fpr, tpr} rows."""
    frames = {m: pd.DataFrame(rows) for m, rows in roc.items() if rows}
    labels = list(dict.fromkeys(next(iter(frames.values()))["label"])) if frames else []
    cols = 4
    rows = max(1, -(-len(labels) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(12, 3 * rows), squeeze=False)
    for ax, label in zip(axes.flat, labels):
        for model, frame in frames.items():
            part = frame[frame["label"] == label]
            ax.plot(part["fpr"], part["tpr"], lw=1, label=model)
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.5, ls="--")
        ax.set_title(label, fontsize=9)
        ax.set_xlim(-0.02, 1.02)  # a perfect curve runs along the frame: keep it inside, visible
        ax.set_ylim(-0.02, 1.03)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(labels):]:
        ax.axis("off")
    if labels:
        axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.supxlabel("false positive rate")
    fig.supylabel("true positive rate")
    fig.tight_layout()
    fig.savefig(path, dpi=150, format="png")
    plt.close(fig)


def read_curves(dvclive_root: Path) -> dict:
    """stage -> {metric: DataFrame(step, value)} from dvclive's TSV files."""
    curves = {}
    for stage_dir in sorted(Path(dvclive_root).glob("*/plots/metrics")):
        stage = stage_dir.parent.parent.name
        curves[stage] = {f.stem: pd.read_csv(f, sep="\t") for f in sorted(stage_dir.glob("*.tsv"))}
    return curves


def curves_figure(curves: dict, path: Path, classifier_retrain: str = "last_layer") -> None:
    """Validation macro-AUROC and training loss per epoch (step for the classifier stage)."""
    fig, (left, mid, right) = plt.subplots(1, 3, figsize=(13, 3.4))
    for stage in ("train_joint", "baseline"):
        if stage in curves:
            v = curves[stage]["val_macro_auroc"]
            left.plot(v["step"], v["val_macro_auroc"], marker=".", label=stage)
            bce = curves[stage]["train_bce"]  # the composite joint loss can be negative (contrastive term)
            mid.plot(bce["step"], bce["train_bce"], marker=".", label=stage)
    left.set(title="validation macro-AUROC", xlabel="epoch")
    mid.set(title="training BCE (class-weighted)", xlabel="epoch", yscale="log")
    if "train_classifier" in curves:
        v = curves["train_classifier"]["val_macro_auroc"]
        right.plot(v["step"], v["val_macro_auroc"], color="C2")
    right.set(title="classifier stage: validation macro-AUROC", xlabel=CLASSIFIER_STEP[classifier_retrain])
    for ax in (left, mid):
        ax.legend(fontsize=8)
    for ax in (left, right):  # values near 1 otherwise print as an offset ("1e-5 + 0.9999"), unreadable
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    fig.tight_layout()
    fig.savefig(path, dpi=150, format="png")
    plt.close(fig)


def _fmt(value, digits=4):
    return "n/a" if value is None else f"{value:.{digits}f}"


def data_banner(source: str, folder: str, data: dict, evaluation: dict) -> str:
    total = sum(data["records"].values())
    if source == "synthetic":
        return ("> **SYNTHETIC DATA.** Every number in this report was measured on ecgproto's simulated "
                f"PTB-XL ({total:,} generated ECGs), not on real patients. It shows that the pipeline works "
                "end to end; it says nothing about accuracy on real ECGs (see docs/experiments.md).")
    line = f"> **REAL ECGs** read from `{folder}` ({total:,} records)."
    if evaluation["evaluated_on"].startswith("validation"):
        line += (f" Evaluated on the {evaluation['evaluated_on']}, which also chose the early-stopping "
                 "epoch: these figures are validation figures, slightly optimistic, not a held-out test.")
    return line


def results_table(evaluation: dict) -> str:
    lines = ["| model | macro-AUROC (whole fold) [95% bootstrap CI] | per-batch macro-AUROC | macro-AUPRC |",
             "| --- | --- | --- | --- |"]
    for m in MODELS:
        r = evaluation[m]
        lines.append(f"| {MODEL_NAMES[m]} | {_fmt(r['macro_auroc'])} [{_fmt(r['macro_auroc_ci_low'])}, "
                     f"{_fmt(r['macro_auroc_ci_high'])}] | {_fmt(r['per_batch_auroc'])} | {_fmt(r['macro_auprc'])} |")
    return "\n".join(lines)


def published_table() -> str:
    lines = ["| published system | metric | value |", "| --- | --- | --- |"]
    lines += [f"| {name} | {metric} | {value} |" for name, metric, value in PUBLISHED]
    return "\n".join(lines)


def calibration_table(final: dict) -> str:
    if "ece_calibrated" not in final:
        return "The final model has no calibration (an older model file)."
    lines = ["| final model | expected calibration error | Brier score | macro F1 of the calls |",
             "| --- | --- | --- | --- |",
             f"| sigmoid(logit), threshold 0.5 | {_fmt(final['ece_uncalibrated'])} | "
             f"{_fmt(final['brier_uncalibrated'])} "
             f"| {_fmt(final['macro_f1_at_0.5'])} |",
             f"| calibrated (validation folds), per-class thresholds | {_fmt(final['ece_calibrated'])} | "
             f"{_fmt(final['brier_calibrated'])} | {_fmt(final['macro_f1_at_thresholds'])} |"]
    return "\n".join(lines)


def per_label_table(per_label: dict, data: dict) -> str:
    lines = ["| code | train positives | evaluated positives | " + " | ".join(MODELS) + " |",
             "| --- | --- | --- |" + " --- |" * len(MODELS)]
    for code, n in per_label["test_positives"].items():
        values = " | ".join(_fmt(per_label[m].get(code)) for m in MODELS)
        lines.append(f"| {code} | {data['positives_train'].get(code, 0)} | {n} | {values} |")
    return "\n".join(lines)


def sizes_table(sizes: dict) -> str:
    lines = ["| model | parameters | multiply-accumulates per ECG | model file (bytes) |", "| --- | --- | --- | --- |"]
    for name in ("final", "baseline", "published_resnet18"):
        s = sizes[name]
        size = f"{s['file_bytes']:,}" if "file_bytes" in s else "not trained here"
        lines.append(f"| {name} | {s['parameters']:,} | {s['macs_per_ecg']:,} | {size} |")
    return "\n".join(lines)


def interpretability_table(figures: dict) -> str:
    k = next(key for key in figures if key.startswith("class_purity_top") and not key.endswith("by_class"))
    rows = [
        ("prototypes", figures["prototypes"], "class-specific prototypes the model uses"),
        ("pruned", figures.get("pruned", 0), "prototypes without an ECG of their own (repeats, no source), weight 0"),
        ("mean pairwise cosine", figures["mean_pairwise_cosine"], "between all prototypes; lower = more diverse"),
        ("mean within-class cosine", figures["mean_within_class_cosine"],
         "between prototypes of one class; near 1 = redundant"),
        ("distinct source ECGs", f"{figures['distinct_source_ecgs']} of {figures['projected']} projected",
         "training ECGs the prototypes became"),
        ("prototypes sharing a source ECG", figures["prototypes_sharing_a_source_ecg"],
         "prototypes projected onto an ECG another prototype already shows"),
        (k.replace("_", " "), figures[k],
         "share of each prototype's nearest training ECGs carrying its class, averaged per class"),
        ("nearest own-class prototype", figures["mean_similarity_nearest_own_class_prototype"],
         "mean cosine of a training ECG to its closest own-class prototype"),
        ("nearest wrong-class prototype", figures["mean_similarity_nearest_wrong_class_prototype"],
         "the same to its closest prototype of a class it does not carry (separation)"),
    ]
    optional = [
        ("own-class share of evidence", "own_class_share_of_evidence",
         "per test ECG and label: |own prototypes' contributions| / |all contributions| (1 = this looks like that)"),
        ("wrong-class weights near 0", "wrong_class_weights_below_0.05",
         "share of wrong-class last-layer weights with |w| < 0.05"),
        ("guard pass rate (test)", "guard_pass_rate_test", "test ECGs that pass the signal checks and are familiar"),
        ("feature agreement of the evidence", "feature_agreement",
         "called STACH/SBRAD/AFIB/1AVB/IVCD/SR, top-3 evidence for: query and source ECG both show the label's "
         "measured feature (rate band, irregular RR, PR > 200 ms, QRS > 110 ms)"),
        ("where: share localised", "window_check_share_localised",
         "test ECGs whose leading prototype has a 1 s window standing out (drop >= 2x the median window's)"),
        ("where: best / random window", "window_check_best_over_random",
         "similarity drop when the best 1 s window is blanked, over a random 1 s window's (all test ECGs)"),
        ("where: best / random, localised", "window_check_best_over_random_localised",
         "the same on the localised ones"),
    ]
    rows += [(a, figures[k], c) for a, k, c in optional if k in figures]
    lines = ["| figure | value | meaning |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def external_section(external: dict) -> list:
    """Other hospitals' ECGs (stage `external`): per label with its positives, the macro over labels with enough."""
    if not external.get("computed"):
        return [f"Not measured: {external.get('reason', 'no result')}."]
    key = next(k for k in external["final"] if k.startswith("macro_auroc_labels_with_"))
    least = key.split("_with_")[1].split("_")[0]
    final, baseline = external["final"], external["baseline"]
    folders = ", ".join(f"{name} {n}" for name, n in external["records_by_folder"].items())
    lines = [f"{external['scored']} of {external['records']} ECGs of `{external['folder']}` ({folders}), read at their "
             f"own rate and length ({external['aggregation']}); {len(external['unreadable'])} unreadable, "
             f"{external['refused_by_guard']} refused by the guard. Macro-AUROC over the labels with at least {least} "
             f"positives ({', '.join(final['labels_averaged']) or 'none'}): final **{_fmt(final[key])}**, baseline "
             f"{_fmt(baseline[key])}. Too few records for an accuracy figure: this section shows that the formats, "
             "rates, lengths and SNOMED-CT labels of other hospitals are read.", "",
             "| code | positives | final | baseline |", "| --- | --- | --- | --- |"]
    lines += [f"| {c} | {v['positives']} | {_fmt(v['auroc'])} | {_fmt(baseline['per_label'][c]['auroc'])} |"
              for c, v in final["per_label"].items()]
    unmapped = external["unmapped_snomed_codes"]
    if unmapped:
        lines += ["", f"SNOMED-CT codes outside the 16 rhythm labels (not scored): "
                      f"{', '.join(f'{c} ({n})' for c, n in unmapped.items())}."]
    return lines


def transfer_section(transfer: dict) -> list:
    """What the synthetic-trained models are worth on real ECGs (stage `transfer`)."""
    if not transfer.get("computed"):
        return [f"Not measured on real ECGs: {transfer.get('reason', 'no result')}."]
    final, baseline = transfer["final"], transfer["baseline"]
    lines = [f"The models above, trained only on synthetic ECGs, scored on all {transfer['records']:,} real ECGs of "
             f"`{transfer['folder']}` (never seen in training): **final macro-AUROC {_fmt(final['macro_auroc'])}** "
             f"[{_fmt(final['ci95'][0])}, {_fmt(final['ci95'][1])}], baseline {_fmt(baseline['macro_auroc'])} "
             f"[{_fmt(baseline['ci95'][0])}, {_fmt(baseline['ci95'][1])}], over the {len(final['per_code'])} codes "
             "with positives there. Do not use the demo model on patients: train on real ECGs (`make ptbxl`).", "",
             "| code | real positives | final | baseline |", "| --- | --- | --- | --- |"]
    lines += [f"| {c} | {final['positives'][c]} | {_fmt(a)} | {_fmt(baseline['per_code'].get(c))} |"
              for c, a in final["per_code"].items()]
    return lines


def limitations(source: str, evaluation: dict, figures: dict) -> list:
    items = []
    if source == "synthetic":
        items.append("Synthetic ECGs, however realistic the generator tries to be (morphology, noise, borderline "
                     "cases, "
                     "label noise), are not evidence about real ECGs: see the real-ECG section.")
    if evaluation["labels_excluded"]:
        items.append(f"Codes without both positives and negatives in the evaluated folds are left out of the macro "
                     f"averages: {evaluation['labels_excluded']}.")
    items += [
        "The published figures use the per-batch mean of macro-AUROC (batches of 32, labels absent from a batch "
        "skipped); it depends on batch order and composition. The whole-fold macro-AUROC is the headline here; the "
        "per-batch figure is given only to compare with the papers.",
        "One seed per run; the real-subset spread over seeds is in docs/experiments.md.",
        "Where a prototype matched is measured by occlusion (blanking 1 s windows and single leads with the model "
        "itself); rhythm prototypes mostly match the whole strip, and a window is drawn only when it stands out.",
    ]
    if figures["prototypes_sharing_a_source_ecg"]:
        items.append(f"{figures['prototypes_sharing_a_source_ecg']} prototypes were projected onto a training ECG "
                     "that another prototype already shows: they add no new example.")
    return items


def render(ctx: dict) -> str:
    """The report as Markdown. ctx holds the parsed pipeline outputs (see stages/report.py)."""
    e, data, figures = ctx["evaluation"], ctx["data"], ctx["interpretability"]
    split_rows = " | ".join(f"{k}: {v:,}" for k, v in data["records"].items())
    gallery = [c for c in ("AFIB", "SR", "PACE") if c in ctx["gallery"]]
    cases = [c for c in ctx["cases"] if c.get("figure")]
    out = [
        "# ecgproto report",
        "",
        data_banner(ctx["source"], ctx["folder"], data, e),
        "",
        f"Evaluated on: **{e['evaluated_on']}**, {e['records']} records, {e['labels_evaluated']} of "
        f"{e['labels_evaluated'] + len(e['labels_excluded'].split())} codes evaluable. Generated by `dvc repro` "
        "(stage `report`) from the pipeline's metrics and models.",
        "",
        "## Data",
        "",
        f"Records per split: {split_rows}; skipped unreadable records: {data['skipped_records']}.",
        "",
        "## Results",
        "",
        results_table(e),
        "",
        BACKBONE_NOTE[ctx["joint_backbone"]] + " " + CLASSIFIER_NOTE[ctx["classifier_retrain"]],
        "",
        "Published figures to compare with (Sethi et al., MLHC 2025; Strodthoff et al., IEEE JBHI 2021). They were "
        "measured on real PTB-XL "
        "fold 10 with the per-batch metric; compare them with the per-batch column above, and only when this "
        "report was produced on real PTB-XL:",
        "",
        published_table(),
        "",
        "The PTB-XL benchmark task differs (12 labels, another cohort, 2.5 s crops with max aggregation at test time).",
        "",
        "### Calibration (fitted on the validation folds, measured on the evaluated folds)",
        "",
        calibration_table(e["final"]),
        "",
        "### Per label (whole-fold AUROC)",
        "",
        per_label_table(ctx["per_label"], data),
        "",
        "![ROC curves per label](figures/roc.png)",
        "",
        "### Training curves",
        "",
        "![training curves](figures/curves.png)",
        "",
        "## Interpretability",
        "",
        interpretability_table(figures),
        "",
        "Every prototype is a real training ECG (drawn at 25 mm/s, 10 mm/mV; shading = where the prototype "
        "matches). Full gallery: one figure per class in [explain/gallery](explain/gallery).",
        "",
    ]
    out += [f"![{c} prototypes](explain/gallery/{c}.png)\n" for c in gallery[:2]]
    out += ["Case explanations: each called label with its strongest evidence for and against (similarity x weight "
            "= contribution; for + against + the rest = the logit), each prototype beside its source ECG. Near-copies "
            "of a prototype are shown once, with their count.", ""]
    out += [f"- [{c['code']}, {c['outcome']}: ECG {c['ecg_id']} (true: {c['true_labels']})](explain/{c['figure']})"
            for c in cases]
    if cases:
        out += ["", f"![case {cases[0]['ecg_id']}](explain/{cases[0]['figure']})"]
    if ctx["source"] == "synthetic":
        out += ["", "## On real ECGs", ""] + transfer_section(ctx["transfer"])
    if ctx.get("external") is not None:
        out += ["", "## Other hospitals' ECGs", ""] + external_section(ctx["external"])
    out += ["", "## Efficiency", "", "Deterministic counts (metrics/model_size.json):", "",
            sizes_table(ctx["sizes"]), ""]
    bench = ctx.get("bench")
    if bench:
        from ecgproto.report.bench_table import table

        out += [f"Latest benchmark (`make bench`, benchmarks/bench.json, {bench['date']}, {bench['machine']['cpus']} "
                f"CPUs, torch {bench['machine']['torch']}; median of {bench['repeats']} repeats; peak RSS includes "
                "the Python and PyTorch runtime):", "", table(bench), ""]
    else:
        out += ["No benchmark result yet: run `make bench`.", ""]
    out += ["## Limitations", ""] + [f"- {item}" for item in limitations(ctx["source"], e, figures)] + [""]
    return "\n".join(out)


def headline(ctx: dict) -> dict:
    """The few numbers `dvc metrics show` and `dvc metrics diff` print (metrics/summary.json): flat, so that
    they fit a terminal; the detail stays in the other metrics files."""
    e, figures = ctx["evaluation"], ctx["interpretability"]
    out = {"evaluated_on": e["evaluated_on"]}
    for model in ("final", "baseline"):
        out[f"{model}_macro_auroc"] = e[model]["macro_auroc"]
    out["final_macro_auroc_ci_low"], out["final_macro_auroc_ci_high"] = (e["final"]["macro_auroc_ci_low"],
                                                                        e["final"]["macro_auroc_ci_high"])
    out["final_per_batch_auroc"] = e["final"]["per_batch_auroc"]
    out["final_ece_calibrated"] = e["final"].get("ece_calibrated")
    for key in ("feature_agreement", "window_check_best_over_random", "window_check_share_localised",
                "own_class_share_of_evidence", "guard_pass_rate_test"):
        out[key] = figures.get(key)
    out["nearest_own_minus_wrong_prototype_similarity"] = round(
        figures["mean_similarity_nearest_own_class_prototype"]
        - figures["mean_similarity_nearest_wrong_class_prototype"], 4)
    transfer, external = ctx.get("transfer") or {}, ctx.get("external") or {}
    out["transfer_final_macro_auroc"] = transfer["final"]["macro_auroc"] if transfer.get("computed") else None
    key = next((k for k in external.get("final", {}) if k.startswith("macro_auroc_labels_with_")), None)
    out["external_final_macro_auroc"] = external["final"][key] if external.get("computed") and key else None
    out["final_parameters"] = ctx["sizes"]["final"]["parameters"]
    return out
