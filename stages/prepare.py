"""DVC stage `prepare`: data/ptbxl -> data/prepared (arrays per split, meta.json) + metrics/data.json."""
from pathlib import Path

from ecgproto.data import prepare
from ecgproto.files.atomic import atomic_dir, write_json

from _common import run


def main(params):
    # all or nothing: the signals are written memory-mapped into a temporary folder, which becomes
    # data/prepared only when everything is there (memory does not grow with the number of ECGs)
    with atomic_dir(Path("data/prepared")) as tmp:
        splits, meta = prepare.prepare(Path("data/ptbxl"), params.prepare, progress=True, out_dir=tmp)
        prepare.check_trainable(splits, meta)  # before anything is kept: later stages would fail or mislead
        prepare.save_small(tmp, splits, meta)
        counts = prepare.label_counts(splits, meta)
        del splits  # the memory maps close before the folder is renamed
    write_json(Path("metrics/data.json"), counts)
    return f"records per split {counts['records']}, skipped {counts['skipped_records']}"


run("prepare", main)
