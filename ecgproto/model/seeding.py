"""Where and how reproducibly a stage runs: seeds for every generator, and the device."""
from __future__ import annotations

import random

import numpy as np
import torch

from ecgproto.errors import ConfigError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device = {name!r}, but PyTorch sees no CUDA device here; use auto or cpu")
    return torch.device(name)
