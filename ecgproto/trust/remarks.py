"""Remarks where the calls and the measurements disagree, in both directions: a call the measurement
contradicts (STACH at 80/min) and a measured finding no call accounts for (51/min with no SBRAD). And
called labels that never occurred together in the training folds, except where that is PTB-XL's own
labelling convention (a sinus rhythm is coded once: SR, STACH, SBRAD or SARRH, never two of them)."""
from __future__ import annotations

SINUS_FAMILY = {"SR", "STACH", "SBRAD", "SARRH"}  # PTB-XL codes one of them per record: never a contradiction
TACHY = {"STACH", "SVTAC", "PSVT", "AFIB", "AFLT"}  # labels that account for a rate over 100/min
BRADY = {"SBRAD", "3AVB", "2AVB", "AFIB", "PACE"}   # labels that can account for a rate under 60/min
IRREGULAR_RHYTHMS = {"AFIB", "AFLT", "SARRH", "SVARR", "BIGU", "TRIGU", "2AVB", "3AVB", "PSVT", "PACE"}
RHYTHMS = SINUS_FAMILY | {"AFIB", "AFLT", "SVTAC", "PSVT", "PACE", "SVARR", "BIGU", "TRIGU"}  # not conduction


def _rate(m: dict, called: set) -> list:
    bpm = m.get("rate_per_min")
    if bpm is None:
        return []
    out = []
    if "STACH" in called and bpm <= 100:
        out.append(f"STACH is called, but the measured rate is {bpm:g}/min (tachycardia: over 100/min)")
    if "SBRAD" in called and bpm >= 60:
        out.append(f"SBRAD is called, but the measured rate is {bpm:g}/min (bradycardia: under 60/min)")
    if bpm < 60 and not called & BRADY:
        out.append(f"the measured rate is {bpm:g}/min (under 60/min), but no label for a slow rhythm is called")
    if bpm > 100 and not called & TACHY:
        out.append(f"the measured rate is {bpm:g}/min (over 100/min), but no label for a fast rhythm is called")
    return out


def _regularity(m: dict, called: set) -> list:
    irregular, bpm = m.get("irregular"), m.get("rate_per_min")
    if irregular is None:
        return []
    out = []
    variation = f"median successive RR difference {m['rr_irregularity']:.0%} of the RR"
    if "AFIB" in called and not irregular:
        out.append(f"AFIB is called, but the RR intervals are regular ({variation})")
        if bpm is not None and 120 <= bpm <= 180:  # flutter waves at 240-360/min, conducted 2:1
            out.append(f"a regular rhythm at {bpm:g}/min called AFIB: consider atrial flutter with 2:1 conduction")
    if not irregular and bpm is not None and 60 <= bpm <= 100 and not called & RHYTHMS:  # rate remarks cover the rest
        out.append(f"a regular rhythm at {bpm:g}/min is measured, but no rhythm label is called (a sinus rhythm "
                   "would be SR); read the rhythm on the tracing")
    if irregular and "SR" in called and not called & IRREGULAR_RHYTHMS:
        out.append(f"the RR intervals are irregular ({variation}), but only a regular rhythm is called")
    spread = max(m["rr_ms"]) - min(m["rr_ms"]) if m.get("rr_ms") else None
    if "SARRH" in called and spread is not None and spread < 120:
        out.append(f"SARRH is called, but the RR intervals vary by only {spread} ms (sinus arrhythmia: over 120 ms)")
    if called & {"BIGU", "TRIGU"} and m.get("ectopic_beats", 0) == 0:
        out.append(f"{'/'.join(sorted(called & {'BIGU', 'TRIGU'}))} is called, but no premature beat was found")
    return out


def _intervals(m: dict, called: set) -> list:
    out = []
    pr, qrs = m.get("pr_ms"), m.get("qrs_ms")
    if called & {"AFIB", "AFLT"}:  # fibrillation or flutter waves are no P waves: a "PR" there times nothing
        pr = None
    if pr is not None:
        if pr < 120:
            out.append(f"the measured PR is {pr} ms (under 120 ms): pre-excitation, a junctional rhythm, or a P wave "
                       "not found; verify on the tracing")
        if pr > 200 and "1AVB" not in called:
            out.append(f"the measured PR is {pr} ms (over 200 ms), but 1AVB is not called")
        if "1AVB" in called and pr <= 200:
            out.append(f"1AVB is called, but the measured PR is {pr} ms (first degree block: over 200 ms)")
    elif "1AVB" in called and not called & {"AFIB", "AFLT"}:
        out.append("1AVB is called, but no P wave (and so no PR) could be measured")
    qtc = m.get("qtc_bazett_ms")
    if qtc is not None and qtc > 500:  # no label covers it, and a T end not found gives the same number: say both
        out.append(f"the measured QTc (Bazett) is {qtc} ms (over 500 ms), which no label of this model covers: a long "
                   "QT, or a T wave end the measurement missed; verify on the tracing")
    if qrs is not None:
        if qrs > 120 and "IVCD" not in called:
            out.append(f"the measured QRS is {qrs} ms (over 120 ms), but IVCD is not called (a bundle branch "
                       "block, which the model does not label, also widens it)")
        if "IVCD" in called and qrs <= 110:
            out.append(f"IVCD is called, but the measured QRS is {qrs} ms (IVCD: over 110 ms)")
    return out


POINTS_TO = {  # a measured finding, and the labels it points to
    "under 60/min": ("SBRAD",), "over 100/min": ("STACH", "SVTAC", "AFLT"), "irregular": ("AFIB", "SARRH", "SVARR"),
    "PR is": ("1AVB",), "QRS is": ("IVCD",), "premature": ("BIGU", "TRIGU", "SVARR"), "flutter": ("AFLT",),
    "no rhythm label": ("SR",),
}


def remarks(called: list, measured: dict, cooccurrence: dict | None, not_assessable=()) -> list:
    """Sentences for a reader: calls and measurements that disagree (both directions), and called labels
    that never occurred together in the training folds (cooccurrence: {code: {code: Jaccard}}). A finding
    that points to a label the model cannot assess says so: the model is silent there, not negative."""
    chosen = set(called)
    out = _rate(measured, chosen) + _regularity(measured, chosen) + _intervals(measured, chosen)
    silent = set(not_assessable)
    for k, sentence in enumerate(out):
        labels = sorted({c for key, codes in POINTS_TO.items() if key in sentence for c in codes} & silent)
        if labels:
            out[k] = f"{sentence} ({', '.join(labels)}: not assessable by this model)"
    if cooccurrence:
        pairs = [(a, b) for i, a in enumerate(called) for b in called[i + 1:]
                 if cooccurrence.get(a, {}).get(b, 1.0) == 0.0 and not {a, b} <= SINUS_FAMILY]
        out += [f"{a} and {b} never occur together in the training folds" for a, b in pairs]
    return out
