"""ECGs drawn the way clinicians read them: 25 mm/s, 10 mm/mV on a 1 mm / 5 mm grid, the 3x4 lead
layout with a lead II rhythm strip, and an optional highlight of where a prototype matches."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from .ptbxl import FS, LEADS  # noqa: E402

MM_PER_S, MM_PER_MV = 25.0, 10.0
LAYOUT = (("I", "AVR", "V1", "V4"), ("II", "AVL", "V2", "V5"), ("III", "AVF", "V3", "V6"))
DISPLAY_NAME = {"AVR": "aVR", "AVL": "aVL", "AVF": "aVF"}
ROW_MM = 35.0  # vertical distance between rows
GRID_MINOR, GRID_MAJOR, TRACE = "#f6c9c9", "#e58f8f", "#111111"


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


def _highlight(ax, highlight, width_mm, y0, y1, color=(1.0, 0.55, 0.0)):
    """Shade the background of [y0, y1] where a per-sample score is in the top half of its range:
    the stronger the match, the deeper the shade; weaker stretches stay unshaded."""
    h = np.asarray(highlight, dtype=float)
    low, high = np.median(h), h.max()
    alpha = np.clip((h - low) / (high - low), 0, 1) * 0.55 if high > low else np.zeros_like(h)
    rgba = np.zeros((1, len(h), 4))
    rgba[..., :3] = color
    rgba[0, :, 3] = alpha
    ax.imshow(rgba, extent=(0, width_mm, y0, y1), aspect="auto", zorder=1, interpolation="bilinear")


def draw_12lead(ax, millivolts: np.ndarray, title: str = "", highlight=None, fs: int = FS) -> None:
    """(12, T) millivolts in the standard layout: three rows of four 2.5 s columns (each column shows
    its own quarter of the 10 s) and a full lead II rhythm strip at the bottom. highlight: (T,) score
    drawn behind every row, aligned in time."""
    n = millivolts.shape[-1]
    width = n / fs * MM_PER_S
    height = ROW_MM * 4 + 5
    _grid(ax, width, height)
    if highlight is not None:
        _highlight(ax, highlight, width, 0, height)
    t_mm = np.arange(n) / fs * MM_PER_S
    quarter = n // 4
    for r, row in enumerate(LAYOUT):
        y0 = height - ROW_MM * (r + 0.6)
        for col, lead in enumerate(row):
            sl = slice(col * quarter, (col + 1) * quarter + (1 if col < 3 else 0))
            ax.plot(t_mm[sl], y0 + millivolts[LEADS.index(lead), sl] * MM_PER_MV, color=TRACE, lw=0.6, zorder=2)
            ax.text(t_mm[col * quarter] + 1, y0 + 9, DISPLAY_NAME.get(lead, lead), fontsize=7, zorder=3)
            if col:
                ax.plot([t_mm[col * quarter]] * 2, [y0 - 4, y0 + 4], color=TRACE, lw=0.8, zorder=2)
    y0 = ROW_MM * 0.5
    ax.plot(t_mm, y0 + millivolts[LEADS.index("II")] * MM_PER_MV, color=TRACE, lw=0.6, zorder=2)
    ax.text(1, y0 + 9, "II", fontsize=7, zorder=3)
    if title:
        ax.set_title(title, fontsize=9, loc="left")


def draw_strip(ax, trace: np.ndarray, title: str = "", highlight=None, fs: int = FS, lead: str = "II") -> None:
    """One lead over the whole record on the clinical grid, with an optional highlight."""
    n = len(trace)
    width, height = n / fs * MM_PER_S, 30.0
    _grid(ax, width, height)
    if highlight is not None:
        _highlight(ax, highlight, width, 0, height)
    ax.plot(np.arange(n) / fs * MM_PER_S, height / 2 + np.clip(trace, -1.5, 1.5) * MM_PER_MV,
            color=TRACE, lw=0.6, zorder=2)
    ax.text(1, height - 5, lead, fontsize=7, zorder=3)
    if title:
        ax.set_title(title, fontsize=8, loc="left")


def figure_for(rows_12lead: int, rows_strip: int = 0, strip_columns: int = 1):
    """A figure tall enough for `rows_12lead` 12-lead panels and `rows_strip` rows of strips."""
    heights = [1.0] * rows_12lead + [0.26] * rows_strip
    fig = plt.figure(figsize=(11, 5.6 * rows_12lead + 1.9 * rows_strip))
    grid = fig.add_gridspec(len(heights), strip_columns, height_ratios=heights, hspace=0.35, wspace=0.05)
    return fig, grid


def save(fig, path) -> None:
    fig.savefig(path, dpi=80, bbox_inches="tight", format="png")
    plt.close(fig)


def draw_explanation(path, millivolts, title, entries, local, max_labels: int, top: int, source=None) -> None:
    """One explained ECG: the 12-lead record (highlighted where its leading prototype matches), then per
    explained label its strongest evidence for and against (a strip each: where the prototype matches in
    this ECG, left, and, when `source(prototype_index)` returns (lead II millivolts, its codes, its
    highlight), in its source training ECG, right), with the rest of the logit in the title.
    entries: explain() output for this ECG; local: (P, T) where_it_matches."""
    called = sorted((e for e in entries if e["called"]), key=lambda e: -e["probability"])
    shown = called[:max_labels] or [max(entries, key=lambda e: e["probability"] - e["threshold"])]
    said = (", ".join(f"{e['label']} {e['probability']:.2f} (threshold {e['threshold']:.2f})" for e in called)
            or "no label passed its threshold")
    picked = [(e, p) for e in shown for p in e["evidence_for"][:top] + e["evidence_against"][:max(1, top // 2)]]
    columns = 2 if source else 1
    fig, grid = figure_for(1, rows_strip=max(len(picked), 1), strip_columns=columns)
    lead = shown[0]["evidence_for"] or shown[0]["prototypes"]
    draw_12lead(fig.add_subplot(grid[0, :]), millivolts, f"{title}. Called: {said}",
                local[lead[0]["index"]] if lead else None)
    row = 1
    for entry, proto in picked:
        j = proto["index"]
        side = "for" if proto["contribution"] > 0 else "AGAINST"
        copies = f" (x{proto['stands_for']} near-copies)" if proto.get("stands_for", 1) > 1 else ""
        draw_strip(fig.add_subplot(grid[row, 0]), millivolts[LEADS.index("II")],
                   f"{entry['label']} logit {entry['logit']:+.2f} (rest {entry['rest']:+.2f}); {side}: prototype {j} "
                   f"({proto['class']}){copies} sim {proto['similarity']:.2f} x weight {proto['weight']:+.2f} = "
                   f"{proto['contribution']:+.2f}", local[j])
        if source:
            ax = fig.add_subplot(grid[row, 1])
            found = source(j) if proto["source_ecg_id"] >= 0 else None
            if found is None:
                ax.axis("off")
                ax.text(0.5, 0.5, "source ECG not available", ha="center", transform=ax.transAxes)
            else:
                trace, codes, highlight = found
                draw_strip(ax, trace, f"its source: training ECG {proto['source_ecg_id']} ({codes})", highlight)
        row += 1
    save(fig, path)
