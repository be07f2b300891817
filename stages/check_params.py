"""DVC stage `check_params`: validate the whole of params.yaml (types, ranges, cross-checks, unknown and
missing keys), so that a key no stage reads is still checked by `dvc repro`."""
from _common import run

run("check_params", lambda params: "params.yaml is valid")
