"""Named recipes: small files of overrides beside params.yaml's one set of values (ecgproto/recipes/).
A recipe never repeats a value params.yaml already holds."""
from __future__ import annotations

import dataclasses
import json
from importlib import resources

import yaml

from ecgproto.config import Params, from_dict
from ecgproto.errors import ConfigError


def overrides(name: str) -> dict:
    """{dotted key: value} of the recipe `name` (e.g. 'published'): a name from ecgproto/recipes, never a path."""
    folder = resources.files("ecgproto").joinpath("recipes")
    known = sorted(f.name[:-len(".yaml")] for f in folder.iterdir() if f.name.endswith(".yaml"))
    if name not in known:
        raise ConfigError(f"recipe {name!r}: expected one of {known} (a recipe is a name, not a path)")
    text = folder.joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    values = yaml.safe_load(text)
    if not isinstance(values, dict) or not values:
        raise ConfigError(f"recipe {name!r}: expected a mapping of dotted params.yaml keys to values")
    return values


def apply(params: Params, name: str) -> Params:
    """params with the recipe's overrides, validated like params.yaml itself."""
    raw = dataclasses.asdict(params)
    for key, value in overrides(name).items():
        *path, last = key.split(".")
        node = raw
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or last not in node:
            raise ConfigError(f"recipe {name!r}: {key} is not a params.yaml key")
        node[last] = value
    return from_dict(raw)


def published_size_model(params: Params):
    """The published rhythm branch's architecture (ResNet-18, 512-d latent) with params.yaml's other
    model values, for size and speed comparisons."""
    from ecgproto.model.network import prototype_model

    published = apply(params, "published")
    return prototype_model(published.model, len(published.prepare.labels))


def dvc_args(name: str) -> str:
    """The recipe as `dvc exp run` arguments: -S key=value, values in YAML flow style without spaces."""
    return " ".join(f"-S {key}={json.dumps(value, separators=(',', ':'))}" for key, value in overrides(name).items())
