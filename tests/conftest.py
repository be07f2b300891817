import os
from pathlib import Path

import pytest

from ecgproto import config
from ecgproto.ptbxl import LABELS
from ecgproto.synth import generate

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ECGPROTO_SHARED", REPO.parent / "shared"))
SAMPLE = SHARED / "ptbxl-sample"
REAL_SUBSET = SHARED / "ptbxl-real-subset"

PARAMS = config.load(REPO / "params.yaml")  # tests vary it with dataclasses.replace, never a second copy
# what `prepare` stores and a model file carries, for models built in a test
MODEL_META = {"labels": list(LABELS), "highpass_hz": 0.5, "filter_order": 1,
              "scaler": {"mean": [0.0] * 12, "std": [0.5] * 12}}

needs_sample = pytest.mark.skipif(not (SAMPLE / "ptbxl_database.csv").is_file(),
                                  reason=f"real PTB-XL sample not found at {SAMPLE}")


@pytest.fixture(scope="session")
def tiny_tree(tmp_path_factory):
    """A small synthetic PTB-XL tree, written once per test session; tests must not modify it."""
    root = tmp_path_factory.mktemp("synth") / "ptbxl"
    generate(root, 160, 7, PARAMS.data.synthetic_realism)
    return root
