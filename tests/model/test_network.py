import pytest
import torch

from ecgproto.model.network import (
    BackboneConfig,
    LinearHeadNet,
    ProtoECGNet1D,
    PrototypeConfig,
    ResNet1d,
    build,
    count_macs,
    count_parameters,
    prototype_model,
)

from conftest import PARAMS

TINY = BackboneConfig(widths=(8, 16), depths=(1, 1))


def test_published_resnet18_backbone_size():
    backbone = ResNet1d(BackboneConfig((64, 128, 256, 512), (2, 2, 2, 2)))
    assert count_parameters(backbone) == 3_848_832  # FACTS.md section 3
    out = backbone(torch.zeros(2, 12, 1000))
    assert out.shape == (2, 512, 32)


def test_default_model_is_at_least_4x_cheaper_than_published():
    published = ProtoECGNet1D(BackboneConfig((64, 128, 256, 512), (2, 2, 2, 2)), PrototypeConfig(16, 5, 512, "sigmoid"))
    default = prototype_model(PARAMS.model, 16)  # params.yaml's
    assert count_parameters(published) >= 4 * count_parameters(default)
    assert count_macs(published) >= 4 * count_macs(default)
    assert 150e6 < count_macs(published.backbone) < 200e6  # about 175 M for the ResNet-18 (FACTS.md)


def test_last_layer_initial_pattern():
    m = ProtoECGNet1D(TINY, PrototypeConfig(n_classes=3, prototypes_per_class=2, latent_dim=4,
                                            latent_activation="sigmoid"))
    expected = torch.tensor([[1.0, 1, -0.5, -0.5, -0.5, -0.5],
                             [-0.5, -0.5, 1, 1, -0.5, -0.5],
                             [-0.5, -0.5, -0.5, -0.5, 1, 1]])
    assert torch.equal(m.last_layer.weight, expected)
    assert m.last_layer.bias is None


def test_similarities_are_cosines_and_logits_use_them():
    torch.manual_seed(0)
    m = ProtoECGNet1D(TINY, PrototypeConfig(2, 2, 4, "none")).eval()
    x = torch.randn(3, 12, 200)
    logits, sims = m(x)
    z = m.latent(x)
    ref = torch.nn.functional.cosine_similarity(z[:, None, :], m.prototypes[None], dim=-1)
    torch.testing.assert_close(sims, ref)
    torch.testing.assert_close(logits, sims @ m.last_layer.weight.T)


def test_frozen_backbone_is_the_source_and_stays_fixed_while_the_rest_trains():
    torch.manual_seed(0)
    source = LinearHeadNet(TINY, 2).backbone
    source(torch.randn(4, 12, 200))  # batch-norm statistics that differ from a fresh backbone's
    m = ProtoECGNet1D(TINY, PrototypeConfig(2, 2, 4, "none")).freeze_backbone(source)
    before = {k: v.clone() for k, v in m.backbone.state_dict().items()}
    prototypes = m.prototypes.detach().clone()
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=0.1)
    m.train()
    assert not m.backbone.training and m.addon.training
    logits, _ = m(torch.randn(4, 12, 200))
    logits.sum().backward()
    opt.step()
    for k, v in m.backbone.state_dict().items():
        assert torch.equal(v, before[k]) and torch.equal(v, source.state_dict()[k]), k
    assert not torch.equal(m.prototypes, prototypes)


def test_checkpoint_config_round_trip():
    m = ProtoECGNet1D(TINY, PrototypeConfig(3, 2, 4, "sigmoid"))
    again = build("prototype", m.config())
    assert again.config() == m.config()
    base = LinearHeadNet(TINY, 3)
    assert build("linear", base.config()).config() == base.config()
    with pytest.raises(ValueError, match="latent_activation"):
        ProtoECGNet1D(TINY, PrototypeConfig(3, 2, 4, "tanh"))


def test_batches_crop_and_never_yield_a_single_record():
    import dataclasses

    from ecgproto.model.train import batches

    from conftest import PARAMS

    x = torch.arange(5 * 12 * 100, dtype=torch.float32).reshape(5, 12, 100)
    y = torch.zeros(5, 3)
    settings = dataclasses.replace(PARAMS.train, batch_size=2, crop_samples=64)
    out = list(batches(x, y, settings, torch.Generator().manual_seed(0)))
    assert [len(xb) for xb, _ in out] == [2, 2]  # the fifth record is left for a later epoch
    for xb, _ in out:
        assert xb.shape == (2, 12, 64)
        assert torch.all(torch.diff(xb, dim=-1) == 1)  # contiguous windows of the original signal
    shifted = dataclasses.replace(PARAMS.train, batch_size=5, crop_samples=1000, shift_samples=30)
    xb, _ = next(batches(x, y, shifted, torch.Generator().manual_seed(1)))
    assert xb.shape == x.shape
    for row in xb:  # each record rolled by at most 30 samples, the same in every lead; nothing lost
        lag = (torch.argmin(row[0]) - torch.argmin(x[0, 0])) % 100
        assert min(lag, 100 - lag) <= 30
        source = x[int(row[0, 0]) // 1200]
        assert torch.equal(row, torch.roll(source, int(lag), dims=-1))


def test_lead_input_norm_makes_the_output_independent_of_gain_and_offset():
    torch.manual_seed(0)
    x = torch.randn(2, 12, 1000)
    changed = x * torch.exp(torch.randn(1, 12, 1) * 0.5) + 0.3  # another amplifier: a gain and offset per lead
    normed = ResNet1d(BackboneConfig((8, 16), (1, 1), input_norm="lead")).eval()
    plain = ResNet1d(BackboneConfig((8, 16), (1, 1))).eval()
    with torch.no_grad():
        scale = normed(x).abs().max()
        assert (normed(x) - normed(changed)).abs().max() < 0.02 * scale
        assert (plain(x) - plain(changed)).abs().max() > 0.2 * plain(x).abs().max()
        flat = torch.zeros(1, 12, 1000)
        assert torch.isfinite(normed(flat)).all()  # a flat line is not divided by zero
