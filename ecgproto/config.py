"""Typed, validated view of params.yaml: a bad value fails before any work starts, naming the key."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .ptbxl import LABELS


class ConfigError(ValueError):
    """A params.yaml value that is missing, unknown or out of range; the message names the key."""


@dataclass(frozen=True)
class DataParams:
    source: str = "synthetic"         # synthetic | folder | ptbxl
    synthetic_records: int = 2000
    synthetic_seed: int = 42
    folder: str = ""                  # an existing PTB-XL tree, used (and verified) when source is "folder"
    ptbxl_url: str = "https://physionet.org/files/ptb-xl/"
    ptbxl_version: str = "1.0.3"
    download_dir: str = "data/download"   # persistent across runs, so an interrupted download resumes
    download_jobs: int = 8
    download_500hz: bool = False
    missing_records: str = "error"    # error | drop: metadata rows whose record files are absent

    def validate(self):
        _choice("data.source", self.source, ("synthetic", "folder", "ptbxl"))
        _choice("data.missing_records", self.missing_records, ("error", "drop"))
        _at_least("data.synthetic_records", self.synthetic_records, 1)
        _at_least("data.download_jobs", self.download_jobs, 1)
        if self.source == "folder" and not self.folder:
            raise ConfigError("data.folder is empty; with data.source: folder it must name a PTB-XL tree")
        if self.source == "ptbxl" and not self.ptbxl_url.startswith(("http://", "https://")):
            raise ConfigError(f"data.ptbxl_url = {self.ptbxl_url!r}: expected an http(s) URL")


@dataclass(frozen=True)
class PrepareParams:
    labels: tuple = LABELS
    highpass_hz: float = 0.5
    filter_order: int = 1
    standardize: bool = True
    train_folds: tuple = (1, 2, 3, 4, 5, 6, 7, 8)
    val_folds: tuple = (9,)
    test_folds: tuple = (10,)
    skip_bad_records: bool = False

    def validate(self):
        unknown = [c for c in self.labels if c not in LABELS]
        if unknown or not self.labels or len(set(self.labels)) != len(self.labels):
            raise ConfigError(f"prepare.labels = {list(self.labels)}: unknown or repeated codes {unknown}; "
                              f"allowed codes are {list(LABELS)}")
        if not 0 < self.highpass_hz < 50:
            raise ConfigError(f"prepare.highpass_hz = {self.highpass_hz}: expected 0 < value < 50 (Nyquist at 100 Hz)")
        _at_least("prepare.filter_order", self.filter_order, 1)
        for key in ("train_folds", "val_folds", "test_folds"):
            folds = getattr(self, key)
            if not folds or any(not isinstance(f, int) or not 1 <= f <= 10 for f in folds):
                raise ConfigError(f"prepare.{key} = {list(folds)}: expected a non-empty list of folds 1-10")
        if set(self.train_folds) & (set(self.val_folds) | set(self.test_folds)):
            raise ConfigError("prepare.train_folds overlaps prepare.val_folds or prepare.test_folds; "
                              "training folds must be disjoint from evaluation folds")


@dataclass(frozen=True)
class ModelParams:
    widths: tuple = (32, 64, 128, 256)
    depths: tuple = (1, 1, 1, 1)
    stem_kernel: int = 7
    latent_dim: int = 128
    prototypes_per_class: int = 5
    latent_activation: str = "sigmoid"

    def validate(self):
        if not self.widths or len(self.widths) != len(self.depths):
            raise ConfigError(f"model.widths {list(self.widths)} and model.depths {list(self.depths)}: "
                              "expected non-empty lists of the same length")
        for key in ("widths", "depths"):
            if any(not isinstance(v, int) or v < 1 for v in getattr(self, key)):
                raise ConfigError(f"model.{key} = {list(getattr(self, key))}: expected positive integers")
        if self.stem_kernel < 1 or self.stem_kernel % 2 == 0:
            raise ConfigError(f"model.stem_kernel = {self.stem_kernel}: expected a positive odd integer")
        _at_least("model.latent_dim", self.latent_dim, 1)
        _at_least("model.prototypes_per_class", self.prototypes_per_class, 1)
        _choice("model.latent_activation", self.latent_activation, ("sigmoid", "none"))


@dataclass(frozen=True)
class LossParams:
    clst: float = 0.004
    sep: float = 0.0004
    div: float = 250.0
    cnrst: float = 300.0
    l1: float = 1e-4

    def validate(self):
        for f in dataclasses.fields(self):
            _at_least(f"loss.{f.name}", getattr(self, f.name), 0)


@dataclass(frozen=True)
class TrainParams:
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1.7e-4
    max_epochs: int = 30
    patience: int = 10
    crop_samples: int = 1000      # random crops of this length while training; full length to evaluate
    balanced_sampling: bool = False

    def validate(self):
        _at_least("train.batch_size", self.batch_size, 2)
        _at_least("train.max_epochs", self.max_epochs, 1)
        _at_least("train.patience", self.patience, 1)
        if not 0 < self.lr < 1:
            raise ConfigError(f"train.lr = {self.lr}: expected 0 < lr < 1")
        _at_least("train.weight_decay", self.weight_decay, 0)
        if not 64 <= self.crop_samples <= 1000:
            raise ConfigError(f"train.crop_samples = {self.crop_samples}: expected 64-1000 samples")


@dataclass(frozen=True)
class JointParams:
    # Published: the last layer stays at its +1/-0.5 initialisation during the joint stage.
    train_last_layer: bool = False
    # Published: scratch (the backbone learns with the prototype losses). frozen_baseline: the trained
    # backbone of stage `baseline`, kept fixed; the joint stage trains the add-on, prototypes and last layer.
    backbone: str = "scratch"
    lr: float = 1e-4              # the joint stage's own learning rate (published: 1e-4, as train.lr)

    def validate(self):
        _choice("joint.backbone", self.backbone, ("scratch", "frozen_baseline"))
        if not 0 < self.lr < 1:
            raise ConfigError(f"joint.lr = {self.lr}: expected 0 < lr < 1")


@dataclass(frozen=True)
class ProjectParams:
    # Published: false (each prototype takes its most similar same-class ECG, shared or not).
    distinct_sources: bool = False
    # Published: false (duplicate and unprojected prototypes keep their weights).
    prune: bool = False


@dataclass(frozen=True)
class ClassifierParams:
    # Published: last_layer (the last layer alone, on fixed similarities: lr, steps). addon: the add-on
    # and the last layer, prototypes tied to their source ECGs, batches and early stopping as in train.*.
    retrain: str = "last_layer"
    lr: float = 0.01
    steps: int = 500
    addon_lr: float = 0.0003

    def validate(self):
        _choice("classifier.retrain", self.retrain, ("last_layer", "addon"))
        _at_least("classifier.steps", self.steps, 1)
        for key in ("lr", "addon_lr"):
            if not 0 < getattr(self, key) < 10:
                raise ConfigError(f"classifier.{key} = {getattr(self, key)}: expected 0 < {key} < 10")


@dataclass(frozen=True)
class EvaluateParams:
    bootstrap: int = 1000
    per_batch_size: int = 32

    def validate(self):
        _at_least("evaluate.bootstrap", self.bootstrap, 1)
        _at_least("evaluate.per_batch_size", self.per_batch_size, 2)


@dataclass(frozen=True)
class ExplainParams:
    codes: tuple = ("SR", "AFIB", "STACH", "SBRAD", "PACE")
    top_prototypes: int = 3
    max_labels: int = 2
    threshold: float = 0.5
    purity_neighbours: int = 10

    def validate(self):
        unknown = [c for c in self.codes if c not in LABELS]
        if unknown:
            raise ConfigError(f"explain.codes = {list(self.codes)}: unknown codes {unknown}; allowed: {list(LABELS)}")
        _at_least("explain.top_prototypes", self.top_prototypes, 1)
        _at_least("explain.max_labels", self.max_labels, 1)
        _at_least("explain.purity_neighbours", self.purity_neighbours, 1)
        if not 0 < self.threshold < 1:
            raise ConfigError(f"explain.threshold = {self.threshold}: expected a probability between 0 and 1")


@dataclass(frozen=True)
class Params:
    seed: int = 42
    device: str = "auto"
    data: DataParams = field(default_factory=DataParams)
    prepare: PrepareParams = field(default_factory=PrepareParams)
    model: ModelParams = field(default_factory=ModelParams)
    loss: LossParams = field(default_factory=LossParams)
    train: TrainParams = field(default_factory=TrainParams)
    joint: JointParams = field(default_factory=JointParams)
    project: ProjectParams = field(default_factory=ProjectParams)
    classifier: ClassifierParams = field(default_factory=ClassifierParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    explain: ExplainParams = field(default_factory=ExplainParams)

    def validate(self):
        _choice("device", self.device.split(":")[0], ("auto", "cpu", "cuda"))


def _choice(key, value, allowed):
    if value not in allowed:
        raise ConfigError(f"{key} = {value!r}: expected one of {list(allowed)}")


def _at_least(key, value, low):
    if value < low:
        raise ConfigError(f"{key} = {value!r}: expected at least {low}")


def _convert(key: str, value, annotation):
    """Check one value against its dataclass annotation (dataclass, tuple, bool, int, float, str)."""
    if dataclasses.is_dataclass(annotation):
        return _build(annotation, value, key + ".")
    origin = typing.get_origin(annotation) or annotation
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} = {value!r}: expected a list")
        return tuple(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} = {value!r}: expected true or false")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} = {value!r}: expected an integer")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} = {value!r}: expected a number")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} = {value!r}: expected a string")
        return value
    raise TypeError(f"unsupported annotation {annotation} for {key}")


def _build(cls, raw, prefix=""):
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'params'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) {[prefix + k for k in unknown]}; allowed: {sorted(names)}")
    values = {k: _convert(prefix + k, v, hints[k]) for k, v in raw.items()}
    obj = cls(**values)
    if hasattr(obj, "validate"):
        obj.validate()
    return obj


def from_dict(raw: dict) -> Params:
    return _build(Params, raw)


def load(path: Path = Path("params.yaml")) -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    try:
        return from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
