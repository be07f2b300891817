"""The explain stage's prototype gallery: per class, each prototype as its source training ECG (the case
figures are `ecgproto explain --plot`'s, drawn by report/ecgplot.draw_explanation)."""
from __future__ import annotations

from ecgproto.deploy.preprocessing import to_millivolts
from ecgproto.model.inference import predict
from ecgproto.report.ecgplot import TWELVE_LEAD_MM, draw_12lead, save, stacked_axes
from ecgproto.trust.evidence import lead_attribution, lead_shading
from ecgproto.trust.explanation_text import measured_line
from ecgproto.trust.measurements import measure


def codes_of(y_row, labels) -> str:
    return ", ".join(c for c, v in zip(labels, y_row) if v > 0) or "none of the 16 codes"


def draw_gallery(folder, model, train, labels, prep):
    """One figure per class: each prototype the model uses as its source training ECG, with that ECG's
    measurements, its beats marked and the leads whose blanking lowers the prototype's similarity."""
    row_of = train.row_of()
    classes = model.prototype_class.tolist()
    sources, pruned = model.prototype_source.tolist(), model.prototype_pruned.tolist()
    for c, code in enumerate(labels):
        protos = [j for j, k in enumerate(classes) if k == c and not pruned[j]]
        fig, axes = stacked_axes([[TWELVE_LEAD_MM, 3]] * max(len(protos), 1))
        n_pruned = sum(k == c and p for k, p in zip(classes, pruned))
        if not protos:
            ax = axes[0]
            ax.axis("off")
            n_ecgs = int((train.labels[:, c] > 0).sum())
            why = (f"its {n_ecgs} training ECG(s) already serve other prototypes" if n_ecgs
                   else f"no training ECG carries {code}")
            ax.text(0.5, 0.5, f"{code}: all {n_pruned} prototypes pruned ({why})", ha="center", transform=ax.transAxes)
        for r, j in enumerate(protos):
            ax = axes[r]
            if sources[j] < 0:
                ax.axis("off")
                ax.text(0.5, 0.5, f"{code} prototype {j}: not projected (no training ECG carries {code})",
                        ha="center", transform=ax.transAxes)
                continue
            i = row_of[sources[j]]
            shared = [k for k, s in enumerate(sources) if s == sources[j] and k != j and not pruned[k]]
            title = f"{code} prototype {j}: training ECG {sources[j]} ({codes_of(train.labels[i], labels)})"
            if shared:
                title += f"; the same ECG as prototype(s) {', '.join(map(str, shared))}"
            weights = lead_shading(lead_attribution(lambda b: predict(model, b, model.prototypes.device),
                                                    train.signals[i:i + 1], j))
            source = to_millivolts(train.signals[i], prep)
            measured = measure(source)
            draw_12lead(ax, source, f"{title}\nmeasured: {measured_line(measured)[len('measured: '):]}",
                        lead_weights=weights, beats=measured["beats"], rr_ms=measured["rr_ms"])
        save(fig, folder / f"{code}.png")
