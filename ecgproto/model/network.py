"""1D ResNet backbone, class-specific prototype layer, ProtoECGNet1D and the plain linear baseline.

The published rhythm branch is ResNet1d(widths=(64, 128, 256, 512), depths=(2, 2, 2, 2)) with a
512-d latent; ecgproto's default is a narrower, shallower backbone (see params.yaml `model`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ecgproto import config as bounds  # the upper bounds of params.yaml's `model`, for a model file's too
from ecgproto.config import elided
from ecgproto.data.ptbxl import LABELS

N_LEADS = 12
INPUT_VAR_FLOOR = 1e-2  # a flat lead (variance ~0 in standardised units) is not blown up into its noise


@dataclass(frozen=True)
class BackboneConfig:
    widths: tuple
    depths: tuple
    stem_kernel: int = 7
    # lead: each lead of each ECG scaled to zero mean and unit spread before the stem, so no amplifier's
    # gain, patient's voltage or third party's z-scoring changes the input. Model files from before
    # this option have no such key: they were trained without it.
    input_norm: str = "none"


@dataclass(frozen=True)
class PrototypeConfig:
    n_classes: int
    prototypes_per_class: int
    latent_dim: int
    latent_activation: str  # sigmoid (published) squeezes the latent into (0, 1); none leaves it unbounded


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm1d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet1d(nn.Module):
    """Stem (conv k, stride 2 + max-pool 3, stride 2) then one stage per width; stages after the first
    halve the time axis. Input (B, 12, T) -> feature map (B, widths[-1], T / 32)."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        if len(cfg.widths) != len(cfg.depths):
            raise ValueError(f"widths {cfg.widths} and depths {cfg.depths} must have the same length")
        w0 = cfg.widths[0]
        self.stem = nn.Sequential(
            nn.Conv1d(N_LEADS, w0, cfg.stem_kernel, 2, cfg.stem_kernel // 2, bias=False),
            nn.BatchNorm1d(w0), nn.ReLU(inplace=True), nn.MaxPool1d(3, 2, 1))
        stages, c_in = [], w0
        for i, (width, depth) in enumerate(zip(cfg.widths, cfg.depths)):
            stages.append(self._make_stage(c_in, width, depth, stride=1 if i == 0 else 2))
            c_in = width
        self.stages = nn.Sequential(*stages)
        self.out_channels = c_in
        if cfg.input_norm not in ("none", "lead"):
            raise ValueError(f"input_norm {cfg.input_norm!r}: expected 'none' or 'lead'")
        self.input_norm = cfg.input_norm

    @staticmethod
    def _make_stage(c_in, c_out, depth, stride):
        blocks = [BasicBlock(c_in, c_out, stride)]
        blocks += [BasicBlock(c_out, c_out, 1) for _ in range(depth - 1)]
        return nn.Sequential(*blocks)

    def forward(self, x):
        if self.input_norm == "lead":
            x = x - x.mean(dim=-1, keepdim=True)
            x = x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + INPUT_VAR_FLOOR)
        return self.stages(self.stem(x))


class LinearHeadNet(nn.Module):
    """The plain baseline: backbone, global average pooling, one linear layer."""

    kind = "linear"

    def __init__(self, backbone_cfg: BackboneConfig, n_classes: int):
        super().__init__()
        self.backbone_cfg, self.n_classes = backbone_cfg, n_classes
        self.backbone = ResNet1d(backbone_cfg)
        self.head = nn.Linear(self.backbone.out_channels, n_classes)

    def forward(self, x):
        return self.head(self.backbone(x).mean(dim=-1))

    def config(self) -> dict:
        return {"backbone": asdict(self.backbone_cfg), "n_classes": self.n_classes}


class ProtoECGNet1D(nn.Module):
    """Backbone -> pooled features -> add-on MLP -> latent z -> cosine similarity to P prototypes ->
    last layer (no bias). Prototype j belongs to class j // prototypes_per_class."""

    kind = "prototype"

    def __init__(self, backbone_cfg: BackboneConfig, proto_cfg: PrototypeConfig):
        super().__init__()
        if proto_cfg.latent_activation not in ("sigmoid", "none"):
            raise ValueError(f"latent_activation {proto_cfg.latent_activation!r}: expected 'sigmoid' or 'none'")
        self.backbone_cfg, self.proto_cfg = backbone_cfg, proto_cfg
        self.backbone = ResNet1d(backbone_cfg)
        d, f = proto_cfg.latent_dim, self.backbone.out_channels
        layers = [nn.Linear(f, d), nn.ReLU(inplace=True), nn.Linear(d, d)]
        if proto_cfg.latent_activation == "sigmoid":
            layers.append(nn.Sigmoid())
        self.addon = nn.Sequential(*layers)
        n_protos = proto_cfg.n_classes * proto_cfg.prototypes_per_class
        self.prototypes = nn.Parameter(torch.rand(n_protos, d))
        self.register_buffer("prototype_class",
                             torch.arange(proto_cfg.n_classes).repeat_interleave(proto_cfg.prototypes_per_class))
        # set by projection, and saved with the weights: the ecg_id of each prototype's source training ECG
        # (-1: none), and the prototypes taken out of the model (pruned: last-layer weights 0)
        self.register_buffer("prototype_source", torch.full((n_protos,), -1, dtype=torch.long))
        self.register_buffer("prototype_pruned", torch.zeros(n_protos, dtype=torch.bool))
        self.last_layer = nn.Linear(n_protos, proto_cfg.n_classes, bias=False)
        self.reset_last_layer()
        self.backbone_frozen = False
        self.source_features = self.has_source = None  # set by tie_to_sources

    def freeze_backbone(self, source: ResNet1d | None = None):
        """Fix the backbone (copied from `source` when given): no gradient, and batch-norm statistics
        stay as they are even in train mode, so the features are exactly the source's."""
        if source is not None:
            self.backbone.load_state_dict(source.state_dict())
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.backbone_frozen = True
        return self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self

    def reset_last_layer(self, wrong_class: float = -0.5):
        """+1 from a prototype to its own class, `wrong_class` to every other class (published init)."""
        with torch.no_grad():
            self.last_layer.weight.copy_(wrong_class + (1 - wrong_class) * self.class_identity().T)

    def active(self) -> torch.Tensor:
        """(P,) 1.0 for a prototype the model uses, 0.0 for a pruned one."""
        return (~self.prototype_pruned).float()

    def class_identity(self) -> torch.Tensor:
        """(P, C) one-hot prototype-class identity."""
        return F.one_hot(self.prototype_class, self.proto_cfg.n_classes).float()

    def latent(self, x):
        return self.addon(self.backbone(x).mean(dim=-1))

    def tie_to_sources(self, source_x: torch.Tensor, has_source: torch.Tensor):
        """Tie each prototype to its source ECG (source_x (P, leads, samples); rows where has_source is
        False are ignored and those prototypes keep their vector): until untie(), a prototype is the
        latent of its source, recomputed through the current add-on, so the add-on can train after
        projection and every prototype stays exactly a real ECG. Needs a frozen backbone: the sources'
        pooled features are computed once."""
        if not self.backbone_frozen:
            raise ValueError("tie_to_sources needs a frozen backbone (call freeze_backbone first)")
        with torch.no_grad():
            self.source_features = self.backbone(source_x).mean(dim=-1)
        self.has_source = has_source.to(device=source_x.device, dtype=torch.bool)

    def untie(self):
        """Write the tied prototypes (the sources' latents under the current add-on) into the vectors."""
        with torch.no_grad():
            self.prototypes.copy_(self.prototype_vectors())
        self.source_features = self.has_source = None

    def prototype_vectors(self) -> torch.Tensor:
        if self.source_features is None:
            return self.prototypes
        return torch.where(self.has_source[:, None], self.addon(self.source_features), self.prototypes)

    def similarities(self, z):
        return F.normalize(z, dim=-1) @ F.normalize(self.prototype_vectors(), dim=-1).T

    def local_similarities(self, x):
        """(B, P, T') cosine between each prototype and the add-on applied to each time step of the
        feature map before pooling (one step per 32 input samples): where in the ECG a prototype
        matches. The published model stops at the pooled, global similarity."""
        steps = self.backbone(x).transpose(1, 2)  # (B, T', F)
        return self.similarities(self.addon(steps)).transpose(1, 2)

    def forward(self, x):
        """Returns (logits, similarities)."""
        s = self.similarities(self.latent(x))
        return self.last_layer(s), s

    def config(self) -> dict:
        return {"backbone": asdict(self.backbone_cfg), "prototype": asdict(self.proto_cfg)}


def backbone_config(m) -> BackboneConfig:
    """The backbone that params.yaml's `model` section (a config.ModelParams) describes."""
    return BackboneConfig(widths=tuple(m.widths), depths=tuple(m.depths), stem_kernel=m.stem_kernel,
                          input_norm=m.input_norm)


def prototype_model(m, n_classes: int) -> ProtoECGNet1D:
    """The prototype model that params.yaml's `model` section describes, for n_classes labels."""
    return ProtoECGNet1D(backbone_config(m), PrototypeConfig(n_classes, m.prototypes_per_class, m.latent_dim,
                                                             m.latent_activation))


def _integers(values, low: int, high: int, count=None) -> bool:
    return (isinstance(values, (list, tuple)) and (count is None or len(values) == count)
            and all(isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in values))


def _not_one_of(value, allowed) -> bool:
    """True when `value` is not one of the strings `allowed` (a tensor or list included)."""
    return not isinstance(value, str) or value not in allowed


def config_problem(kind, config) -> str | None:
    """What is wrong with an architecture read from a model file, or None: the keys and types build() needs,
    each size within config.py's bounds (as params.yaml's), and the weights it would allocate (counted, not
    allocated) within MAX_PARAMETERS. Checked before anything is built."""
    if _not_one_of(kind, ("linear", "prototype")):
        return f"kind {elided(kind)}: expected 'linear' or 'prototype'"
    head = "n_classes" if kind == "linear" else "prototype"
    if not (isinstance(config, dict) and set(config) == {"backbone", head} and isinstance(config["backbone"], dict)):
        return f"config {elided(config)}: expected the keys ['backbone', {head!r}]"
    backbone = config["backbone"]
    if not {"widths", "depths"} <= set(backbone) <= {"widths", "depths", "stem_kernel", "input_norm"}:
        return (f"config.backbone keys {elided(sorted(map(str, backbone)))}: expected widths, depths, stem_kernel, "
                "input_norm")
    widths, depths = backbone["widths"], backbone["depths"]
    if not (_integers(widths, 1, bounds.MAX_WIDTH) and 1 <= len(widths) <= bounds.MAX_STAGES):
        return (f"config.backbone.widths = {elided(widths)}: expected 1 to {bounds.MAX_STAGES} integers from 1 to "
                f"{bounds.MAX_WIDTH} (MAX_WIDTH)")
    if not _integers(depths, 1, bounds.MAX_DEPTH, len(widths)):
        return (f"config.backbone.depths = {elided(depths)}: expected an integer from 1 to {bounds.MAX_DEPTH} "
                f"for each of the {len(widths)} widths")
    kernel = backbone.get("stem_kernel", BackboneConfig.stem_kernel)
    if not _integers([kernel], 1, bounds.MAX_STEM_KERNEL) or kernel % 2 == 0:
        return (f"config.backbone.stem_kernel = {elided(kernel)}: expected an odd integer from 1 to "
                f"{bounds.MAX_STEM_KERNEL}")
    if _not_one_of(backbone.get("input_norm", "none"), ("none", "lead")):
        return f"config.backbone.input_norm = {elided(backbone['input_norm'])}: expected 'none' or 'lead'"
    if kind == "linear":
        if not _integers([config["n_classes"]], 1, len(LABELS)):
            return f"config.n_classes = {elided(config['n_classes'])}: expected an integer from 1 to {len(LABELS)}"
    else:
        proto = config["prototype"]
        limits = {"n_classes": len(LABELS), "prototypes_per_class": bounds.MAX_PROTOTYPES_PER_CLASS,
                  "latent_dim": bounds.MAX_LATENT_DIM}
        if not (isinstance(proto, dict) and set(proto) == {*limits, "latent_activation"}):
            return f"config.prototype = {elided(proto)}: expected the keys {sorted({*limits, 'latent_activation'})}"
        for key, high in limits.items():
            if not _integers([proto[key]], 1, high):
                return f"config.prototype.{key} = {elided(proto[key])}: expected an integer from 1 to {high}"
        if _not_one_of(proto["latent_activation"], ("sigmoid", "none")):
            return (f"config.prototype.latent_activation = {elided(proto['latent_activation'])}: expected 'sigmoid' "
                    "or 'none'")
    n = parameter_count(kind, config)
    if n > bounds.MAX_PARAMETERS:
        return (f"an architecture of {n:,} weights (widths {list(widths)}, depths {list(depths)}): over "
                f"{bounds.MAX_PARAMETERS:,} (MAX_PARAMETERS)")
    return None


def parameter_count(kind: str, config: dict) -> int:
    """count_parameters(build(kind, config)), from the sizes alone: nothing is allocated."""
    backbone = config["backbone"]
    widths, depths = backbone["widths"], backbone["depths"]
    kernel = backbone.get("stem_kernel", BackboneConfig.stem_kernel)
    n = N_LEADS * widths[0] * kernel + 2 * widths[0]  # stem convolution and batch norm
    c_in = widths[0]
    for i, (width, depth) in enumerate(zip(widths, depths)):
        shortcut = (width * c_in + 2 * width) if (i > 0 or c_in != width) else 0
        n += 3 * c_in * width + 3 * width * width + 4 * width + shortcut  # first block
        n += (depth - 1) * (6 * width * width + 4 * width)
        c_in = width
    if kind == "linear":
        return n + c_in * config["n_classes"] + config["n_classes"]
    proto = config["prototype"]
    d, p = proto["latent_dim"], proto["n_classes"] * proto["prototypes_per_class"]
    return n + c_in * d + d + d * d + d + p * d + p * proto["n_classes"]


def build(kind: str, config: dict) -> nn.Module:
    problem = config_problem(kind, config)
    if problem:
        raise ValueError(problem)
    backbone = BackboneConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in config["backbone"].items()})
    if kind == "linear":
        return LinearHeadNet(backbone, config["n_classes"])
    if kind == "prototype":
        return ProtoECGNet1D(backbone, PrototypeConfig(**config["prototype"]))
    raise ValueError(f"unknown model kind {kind!r}; expected 'linear' or 'prototype'")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, n_samples: int = 1000) -> int:
    """Multiply-accumulates for one ECG, from PyTorch's FLOP counter (it counts 2 FLOPs per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, N_LEADS, n_samples))
    model.train(was_training)
    return counter.get_total_flops() // 2
