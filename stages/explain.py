"""DVC stage `explain`: prototype gallery, case-based explanations of chosen test ECGs, and the
interpretability figures (metrics/interpretability.json)."""
import logging
from pathlib import Path

import numpy as np
from _common import device, run

from ecgproto import ecgplot
from ecgproto.config import ConfigError
from ecgproto.checkpoint import load_checkpoint
from ecgproto.explain import choose_cases, explain, interpretability, to_millivolts, where_it_matches
from ecgproto.files import atomic_dir, write_json
from ecgproto.prepare import load_split
from ecgproto.projection import latents

log = logging.getLogger("ecgproto")
OUT = Path("reports/explain")


def codes_of(y_row, labels) -> str:
    return ", ".join(c for c, v in zip(labels, y_row) if v > 0) or "none of the 16 codes"


def draw_gallery(folder, model, train, labels, sources, pruned, prep):
    """One figure per class: each prototype the model uses as its source training ECG, highlighted
    where it matches."""
    row_of = {int(e): i for i, e in enumerate(train.ecg_ids)}
    classes = model.prototype_class.tolist()
    for c, code in enumerate(labels):
        protos = [j for j, k in enumerate(classes) if k == c and not pruned[j]]
        fig, grid = ecgplot.figure_for(max(len(protos), 1))
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
            ecgplot.draw_12lead(ax, to_millivolts(train.signals[i], prep), title, highlight)
        ecgplot.save(fig, folder / f"{code}.png")


def draw_case(path, model, case, test, train, labels, sources, entries, params, prep):
    """A chosen test ECG with its explanation, each prototype beside its source training ECG."""
    i = case["index"]
    row_of = {int(e): n for n, e in enumerate(train.ecg_ids)}

    def source(j):
        s = row_of[sources[j]]
        return (to_millivolts(train.signals[s], prep)[1], codes_of(train.labels[s], labels),
                where_it_matches(model, train.signals[s:s + 1])[0, j])

    title = (f"test ECG {int(test.ecg_ids[i])}, {case['outcome']} for {case['code']}. "
             f"True: {codes_of(test.labels[i], labels)}")
    ecgplot.draw_explanation(path, to_millivolts(test.signals[i], prep), title, entries,
                             where_it_matches(model, test.signals[i:i + 1])[0], params.explain.threshold,
                             params.explain.max_labels, params.explain.top_prototypes, source)


def main(params):
    dev = device(params)
    model, state = load_checkpoint(Path("models/final.pt"), dev, require_prototypes=True)
    labels, sources, prep = state["labels"], state["prototype_source_ecg_ids"], state["preprocessing"]
    pruned = state.get("prototype_pruned", [False] * len(sources))
    missing = [c for c in params.explain.codes if c not in labels]
    if missing:
        raise ConfigError(f"explain.codes {missing} are not among the model's labels {labels}")
    train, test = load_split("data/prepared", "train"), load_split("data/prepared", "test")
    if params.explain.purity_neighbours > len(train.ecg_ids):
        raise ConfigError(f"explain.purity_neighbours = {params.explain.purity_neighbours}: larger than the "
                          f"{len(train.ecg_ids)} training ECGs; expected at most that many")
    figures = interpretability(model, latents(model, train.signals, dev), train.labels, sources, labels,
                               params.explain.purity_neighbours, pruned)
    explanations = explain(model, test.signals, labels, sources, top=params.explain.top_prototypes, pruned=pruned)
    probs = np.array([[e["probability"] for e in entries] for entries in explanations])
    cases = choose_cases(test.labels, probs, labels, params.explain.codes, params.explain.threshold)
    with atomic_dir(OUT) as tmp:
        (tmp / "gallery").mkdir()
        draw_gallery(tmp / "gallery", model, train, labels, sources, pruned, prep)
        (tmp / "cases").mkdir()
        records = []
        for n, case in enumerate(cases):
            if case["index"] is None:
                log.info("no %s case for %s in the evaluated folds", case["outcome"], case["code"])
                records.append({**case, "figure": None})
                continue
            i = case["index"]
            figure = f"cases/{n:02d}_{case['code']}_{case['outcome'].replace(' ', '_')}_{int(test.ecg_ids[i])}.png"
            draw_case(tmp / figure, model, case, test, train, labels, sources, explanations[i], params, prep)
            records.append({**case, "ecg_id": int(test.ecg_ids[i]), "true_labels": codes_of(test.labels[i], labels),
                            "figure": figure, "explanation": explanations[i]})
        write_json(tmp / "cases.json", records)
    write_json(Path("metrics/interpretability.json"), figures)
    drawn = sum(r["figure"] is not None for r in records)
    return (f"{len(labels)} gallery figures, {drawn} case figures; {figures['distinct_source_ecgs']} distinct "
            f"source ECGs for {figures['projected']} projected prototypes in use ({figures['pruned']} pruned), "
            f"class purity "
            f"{figures['class_purity_top' + str(params.explain.purity_neighbours)]}")


run("explain", main)
