"""DVC stage `data`: write data/ptbxl (synthetic by default, or a verified copy of a local tree)."""
from pathlib import Path

from _common import run

from ecgproto.datatree import materialise

run("data", lambda params: materialise(Path("data/ptbxl"), params.data, progress=True))
