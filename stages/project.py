"""DVC stage `project`: prototypes -> latent vectors of similar same-class training ECGs (distinct ones
with project.distinct_sources); with project.prune, prototypes without an ECG of their own leave the
last layer."""
import csv
from pathlib import Path

from ecgproto.data.prepare import load_meta, load_split
from ecgproto.files.atomic import atomic_path
from ecgproto.model.checkpoint import load_checkpoint, save_checkpoint
from ecgproto.model.inference import latents
from ecgproto.model.projection import project, prune

from _common import run, seeded_device


def main(params):
    dev = seeded_device(params)
    meta = load_meta("data/prepared")
    train = load_split("data/prepared", "train")
    model, state = load_checkpoint(Path("models/joint.pt"), dev)
    rows = project(model, latents(model, train.signals, dev), train.labels, train.ecg_ids, meta["labels"],
                   params.project.distinct_sources)
    sources = [r["source_ecg_id"] for r in rows]
    pruned = prune(model) if params.project.prune else [False] * len(rows)
    for row, p in zip(rows, pruned):
        row["pruned"] = p
    with atomic_path(Path("models/projection.csv")) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    save_checkpoint(Path("models/projected.pt"), model, meta)
    unprojected = sum(s < 0 for s in sources)
    return (f"projected {len(rows) - unprojected} prototypes onto {len(set(s for s in sources if s >= 0))} "
            f"distinct training ECGs; {unprojected} left unprojected (class without training positive); "
            f"{sum(pruned)} pruned, {len(rows) - sum(pruned)} remain")


run("project", main)
