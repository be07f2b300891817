"""The explain stage's figures: a prototype gallery per class (each prototype as its source training
ECG) and case figures (a test ECG, its explanation, each prototype beside its source)."""
from __future__ import annotations

from ecgproto.deploy.preprocessing import to_millivolts
from ecgproto.model.inference import predict
from ecgproto.report.ecgplot import draw_12lead, draw_explanation, figure_for, leading_prototype, save
from ecgproto.trust.cases import where_it_matches
from ecgproto.trust.evidence import lead_attribution, lead_shading


def codes_of(y_row, labels) -> str:
    return ", ".join(c for c, v in zip(labels, y_row) if v > 0) or "none of the 16 codes"


def draw_gallery(folder, model, train, labels, prep):
    """One figure per class: each prototype the model uses as its source training ECG, highlighted
    where it matches."""
    row_of = train.row_of()
    classes = model.prototype_class.tolist()
    sources, pruned = model.prototype_source.tolist(), model.prototype_pruned.tolist()
    for c, code in enumerate(labels):
        protos = [j for j, k in enumerate(classes) if k == c and not pruned[j]]
        fig, grid = figure_for(max(len(protos), 1))
        n_pruned = sum(k == c and p for k, p in zip(classes, pruned))
        if not protos:
            ax = fig.add_subplot(grid[0, 0])
            ax.axis("off")
            n_ecgs = int((train.labels[:, c] > 0).sum())
            why = (f"its {n_ecgs} training ECG(s) already serve other prototypes" if n_ecgs
                   else f"no training ECG carries {code}")
            ax.text(0.5, 0.5, f"{code}: all {n_pruned} prototypes pruned ({why})", ha="center", transform=ax.transAxes)
        for r, j in enumerate(protos):
            ax = fig.add_subplot(grid[r, 0])
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
            highlight = where_it_matches(model, train.signals[i:i + 1])[0, j]
            weights = lead_shading(lead_attribution(lambda b: predict(model, b, model.prototypes.device),
                                                    train.signals[i:i + 1], j))
            draw_12lead(ax, to_millivolts(train.signals[i], prep), title, highlight, lead_weights=weights)
        save(fig, folder / f"{code}.png")


def draw_case(path, model, case, test, train, labels, entries, settings, prep):
    """A chosen test ECG with its explanation, each prototype beside its source training ECG
    (settings: params.yaml's `explain` section)."""
    i = case["index"]
    row_of, sources = train.row_of(), model.prototype_source.tolist()

    def source(j):
        s = row_of[sources[j]]
        return (to_millivolts(train.signals[s], prep)[1], codes_of(train.labels[s], labels),
                where_it_matches(model, train.signals[s:s + 1])[0, j])

    title = (f"test ECG {int(test.ecg_ids[i])}, {case['outcome']} for {case['code']}. "
             f"True: {codes_of(test.labels[i], labels)}")
    leading = leading_prototype(entries)
    weights = None if leading is None else lead_shading(lead_attribution(
        lambda b: predict(model, b, model.prototypes.device), test.signals[i:i + 1], leading))
    draw_explanation(path, to_millivolts(test.signals[i], prep), title, entries,
                     where_it_matches(model, test.signals[i:i + 1])[0], settings.max_labels, settings.top_prototypes,
                     source, lead_weights=weights)
