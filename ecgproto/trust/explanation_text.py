"""What `ecgproto explain` prints for one ECG: whether the model can read it, what was measured, the called
labels with the number that decides each split into prior + evidence for + against + rest, the evidence
with its source ECGs' own measurements, why the closest assessable labels were not called, and which labels
the model cannot assess."""
from __future__ import annotations

from ecgproto.data.ptbxl import CODE_NAMES

WHY_NOT = 2  # assessable labels not called that are explained anyway: the closest to their threshold


def _name(code: str) -> str:
    return f"{code} ({CODE_NAMES.get(code, 'unknown code')})"


def measured_line(m: dict) -> str:
    """HR, RR regularity, PR, QRS, QT/QTc and axis, as a clinical program prints them before interpreting."""
    if m.get("rate_per_min") is None:
        return "measured: no heart rate (fewer than 3 beats found)"
    def ms(key):  # None: no clear wave to time it from (no P wave in AF, no T end found)
        return "not measured" if m.get(key) is None else f"{m[key]} ms"
    rhythm = "irregular" if m.get("irregular") else "regular"
    ectopic = f", {m['ectopic_beats']} premature beat(s)" if m.get("ectopic_beats") else ""
    axis = "not measured" if m.get("axis_deg") is None else f"{m['axis_deg']} deg"
    spread = f", RR {min(m['rr_ms'])}-{max(m['rr_ms'])} ms" if m.get("rr_ms") else ""
    return (f"measured: HR {m['rate_per_min']:g}/min, RR {rhythm} ({m['rr_irregularity']:.0%}{ectopic}{spread}), "
            f"PR {ms('pr_ms')}, QRS {ms('qrs_ms')}, QT {ms('qt_ms')} (QTc Bazett {ms('qtc_bazett_ms')}, "
            f"Fridericia {ms('qtc_fridericia_ms')}), axis {axis}")


def _source(p: dict) -> str:
    if p["source_ecg_id"] < 0:
        return "no source ECG"
    m = p.get("source_measurements")
    if not m or m.get("rate_per_min") is None:
        return f"training ECG, ecg_id {p['source_ecg_id']}"
    pr = "not measured" if m["pr_ms"] is None else f"{m['pr_ms']} ms"
    qrs = "not measured" if m["qrs_ms"] is None else f"{m['qrs_ms']} ms"
    return (f"training ECG, ecg_id {p['source_ecg_id']}: {m['rate_per_min']:g}/min, "
            f"{'irregular' if m['irregular'] else 'regular'}, PR {pr}, QRS {qrs}")


def _feature(p: dict) -> str:
    if p.get("feature") is None or p.get("source_shows_feature") is None:
        return ""
    query, source = p["query_shows_feature"], p["source_shows_feature"]
    if query and source:
        return f"; {p['feature']}: shared by this ECG and the source"
    if not query and not source:
        return f"; {p['feature']}: neither this ECG nor the source shows it"
    return f"; {p['feature']}: {'this ECG' if query else 'the source'} only (NOT shared)"


def _where(p: dict) -> str:
    w = p.get("where")
    if w is None:
        return ""
    if not w["localised"]:
        return "; matches the whole strip (no window stands out)"
    return (f"; matched most at {w['start_s']:g}-{w['end_s']:g} s "
            f"(similarity drop {w['similarity_drop']:.3f} when blanked)")


def _lines_for(e: dict) -> list:
    d = e["decision"]
    lines = [f"  {_name(e['label'])}: probability {e['probability']:.2f}, threshold {e['threshold']:.2f}; "
             f"calibrated logit {d['calibrated_logit']:+.2f} (threshold {d['threshold_logit']:+.2f}) = prior "
             f"{d['prior']:+.2f} + evidence for {d['evidence_for']:+.2f} + against {d['evidence_against']:+.2f} "
             f"+ rest {d['rest']:+.2f}  (model logit {e['logit']:+.2f} x slope {d['slope']:.2f}, plus the prior; "
             f"the prototype lines below are in model-logit units: times {d['slope']:.2f} they sum to the parts, "
             "the rest being the prototypes not shown and the bias)"]
    if e.get("rests_on_prior"):
        lines.append("    NOTE: this call rests on the prior (the calibration's intercept), not on evidence "
                     "from this ECG")
    for side, protos in (("for", e["evidence_for"]), ("against", e["evidence_against"])):
        for p in protos:
            product = f"similarity {p['similarity']:+.3f} x weight {p['weight']:+.3f}"
            if p.get("stands_for", 1) > 1:  # the group's sum, not this one prototype's product
                product += f", summed over {p['stands_for']} near-copies"
            lines.append(f"    {side:<8} prototype {p['index']:>3} ({p['class']}, {_source(p)}) {product} = "
                         f"{p['contribution']:+.3f}{_feature(p)}{_where(p)}")
    return lines


def as_text(doc: dict) -> str:
    model = doc.get("model") or {}
    lines = [f"record {doc['record']}", measured_line(doc["measurements"])]
    if model.get("warning"):
        lines.append(model["warning"])
    lines.append(f"model: trained on {model.get('trained_on', 'unknown')}")
    if not doc["calibrated"]:
        lines.append("note: this model file has no calibration (an older version): no label can be assessed")
    if doc["reliable"] is None:
        lines.append(f"note: {doc['reasons'][0]}")
    if doc["reliable"] is False:
        lines.append("NO RELIABLE RHYTHM CALL: " + "; ".join(doc["reasons"]))
        return "\n".join(lines)
    if doc["familiarity_percentile"] is not None:
        lines.append(f"signal checks passed; familiarity: percentile {doc['familiarity_percentile']:g} of the "
                     "training ECGs' best prototype similarity")
    lines += [f"WARNING: {w}" for w in doc.get("warnings", [])]
    entries = doc["labels"]
    lines += [f"REMARK: {r}" for r in doc["remarks"]]
    called = sorted((e for e in entries if e["called"]), key=lambda e: -e["probability"])
    if called:
        lines.append("Called: " + ", ".join(_name(e["label"]) + (" [on the prior alone, not evidenced by this ECG]"
                                                                   if e.get("rests_on_prior") else "") for e in called))
        for e in called:
            lines += _lines_for(e)
    else:
        lines.append("No label passed its threshold.")
    margin = lambda e: e["decision"]["threshold_logit"] - e["decision"]["calibrated_logit"]  # noqa: E731
    closest = sorted((e for e in entries if e["assessable"] and not e["called"]), key=margin)
    if closest:
        lines.append("Why not (the assessable labels not called whose calibrated logit is closest to its threshold):")
        for e in closest[:WHY_NOT]:
            lines += _lines_for(e)
    lines.append(f"{'label':<6} {'probability':>11} {'threshold':>9}")
    lines += [f"{e['label']:<6} {e['probability']:>11.4f} {e['threshold']:>9.4f}{'  called' if e['called'] else ''}"
              for e in sorted((e for e in entries if e["assessable"]), key=lambda e: -e["probability"])]
    if doc["not_assessable"]:
        lines.append("Not assessable (no probability is shown, never called):")
        lines += [f"  {n['label']}: {n['reason']}" for n in doc["not_assessable"]]
    return "\n".join(lines)
