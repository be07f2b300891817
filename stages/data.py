"""DVC stage `data`: write data/ptbxl (synthetic by default, or a verified copy of a local tree)."""
from pathlib import Path

from ecgproto.data.source import materialise

from _common import run

run("data", lambda params: materialise(Path("data/ptbxl"), params.data, progress=True))
