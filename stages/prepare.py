"""DVC stage `prepare`: data/ptbxl -> data/prepared (arrays per split, meta.json) + metrics/data.json."""
from pathlib import Path

from ecgproto.data import prepare
from ecgproto.files.atomic import write_json

from _common import run


def main(params):
    splits, meta = prepare.prepare(Path("data/ptbxl"), params.prepare, progress=True)
    prepare.check_trainable(splits, meta)  # before anything is written: later stages would fail or mislead
    prepare.save(Path("data/prepared"), splits, meta)
    counts = prepare.label_counts(splits, meta)
    write_json(Path("metrics/data.json"), counts)
    return f"records per split {counts['records']}, skipped {counts['skipped_records']}"


run("prepare", main)
