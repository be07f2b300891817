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
    source: str = "synthetic"         # synthetic | folder
    synthetic_records: int = 2000
    synthetic_seed: int = 42
    folder: str = ""                  # an existing PTB-XL tree, used when source is "folder"

    def validate(self):
        _choice("data.source", self.source, ("synthetic", "folder"))
        _at_least("data.synthetic_records", self.synthetic_records, 1)
        if self.source == "folder" and not self.folder:
            raise ConfigError("data.folder is empty; with data.source: folder it must name a PTB-XL tree")


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
class Params:
    seed: int = 42
    data: DataParams = field(default_factory=DataParams)
    prepare: PrepareParams = field(default_factory=PrepareParams)


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
