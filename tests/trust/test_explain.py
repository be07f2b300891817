"""Explanations: the exact logit decomposition, where a prototype matches, interpretability figures,
case choice, and the `ecgproto explain` / `ecgproto predict` commands with their errors."""
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from ecgproto.cli import main
from ecgproto.data.filters import LeadScaler
from ecgproto.data.ptbxl import LABELS, RecordError, write_record
from ecgproto.deploy.preprocessing import read_ecg
from ecgproto.model.checkpoint import save_checkpoint
from ecgproto.model.network import BackboneConfig, LinearHeadNet, ProtoECGNet1D, PrototypeConfig
from ecgproto.model.projection import prune
from ecgproto.trust.cases import choose_cases, explain
from ecgproto.trust.interpretability import interpretability

from conftest import SAMPLE, needs_sample

SMALL = BackboneConfig((8, 16, 16, 16), (1, 1, 1, 1))
META = {"labels": list(LABELS), "highpass_hz": 0.5, "filter_order": 1, "scaler": LeadScaler.identity(12).to_dict()}


def small_model(seed=0, per_class=2):
    torch.manual_seed(seed)
    model = ProtoECGNet1D(SMALL, PrototypeConfig(len(LABELS), per_class, 16, "none")).eval()
    with torch.no_grad():  # a trained-looking last layer, not the +1/-0.5 initialisation
        model.last_layer.weight.normal_()
    return model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "final.pt"
    model = small_model()
    n = model.prototypes.shape[0]
    model.prototype_source.copy_(torch.arange(1000, 1000 + n))
    save_checkpoint(path, model, META, calibration=CALIBRATION)
    return path


# 3AVB: no validation positive; 2AVB: two; PSVT: a degenerate slope. The rest can be assessed.
CALIBRATION = {"slope": [0.0085 if c == "PSVT" else 1.0 for c in LABELS], "intercept": [0.3] * len(LABELS),
               "threshold": [0.4] * len(LABELS), "fitted": [c != "3AVB" for c in LABELS],
               "positives": [0 if c == "3AVB" else 2 if c == "2AVB" else 12 for c in LABELS]}
NOT_ASSESSABLE = {"3AVB", "2AVB", "PSVT"}


def test_contributions_sum_to_the_logit_for_every_label():
    model = small_model()
    x = np.random.default_rng(0).standard_normal((3, 12, 1000)).astype(np.float32)
    explained = explain(model, x, list(LABELS), top=None)
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(x))
    for n, entries in enumerate(explained):
        assert [e["label"] for e in entries] == list(LABELS)
        for c, e in enumerate(entries):
            contributions = [p["contribution"] for p in e["prototypes"]]
            assert len(contributions) == model.prototypes.shape[0]
            assert sum(contributions) == pytest.approx(e["logit"], abs=1e-4)
            assert e["logit"] == pytest.approx(float(logits[n, c]), abs=1e-5)
            assert e["uncalibrated_probability"] == pytest.approx(1 / (1 + np.exp(-e["logit"])), rel=1e-6)
            # no calibration: no probability
            assert e["probability"] is None and not e["assessable"] and not e["called"]
            pro = [p["contribution"] for p in e["evidence_for"]]
            con = [p["contribution"] for p in e["evidence_against"]]
            assert pro == sorted(pro, reverse=True) and all(c > 0 for c in pro)
            assert (con == sorted(con) and all(c < 0 for c in con)
                    and e["prototypes"] == e["evidence_for"] + e["evidence_against"])
            for p in e["prototypes"]:
                assert p["contribution"] == pytest.approx(p["similarity"] * p["weight"], abs=1e-6)
    for e in explain(model, x[:1], list(LABELS), top=3)[0]:
        assert len(e["evidence_for"]) <= 3 and len(e["evidence_against"]) <= 3
        assert all(p["contribution"] > 0 for p in e["evidence_for"])
        assert all(p["contribution"] < 0 for p in e["evidence_against"])
        shown = sum(p["contribution"] for p in e["evidence_for"] + e["evidence_against"])
        assert shown + e["rest"] == pytest.approx(e["logit"], abs=1e-5)  # for + against + rest = logit


def test_near_copies_are_shown_once_with_their_count_and_calibration_sets_the_call():
    model = small_model()
    with torch.no_grad():
        model.prototypes[1] = model.prototypes[0] * 1.001  # prototype 1: a near-copy of 0 (same class)
    x = np.random.default_rng(2).standard_normal((1, 12, 1000)).astype(np.float32)
    n_classes = len(LABELS)
    calibration = {"slope": [1.0] * n_classes, "intercept": [-100.0] + [100.0] * (n_classes - 1),
                   "threshold": [0.5] * n_classes}
    entries = explain(model, x, list(LABELS), calibration, top=None, duplicate_cosine=0.98)[0]
    for e in entries:
        merged = [p for p in e["prototypes"] if p["members"] == [0, 1]]
        assert len(merged) == 1 and merged[0]["stands_for"] == 2
        assert len(e["prototypes"]) == model.prototypes.shape[0] - 1
        assert sum(p["contribution"] for p in e["prototypes"]) == pytest.approx(e["logit"], abs=1e-4)
    assert [e["called"] for e in entries] == [False] + [True] * (n_classes - 1)
    assert entries[0]["probability"] < 1e-6 and entries[0]["uncalibrated_probability"] > 1e-6


def test_pruned_prototypes_are_never_listed_and_the_rest_still_sum_to_the_logit():
    model = small_model()
    n = model.prototypes.shape[0]
    model.prototype_source.copy_(1000 + torch.arange(n) // 2)  # every second prototype repeats the one before
    pruned = prune(model)
    x = np.random.default_rng(1).standard_normal((2, 12, 1000)).astype(np.float32)
    for entries in explain(model, x, list(LABELS), top=None):
        for e in entries:
            listed = [p["index"] for p in e["prototypes"]]
            assert len(listed) == n - sum(pruned) and not any(pruned[j] for j in listed)
            assert sum(p["contribution"] for p in e["prototypes"]) == pytest.approx(e["logit"], abs=1e-4)


def ecg_with_burst_at(start, rng):
    """Noise with a 0.5 s burst at `start`: a pattern a prototype can be made of, and found again."""
    x = 0.1 * rng.standard_normal((1, 12, 1000)).astype(np.float32)
    x[0, :, start:start + 50] += 3 * np.sin(2 * np.pi * np.arange(50) / 10)
    return x


def test_occluding_the_window_that_holds_the_matching_beat_lowers_the_similarity_most():
    """Occlusion, the "where" that is shown: a prototype made from a burst (at 2.0-2.5 s in its source) is
    matched by an ECG with the same burst at 7.0-7.5 s; blanking the 1 s windows holding it lowers the
    similarity more than blanking any stretch of noise, and far more than the median window."""
    from ecgproto.model.inference import predict
    from ecgproto.trust.occlusion import where, window_drops, window_starts

    model = small_model(seed=3)
    rng = np.random.default_rng(3)
    source, x = ecg_with_burst_at(200, rng), ecg_with_burst_at(700, rng)
    with torch.no_grad():  # prototype 0 := the latent of the source's time step holding the burst
        model.prototypes[0] = model.addon(model.backbone(torch.from_numpy(source)).transpose(1, 2))[0][225 // 32]
    drops = window_drops(lambda b: predict(model, b, "cpu"), x)[:, 0]
    starts = window_starts(1000)
    holding = [k for k, s in enumerate(starts) if s <= 700 and s + 100 >= 750]
    elsewhere = [k for k, s in enumerate(starts) if s + 100 <= 650 or s >= 800]
    assert min(drops[holding]) > 5 * max(drops[elsewhere])
    found = where(drops)
    assert found["window"] in holding and found["drop"] >= 2 * found["median_drop"]


def test_interpretability_figures_on_a_hand_built_case():
    model = ProtoECGNet1D(SMALL, PrototypeConfig(2, 2, 2, "none"))
    with torch.no_grad():
        model.prototypes.copy_(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]))
    z = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.float32)
    model.prototype_source.copy_(torch.tensor([10, 10, 12, -1]))
    figures = interpretability(model, z, y, labels=["A", "B"], k=2)
    assert figures["projected"] == 3 and figures["distinct_source_ecgs"] == 2
    assert figures["prototypes_sharing_a_source_ecg"] == 1
    assert figures["class_purity_top2_by_class"] == {"A": 1.0, "B": 1.0}
    model.prototype_source.copy_(torch.tensor([10, 10, -1, -1]))
    no_b = interpretability(model, z, y * [1, 0], labels=["A", "B"], k=2)
    assert no_b["class_purity_top2_by_class"] == {"A": 1.0, "B": None} and no_b["class_purity_top2"] == 1.0
    cos = np.array([[1, 1, 0, 0.6], [1, 1, 0, 0.6], [0, 0, 1, 0.8], [0.6, 0.6, 0.8, 1]])
    assert figures["mean_pairwise_cosine"] == pytest.approx(cos[~np.eye(4, dtype=bool)].mean(), abs=1e-4)
    assert figures["mean_within_class_cosine"] == pytest.approx(0.9, abs=1e-4)
    # ECG 0 = [1, 0]: nearest class-B prototype is [0.6, 0.8] -> 0.6
    assert (figures["mean_similarity_nearest_own_class_prototype"]
            > figures["mean_similarity_nearest_wrong_class_prototype"])


def test_cases_cover_a_correct_detection_and_the_worst_mistake_per_code():
    y = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0, 0]], dtype=np.float32)
    p = np.array([[0.9, 0], [0.6, 0], [0.2, 0], [0, 0.3], [0, 0.8]])
    cases = choose_cases(y, p, ["A", "B"], ["A", "B"], called=p >= 0.5)
    assert cases == [{"index": 0, "code": "A", "outcome": "correct"}, {"index": 2, "code": "A", "outcome": "missed"},
                     {"index": None, "code": "B", "outcome": "correct"}, {"index": 3, "code": "B", "outcome": "missed"}]


def test_a_label_the_model_cannot_assess_gets_no_case_and_outcomes_follow_the_calls():
    """A false alarm or a correct detection of a label that is never called would contradict its figure."""
    y = np.array([[1, 0], [1, 1], [0, 0]], dtype=np.float32)
    p = np.array([[0.9, 0.9], [0.6, 0.8], [0.2, 0.7]])
    called = np.array([[True, False], [False, False], [False, False]])  # 0.6 for A is under A's own threshold
    cases = choose_cases(y, p, ["A", "B"], ["A", "B"], called, [None, "only 2 validation positives"])
    assert cases == [{"index": 0, "code": "A", "outcome": "correct"}, {"index": 1, "code": "A", "outcome": "missed"},
                     {"index": None, "code": "B", "outcome": "not assessable", "reason": "only 2 validation positives"}]


@needs_sample
def test_explain_cli_on_a_real_record_prints_json_of_the_stated_shape(model_file, capsys, tmp_path):
    record = SAMPLE / "records100/00000/00001_lr"
    assert main(["explain", str(record), "--model", str(model_file), "--json", "--top", "all",
                 "--plot", str(tmp_path / "case.png")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["record"] == "00001_lr" and doc["calibrated"] is True and doc["reliable"] is None
    assert doc["measurements"]["rate_per_min"] > 0 and len(doc["measurements"]["beats"]) > 5
    assert {n["label"] for n in doc["not_assessable"]} == NOT_ASSESSABLE
    labels = doc["labels"]
    assert [e["label"] for e in labels] == list(LABELS)
    for e in labels:
        assert {"label", "logit", "probability", "threshold", "called", "evidence_for", "evidence_against", "rest",
                "prototypes", "decision", "assessable"} <= set(e)
        assert sum(p["contribution"] for p in e["prototypes"]) + e["rest"] == pytest.approx(e["logit"], abs=1e-4)
        d = e["decision"]  # what is shown sums to the number that decides: prior + slope x (for + against + rest)
        assert d["prior"] + d["evidence_for"] + d["evidence_against"] + d["rest"] == pytest.approx(
            d["calibrated_logit"], abs=1e-4)
        if e["label"] in NOT_ASSESSABLE:
            assert e["probability"] is None and not e["called"] and e["not_assessable_because"]
        else:
            assert 0 <= e["probability"] <= 1 and e["threshold"] == 0.4
            assert e["called"] == (d["calibrated_logit"] >= d["threshold_logit"] - 1e-9)
        for p in e["prototypes"]:
            assert {"index", "class", "similarity", "weight", "contribution", "source_ecg_id"} <= set(p)
            assert p["source_ecg_id"] == 1000 + p["index"]
    assert (tmp_path / "case.png").read_bytes()[:4] == b"\x89PNG"
    from PIL import Image
    assert Image.open(tmp_path / "case.png").size[0] >= 1969  # a 250 mm strip at 200 dpi
    assert main(["explain", str(record), "--model", str(model_file)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "record 00001_lr" and text.splitlines()[1].startswith("measured: HR ")
    assert "has no guard" in text and "Not assessable (no probability is shown, never called):" in text
    why_not = text.split("Why not")[1].split("label  probability")[0] if "Why not" in text else ""
    assert not any(f"  {code} (" in why_not for code in NOT_ASSESSABLE)  # never fills a why-not line


def test_a_model_without_calibration_assesses_nothing(tmp_path, capsys):
    record = _write(tmp_path / "rec", np.random.default_rng(0).standard_normal((12, 1000)) * 0.1)
    path = tmp_path / "old.pt"
    save_checkpoint(path, small_model(), META)
    assert main(["explain", str(record), "--model", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["called"] == [] and all(e["probability"] is None for e in doc["labels"])
    assert len(doc["not_assessable"]) == len(LABELS)


def test_predict_over_a_folder_answers_the_readable_records_and_names_the_others(model_file, tmp_path, capsys):
    folder = tmp_path / "in"
    for k in range(3):
        _write(folder / f"r{k}", np.random.default_rng(k).standard_normal((12, 1000)) * 0.1)
    (folder / "r1.dat").write_bytes(b"\x00" * 100)  # truncated
    out = tmp_path / "calls.csv"
    assert main(["predict", str(folder), "--out", str(out), "--model", str(model_file)]) == 1
    assert "1 of 3 records could not be read" in capsys.readouterr().err
    table = pd.read_csv(out).set_index("record")
    assert len(table) == 3 and table.loc[str(folder / "r1"), "reason"].startswith("unreadable: ")
    assert "truncated" in table.loc[str(folder / "r1"), "reason"]
    assert table.loc[str(folder / "r0"), list(LABELS[:2])].notna().all()


@needs_sample
def test_predict_writes_one_row_per_record(model_file, tmp_path):
    out = tmp_path / "probs.csv"
    assert main(["predict", str(SAMPLE / "records100"), "--out", str(out), "--model", str(model_file)]) == 0
    table = pd.read_csv(out)
    assert (list(table.columns) == ["record", "reliable", "reason", "called", "windows", "model", *LABELS]
            and len(table) == 10)
    assert (table["windows"] == 1).all()
    assessable = [c for c in LABELS if c not in NOT_ASSESSABLE]
    assert table[assessable].apply(lambda col: col.between(0, 1)).all().all()
    assert table[sorted(NOT_ASSESSABLE)].isna().all().all()  # no probability for what the model cannot assess


def _write(path, mv, fs=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_record(path, mv, fs=fs)
    return path


def test_a_500_hz_record_is_resampled_to_100_hz(tmp_path):
    t = np.arange(5000) / 500
    mv = np.tile(np.sin(2 * np.pi * 1.2 * t), (12, 1))
    signal, note = read_ecg(_write(tmp_path / "r500", mv, fs=500))
    assert signal.shape == (12, 1000) and "resampled from 500 Hz" in note
    expected = np.sin(2 * np.pi * 1.2 * np.arange(1000) / 100)
    assert np.abs(signal[0, 50:-50] - expected[50:-50]).max() < 0.01


def test_bad_inputs_give_clear_errors(model_file, tmp_path, capsys):
    good = _write(tmp_path / "good", np.zeros((12, 1000)))
    hea = good.with_suffix(".hea").read_text()
    (tmp_path / "rate.hea").write_text(hea.replace("good 12 100 1000", "rate 12 50 500"))
    (tmp_path / "leads.hea").write_text(hea.replace(" V6", " V7"))
    nan = _write(tmp_path / "nan", np.zeros((12, 1000)))
    raw = np.fromfile(nan.with_suffix(".dat"), dtype="<i2")
    raw[5] = -32768
    raw.tofile(nan.with_suffix(".dat"))
    shutil.copy(good.with_suffix(".dat"), tmp_path / "leads.dat")
    cases = {"rate": "sampled at 50 Hz; expected at least 100 Hz", "leads": "leads ['V6'] are missing", "nan": "NaN",
             "missing": "header file not found"}
    for name, message in cases.items():
        with pytest.raises(RecordError, match=re.escape(message)):
            read_ecg(tmp_path / name)
        assert main(["explain", str(tmp_path / name), "--model", str(model_file)]) == 1
        assert str(tmp_path / name) in capsys.readouterr().err
    assert main(["explain", str(good), "--model", str(tmp_path / "none.pt")]) == 1
    assert "model file not found" in capsys.readouterr().err


def test_a_model_of_another_kind_or_label_set_is_refused(tmp_path, capsys):
    record = _write(tmp_path / "rec", np.zeros((12, 1000)))
    other = tmp_path / "other.pt"
    save_checkpoint(other, small_model(), {**META, "labels": ["NORM", *LABELS[1:]]})
    assert main(["explain", str(record), "--model", str(other)]) == 1
    assert "trained on labels ['NORM'" in capsys.readouterr().err
    baseline = tmp_path / "baseline.pt"
    save_checkpoint(baseline, LinearHeadNet(SMALL, len(LABELS)), META)
    assert main(["explain", str(record), "--model", str(baseline)]) == 1
    assert "has no prototypes" in capsys.readouterr().err
    out = tmp_path / "p.csv"
    assert main(["predict", str(record), str(tmp_path / "absent"), "--out", str(out), "--model", str(baseline)]) == 1
    assert "absent" in capsys.readouterr().err  # the readable record is answered, the absent one named
    assert pd.read_csv(out)["reason"].fillna("").str.startswith("unreadable").sum() == 1
    assert main(["predict", str(record), "--out", str(out), "--model", str(baseline)]) == 0 and out.exists()


def test_the_same_model_saves_to_the_same_bytes(tmp_path):
    """DVC skips what follows an unchanged output only if equal models give equal files."""
    model = small_model()
    save_checkpoint(tmp_path / "a.pt", model, META)
    save_checkpoint(tmp_path / "b.pt", model, META)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_evidence_shares_on_a_hand_built_last_layer():
    from ecgproto.trust.interpretability import evidence_shares

    classes = np.array([0, 0, 1, 1])
    sims = np.array([[1.0, 0.5, 0.5, 1.0]])
    weight = np.array([[1.0, 1.0, -1.0, 0.0],   # class 0: own |1| + |0.5|, wrong |-0.5| + 0 -> 1.5 / 2.0
                       [0.0, 0.01, 2.0, 1.0]])  # class 1: own 1 + 1, wrong 0.005 -> 2 / 2.005
    shares = evidence_shares(sims, weight, classes, np.array([True, True, True, True]))
    assert shares["own_class_share_of_evidence"] == pytest.approx((0.75 + 2 / 2.005) / 2, abs=1e-4)
    assert shares["wrong_class_weights_below_0.05"] == 0.75  # 0.0, 0.0, 0.01 of (-1, 0, 0, 0.01)
    pruned_out = evidence_shares(sims, weight, classes, np.array([True, True, False, True]))
    assert pruned_out["own_class_share_of_evidence"] > shares["own_class_share_of_evidence"]


def test_calibration_is_fitted_per_class_and_lowers_the_error_of_inflated_probabilities():
    from ecgproto.trust import calibration

    rng = np.random.default_rng(0)
    y = (rng.random((400, 3)) < [0.05, 0.3, 0.0]).astype(np.float32)  # the third class has no positive
    logits = 2.0 * (y * 2 - 1) + rng.normal(0, 1.5, y.shape) + 3.0    # +3: inflated, as pos_weight does
    fitted = calibration.fit(logits, y, [9])
    assert fitted["fitted"] == [True, True, False] and fitted["threshold"][2] == 0.5
    assert fitted["fitted_on"] == "validation folds [9]"
    calibration.check(fitted, 3, "model.pt")
    errors = calibration.calibration_errors(logits, y, fitted)
    assert errors["ece_calibrated"] < errors["ece_uncalibrated"]
    assert errors["brier_calibrated"] < errors["brier_uncalibrated"]
    with pytest.raises(Exception, match="model.pt: calibration"):
        calibration.check({**fitted, "threshold": [0.5, float("nan"), 0.5]}, 3, "model.pt")


@pytest.fixture(scope="module")
def guarded_model_file(tmp_path_factory, tiny_tree):
    """A model file with the guard: params.yaml's thresholds, familiarity from synthetic training ECGs."""
    import dataclasses

    from ecgproto.data.ptbxl import read_metadata, read_signals
    from ecgproto.deploy.preprocessing import preprocess
    from ecgproto.model.inference import predict
    from ecgproto.trust.guard import best_similarity, familiarity_reference

    from conftest import PARAMS

    model = small_model()
    model.prototype_source.copy_(torch.arange(1000, 1000 + model.prototypes.shape[0]))
    metadata = read_metadata(tiny_tree)
    signals, _, _ = read_signals(tiny_tree, metadata["filename_lr"].tolist())
    sims = predict(model, preprocess(signals, META), "cpu")["sims"]
    reference = familiarity_reference(best_similarity(sims, np.ones(sims.shape[1], bool)), 1.0)
    path = tmp_path_factory.mktemp("guarded") / "final.pt"
    save_checkpoint(path, model, META, guard=dataclasses.asdict(PARAMS.guard), familiarity=reference)
    return path


@pytest.mark.parametrize("kind, reason", [("flat", "flat line"), ("noise", "noise swamps the QRS")])
def test_a_flat_or_noise_record_gets_no_reliable_rhythm_call(guarded_model_file, tmp_path, capsys, kind, reason):
    mv = np.zeros((12, 1000)) if kind == "flat" else np.random.default_rng(0).normal(0, 0.1, (12, 1000))
    record = _write(tmp_path / kind, mv)
    assert main(["explain", str(record), "--model", str(guarded_model_file)]) == 0
    text = capsys.readouterr().out
    assert "NO RELIABLE RHYTHM CALL" in text and reason in text and "Called" not in text
    assert main(["explain", str(record), "--model", str(guarded_model_file), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["reliable"] is False and any(reason in r for r in doc["reasons"]) and doc["labels"] == []
    out = tmp_path / "p.csv"
    assert main(["predict", str(record), "--model", str(guarded_model_file), "--out", str(out)]) == 0
    row = pd.read_csv(out).iloc[0]
    assert not row["reliable"] and reason in row["reason"] and pd.isna(row["called"])


@needs_sample
def test_the_real_sample_records_pass_the_signal_checks(guarded_model_file):
    import dataclasses

    from ecgproto.trust.guard import signal_problems

    from conftest import PARAMS

    records = sorted((SAMPLE / "records100").rglob("*.hea"))
    problems = [signal_problems(read_ecg(r.with_suffix(""))[0], dataclasses.asdict(PARAMS.guard)) for r in records]
    assert len(records) == 10 and sum(not p[0] for p in problems) >= 9


def test_lead_attribution_of_a_prototype_built_from_one_lead_is_largest_on_that_lead():
    from ecgproto.data.ptbxl import LEADS
    from ecgproto.model.inference import predict
    from ecgproto.trust.evidence import lead_attribution, lead_shading

    model = small_model(seed=4)
    t = np.arange(1000) / 100
    x = np.zeros((1, 12, 1000), np.float32)
    v1 = LEADS.index("V1")
    x[0, v1] = 2 * np.sin(2 * np.pi * 1.3 * t) + np.sin(2 * np.pi * 7 * t)  # a pattern in V1 only
    with torch.no_grad():
        model.prototypes[5] = model.latent(torch.from_numpy(x))[0]  # prototype 5 := this ECG
    drops = lead_attribution(lambda b: predict(model, b, "cpu"), x, 5)
    assert drops.shape == (12,) and int(np.argmax(drops)) == v1 and drops[v1] > 0
    shading = lead_shading(drops)  # absolute: full colour at a drop of 0.1, nothing under 0.01
    assert np.allclose(shading, np.where(drops >= 0.01, np.clip(drops / 0.1, 0, 1), 0.0))


@needs_sample
def test_a_called_label_that_the_measured_rate_contradicts_gets_a_remark_and_rests_on_the_prior(tmp_path, capsys):
    """Constructed: a calibration whose prior always calls STACH, on the real sample record 2 (SBRAD, 50/min):
    the call contradicts the rate, the missing SBRAD call is remarked too, and the call rests on the prior."""
    n = len(LABELS)
    stach = list(LABELS).index("STACH")
    intercept = [-100.0] * n
    intercept[stach] = 100.0
    path = tmp_path / "always_stach.pt"
    save_checkpoint(path, small_model(), META, calibration={"slope": [1.0] * n, "intercept": intercept,
                                                            "threshold": [0.5] * n, "fitted": [True] * n,
                                                            "positives": [10] * n, "fitted_on": "constructed"})
    assert main(["explain", str(SAMPLE / "records100/00000/00002_lr"), "--model", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["called"] == ["STACH"] and doc["measurements"]["rate_per_min"] < 60
    assert any(r.startswith("STACH is called, but the measured rate is") for r in doc["remarks"])
    assert any("under 60/min), but no label for a slow rhythm is called" in r for r in doc["remarks"])
    assert doc["labels"][stach]["rests_on_prior"] is True


@needs_sample
def test_explain_over_a_folder_writes_a_json_and_a_figure_per_record(model_file, tmp_path, capsys):
    out = tmp_path / "explained"
    assert main(["explain", str(SAMPLE / "records100"), "--model", str(model_file), "--out-dir", str(out)]) == 0
    names = sorted(p.stem for p in out.glob("*.json"))
    assert len(names) == 10 and not list(out.glob("*.png"))  # figures only when asked
    assert main(["explain", str(SAMPLE / "records100"), "--model", str(model_file), "--out-dir", str(out),
                 "--plots", "--overwrite"]) == 0
    assert names == sorted(p.stem for p in out.glob("*.png"))
    doc = json.loads((out / "00002_lr.json").read_text())
    assert doc["record"] == "00002_lr" and doc["measurements"]["rate_per_min"] < 60
    assert main(["explain", str(SAMPLE / "records100"), "--model", str(model_file)]) == 1
    assert "give --out-dir" in capsys.readouterr().err


def test_a_class_that_could_not_be_calibrated_is_never_called_and_says_so():
    from ecgproto.trust.evidence import split_logits

    logits = np.zeros((1, 2))  # sigmoid 0.5 reaches threshold 0.5: it would be called if calibration were trusted
    calibration = {"slope": [1.0, 1.0], "intercept": [0.0, 0.0], "threshold": [0.5, 0.5], "fitted": [True, False]}
    entries = split_logits(logits, np.ones((1, 2)), np.zeros((2, 2)), ["A", "B"], [1, 2], [0, 1], ["A", "B"],
                           calibration)[0]
    assert [e["called"] for e in entries] == [True, False]
    assert [e["calibrated"] for e in entries] == [True, False]


def _doc(label, called, pairs):
    """An explanation document with one label and its evidence for: (query shows, source shows) per prototype."""
    return {"labels": [{"label": label, "called": called, "evidence_for": [
        {"query_shows_feature": q, "source_shows_feature": s} for q, s in pairs]}]}


def test_feature_agreement_splits_into_the_query_side_and_the_source_side():
    from ecgproto.trust.explanation import feature_agreement, feature_in_labelled

    docs = [_doc("STACH", True, [(True, True), (True, False), (True, None), (True, True)]),
            _doc("STACH", True, [(False, True)]), _doc("STACH", False, [(True, True)]),
            _doc("PSVT", True, [(True, True)])]  # not called, no deciding feature: not counted
    figures = feature_agreement(docs, top=3)  # the 4th prototype of the first is beyond the top 3
    assert figures["feature_agreement_counts"] == {"STACH": [1, 3, 2, 2]}
    assert figures["feature_agreement"] == pytest.approx(1 / 3, abs=1e-4)
    assert figures["feature_agreement_query_side_by_label"]["STACH"] == pytest.approx(2 / 3, abs=1e-4)
    assert figures["feature_agreement_source_side_by_label"]["STACH"] == pytest.approx(2 / 3, abs=1e-4)
    measured = [{"rate_per_min": r, "irregular": False, "pr_ms": None, "qrs_ms": None} for r in (120, 80, 130, 90)]
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])
    ceiling = feature_in_labelled(measured, y, ["STACH", "SR"])
    assert ceiling["labelled_ecgs_showing_feature_counts"] == {"STACH": [1, 2], "SR": [1, 2]}


@needs_sample
def test_without_where_the_explanation_is_the_same_but_for_the_occlusion_map(model_file):
    from ecgproto.deploy.predictor import open_model
    from ecgproto.deploy.recordings import answer
    from ecgproto.trust.explanation import explain_ecg, source_measurements
    runner = open_model(model_file)
    millivolts, _ = read_ecg(SAMPLE / "records100/00000/00001_lr")
    got = answer(runner, millivolts)
    one = {k: v[:1] for k, v in got["out"].items()}
    sources = source_measurements(runner)
    full = explain_ecg(runner, got["millivolts"][0], got["x"][:1], one, 3, sources, "r")
    bare = explain_ecg(runner, got["millivolts"][0], got["x"][:1], one, 3, sources, "r", where=False)
    shown = [p for e in full["labels"] for p in e["evidence_for"]]
    assert shown and all("where" in p for p in shown)
    for e in full["labels"]:
        for p in e["prototypes"]:
            p.pop("where", None)
    assert bare == full


def test_the_per_ecg_figures_sample_is_seeded_sorted_and_whole_when_small():
    from ecgproto.trust.interpretability import figure_sample
    assert figure_sample(50, 3000, 1).tolist() == list(range(50))
    assert figure_sample(5000, 0, 1).tolist() == list(range(5000))
    a, b, c = figure_sample(5000, 300, 1), figure_sample(5000, 300, 1), figure_sample(5000, 300, 2)
    assert len(a) == 300 and len(set(a.tolist())) == 300 and (np.diff(a) > 0).all() and a.max() < 5000
    assert (a == b).all() and not (a == c).all()
