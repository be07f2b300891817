"""One ECG's explanation as a document (what `ecgproto explain` prints, writes as JSON and draws): first
whether the ECG can be read, then what was measured on it, then per label the number that decides split
exactly into the prior, the evidence for and against and the rest; each prototype shown with its source
ECG's own measurements and where in this ECG it matched (occlusion, drawn only when localised); remarks
where calls and measurements disagree. NumPy only: the deployed ONNX runtime uses it too."""
from __future__ import annotations

import numpy as np

from ecgproto.deploy.provenance import model_note
from ecgproto.trust.evidence import split_logits
from ecgproto.trust.guard import best_similarity, verdict
from ecgproto.trust.measurements import measure
from ecgproto.trust.occlusion import WINDOW, where, window_drops, window_starts
from ecgproto.trust.remarks import remarks

# the measured feature a label stands for, checked on the query and on each source ECG shown for it
FEATURES = {
    "STACH": ("rate over 100/min", lambda m: m["rate_per_min"] is not None and m["rate_per_min"] > 100),
    "SBRAD": ("rate under 60/min", lambda m: m["rate_per_min"] is not None and m["rate_per_min"] < 60),
    "AFIB": ("irregular RR", lambda m: m["irregular"] is True),
    "1AVB": ("PR over 200 ms", lambda m: m["pr_ms"] is not None and m["pr_ms"] > 200),
    "IVCD": ("QRS over 110 ms", lambda m: m["qrs_ms"] is not None and m["qrs_ms"] > 110),
    "SR": ("regular 60-100/min", lambda m: m["irregular"] is False and m["rate_per_min"] is not None
           and 60 <= m["rate_per_min"] <= 100),
}
SHOWN_MEASURES = ("rate_per_min", "rr_irregularity", "irregular", "ectopic_beats", "pr_ms", "qrs_ms", "qt_ms",
                  "qtc_bazett_ms", "qtc_fridericia_ms", "axis_deg")


def shows_feature(label: str, measured: dict | None):
    """True/False whether the measurements show the label's deciding feature; None when it has none."""
    if label not in FEATURES or measured is None:
        return None
    return bool(FEATURES[label][1](measured))


def summary(measured: dict) -> dict:
    return {k: measured[k] for k in SHOWN_MEASURES}


def source_measurements(runner) -> list:
    """Measurements of every prototype's source ECG (the filtered signal in millivolts), or Nones when the
    model file carries no source ECGs."""
    from ecgproto.deploy.preprocessing import to_millivolts

    if runner.source_ecgs is None:
        return [None] * len(runner.meta["prototype_class"])
    prep = runner.meta["preprocessing"]
    return [measure(to_millivolts(src, prep)) for src in runner.source_ecgs]


def _annotate(entries, measured, sources_measured, drops, starts) -> None:
    """Each shown prototype: its source ECG's measurements, whether query and source show the label's
    feature, and (for evidence for) where in time it matched."""
    for e in entries:
        for p in e["prototypes"]:
            src = sources_measured[p["index"]]
            p["source_measurements"] = None if src is None else summary(src)
            p["feature"] = FEATURES[e["label"]][0] if e["label"] in FEATURES else None
            p["query_shows_feature"] = shows_feature(e["label"], measured)
            p["source_shows_feature"] = shows_feature(e["label"], src)
            if p in e["evidence_for"] and drops is not None:
                found = where(drops[:, p["index"]])
                start = int(starts[found["window"]])
                p["where"] = {"localised": found["localised"], "start_s": start / 100, "end_s": (start + WINDOW) / 100,
                              "similarity_drop": found["drop"], "median_window_drop": found["median_drop"]}


def explain_ecg(runner, millivolts: np.ndarray, x: np.ndarray, out: dict, top, sources_measured: list,
                record: str, where: bool = True) -> dict:
    """The explanation document of one ECG: millivolts (12, T) as recorded, x (1, 12, T) as the model saw it,
    out its outputs. where=False leaves out "where it matched" (the occlusion map: 20 more forward passes)."""
    meta = runner.meta
    entries = split_logits(out["logits"], out["sims"], np.asarray(meta["last_layer_weight"]), meta["prototype_class"],
                           meta["prototype_source"], meta["groups"], runner.labels, meta.get("calibration"), top)[0]
    best = float(best_similarity(out["sims"], runner.active())[0])
    checked = verdict(millivolts, best, meta.get("guard"), meta.get("familiarity"))
    measured = measure(millivolts)
    readable = checked["reliable"] is not False
    drops = window_drops(runner.outputs, x) if readable and where else None
    _annotate(entries, measured, sources_measured, drops, window_starts(x.shape[-1]))
    called = [e["label"] for e in entries if e["called"]]
    return {
        "record": record, "model": model_note(meta.get("provenance")),
        "reliable": checked["reliable"], "reasons": checked["reasons"],
        "warnings": checked.get("warnings", []), "familiarity_percentile": checked["familiarity_percentile"],
        "calibrated": meta.get("calibration") is not None,
        "measurements": {**summary(measured), "beats": measured["beats"], "rr_ms": measured["rr_ms"]},
        "remarks": remarks(called, measured, meta.get("cooccurrence"),
                           [e["label"] for e in entries if not e["assessable"]]) if readable else [],
        "called": called if readable else [],
        "not_assessable": [{"label": e["label"], "reason": e["not_assessable_because"]}
                           for e in entries if not e["assessable"]],
        "labels": entries if readable else [],
    }


def feature_agreement(docs: list, top: int = 3) -> dict:
    """For the called labels with a deciding feature, how often the query and the source ECG of each of its
    top evidence-for prototypes both show that feature (the source's label alone does not count: every
    source is of its prototype's class by construction). Over all, and per label; beside it each side alone
    (the query side is the call and the measurement, the source side the prototype)."""
    counts = {}  # label -> [both show, shown, query shows, source shows]
    for doc in docs:
        for e in doc["labels"]:
            if not e["called"] or e["label"] not in FEATURES:
                continue
            for p in e["evidence_for"][:top]:
                if p["source_shows_feature"] is None:
                    continue
                query, source = bool(p["query_shows_feature"]), bool(p["source_shows_feature"])
                c = counts.setdefault(e["label"], [0, 0, 0, 0])
                for k, hit in enumerate((query and source, True, query, source)):
                    c[k] += hit
    return agreement_figures(counts)


def agreement_figures(counts: dict) -> dict:
    """The feature agreement figures from their counts (label -> [both, shown, query, source]), which pool
    over folds exactly."""
    n = sum(c[1] for c in counts.values())

    def share(k, c):  # None: not counted (runs recorded before the per-side counts)
        return round(c[k] / c[1], 4) if c[1] and c[k] is not None else None
    return {"feature_agreement": round(sum(c[0] for c in counts.values()) / n, 4) if n else None,
            "feature_agreement_shown": n,
            "feature_agreement_by_label": {k: share(0, c) for k, c in sorted(counts.items())},
            "feature_agreement_query_side_by_label": {k: share(2, c) for k, c in sorted(counts.items())},
            "feature_agreement_source_side_by_label": {k: share(3, c) for k, c in sorted(counts.items())},
            "feature_agreement_counts": {k: list(c) for k, c in sorted(counts.items())}}


def feature_in_labelled(measured: list, y: np.ndarray, labels: list) -> dict:
    """The ceiling the measurements put on feature agreement: of the ECGs labelled with each label, the share
    whose measurements show its deciding feature. The query and a source are such ECGs at best, so each
    side can hardly exceed this share, and agreement (both at once) its square when the two are independent."""
    counts = {}
    for label in FEATURES:
        if label in labels:
            rows = [m for m, yes in zip(measured, y[:, labels.index(label)]) if yes]
            counts[label] = [sum(bool(shows_feature(label, m)) for m in rows), len(rows)]
    return {"labelled_ecgs_showing_feature_by_label": {k: round(h / n, 4) if n else None
                                                       for k, (h, n) in counts.items()},
            "labelled_ecgs_showing_feature_counts": counts}
