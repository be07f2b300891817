"""How much a model trained on synthetic ECGs is worth on real ones: scored on every record of a real
PTB-XL tree (e.g. ../shared/ptbxl-real-subset) that it never saw. The demo model is synthetic; this says
so with a number."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgproto.data.ptbxl import label_matrix, read_metadata, read_signals
from ecgproto.deploy.preprocessing import preprocess
from ecgproto.errors import RecordError
from ecgproto.evaluation import metrics as evaluation
from ecgproto.model.checkpoint import load_checkpoint
from ecgproto.model.inference import predict


def score(folder: Path, model_files: dict, device, bootstrap: int, seed: int) -> dict:
    """Macro-AUROC (with a bootstrap interval) and per-code AUROC of each model on every readable record
    of `folder`, over the codes that have a positive and a negative there. Unreadable records are left
    out and counted; a folder where no code can be scored raises RecordError."""
    folder = Path(folder)
    metadata = read_metadata(folder)
    millivolts, kept, errors = read_signals(folder, metadata["filename_lr"].tolist(), skip_bad=True)
    metadata = metadata[kept]
    result = {"folder": str(folder), "records": int(len(metadata)), "unreadable_records": len(errors)}
    for name, path in model_files.items():
        model, state = load_checkpoint(Path(path), device)
        labels = list(state["labels"])
        y = label_matrix(metadata, labels)
        if not evaluation.evaluable(y).any():
            raise RecordError(f"{folder}: no code of the model has both a positive and a negative among its "
                              f"{len(y)} readable records; nothing to score")
        probs = predict(model, preprocess(millivolts, state["preprocessing"]), device)["probs"]
        per_code = evaluation.per_label_auroc(y, probs)
        low, high = evaluation.bootstrap_interval(y, probs, bootstrap, seed)
        result[name] = {
            "macro_auroc": round(float(np.nanmean(per_code)), 4), "ci95": [round(low, 4), round(high, 4)],
            "per_code": {c: round(float(a), 4) for c, a in zip(labels, per_code) if np.isfinite(a)},
            "positives": {c: int(n) for c, n in zip(labels, y.sum(0)) if n > 0},
        }
    return result
