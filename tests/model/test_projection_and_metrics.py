import copy
import dataclasses

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from ecgproto.data.prepare import Split
from ecgproto.errors import ModelError
from ecgproto.evaluation import metrics as evaluation
from ecgproto.model.inference import latents
from ecgproto.model.network import BackboneConfig, ProtoECGNet1D, PrototypeConfig
from ecgproto.model.projection import project, prune, source_signals
from ecgproto.model.train import train_addon_after_projection, train_last_layer

from conftest import PARAMS


def test_projection_picks_most_similar_same_class_training_ecg():
    m = ProtoECGNet1D(BackboneConfig((8,), (1,)), PrototypeConfig(n_classes=2, prototypes_per_class=1, latent_dim=2,
                                                                  latent_activation="sigmoid"))
    with torch.no_grad():
        m.prototypes.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    z = torch.tensor([[1.0, 0.05],   # closest to prototype 0 but class 1
                      [1.0, 0.5],    # class 0, cos 0.894 to prototype 0
                      [1.0, 1.0],    # class 0, cos 0.707
                      [0.2, 1.0]])   # class 1, the best class-1 match for prototype 1
    labels = np.array([[0, 1], [1, 0], [1, 0], [0, 1]], dtype=np.float32)
    rows = project(m, z, labels, np.array([11, 12, 13, 14]), ["A", "B"])
    assert [r["source_ecg_id"] for r in rows] == [12, 14]
    assert rows[0]["similarity_before"] == pytest.approx(1 / np.sqrt(1.25), abs=1e-5)
    assert rows[0]["similarity_after"] == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(m.prototypes.detach(), z[[1, 3]])


def test_distinct_sources_gives_each_prototype_its_own_ecg_best_pair_first():
    m = ProtoECGNet1D(BackboneConfig((8,), (1,)), PrototypeConfig(n_classes=2, prototypes_per_class=2, latent_dim=2,
                                                                  latent_activation="sigmoid"))
    with torch.no_grad():  # prototypes 0 and 1 (class A) both prefer ECG 10; prototype 1 prefers it more
        m.prototypes.copy_(torch.tensor([[1.0, 0.3], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]]))
    z = torch.tensor([[1.0, 0.1], [1.0, 0.6], [0.0, 1.0], [5.0, 0.0]])
    labels = np.array([[1, 0], [1, 0], [0, 1], [1, 0]], dtype=np.float32)
    ids = np.array([10, 11, 12, 13])
    nearest = project(copy.deepcopy(m), z, labels, ids, ["A", "B"])
    assert [r["source_ecg_id"] for r in nearest] == [10, 10, 12, 12]
    rows = project(m, z, labels, ids, ["A", "B"], distinct_sources=True)
    # prototype 1 takes ECG 10 (cos 1.0); prototype 0 its next best, ECG 11 (cos 0.97 vs 0.96 for 13);
    # class B has one ECG for two prototypes, so they share it
    assert [r["source_ecg_id"] for r in rows] == [11, 10, 12, 12]
    torch.testing.assert_close(m.prototypes.detach(), z[[1, 0, 2, 2]])


def test_pruning_removes_duplicates_and_unprojected_prototypes_and_the_classifier_keeps_them_out():
    m = ProtoECGNet1D(BackboneConfig((8,), (1,)), PrototypeConfig(n_classes=2, prototypes_per_class=3, latent_dim=4,
                                                                  latent_activation="sigmoid"))
    m.prototype_source.copy_(torch.tensor([7, 7, 8, 9, -1, 8]))  # 1 repeats 0; 4 has no ECG; 5 repeats 2
    assert prune(m) == [False, True, False, False, True, True]
    assert m.prototype_pruned.tolist() == [False, True, False, False, True, True]
    w = m.last_layer.weight.detach().clone()
    assert not w[:, [1, 4, 5]].any() and w[:, [0, 2, 3]].abs().min() > 0
    rng = np.random.default_rng(0)
    sims = rng.uniform(-1, 1, (40, 6)).astype(np.float32)
    y = (sims[:, [0, 3]] > 0).astype(np.float32)
    m.last_layer.weight.requires_grad_(True)
    params = dataclasses.replace(PARAMS, classifier=dataclasses.replace(PARAMS.classifier, lr=0.05, steps=30))
    train_last_layer(m, sims, y, sims, y, torch.ones(2), params, "cpu")
    w2 = m.last_layer.weight.detach()
    assert not w2[:, [1, 4, 5]].any()
    assert not torch.equal(w2[:, [0, 2, 3]], w[:, [0, 2, 3]])  # the others did train


def test_addon_retraining_keeps_every_prototype_exactly_its_source_ecg():
    """classifier.retrain = addon: the add-on moves, yet each projected prototype is still the latent of
    its source ECG; the unprojected one keeps its vector; pruned weights stay 0; the backbone is fixed."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 12, 200)).astype(np.float32)
    y = (rng.random((24, 2)) < 0.5).astype(np.float32)
    data = Split(x, y, np.arange(24))
    m = ProtoECGNet1D(BackboneConfig((8,), (1,)), PrototypeConfig(2, 2, 4, "sigmoid"))
    rows = project(m, latents(m, x, "cpu"), y, data.ecg_ids, ["A", "B"], distinct_sources=True)
    sources = [r["source_ecg_id"] for r in rows[:3]] + [-1]  # prototype 3: as if its class had no ECG
    m.prototype_source[3] = -1
    prune(m)
    addon, backbone = copy.deepcopy(m.addon.state_dict()), copy.deepcopy(m.backbone.state_dict())
    unprojected = m.prototypes[3].detach().clone()
    params = dataclasses.replace(
        PARAMS, seed=0,
        train=dataclasses.replace(PARAMS.train, batch_size=8, max_epochs=3, patience=3, crop_samples=160),
        classifier=dataclasses.replace(PARAMS.classifier, addon_lr=0.05))
    train_addon_after_projection(m, data, data, source_signals(m, data, "test"), torch.ones(2), params, "cpu")
    assert any(not torch.equal(v, addon[k]) for k, v in m.addon.state_dict().items())
    assert all(torch.equal(v, backbone[k]) for k, v in m.backbone.state_dict().items())
    torch.testing.assert_close(m.prototypes[:3].detach(), latents(m, x[sources[:3]], "cpu"))
    assert torch.equal(m.prototypes[3].detach(), unprojected) and m.source_features is None
    assert not m.last_layer.weight[:, 3].any()


def test_source_signals_are_looked_up_by_ecg_id_and_a_missing_one_names_the_file():
    split = Split(np.arange(4, dtype=np.float32).reshape(4, 1, 1) * np.ones((1, 2, 3), np.float32),
                  np.zeros((4, 2), np.float32), np.array([10, 20, 30, 40]))
    m = ProtoECGNet1D(BackboneConfig((8,), (1,)), PrototypeConfig(3, 1, 2, "none"))
    m.prototype_source.copy_(torch.tensor([30, -1, 10]))
    x = source_signals(m, split, "models/projected.pt")
    assert x.shape == (3, 2, 3) and x[0].min() == 2 and not x[1].any() and x[2].max() == 0
    m.prototype_source.copy_(torch.tensor([10, 50, -1]))
    with pytest.raises(ModelError, match=r"models/projected.pt: source ECGs \[50\]"):
        source_signals(m, split, "models/projected.pt")


def test_tying_prototypes_needs_a_frozen_backbone():
    m = ProtoECGNet1D(BackboneConfig((8,), (1,)), PrototypeConfig(2, 1, 4, "sigmoid"))
    with pytest.raises(ValueError, match="frozen backbone"):
        m.tie_to_sources(torch.zeros(2, 12, 100), torch.ones(2, dtype=torch.bool))


def test_projection_keeps_a_prototype_whose_class_has_no_training_positive():
    m = ProtoECGNet1D(BackboneConfig((8,), (1,)), PrototypeConfig(2, 1, 2, "sigmoid"))
    before = m.prototypes.detach().clone()
    rows = project(m, torch.randn(3, 2), np.array([[1, 0]] * 3, dtype=np.float32), np.arange(3), ["A", "B"])
    assert rows[1]["source_ecg_id"] == -1
    torch.testing.assert_close(m.prototypes[1].detach(), before[1])


def _example(seed=0, n=120, c=5):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < 0.2).astype(np.float32)
    y[:, 4] = 0  # a label with no positive
    p = np.round(rng.random((n, c)) + 0.4 * y, 2)  # rounding creates ties
    return y, p


def test_auroc_equals_scikit_learn_and_excludes_labels_without_positives():
    y, p = _example()
    per_label = evaluation.per_label_auroc(y, p)
    for j in range(4):
        assert per_label[j] == pytest.approx(roc_auc_score(y[:, j], p[:, j]), abs=1e-12)
    assert np.isnan(per_label[4])
    assert evaluation.macro_auroc(y, p) == pytest.approx(np.mean([roc_auc_score(y[:, j], p[:, j]) for j in range(4)]))
    assert evaluation.macro_auprc(y, p) == pytest.approx(
        np.mean([average_precision_score(y[:, j], p[:, j]) for j in range(4)]))


def test_per_batch_auroc_by_hand():
    y = np.array([[1, 0], [0, 0], [0, 1], [1, 1], [0, 0], [0, 0]], dtype=np.float32)
    p = np.array([[0.9, 0.1], [0.2, 0.3], [0.8, 0.6], [0.1, 0.2], [0.5, 0.5], [0.4, 0.4]])
    # batch 1 (rows 0-2): label 0 AUROC 1.0 (0.9 vs 0.2, 0.8); label 1 AUROC 1.0 (0.6 vs 0.1, 0.3) -> 1.0
    # batch 2 (rows 3-5): label 0: 0.1 vs 0.5, 0.4 -> 0.0; label 1: 0.2 vs 0.5, 0.4 -> 0.0 -> 0.0
    assert evaluation.per_batch_auroc(y, p, batch_size=3) == pytest.approx(0.5)
    # batches of 2: rows 0-1 give 1.0 (label 0 only), rows 2-3 give 0.0 (label 0: 0.1 < 0.8), rows 4-5 have
    # no positive at all and are skipped, not counted as 0.5
    assert evaluation.per_batch_auroc(y, p, batch_size=2) == pytest.approx(0.5)


def test_bootstrap_interval_contains_the_estimate():
    y, p = _example(1, n=300)
    low, high = evaluation.bootstrap_interval(y, p, n=200, seed=0)
    assert low < evaluation.macro_auroc(y, p) < high
    assert (low, high) == evaluation.bootstrap_interval(y, p, n=200, seed=0)


@pytest.mark.parametrize("mode", ["keep", "sparse", "zero"])
def test_wrong_class_modes_of_the_classifier_stage(mode):
    m = ProtoECGNet1D(BackboneConfig((8,), (1,)), PrototypeConfig(2, 2, 4, "none"))
    identity = m.class_identity().T.bool()
    rng = np.random.default_rng(0)
    sims = rng.uniform(-1, 1, (40, 4)).astype(np.float32)
    y = (sims[:, [0, 3]] > 0).astype(np.float32)
    params = dataclasses.replace(PARAMS, classifier=dataclasses.replace(PARAMS.classifier, lr=0.05, steps=30,
                                                                        wrong_class=mode))
    m.last_layer.weight.requires_grad_(True)
    train_last_layer(m, sims, y, sims, y, torch.ones(2), params, "cpu")
    wrong = m.last_layer.weight.detach()[~identity]
    if mode == "zero":
        assert not wrong.any()  # a class's logit rests on its own prototypes alone
    else:
        assert wrong.abs().max() > 0 and (mode == "sparse" or wrong.abs().min() > 0.3)  # keep: from -0.5
