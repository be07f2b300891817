"""ECGs drawn the way clinicians read them: 25 mm/s, 10 mm/mV on a 1 mm / 5 mm grid, the 3x4 lead
layout with a lead II rhythm strip, and an optional highlight of where a prototype matches."""
from __future__ import annotations

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
MATCH, LEAD = (1.0, 0.55, 0.0), (0.2, 0.45, 0.9)
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


def _highlight(ax, similarity, x0, x1, y0, y1):
    """Shade [x0, x1] x [y0, y1] by a per-sample similarity on an absolute scale (0 or less: none, 1:
    full), so a weak match looks weak whatever the record."""
    h = np.clip(np.asarray(similarity, dtype=float), 0, 1)
    rgba = np.zeros((1, len(h), 4))
    rgba[..., :3] = MATCH
    rgba[0, :, 3] = h * 0.5
    ax.imshow(rgba, extent=(x0, x1, y0, y1), aspect="auto", zorder=1, interpolation="bilinear")


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


def draw_12lead(ax, millivolts: np.ndarray, title: str = "", highlight=None, fs: int = FS, lead_weights=None,
                note: str = SIGNAL_NOTE) -> None:
    """(12, T) millivolts as printed: three rows of four 2.5 s columns (each column its own quarter of the
    10 s) and a full lead II rhythm strip, with a calibration pulse per row and the speed and gain
    printed. highlight: (T,) similarity of a prototype along the record (absolute scale, all rows).
    lead_weights: (12,) 0-1, shading each lead's box by how much that lead carries the match."""
    n = millivolts.shape[-1]
    width = PULSE_MM + n / fs * MM_PER_S
    height = ROW_MM * 4 + 6
    _grid(ax, width, height)
    if highlight is not None:
        _highlight(ax, highlight, PULSE_MM, width, 0, height)
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
    ax.text(width, -2, f"{MM_PER_S:g} mm/s, {MM_PER_MV:g} mm/mV; {note}" +
            ("; orange: where the prototype matches (similarity 0-1)" if highlight is not None else "") +
            ("; blue: the leads that carry the match" if lead_weights is not None else ""),
            fontsize=7, ha="right", va="top")
    if title:
        ax.set_title(title, fontsize=9, loc="left")


def draw_strip(ax, trace: np.ndarray, title: str = "", highlight=None, fs: int = FS, lead: str = "II") -> None:
    """One lead over the whole record on the clinical grid, with its calibration pulse, clipping marks
    and an optional similarity shading (absolute scale)."""
    n = len(trace)
    width, height = PULSE_MM + n / fs * MM_PER_S, ROW_MM
    baseline = ROW_MM / 2  # +-1.9 mV as in the 12-lead rows before a sample is clipped (and marked)
    _grid(ax, width, height)
    if highlight is not None:
        _highlight(ax, highlight, PULSE_MM, width, 0, height)
    _pulse(ax, baseline)
    _trace(ax, PULSE_MM + np.arange(n) / fs * MM_PER_S, baseline, np.asarray(trace), baseline - 1)
    _label(ax, PULSE_MM + 1, height - 1, DISPLAY_NAME.get(lead, lead))
    if title:
        ax.set_title(title, fontsize=8, loc="left")


def figure_for(rows_12lead: int, rows_strip: int = 0, strip_columns: int = 1):
    """A figure tall enough for `rows_12lead` 12-lead panels and `rows_strip` rows of strips."""
    heights = [1.0] * rows_12lead + [0.3] * rows_strip
    fig = plt.figure(figsize=(11, 5.6 * rows_12lead + 2.3 * rows_strip))
    grid = fig.add_gridspec(len(heights), strip_columns, height_ratios=heights, hspace=0.35, wspace=0.05)
    return fig, grid


FIGURE_FORMATS = ("png", "svg", "pdf")  # what save() can honour; any other suffix is refused by the CLI


def save(fig, path, fmt: str = "png") -> None:
    fig.savefig(path, dpi=DPI, bbox_inches="tight", format=fmt)
    plt.close(fig)


WINDOW = FS * 5 // 2  # 2.5 s: one column of the printed layout


def best_window(similarity: np.ndarray, width: int = WINDOW) -> int:
    """Start of the `width`-sample stretch where a prototype matches best (highest mean similarity)."""
    similarity = np.asarray(similarity, dtype=float)
    if len(similarity) <= width:
        return 0
    return int(np.argmax(np.convolve(similarity, np.ones(width), mode="valid")))


def _window_title(head: str, what: str, start: int) -> str:
    span = f"{what}, best-matching {start / FS:.1f}-{(start + WINDOW) / FS:.1f} s"
    return f"{head}\n{span}" if head else f"\n{span}"


def shown_labels(entries: list, max_labels: int) -> list:
    """The labels a figure explains: the called ones, most probable first, else the closest to its threshold."""
    called = sorted((e for e in entries if e["called"]), key=lambda e: -e["probability"])
    if called or not entries:
        return called[:max_labels]
    return [max(entries, key=lambda e: e["probability"] - e["threshold"])]


def leading_prototype(entries: list):
    """The index of the prototype the figure's shading follows (the first shown label's strongest
    evidence for, else its first listed prototype), or None."""
    shown = shown_labels(entries, 1)
    lead = (shown[0]["evidence_for"] or shown[0]["prototypes"]) if shown else []
    return lead[0]["index"] if lead else None


def draw_explanation(path, millivolts, title, entries, local, max_labels: int, top: int, source=None,
                     lead_weights=None, fmt: str = "png") -> None:
    """One explained ECG: the 12-lead record (highlighted where its leading prototype matches), then per
    explained label its strongest evidence for and against (a strip each: where the prototype matches in
    this ECG, left, and, when `source(prototype_index)` returns (lead II millivolts, its codes, its
    highlight), in its source training ECG, right), with the rest of the logit in the title.
    entries: explain() output for this ECG; local: (P, T) where_it_matches; lead_weights: (12,) 0-1
    lead attribution of the leading prototype, shading the lead boxes of the 12-lead panel."""
    called = sorted((e for e in entries if e["called"]), key=lambda e: -e["probability"])
    shown = shown_labels(entries, max_labels)
    said = (", ".join(f"{e['label']} {e['probability']:.2f} (threshold {e['threshold']:.2f})" for e in called)
            or "no label passed its threshold")
    picked = [(e, p) for e in shown for p in e["evidence_for"][:top] + e["evidence_against"][:max(1, top // 2)]]
    columns = 2 if source else 1
    # per prototype two rows: its best-matching 2.5 s in this ECG beside the same in its source (zoomed,
    # so P waves and intervals can be read), then the full 10 s of both
    fig, grid = figure_for(1, rows_strip=max(2 * len(picked), 1), strip_columns=columns)
    leading = leading_prototype(entries)
    lead_class = next((p["class"] for e in shown for p in e["prototypes"] if p["index"] == leading), "")
    draw_12lead(fig.add_subplot(grid[0, :]), millivolts,
                f"{title}. Called: {said}" + (f"\nShading: prototype {leading} ({lead_class}), the leading evidence"
                                              if leading is not None else ""),
                local[leading] if leading is not None else None, lead_weights=lead_weights)
    row = 1
    ii = LEADS.index("II")
    for entry, proto in picked:
        j = proto["index"]
        side = "for" if proto["contribution"] > 0 else "AGAINST"
        copies = f", x{proto['stands_for']} near-copies" if proto.get("stands_for", 1) > 1 else ""
        found = source(j) if source and proto["source_ecg_id"] >= 0 else None
        start = best_window(local[j])
        draw_strip(fig.add_subplot(grid[row, 0]), millivolts[ii, start:start + WINDOW], _window_title(
            f"{entry['label']} (logit {entry['logit']:+.2f}, rest {entry['rest']:+.2f}): {side}, prototype {j} "
            f"({proto['class']}{copies}); similarity {proto['similarity']:.2f} x weight {proto['weight']:+.2f} = "
            f"{proto['contribution']:+.2f}", "this ECG", start), local[j, start:start + WINDOW])
        draw_strip(fig.add_subplot(grid[row + 1, 0]), millivolts[ii], "this ECG, 10 s", local[j])
        if source:
            if found is None:
                for r in (row, row + 1):
                    ax = fig.add_subplot(grid[r, 1])
                    ax.axis("off")
                    ax.text(0.5, 0.5, "source ECG not available", ha="center", transform=ax.transAxes)
            else:
                trace, codes, highlight = found
                s0 = best_window(highlight)
                draw_strip(fig.add_subplot(grid[row, 1]), trace[s0:s0 + WINDOW], _window_title(
                    "", f"looks like its source, training ECG {proto['source_ecg_id']} ({codes})", s0),
                    highlight[s0:s0 + WINDOW])
                draw_strip(fig.add_subplot(grid[row + 1, 1]), trace, "its source, 10 s", highlight)
        row += 2
    save(fig, path, fmt)
