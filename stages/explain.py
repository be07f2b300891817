"""DVC stage `explain`: prototype gallery, case-based explanations of chosen test ECGs, and the
interpretability figures (metrics/interpretability.json)."""
import logging
from collections import Counter
from pathlib import Path

import numpy as np

from ecgproto.data.in_place import records_root
from ecgproto.data.prepare import load_split
from ecgproto.data.ptbxl import read_metadata, read_signals
from ecgproto.deploy.explain_records import plot_one
from ecgproto.deploy.predictor import runner_from_model
from ecgproto.errors import ConfigError
from ecgproto.files.atomic import atomic_dir, write_json
from ecgproto.model.checkpoint import load_checkpoint
from ecgproto.model.inference import latents
from ecgproto.report.gallery import codes_of, draw_gallery
from ecgproto.trust.calibration import apply, assessable, calls
from ecgproto.trust.cases import choose_cases
from ecgproto.trust.evidence import classes_with_prototypes
from ecgproto.trust.explanation import explain_ecg, feature_agreement, feature_in_labelled, source_measurements
from ecgproto.trust.interpretability import evidence_shares, figure_sample, interpretability, window_check_on

from _common import run, seeded_device

log = logging.getLogger("ecgproto")
OUT = Path("reports/explain")


def main(params):
    dev = seeded_device(params)
    model, state = load_checkpoint(Path("models/final.pt"), dev, require_prototypes=True)
    labels, prep = state["labels"], state["preprocessing"]
    missing = [c for c in params.explain.codes if c not in labels]
    if missing:
        raise ConfigError(f"explain.codes {missing} are not among the model's labels {labels}")
    train, test = load_split("data/prepared", "train"), load_split("data/prepared", "test")
    if params.explain.purity_neighbours > len(train.ecg_ids):
        raise ConfigError(f"explain.purity_neighbours = {params.explain.purity_neighbours}: larger than the "
                          f"{len(train.ecg_ids)} training ECGs; expected at most that many")
    figures = interpretability(model, latents(model, train.signals, dev), train.labels, labels,
                               params.explain.purity_neighbours)
    runner = runner_from_model(model, state)  # the same explanation as `ecgproto explain`, from this model
    out = runner.outputs(test.signals)
    active = ~model.prototype_pruned.cpu().numpy()
    weight = model.last_layer.weight.detach().cpu().numpy()
    figures.update(evidence_shares(out["sims"], weight, model.prototype_class.cpu().numpy(), active))
    probs = apply(out["logits"], state.get("calibration"))
    has_prototype = classes_with_prototypes(labels, runner.meta["prototype_class"], runner.meta["groups"])
    cases = choose_cases(test.labels, probs, labels, params.explain.codes,
                         calls(probs, state.get("calibration"), has_prototype),
                         assessable(state.get("calibration"), len(labels), has_prototype))
    # The per-ECG figures (guard, measurements, feature agreement, the window check's 20 forward passes) cost
    # about 0.1 s an ECG: on a seeded sample of at most explain.max_test_ecgs, so the stage stays minutes at scale.
    sample = figure_sample(len(test.ecg_ids), params.explain.max_test_ecgs, params.seed)
    shown = [c["index"] for c in cases if c["index"] is not None]
    rows = sorted(set(sample.tolist()) | set(shown))
    metadata = read_metadata(Path("data/ptbxl"))  # the test records as recorded: the guard and measurements read them
    names = metadata.loc[test.ecg_ids[rows], "filename_lr"].tolist()
    recorded, _, _ = read_signals(records_root(Path("data/ptbxl")), names)  # in the folder, when read in place
    millivolts = dict(zip(rows, recorded))
    sources = source_measurements(runner)

    def explain(n, where):  # where: the occlusion map, drawn on the case figures only (it is the costly part)
        return explain_ecg(runner, millivolts[n], test.signals[n:n + 1], {k: v[n:n + 1] for k, v in out.items()},
                           params.explain.top_prototypes, sources, str(int(test.ecg_ids[n])), where=where)
    docs = [explain(n, where=False) for n in sample]
    reasons = Counter(r.split(":")[0] for d in docs for r in d["reasons"])
    figures.update({"test_ecgs": len(test.ecg_ids), "test_ecgs_explained": len(sample),
                    "guard_pass_rate_test": round(float(np.mean([d["reliable"] is True for d in docs])), 4),
                    "guard_refusals_by_reason": dict(sorted(reasons.items())),
                    "guard_warnings_test": round(float(np.mean([bool(d["warnings"]) for d in docs])), 4)})
    figures.update(feature_agreement([d for d in docs if d["reliable"] is not False], params.explain.top_prototypes))
    figures.update(feature_in_labelled([d["measurements"] for d in docs], test.labels[sample], labels))
    figures.update(window_check_on(runner.outputs, test.signals[sample], weight * active[None], params.seed))
    with atomic_dir(OUT) as tmp:
        (tmp / "gallery").mkdir()
        draw_gallery(tmp / "gallery", model, train, labels, prep)
        (tmp / "cases").mkdir()
        records = []
        for n, case in enumerate(cases):
            if case["index"] is None:
                log.info("no %s case for %s%s", case["outcome"], case["code"],
                         f": {case['reason']}" if "reason" in case else " in the evaluated folds")
                records.append({**case, "figure": None})
                continue
            i = case["index"]
            figure = f"cases/{n:02d}_{case['code']}_{case['outcome'].replace(' ', '_')}_{int(test.ecg_ids[i])}.png"
            explained = explain(i, where=True)
            doc = {**explained, "record": f"test ECG {int(test.ecg_ids[i])}, {case['outcome']} for {case['code']}. "
                                          f"True: {codes_of(test.labels[i], labels)}"}
            plot_one(runner, millivolts[i], test.signals[i:i + 1], doc, sources, params.explain.top_prototypes,
                     tmp / figure)
            records.append({**case, "ecg_id": int(test.ecg_ids[i]), "true_labels": codes_of(test.labels[i], labels),
                            "figure": figure, "explanation": explained})
        write_json(tmp / "cases.json", records)
    write_json(Path("metrics/interpretability.json"), figures)
    drawn = sum(r["figure"] is not None for r in records)
    return (f"{len(labels)} gallery figures, {drawn} case figures; {figures['distinct_source_ecgs']} distinct "
            f"source ECGs for {figures['projected']} projected prototypes in use ({figures['pruned']} pruned), "
            f"class purity {figures['class_purity_top' + str(params.explain.purity_neighbours)]}, feature agreement "
            f"{figures['feature_agreement']}")


run("explain", main)
