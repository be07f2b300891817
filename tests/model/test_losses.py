import math

import pytest
import torch

from ecgproto.model import losses

# 2 classes, 2 prototypes each: prototypes 0, 1 -> class 0; 2, 3 -> class 1
IDENTITY = torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1]])
SIMS = torch.tensor([[0.9, 0.1, 0.3, 0.2],
                     [0.2, 0.8, 0.5, 0.4],
                     [0.6, 0.7, 0.1, 0.3]])
LABELS = torch.tensor([[1.0, 0], [0, 1], [0, 0]])  # the third sample has no class


def test_clustering_by_hand():
    # own-class maxima: 0.9 (sample 0), 0.5 (sample 1); the unlabelled sample is left out
    assert losses.clustering(SIMS, LABELS, IDENTITY).item() == pytest.approx(-(0.9 + 0.5) / 2)


def test_separation_by_hand():
    # other-class maxima: 0.3, 0.8, and 0.7 for the unlabelled sample (every prototype is "other")
    assert losses.separation(SIMS, LABELS, IDENTITY).item() == pytest.approx((0.3 + 0.8 + 0.7) / 3)


def test_diversity_by_hand():
    assert losses.diversity(torch.eye(3)).item() == pytest.approx(0.0)
    # two identical prototypes: Gram all ones, minus I leaves two off-diagonal ones -> 2 / 2^2
    assert losses.diversity(torch.tensor([[1.0, 1.0], [2.0, 2.0]])).item() == pytest.approx(0.5)


def test_contrastive_by_hand():
    cooc = torch.tensor([[1.0, 0.5], [0.5, 1.0]])
    identity = torch.eye(2)  # one prototype per class
    # orthogonal prototypes: sim = I; pos = L (sum 3), neg = 1 - L (sum 1)
    value = losses.contrastive(torch.eye(2), identity, cooc).item()
    assert value == pytest.approx(-(2 / 3 - 0) / math.sqrt(2))
    # identical prototypes: sim = all ones -> -(1 - 1) / sqrt(2) = 0
    assert losses.contrastive(torch.ones(2, 2), identity, cooc).item() == pytest.approx(0.0)


def test_contrastive_sign_pulls_cooccurring_prototypes_together():
    cooc = torch.tensor([[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 1.0]])
    identity = torch.eye(3)
    together = torch.tensor([[1.0, 0, 0], [0.9, 0.1, 0], [0, 0, 1]])
    apart = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1]])
    assert losses.contrastive(together, identity, cooc) < losses.contrastive(apart, identity, cooc)


def test_wrong_class_l1_by_hand():
    weight = torch.tensor([[1.0, 2.0, -0.5, 0.25], [-3.0, 0.5, 1.0, 1.0]])  # (C, P)
    # wrong-class entries: class 0 <- prototypes 2, 3; class 1 <- prototypes 0, 1
    assert losses.wrong_class_l1(weight, IDENTITY).item() == pytest.approx(0.5 + 0.25 + 3.0 + 0.5)
