"""What `ecgproto explain` tells a reader about one ECG: first whether the model can read it at all, then
the called labels with both sides of every logit, then why the closest labels were not called."""
from __future__ import annotations

from ecgproto.data.ptbxl import CODE_NAMES

WHY_NOT = 2  # labels not called that are explained anyway: the closest to their threshold


def as_dict(record: str, entries: list, verdict: dict, calibrated: bool, rate: dict, remarks: list) -> dict:
    """The JSON document: the verdict, and the labels only when the ECG can be read."""
    readable = verdict["reliable"] is not False
    return {"record": record, "reliable": verdict["reliable"], "reasons": verdict["reasons"],
            "familiarity_percentile": verdict["familiarity_percentile"], "calibrated": calibrated,
            "heart_rate_per_min": rate["rate_per_min"], "rr_variation": rate["rr_variation"],
            "remarks": remarks if readable else [],
            "called": [e["label"] for e in entries if e["called"]] if readable else [],
            "labels": entries if readable else []}


def _name(code: str) -> str:
    return f"{code} ({CODE_NAMES.get(code, 'unknown code')})"


def _lines_for(e: dict) -> list:
    pro = sum(p["contribution"] for p in e["evidence_for"])
    con = sum(p["contribution"] for p in e["evidence_against"])
    lines = [f"  {_name(e['label'])}: probability {e['probability']:.2f}, threshold {e['threshold']:.2f}; "
             f"logit {e['logit']:+.2f} = for {pro:+.2f} + against {con:+.2f} + rest {e['rest']:+.2f}"]
    for side, protos in (("for", e["evidence_for"]), ("against", e["evidence_against"])):
        for p in protos:
            source = f"training ECG {p['source_ecg_id']}" if p["source_ecg_id"] >= 0 else "no source ECG"
            product = f"similarity {p['similarity']:+.3f} x weight {p['weight']:+.3f}"
            if p.get("stands_for", 1) > 1:  # the group's sum, not this one prototype's product
                product += f", summed over {p['stands_for']} near-copies"
            lines.append(f"    {side:<8} prototype {p['index']:>3} ({p['class']}, {source}) {product} = "
                         f"{p['contribution']:+.3f}")
    return lines


def as_text(record: str, entries: list, verdict: dict, calibrated: bool, rate: dict, remarks: list) -> str:
    measured = (f"heart rate {rate['rate_per_min']:g}/min, RR variation {rate['rr_variation']:.0%} (measured from the "
                "signal)" if rate["rate_per_min"] is not None else "no heart rate: fewer than 3 beats found")
    lines = [f"record {record}: {measured}"]
    if not calibrated:
        lines.append("note: this model file has no calibration (an older version): probabilities are "
                     "sigmoid(logit) and every threshold is 0.5")
    if verdict["reliable"] is None:
        lines.append(f"note: {verdict['reasons'][0]}")
    if verdict["reliable"] is False:
        lines.append("NO RELIABLE RHYTHM CALL: " + "; ".join(verdict["reasons"]))
        return "\n".join(lines)
    if verdict["familiarity_percentile"] is not None:
        lines.append(f"signal checks passed; familiarity: percentile {verdict['familiarity_percentile']:g} of the "
                     "training ECGs' best prototype similarity")
    called = sorted((e for e in entries if e["called"]), key=lambda e: -e["probability"])
    lines += [f"REMARK: {r}" for r in remarks]
    if called:
        lines.append("Called: " + ", ".join(_name(e["label"]) for e in called))
        for e in called:
            lines += _lines_for(e)
    else:
        lines.append("No label passed its threshold.")
    closest = sorted((e for e in entries if not e["called"]), key=lambda e: e["threshold"] - e["probability"])
    lines.append("Why not (the closest labels not called):")
    for e in closest[:WHY_NOT]:
        lines += _lines_for(e)
    lines.append(f"{'label':<6} {'probability':>11} {'threshold':>9}")
    lines += [f"{e['label']:<6} {e['probability']:>11.4f} {e['threshold']:>9.4f}{'  called' if e['called'] else ''}"
              f"{'' if e.get('calibrated', True) or not calibrated else '  uncalibrated (no validation positive): never called'}"
              for e in sorted(entries, key=lambda e: -e["probability"])]
    return "\n".join(lines)
