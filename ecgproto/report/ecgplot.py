"""ECGs drawn the way clinicians read them: 25 mm/s, 10 mm/mV on a 1 mm / 5 mm grid, the 3x4 lead
layout with a lead II rhythm strip, beat marks with RR values, and (only when occlusion localises it) the
window where a prototype matched."""
from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from ecgproto.data.ptbxl import FS, LEADS  # noqa: E402

MM_PER_S, MM_PER_MV = 25.0, 10.0
LAYOUT = (("I", "AVR", "V1", "V4"), ("II", "AVL", "V2", "V5"), ("III", "AVF", "V3", "V6"))
DISPLAY_NAME = {"AVR": "aVR", "AVL": "aVL", "AVF": "aVF"}
ROW_MM = 40.0  # vertical distance between rows: +-1.9 mV fit before a trace is clipped (and marked)
PULSE_MM = 7.0  # left margin holding the 1 mV, 200 ms calibration pulse of each row
DPI = 200  # about 8 px per mm: the 1 mm grid and P waves stay sharp
GRID_MINOR, GRID_MAJOR, TRACE = "#f6c9c9", "#e58f8f", "#111111"
MATCH, LEAD, BEAT = (1.0, 0.55, 0.0), (0.2, 0.45, 0.9), (0.1, 0.3, 0.8)
SIGNAL_NOTE = "signal as the model saw it: 0.5 Hz high-pass, in mV"


def _grid(ax, width_mm: float, height_mm: float) -> None:
    segments, colors, widths = [], [], []
    for x in np.arange(0, width_mm + 0.01, 1.0):
        segments.append(((x, 0), (x, height_mm)))
        colors.append(GRID_MAJOR if round(x) % 5 == 0 else GRID_MINOR)
        widths.append(0.6 if round(x) % 5 == 0 else 0.25)
    for y in np.arange(0, height_mm + 0.01, 1.0):
        segments.append(((0, y), (width_mm, y)))
        colors.append(GRID_MAJOR if round(y) % 5 == 0 else GRID_MINOR)
        widths.append(0.6 if round(y) % 5 == 0 else 0.25)
    ax.add_collection(LineCollection(segments, colors=colors, linewidths=widths, zorder=0))
    ax.set_xlim(0, width_mm)
    ax.set_ylim(0, height_mm)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def _trace(ax, t_mm, y0, millivolts, half_mm):
    """A trace around baseline y0, clipped at +-half_mm with the clipped samples marked in red."""
    y = millivolts * MM_PER_MV
    ax.plot(t_mm, y0 + np.clip(y, -half_mm, half_mm), color=TRACE, lw=0.6, zorder=3)
    over = np.abs(y) > half_mm
    if over.any():
        ax.plot(t_mm[over], y0 + np.sign(y[over]) * half_mm, "|", color="red", ms=3, zorder=4)


def _pulse(ax, y0):
    """The 1 mV calibration pulse (10 mm high, 200 ms = 5 mm wide) in the row's left margin."""
    x = [0.5, 1.0, 1.0, 6.0, 6.0, 6.5]
    ax.plot(x, [y0, y0, y0 + MM_PER_MV, y0 + MM_PER_MV, y0, y0], color=TRACE, lw=0.8, zorder=3)


def _label(ax, x, y, text):
    ax.text(x, y, text, fontsize=8, zorder=5, va="top", bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none"))


def draw_12lead(ax, millivolts: np.ndarray, title: str = "", fs: int = FS, lead_weights=None,
                note: str = SIGNAL_NOTE, beats=None, rr_ms=None) -> None:
    """(12, T) millivolts as printed: three rows of four 2.5 s columns (each column its own quarter of the
    10 s) and a full lead II rhythm strip, with a calibration pulse per row and the speed and gain
    printed. lead_weights: (12,) 0-1 on an absolute scale (lead_shading), shading each lead's box by how
    much blanking that lead lowers the leading prototype's similarity. beats, rr_ms: beat marks and RR
    values on the rhythm strip."""
    n = millivolts.shape[-1]
    width = PULSE_MM + n / fs * MM_PER_S
    height = ROW_MM * 4 + 6
    _grid(ax, width, height)
    t_mm = PULSE_MM + np.arange(n) / fs * MM_PER_S
    quarter = n // 4
    half = ROW_MM / 2 - 1
    for r, row in enumerate(LAYOUT):
        y0 = height - ROW_MM * (r + 0.5)
        _pulse(ax, y0)
        for col, lead in enumerate(row):
            sl = slice(col * quarter, (col + 1) * quarter + (1 if col < 3 else 0))
            x0, x1 = t_mm[col * quarter], t_mm[min((col + 1) * quarter, n - 1)]
            if lead_weights is not None:
                ax.add_patch(plt.Rectangle((x0, y0 - ROW_MM / 2), x1 - x0, ROW_MM, color=LEAD, zorder=1,
                                           alpha=0.35 * float(np.clip(lead_weights[LEADS.index(lead)], 0, 1)), lw=0))
            _trace(ax, t_mm[sl], y0, millivolts[LEADS.index(lead), sl], half)
            _label(ax, x0 + 1, y0 + ROW_MM / 2 - 1, DISPLAY_NAME.get(lead, lead))
            if col:
                ax.plot([x0] * 2, [y0 - 4, y0 + 4], color=TRACE, lw=0.8, zorder=3)
    y0 = ROW_MM * 0.5 + 1
    _pulse(ax, y0)
    _trace(ax, t_mm, y0, millivolts[LEADS.index("II")], half)
    _label(ax, PULSE_MM + 1, y0 + ROW_MM / 2 - 1, "II")
    if beats is not None:
        _beats(ax, beats, rr_ms or [], y0 + ROW_MM / 2 - 4, fs)
    ax.text(width, -2, f"{MM_PER_S:g} mm/s, {MM_PER_MV:g} mm/mV; {note}" +
            ("; blue boxes: leads whose blanking lowers the leading prototype's similarity" if lead_weights is not None
             else ""), fontsize=7, ha="right", va="top")
    if title:
        ax.set_title(title, fontsize=9, loc="left")


STRIP_MM = PULSE_MM + 10 * MM_PER_S  # a 10 s record with its calibration pulse: 257 mm
TWELVE_LEAD_MM = ROW_MM * 4 + 6
LINE_IN, GAP_IN, MARGIN_IN = 0.17, 0.32, 0.3  # a title line (9 pt), the space under a panel, the page margin


def stacked_axes(panels: list, width_mm: float = STRIP_MM):
    """A figure of panels stacked top to bottom, each [height_mm, title_lines], every axes exactly width_mm
    by height_mm on paper: at DPI a 10 s strip at 25 mm/s is 250 mm = 1,969 px, so the printed speed and
    gain are true (they were not when the layout left matplotlib to fit the panels). Returns (fig, axes)."""
    width_in = width_mm / 25.4
    heights = [lines * LINE_IN + mm / 25.4 + GAP_IN for mm, lines in panels]
    fig_w, fig_h = width_in + 2 * MARGIN_IN, sum(heights) + 2 * MARGIN_IN
    fig = plt.figure(figsize=(fig_w, fig_h))
    top, axes = fig_h - MARGIN_IN, []
    for (mm, lines), height in zip(panels, heights):
        bottom = top - lines * LINE_IN - mm / 25.4
        axes.append(fig.add_axes((MARGIN_IN / fig_w, bottom / fig_h, width_in / fig_w, mm / 25.4 / fig_h)))
        top -= height
    return fig, axes


def lines_of(text: str) -> int:
    return text.count("\n") + 1


FIGURE_FORMATS = ("png", "svg", "pdf")  # what save() can honour; any other suffix is refused by the CLI


def save(fig, path, fmt: str = "png") -> None:
    fig.savefig(path, dpi=DPI, bbox_inches="tight", format=fmt)
    plt.close(fig)


def shown_labels(entries: list, max_labels: int) -> list:
    """The labels a figure explains: the called ones, most probable first, else the assessable label closest
    to its threshold (a label the model cannot assess is never shown)."""
    called = sorted((e for e in entries if e["called"]), key=lambda e: -e["probability"])
    assessable = [e for e in entries if e.get("assessable", True)]
    if called or not assessable:
        return called[:max_labels]
    return [max(assessable, key=lambda e: e["decision"]["calibrated_logit"] - e["decision"]["threshold_logit"])]


def leading_prototype(entries: list):
    """The index of the prototype the lead shading follows: the first shown label's strongest evidence
    for (never evidence against, where blanking a lead would mean the opposite), or None."""
    shown = shown_labels(entries, 1)
    return shown[0]["evidence_for"][0]["index"] if shown and shown[0]["evidence_for"] else None


def _beats(ax, beats, rr_ms, y_mm, fs: int = FS) -> None:
    """Beat marks (detected R peaks, a blue triangle) and the RR interval between them, in ms."""
    x = [PULSE_MM + b / fs * MM_PER_S for b in beats]
    ax.plot(x, [y_mm] * len(x), "v", color=BEAT, ms=3.5, zorder=5)
    for left, right, rr in zip(x, x[1:], rr_ms):
        ax.text((left + right) / 2, y_mm + 0.8, f"{rr}", fontsize=5.5, ha="center", va="bottom", color=BEAT, zorder=5)


def _measured(m: dict | None) -> str:
    if not m or m.get("rate_per_min") is None:
        return "no rate measured"
    parts = [f"{m['rate_per_min']:g}/min", "irregular RR" if m.get("irregular") else "regular RR"]
    parts += [f"{k} {m[key]} ms" for k, key in (("PR", "pr_ms"), ("QRS", "qrs_ms"), ("QT", "qt_ms"))
              if m.get(key) is not None]
    return ", ".join(parts)


def draw_strip(ax, trace: np.ndarray, title: str = "", window=None, beats=None, rr_ms=None, fs: int = FS,
               lead: str = "II") -> None:
    """One lead over the whole record on the clinical grid, with its calibration pulse, clipping marks, beat
    marks with RR values, and a shaded window (start, end in samples) where a prototype matched."""
    n = len(trace)
    width, height = PULSE_MM + n / fs * MM_PER_S, ROW_MM
    baseline = ROW_MM / 2  # +-1.9 mV as in the 12-lead rows before a sample is clipped (and marked)
    _grid(ax, width, height)
    if window is not None:
        x0, x1 = (PULSE_MM + w / fs * MM_PER_S for w in window)
        ax.add_patch(plt.Rectangle((x0, 0), x1 - x0, height, color=MATCH, alpha=0.3, lw=0, zorder=1))
    _pulse(ax, baseline)
    _trace(ax, PULSE_MM + np.arange(n) / fs * MM_PER_S, baseline, np.asarray(trace), baseline - 1)
    if beats is not None:
        _beats(ax, beats, rr_ms or [], height - 4, fs)
    _label(ax, PULSE_MM + 1, height - 1, DISPLAY_NAME.get(lead, lead))
    if title:
        ax.set_title(title, fontsize=8, loc="left")


LEGEND = ("Marks: blue triangle = detected beat (R peak), blue numbers = RR interval in ms; orange band = the "
          "1 s window whose blanking lowers the prototype's similarity most, drawn only when it stands out (at "
          "least twice the median window's drop); blue lead boxes = leads whose blanking lowers the leading "
          "prototype's similarity (full colour at a drop of 0.1); red ticks = samples clipped at the row's edge.")


def draw_explanation(path, doc: dict, millivolts: np.ndarray, sources: dict, max_labels: int, top: int,
                     lead_weights=None, fmt: str = "png") -> None:
    """One explained ECG from its explanation document (trust/explanation.py): the 12-lead record with its
    measurements, then per explained label its strongest evidence for, each as two 10 s lead II strips:
    this ECG (with the window where the prototype matched, when localised) and the prototype's source
    training ECG (sources[index] = (lead II millivolts, its codes, its measurements with beats and RR)),
    both with beat marks and RR values. millivolts: (12, T) as the model saw it, in mV."""
    readable = doc["reliable"] is not False
    entries = doc["labels"] if readable else []
    shown = shown_labels(entries, max_labels)
    said = (", ".join(f"{e['label']} {e['probability']:.2f} (threshold {e['threshold']:.2f})"
                      + (" on the prior alone" if e.get("rests_on_prior") else "")
                      for e in sorted((e for e in entries if e["called"]), key=lambda e: -e["probability"]))
            or "no label passed its threshold")
    picked = [(e, p) for e in shown for p in e["evidence_for"][:top]]
    m = doc["measurements"]
    head = f"record {doc['record']}. Measured: {_measured(m)}"
    head += "".join("\n" + textwrap.fill(f"WARNING: {w}", 150, subsequent_indent="    ") for w in doc["warnings"])
    if not readable:
        head += "\nNO RELIABLE RHYTHM CALL: " + "; ".join(doc["reasons"])
    else:
        head += f"\nCalled: {said}"
        for e in shown:
            d = e["decision"]
            head += (f"\n{e['label']}: calibrated logit {d['calibrated_logit']:+.2f}"
                     f" (threshold {d['threshold_logit']:+.2f})"
                     f" = prior {d['prior']:+.2f} + for {d['evidence_for']:+.2f} + against {d['evidence_against']:+.2f}"
                     f" + rest {d['rest']:+.2f}" + ("  [rests on the prior]" if e.get("rests_on_prior") else "")
                     + f"\n    (for, against, rest: the prototypes' contributions below x the calibration slope "
                       f"{d['slope']:.2f}; rest: the prototypes not shown and the bias)")
        head += "".join("\n" + textwrap.fill(f"REMARK: {r}", 150, subsequent_indent="    ") for r in doc["remarks"])
    leading = leading_prototype(entries)
    if leading is not None and lead_weights is not None:
        head += f"\nBlue lead boxes: prototype {leading}, the leading evidence for {shown[0]['label']}"
    legend = textwrap.fill(LEGEND, 190)
    fig, axes = stacked_axes([[TWELVE_LEAD_MM, lines_of(head) + 1]] + [[ROW_MM, 1]] * (2 * len(picked))
                             + [[lines_of(legend) * 3.0, 0]])  # the legend: 3 mm a line of 6.5 pt text
    draw_12lead(axes[0], millivolts, head,
                lead_weights=lead_weights if leading is not None else None, beats=m.get("beats"), rr_ms=m.get("rr_ms"))
    row, ii = 1, LEADS.index("II")
    for entry, proto in picked:
        j, where = proto["index"], proto.get("where")
        window = None
        if where and where["localised"]:
            window = (int(round(where["start_s"] * FS)), int(round(where["end_s"] * FS)))
        place = ("matches the whole strip" if not window else
                 f"matched most at {where['start_s']:g}-{where['end_s']:g} s")
        copies = f", x{proto['stands_for']} near-copies" if proto.get("stands_for", 1) > 1 else ""
        feature = ""
        if proto.get("source_shows_feature") is not None:
            feature = (f"; {proto['feature']}: this ECG {'yes' if proto['query_shows_feature'] else 'no'}, source "
                       f"{'yes' if proto['source_shows_feature'] else 'no'}")
        draw_strip(axes[row], millivolts[ii],
                   f"{entry['label']}{'' if entry['called'] else ' (NOT CALLED: the closest label)'}: evidence for, "
                   f"prototype {j} ({proto['class']}{copies}), similarity "
                   f"{proto['similarity']:.2f} x weight {proto['weight']:+.2f} = {proto['contribution']:+.2f}; "
                   f"this ECG, 10 s: {place}{feature}", window, m.get("beats"), m.get("rr_ms"))
        found = sources.get(j)
        if found is None:
            ax = axes[row + 1]
            ax.axis("off")
            ax.text(0.5, 0.5, "source ECG not available", ha="center", transform=ax.transAxes)
        else:
            trace, codes, sm = found
            draw_strip(axes[row + 1], trace,
                       f"its source: training ECG {proto['source_ecg_id']} ({codes}); measured: {_measured(sm)}",
                       None, sm.get("beats"), sm.get("rr_ms"))
        row += 2
    axes[-1].axis("off")
    axes[-1].text(0, 1, legend, fontsize=6.5, va="top", transform=axes[-1].transAxes)
    save(fig, path, fmt)
