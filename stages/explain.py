"""DVC stage `explain`: prototype gallery, case-based explanations of chosen test ECGs, and the
interpretability figures (metrics/interpretability.json)."""
import logging
from collections import Counter
from pathlib import Path

import numpy as np

from ecgproto.data.prepare import load_split
from ecgproto.data.ptbxl import read_metadata, read_signals
from ecgproto.errors import ConfigError
from ecgproto.files.atomic import atomic_dir, write_json
from ecgproto.model.checkpoint import load_checkpoint
from ecgproto.model.inference import latents, predict
from ecgproto.report.gallery import codes_of, draw_case, draw_gallery
from ecgproto.trust.calibration import thresholds
from ecgproto.trust.cases import choose_cases, explain
from ecgproto.trust.guard import best_similarity, verdict
from ecgproto.trust.interpretability import deletion_check, evidence_shares, interpretability

from _common import run, seeded_device

log = logging.getLogger("ecgproto")
OUT = Path("reports/explain")


def guard_on_test_fold(test, sims, active, state) -> dict:
    """How many test ECGs the guard lets through, checked on the records as recorded (data/ptbxl)."""
    metadata = read_metadata(Path("data/ptbxl"))
    millivolts, _, _ = read_signals(Path("data/ptbxl"), metadata.loc[test.ecg_ids, "filename_lr"].tolist())
    verdicts = [verdict(mv, b, state.get("guard"), state.get("familiarity"))
                for mv, b in zip(millivolts, best_similarity(sims, active))]
    reasons = Counter(r.split(":")[0] for v in verdicts for r in v["reasons"])
    return {"guard_pass_rate_test": round(float(np.mean([v["reliable"] is True for v in verdicts])), 4),
            "guard_refusals_by_reason": dict(sorted(reasons.items()))}


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
    calibration = state.get("calibration")
    explanations = explain(model, test.signals, labels, calibration, top=params.explain.top_prototypes,
                           duplicate_cosine=params.explain.duplicate_cosine)
    sims = predict(model, test.signals, dev)["sims"]
    active = ~model.prototype_pruned.cpu().numpy()
    figures.update(evidence_shares(sims, model.last_layer.weight.detach().cpu().numpy(),
                                   model.prototype_class.cpu().numpy(), active))
    figures.update(guard_on_test_fold(test, sims, active, state))
    figures.update(deletion_check(model, test.signals, params.seed))
    probs = np.array([[e["probability"] for e in entries] for entries in explanations])
    cases = choose_cases(test.labels, probs, labels, params.explain.codes, thresholds(calibration, len(labels)))
    with atomic_dir(OUT) as tmp:
        (tmp / "gallery").mkdir()
        draw_gallery(tmp / "gallery", model, train, labels, prep)
        (tmp / "cases").mkdir()
        records = []
        for n, case in enumerate(cases):
            if case["index"] is None:
                log.info("no %s case for %s in the evaluated folds", case["outcome"], case["code"])
                records.append({**case, "figure": None})
                continue
            i = case["index"]
            figure = f"cases/{n:02d}_{case['code']}_{case['outcome'].replace(' ', '_')}_{int(test.ecg_ids[i])}.png"
            draw_case(tmp / figure, model, case, test, train, labels, explanations[i], params.explain, prep)
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
