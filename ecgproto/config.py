"""Typed, validated view of params.yaml: a bad value fails before any work starts, naming the key.

params.yaml is the only place values live: the dataclasses below declare types and allowed ranges,
never defaults, so a key deleted from params.yaml is a named error rather than a silent fallback.
"""
from __future__ import annotations

import dataclasses
import math
import os
import reprlib
import stat
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from ecgproto.data.ptbxl import LABELS
from ecgproto.errors import ConfigError

MIN_SYNTHETIC_RECORDS = 100  # fewer leaves the validation or test fold without a positive of most codes
# Upper bounds of the `model` section. params.yaml is checked against them, and so is the architecture a model
# file describes, before anything is built (network.config_problem): a file of a few bytes cannot ask for
# gigabytes. The published ResNet-18 (widths 64-512, depths 2, latent 512) has 4.4 million weights.
MAX_STAGES = 8              # len(model.widths): each stage after the first halves the time axis
MAX_WIDTH = 2048            # channels of a stage
MAX_DEPTH = 16              # residual blocks of a stage
MAX_STEM_KERNEL = 63
MAX_LATENT_DIM = 4096
MAX_PROTOTYPES_PER_CLASS = 100
MAX_PARAMETERS = 50_000_000  # weights of a model file's architecture, counted before any is allocated
# a model file (.pt or .onnx) larger than its largest allowed weights (float32) and 64 MiB of source ECGs and
# metadata is refused before it is read
MAX_MODEL_FILE_BYTES = 4 * MAX_PARAMETERS + 64 * 2 ** 20
ELIDE_CHARS = 80            # an error message quotes at most this much of a value


_REPR = reprlib.Repr()  # a few levels and items of a nested value, never the whole of it
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 3, 16, 16, 8, 8
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = ELIDE_CHARS


def elided(value, limit: int = ELIDE_CHARS) -> str:
    """repr(value) in at most `limit` characters (a cut marked '...'), for error messages: a hostile value (a
    YAML alias bomb, a megabyte string) must not become a megabyte message, nor take minutes to write."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass(frozen=True)
class SyntheticRealism:
    """What makes real rhythms hard, in the synthetic generator (ecgproto/data/synth/); 0 turns one off."""
    morphology: float   # x PTB-XL-like prevalences of bundle branch blocks, infarction Q waves, LVH, ST-T changes
    nuisance: float     # x breathing wander, muscle noise, electrode motion, patient and lead spread, poor leads
    borderline: float   # share of rhythm draws placed near a criterion (rate 60 and 100/min, PR 200 ms, ...)
    label_noise: float  # share of records with one reader's labelling error

    def validate(self):
        for key, high in (("morphology", 3.0), ("nuisance", 3.0), ("borderline", 1.0), ("label_noise", 0.5)):
            value = getattr(self, key)
            if not 0 <= value <= high:
                raise ConfigError(f"data.synthetic_realism.{key} = {elided(value)}: expected 0 to {high}")


@dataclass(frozen=True)
class DataParams:
    source: str  # synthetic | folder | ptbxl
    synthetic_records: int
    synthetic_seed: int
    synthetic_realism: SyntheticRealism
    folder: str  # an existing PTB-XL tree, used (and verified) when source is "folder"
    ptbxl_url: str
    ptbxl_version: str
    download_dir: str  # persistent across runs, so an interrupted download resumes
    download_jobs: int
    download_500hz: bool
    download_deadline_s: float  # per file and attempt, however slowly the server sends
    download_max_mb: float  # per file: PTB-XL's largest is a few MB, a record about 24 kB
    missing_records: str  # error | drop: metadata rows whose record files are absent
    in_place: bool  # folder/ptbxl: read the records where they lie instead of copying them (ecgproto.data.in_place)

    def validate(self):
        _choice("data.source", self.source, ("synthetic", "folder", "ptbxl"))
        _choice("data.missing_records", self.missing_records, ("error", "drop"))
        _at_least("data.synthetic_records", self.synthetic_records, MIN_SYNTHETIC_RECORDS)
        _at_least("data.download_jobs", self.download_jobs, 1)
        _positive("data.download_deadline_s", self.download_deadline_s)
        _positive("data.download_max_mb", self.download_max_mb)
        if self.in_place and self.source == "synthetic":
            raise ConfigError("data.in_place: true applies to data.source folder or ptbxl (a tree that exists "
                              "elsewhere); the synthetic tree is written into data/ptbxl, so set it to false")
        if self.source == "folder" and not self.folder:
            raise ConfigError("data.folder is empty; with data.source: folder it must name a PTB-XL tree")
        if self.source == "ptbxl":
            from ecgproto.files.urls import origin

            try:
                origin(self.ptbxl_url)
            except ValueError as exc:  # the URL, its password masked, and what is wrong
                raise ConfigError(f"data.ptbxl_url: {exc}") from None


@dataclass(frozen=True)
class PrepareParams:
    labels: tuple
    highpass_hz: float
    filter_order: int
    standardize: bool
    train_folds: tuple
    val_folds: tuple
    test_folds: tuple
    skip_bad_records: bool
    pos_weight_max: float  # cap on the BCE pos_weight of a rare class (0: no cap)

    def validate(self):
        unknown = [c for c in self.labels if c not in LABELS]
        repeated = [c for c in LABELS if self.labels.count(c) > 1]
        if unknown or repeated or not self.labels:
            problems = [f"unknown codes {elided(unknown)}"] * bool(unknown) + [f"repeated codes {repeated}"] * bool(
                repeated) or ["no code"]
            raise ConfigError(f"prepare.labels = {elided(list(self.labels))}: {'; '.join(problems)}; allowed codes "
                              f"are {list(LABELS)}, each once")
        if not 0 < self.highpass_hz < 50:
            raise ConfigError(f"prepare.highpass_hz = {self.highpass_hz}: expected 0 < value < 50 (Nyquist at 100 Hz)")
        if not 1 <= self.filter_order <= 8:
            raise ConfigError(f"prepare.filter_order = {self.filter_order}: expected 1-8")
        _at_least("prepare.pos_weight_max", self.pos_weight_max, 0)
        for key in ("train_folds", "val_folds", "test_folds"):
            folds = getattr(self, key)
            if not folds or any(not isinstance(f, int) or not 1 <= f <= 10 for f in folds):
                raise ConfigError(f"prepare.{key} = {list(folds)}: expected a non-empty list of folds 1-10")
        if set(self.train_folds) & (set(self.val_folds) | set(self.test_folds)):
            raise ConfigError("prepare.train_folds overlaps prepare.val_folds or prepare.test_folds; "
                              "training folds must be disjoint from evaluation folds")


@dataclass(frozen=True)
class ModelParams:
    widths: tuple
    depths: tuple
    stem_kernel: int
    input_norm: str  # none | lead (each lead of each ECG to zero mean, unit spread: gain-independent)
    latent_dim: int
    prototypes_per_class: int
    latent_activation: str

    def validate(self):
        if not 1 <= len(self.widths) <= MAX_STAGES or len(self.widths) != len(self.depths):
            raise ConfigError(f"model.widths {elided(list(self.widths))} and model.depths {elided(list(self.depths))}: "
                              f"expected lists of the same length, 1 to {MAX_STAGES} (MAX_STAGES)")
        for key, high in (("widths", MAX_WIDTH), ("depths", MAX_DEPTH)):
            if not all(_integer(v, 1, high) for v in getattr(self, key)):
                raise ConfigError(f"model.{key} = {elided(list(getattr(self, key)))}: expected integers from 1 to "
                                  f"{high} (MAX_{key[:-1].upper()})")
        if not _integer(self.stem_kernel, 1, MAX_STEM_KERNEL) or self.stem_kernel % 2 == 0:
            raise ConfigError(f"model.stem_kernel = {self.stem_kernel}: expected an odd integer from 1 to "
                              f"{MAX_STEM_KERNEL} (MAX_STEM_KERNEL)")
        _between("model.latent_dim", self.latent_dim, 1, MAX_LATENT_DIM, "MAX_LATENT_DIM")
        _between("model.prototypes_per_class", self.prototypes_per_class, 1, MAX_PROTOTYPES_PER_CLASS,
                 "MAX_PROTOTYPES_PER_CLASS")
        _choice("model.latent_activation", self.latent_activation, ("sigmoid", "none"))
        _choice("model.input_norm", self.input_norm, ("none", "lead"))


@dataclass(frozen=True)
class LossParams:
    clst: float
    sep: float
    div: float
    cnrst: float
    l1: float

    def validate(self):
        for f in dataclasses.fields(self):
            _at_least(f"loss.{f.name}", getattr(self, f.name), 0)


@dataclass(frozen=True)
class TrainParams:
    batch_size: int
    lr: float
    weight_decay: float
    max_epochs: int
    patience: int
    crop_samples: int  # random crops of this length while training; full length to evaluate
    shift_samples: int  # random circular shifts of up to this many samples either way while training
    balanced_sampling: bool
    processes: int  # > 1: the training stages run under torchrun, one process per GPU (or CPU share)

    def validate(self):
        _at_least("train.batch_size", self.batch_size, 2)
        _between("train.processes", self.processes, 1, 1024, "processes")
        if self.batch_size % self.processes or self.batch_size // self.processes < 2:
            raise ConfigError(f"train.batch_size = {self.batch_size} over train.processes = {self.processes}: "
                              "expected a batch size that the processes share evenly, at least 2 records each")
        if self.balanced_sampling and self.processes > 1:
            raise ConfigError("train.balanced_sampling = true with train.processes > 1: several processes "
                              "share each epoch by DistributedSampler's shuffle, which cannot weigh records; "
                              "use one or the other")
        _at_least("train.max_epochs", self.max_epochs, 1)
        _at_least("train.patience", self.patience, 1)
        if not 0 < self.lr < 1:
            raise ConfigError(f"train.lr = {self.lr}: expected 0 < lr < 1")
        _at_least("train.weight_decay", self.weight_decay, 0)
        if not 64 <= self.crop_samples <= 1000:
            raise ConfigError(f"train.crop_samples = {self.crop_samples}: expected 64-1000 samples")
        if not 0 <= self.shift_samples <= 500:
            raise ConfigError(f"train.shift_samples = {self.shift_samples}: expected 0-500 samples")


@dataclass(frozen=True)
class JointParams:
    train_last_layer: bool  # false: the last layer stays at its +1/-0.5 initialisation
    # scratch: the backbone learns with the prototype losses. frozen_baseline: the trained backbone of
    # stage `baseline`, kept fixed; the joint stage trains the add-on, prototypes and last layer.
    backbone: str
    lr: float  # the joint stage's own learning rate

    def validate(self):
        _choice("joint.backbone", self.backbone, ("scratch", "frozen_baseline"))
        if not 0 < self.lr < 1:
            raise ConfigError(f"joint.lr = {self.lr}: expected 0 < lr < 1")


@dataclass(frozen=True)
class ProjectParams:
    distinct_sources: bool  # false: each prototype takes its most similar same-class ECG, shared or not
    prune: bool  # true: prototypes without a source ECG of their own leave the last layer


@dataclass(frozen=True)
class ClassifierParams:
    # last_layer: the last layer alone, on fixed similarities (lr, steps). addon: the add-on and the last
    # layer, prototypes tied to their source ECGs, batches and early stopping as in train.*.
    retrain: str
    wrong_class: str  # keep | sparse | zero: the wrong-class last-layer weights (see train.start_classifier_stage)
    lr: float
    steps: int
    addon_lr: float

    def validate(self):
        _choice("classifier.retrain", self.retrain, ("last_layer", "addon"))
        _choice("classifier.wrong_class", self.wrong_class, ("keep", "sparse", "zero"))
        _at_least("classifier.steps", self.steps, 1)
        for key in ("lr", "addon_lr"):
            if not 0 < getattr(self, key) < 10:
                raise ConfigError(f"classifier.{key} = {getattr(self, key)}: expected 0 < {key} < 10")


@dataclass(frozen=True)
class GuardParams:
    """When the model refuses to call a rhythm (ecgproto/trust/guard.py); stored in the final model file."""
    flat_mv: float  # a lead whose wander-free signal spans less than this is flat (or off)
    clip_share: float  # a lead with more than this share of samples at its extreme value is clipped
    noise_ratio: float  # high-frequency (> 35 Hz) over in-band signal power, above which noise swamps the QRS
    familiarity_percentile: float  # below this percentile of the training ECGs' best similarity: unfamiliar
    familiarity_warning_percentile: float  # below this (and above the cut-off): answered, with a warning
    noisy_leads: int  # this many leads with noise over noise_ratio: no reliable call (fewer: a warning)

    def validate(self):
        if not self.familiarity_percentile <= self.familiarity_warning_percentile < 50:
            raise ConfigError(f"guard.familiarity_warning_percentile = {self.familiarity_warning_percentile}: "
                              "expected guard.familiarity_percentile <= value < 50")
        if not 1 <= self.noisy_leads <= 12:
            raise ConfigError(f"guard.noisy_leads = {self.noisy_leads}: expected 1 to 12 leads")
        if not 0 < self.flat_mv < 1:
            raise ConfigError(f"guard.flat_mv = {self.flat_mv}: expected a number between 0 and 1 (mV)")
        for key in ("clip_share", "noise_ratio"):
            if not 0 < getattr(self, key) < 1:
                raise ConfigError(f"guard.{key} = {getattr(self, key)}: expected a number between 0 and 1")
        if not 0 <= self.familiarity_percentile < 50:
            raise ConfigError(f"guard.familiarity_percentile = {self.familiarity_percentile}: expected 0 <= value < 50")


@dataclass(frozen=True)
class TransferParams:
    folder: str  # a real PTB-XL tree the synthetic-trained models are scored on (stage `transfer`); may be absent


@dataclass(frozen=True)
class ExternalParams:
    folder: str  # other hospitals' ECGs in the PhysioNet/CinC Challenge format (stage `external`); may be absent


@dataclass(frozen=True)
class PretrainParams:
    synthetic_records: int  # 0: no pretraining
    synthetic_seed: int     # not data.synthetic_seed: a synthetic demo's test ECGs must not be pretrained on
    max_epochs: int

    def validate(self):
        _at_least("pretrain.synthetic_records", self.synthetic_records, 0)
        _at_least("pretrain.max_epochs", self.max_epochs, 1)
        if 0 < self.synthetic_records < 200:
            raise ConfigError(f"pretrain.synthetic_records = {self.synthetic_records}: expected 0 (off) or at "
                              "least 200 (every fold needs records)")


@dataclass(frozen=True)
class EvaluateParams:
    bootstrap: int
    per_batch_size: int

    def validate(self):
        _at_least("evaluate.bootstrap", self.bootstrap, 1)
        _at_least("evaluate.per_batch_size", self.per_batch_size, 2)


@dataclass(frozen=True)
class ExplainParams:
    codes: tuple
    top_prototypes: int
    max_labels: int
    duplicate_cosine: float  # prototypes more alike than this are shown once, with the number they stand for
    purity_neighbours: int
    max_test_ecgs: int  # the per-ECG interpretability figures on a seeded sample of at most this many; 0: all

    def validate(self):
        unknown = [c for c in self.codes if c not in LABELS]
        if unknown:
            raise ConfigError(f"explain.codes = {elided(list(self.codes))}: unknown codes {elided(unknown)}; "
                              f"allowed: {list(LABELS)}")
        _at_least("explain.top_prototypes", self.top_prototypes, 1)
        _at_least("explain.max_labels", self.max_labels, 1)
        _at_least("explain.purity_neighbours", self.purity_neighbours, 1)
        _at_least("explain.max_test_ecgs", self.max_test_ecgs, 0)
        if not 0 < self.duplicate_cosine <= 1:
            raise ConfigError(f"explain.duplicate_cosine = {self.duplicate_cosine}: expected 0 < value <= 1")


@dataclass(frozen=True)
class Params:
    seed: int
    device: str
    data: DataParams
    prepare: PrepareParams
    model: ModelParams
    loss: LossParams
    train: TrainParams
    joint: JointParams
    project: ProjectParams
    classifier: ClassifierParams
    pretrain: PretrainParams
    guard: GuardParams
    evaluate: EvaluateParams
    transfer: TransferParams
    external: ExternalParams
    explain: ExplainParams

    def validate(self):
        if not 0 <= self.seed < 2 ** 32:
            raise ConfigError(f"seed = {self.seed}: expected 0 <= seed < 2**32 (NumPy's range)")
        _choice("device", self.device.split(":")[0], ("auto", "cpu", "cuda"))
        if self.pretrain.synthetic_records and self.data.source == "synthetic" \
                and self.pretrain.synthetic_seed == self.data.synthetic_seed:
            raise ConfigError(f"pretrain.synthetic_seed = data.synthetic_seed = {self.data.synthetic_seed}: the "
                              "pretraining ECGs would be the demo's own, test fold included; use another seed")
        not_trained = [c for c in self.explain.codes if c not in self.prepare.labels]
        if not_trained:
            raise ConfigError(f"explain.codes {not_trained} are not in prepare.labels {list(self.prepare.labels)}; "
                              "a model can only explain the labels it is trained on")


def _choice(key, value, allowed):
    if value not in allowed:
        raise ConfigError(f"{key} = {elided(value)}: expected one of {list(allowed)}")


def _at_least(key, value, low):
    if value < low:
        raise ConfigError(f"{key} = {elided(value)}: expected at least {low}")


def _integer(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _between(key, value, low: int, high: int, name: str):
    if not _integer(value, low, high):
        raise ConfigError(f"{key} = {elided(value)}: expected an integer from {low} to {high} ({name})")


def _positive(key, value):
    if not value > 0:
        raise ConfigError(f"{key} = {elided(value)}: expected a positive number")


def _looks_like_a_number(text: str) -> bool:
    try:  # Python's float() also takes 1_000; YAML does not, and neither do we
        return "_" not in text and math.isfinite(float(text))
    except ValueError:
        return False


def _convert(key: str, value, annotation):
    """Check one value against its dataclass annotation (dataclass, tuple, bool, int, float, str)."""
    if dataclasses.is_dataclass(annotation):
        return _build(annotation, value, key + ".")
    origin = typing.get_origin(annotation) or annotation
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} = {elided(value)}: expected a list")
        return tuple(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} = {elided(value)}: expected true or false")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} = {elided(value)}: expected an integer")
        return value
    if annotation is float:
        if isinstance(value, str) and _looks_like_a_number(value):  # quoted, or 1e-3 (YAML 1.1: no dot, text)
            raise ConfigError(f"{key} = {elided(value)}: YAML read this as text, not a number (quotes, or an "
                              f"exponent without a dot); write it unquoted, e.g. {float(value):.1e}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} = {elided(value)}: expected a number")
        if not math.isfinite(value):
            raise ConfigError(f"{key} = {elided(value)}: expected a finite number (not NaN or infinity)")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} = {elided(value)}: expected a string")
        return value
    raise TypeError(f"unsupported annotation {annotation} for {key}")


def _build(cls, raw, prefix=""):
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'params'}: expected a mapping, got {elided(raw)}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted((k for k in raw if k not in names), key=str)  # YAML keys may be numbers, null, ...
    if unknown:
        raise ConfigError(f"unknown key(s) {elided([prefix + str(k) for k in unknown])}; allowed: {sorted(names)}")
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in raw]
    if missing:
        raise ConfigError(f"missing key(s) {[prefix + k for k in missing]}: every value lives in params.yaml")
    values = {k: _convert(prefix + k, v, hints[k]) for k, v in raw.items()}
    obj = cls(**values)
    if hasattr(obj, "validate"):
        obj.validate()
    return obj


def from_dict(raw: dict) -> Params:
    return _build(Params, raw)


MAX_NESTING = 32  # params.yaml nests 3 levels; PyYAML's parser has no depth limit and slows down badly


def _refuse_deep_nesting(text: str, path: Path) -> None:
    """Refuse thousands of nested brackets before the YAML parser spends minutes on them."""
    depth = 0
    for n, char in enumerate(text):
        depth += (char in "[{") - (char in "]}")
        if depth > MAX_NESTING:
            line = text.count("\n", 0, n) + 1
            raise ConfigError(f"{path}, line {line}: brackets nested over {MAX_NESTING} deep; not a params file")


def _refuse_aliases(text: str, path: Path) -> None:
    """params.yaml holds each value written out: an anchor (&name) or alias (*name) is refused before anything
    is built from it, so a few lines of aliases nested in aliases (a 'billion laughs') cannot expand into a
    value of billions of items, in memory or in an error message."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            sign = "*" if isinstance(event, yaml.AliasEvent) else "&"
            raise ConfigError(f"{path}, line {event.start_mark.line + 1}: YAML {'alias' if sign == '*' else 'anchor'} "
                              f"{sign}{event.anchor[:40]}: anchors and aliases are not allowed here; "
                              "write each value out")


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML keeps the last of two equal keys without a word; here a repeated key is an error."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, typing.Hashable):
                continue  # SafeLoader refuses it below, with its own message
            if key in seen:
                raise ConfigError(f"line {key_node.start_mark.line + 1}: key {elided(key)} appears twice in "
                                  "one section; keep one")
            seen.add(key)
        return super().construct_mapping(node, deep)


MAX_PARAMS_BYTES = 1 << 20  # params.yaml is a few kB; a larger file is not one


def load(path: Path = Path("params.yaml")) -> Params:
    path = Path(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read, /dev/zero never end it
            raise ConfigError(f"{path}: not a regular file; expected a params YAML file")
        if info.st_size > MAX_PARAMS_BYTES:
            raise ConfigError(f"{path}: {info.st_size} bytes; a params file is at most {MAX_PARAMS_BYTES} bytes")
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NONBLOCK)) as f:
            data = f.read(MAX_PARAMS_BYTES + 1)  # it may have grown since stat
        if len(data) > MAX_PARAMS_BYTES:
            raise ConfigError(f"{path}: over {MAX_PARAMS_BYTES} bytes; a params file is not that large")
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    except OSError as exc:  # a folder, no permission
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} is {data[exc.start:exc.start + 1]!r}); "
                          "save it as UTF-8") from None
    try:
        _refuse_deep_nesting(text, path)
        _refuse_aliases(text, path)
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader that refuses repeated keys)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc)[:400]})") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}, {exc}") from None
    except RecursionError:  # thousands of nested brackets
        raise ConfigError(f"{path}: nested too deeply to be a params file") from None
    try:
        return from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
