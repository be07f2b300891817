"""Cross-validation on a tree with folds 1-9: the fold plan, the pooled figures, the predictions file it
pools (checked like any file from outside), and one whole run on a tiny tree."""
import json

import numpy as np
import pytest
import yaml

from ecgproto.data.synth import generate
from ecgproto.errors import ConfigError, RecordError
from ecgproto.evaluation.metrics import MODEL_FILES, macro_auroc, read_predictions, write_predictions
from ecgproto.tools import crossval

from conftest import PARAMS, sh, tiny_workspace

LABELS = ["SR", "AFIB", "STACH"]


def test_every_fold_is_tested_once_and_never_trains_or_stops_its_own_model():
    splits = crossval.plan()
    assert sorted(f for s in splits for f in s["test"]) == list(range(1, 10))
    for s in splits:
        assert len(s["val"]) == 1 and not set(s["val"]) & set(s["test"])
        assert sorted(s["train"] + s["val"] + s["test"]) == list(range(1, 10))


def _part(ids, seed):
    rng = np.random.default_rng(seed)
    y = (rng.random((len(ids), len(LABELS))) < 0.4).astype(float)
    p = np.clip(y * 0.3 + rng.random(y.shape) * 0.7, 0, 1)
    return {m: (np.asarray(ids), y, p) for m in MODEL_FILES}


def test_the_pooled_figure_is_the_macro_auroc_of_all_out_of_fold_predictions():
    fold_of = {e: 1 + (e % 9) for e in range(1, 271)}
    parts = [_part([e for e in fold_of if fold_of[e] in group], k) for k, group in enumerate(crossval.GROUPS)]
    summary, per_label = crossval.pooled(parts, fold_of, LABELS, 50, 32, 0)
    y = np.concatenate([p["final"][1] for p in parts])
    p = np.concatenate([p["final"][2] for p in parts])
    assert summary["final"]["macro_auroc"] == round(macro_auroc(y, p), 4)
    assert summary["records"] == 270 and set(summary["final"]["by_fold"]) == set(range(1, 10))
    final = summary["final"]
    assert final["macro_auroc_ci_low"] <= final["macro_auroc"] <= final["macro_auroc_ci_high"]
    assert set(per_label["baseline"]) == set(LABELS)
    parts[1]["joint"] = tuple(a[1:] for a in parts[1]["joint"])  # one ECG not predicted: refused
    with pytest.raises(RecordError, match="model joint: the out-of-fold predictions do not cover"):
        crossval.pooled(parts, fold_of, LABELS, 50, 32, 0)


def test_a_predictions_file_round_trips_and_a_hostile_one_is_refused_by_name(tmp_path):
    path = tmp_path / "pred.csv"
    part = _part([3, 5, 8], 1)
    write_predictions(path, part["final"][0], part["final"][1], {m: v[2] for m, v in part.items()}, LABELS)
    back = read_predictions(path, LABELS)
    assert set(back) == set(MODEL_FILES)
    np.testing.assert_allclose(back["final"][2], part["final"][2], atol=1e-5)
    text = path.read_text().splitlines()
    for bad, match in ((text[1].replace(text[1].split(",")[-1], "nan"), "not finite numbers in"),
                       (text[1].replace(text[1].split(",")[-1], "1.5"), "not finite numbers in"),
                       (text[1], "more than once")):
        path.write_text("\n".join(text + [bad]) + "\n")
        with pytest.raises(RecordError, match=f"{path}.*{match}"):
            read_predictions(path, LABELS)
    path.write_text("\n".join(text + [text[1].replace(text[1].split(",")[0], "3.5", 1)]) + "\n")
    with pytest.raises(RecordError, match="not a whole number"):
        read_predictions(path, LABELS)
    path.write_text("ecg_id,model\n1,final\n")
    with pytest.raises(RecordError, match="missing columns"):
        read_predictions(path, LABELS)


def test_an_unreadable_results_file_stops_the_run_before_any_work_and_is_kept(tiny_tree, tmp_path):
    out = tmp_path / "cv.json"
    out.write_text("{ half a file")
    with pytest.raises(ConfigError, match="cv.json: unreadable"):
        crossval.run(tiny_tree, 1, "params", [], tmp_path / "work", out, tmp_path / "pl.json", PARAMS)
    assert out.read_text() == "{ half a file" and not (tmp_path / "work").exists()


def test_seeds_averaged_under_one_name_must_share_one_recipe(tiny_tree, tmp_path):
    out = tmp_path / "cv.json"
    out.write_text(json.dumps({"params": {"seed1": {"overrides": ""}}}))
    with pytest.raises(ConfigError, match="recipe 'params' ran seed1 with overrides '', not 'train.lr=0.002'"):
        crossval.run(tiny_tree, 2, "params", ["train.lr=0.002"], tmp_path / "work", out, tmp_path / "pl.json", PARAMS)
    assert not (tmp_path / "work").exists()


def test_a_tree_without_folds_1_to_9_is_refused(tmp_path):
    root = tmp_path / "small"
    generate(root, 12, 3, PARAMS.data.synthetic_realism)  # too few records for every fold
    with pytest.raises(RecordError, match="cross-validation needs folds"):
        crossval.folds_of(root)


@pytest.mark.slow
def test_the_whole_cross_validation_on_a_tiny_tree(tmp_path):
    """Three `dvc exp run evaluate` in clones of a workspace's HEAD; every ECG predicted once."""
    tree = tmp_path / "tree"
    generate(tree, 450, 11, PARAMS.data.synthetic_realism)
    ws = tiny_workspace(tmp_path / "ws")
    out = sh(f"ecgproto crossval --folder {tree} --seed 3 -S train.lr=0.002", ws)
    assert "pooled out-of-fold macro-AUROC over" in out
    results = json.loads((ws / "metrics/real_subset_cv.json").read_text())["params"]
    run = results["seed3"]
    assert run["records"] == len(crossval.folds_of(tree)) and run["overrides"] == "train.lr=0.002"
    for model in MODEL_FILES:
        assert 0 <= run[model]["macro_auroc"] <= 1 and set(run[model]["by_fold"]) == {str(f) for f in range(1, 10)}
    assert results["mean_over_seeds"]["seeds"] == "3"
    lock = yaml.safe_load((ws / "data/cv/params/seed3/test456/dvc.lock").read_text())
    assert lock["stages"]["prepare"]["params"]["params.yaml"]["prepare"]["test_folds"] == [4, 5, 6]
    per_label = json.loads((ws / "metrics/real_subset_cv_per_label.json").read_text())
    assert set(per_label["params"]["seed3"]) == set(MODEL_FILES)
    table = sh("ecgproto crossval --summary", ws)
    assert f"| params | train.lr=0.002 | 3 | {run['final']['macro_auroc']:.3f} (" in table
    sh(f"ecgproto crossval --repool --folder {tree}", ws)  # the same figures again from the kept predictions
    again = json.loads((ws / "metrics/real_subset_cv.json").read_text())["params"]["seed3"]
    assert again == run and "macro_auroc_labels_with_10_positives" in run["final"]
    # another recipe that changes only a prototype loss: the clones share one DVC cache, so its baseline
    # is the first recipe's, restored from the run-cache instead of trained again
    sh(f"ecgproto crossval --folder {tree} --seed 3 --name clst -S train.lr=0.002 -S loss.clst=0.01", ws)
    for group in ("test123", "test456", "test789"):
        log = (ws / f"data/cv/clst/seed3/{group}.log").read_text()
        assert "Stage 'baseline' is cached - skipping run" in log and "Running stage 'train_joint'" in log


def test_feature_agreement_pools_exactly_over_groups_and_older_counts_leave_the_sides_unknown():
    doc = {"own_class_share_of_evidence": 0.5, "mean_similarity_nearest_own_class_prototype": 0.7,
           "mean_similarity_nearest_wrong_class_prototype": 0.6}
    new = [{**doc, "feature_agreement_counts": {"SR": [2, 4, 3, 3]},
            "labelled_ecgs_showing_feature_counts": {"SR": [8, 10]}},
           {**doc, "feature_agreement_counts": {"SR": [1, 2, 1, 2]},
            "labelled_ecgs_showing_feature_counts": {"SR": [1, 10]}}]
    pooled = crossval.pooled_interpretability(new, [10, 10])
    assert pooled["feature_agreement"] == 0.5 and pooled["feature_agreement_shown"] == 6
    assert pooled["feature_agreement_query_side_by_label"] == {"SR": round(4 / 6, 4)}
    assert pooled["feature_agreement_source_side_by_label"] == {"SR": round(5 / 6, 4)}
    assert pooled["labelled_ecgs_showing_feature_by_label"] == {"SR": 0.45}
    old = [{**doc, "feature_agreement_counts": {"SR": [2, 4]}}, new[1]]
    pooled = crossval.pooled_interpretability(old, [10, 10])
    assert pooled["feature_agreement"] == 0.5 and pooled["feature_agreement_query_side_by_label"] == {"SR": None}
