"""One interface over the two ways to run a trained model: a PyTorch model file (.pt) or the deployed
ONNX file (.onnx, no PyTorch import). `ecgproto predict` and `explain` use it, so both runtimes give the
same output (tests/test_deploy.py checks the parity)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgproto.errors import ConfigError


def default_model() -> Path:
    """models/final.onnx when it is there beside models/final.pt (no PyTorch import: answers in well under a
    second), else models/final.pt. `explain` and `predict` both start from it."""
    onnx = Path("models/final.onnx")
    return onnx if onnx.is_file() else Path("models/final.pt")


class Runner:
    """meta: labels, preprocessing, calibration, guard, familiarity and, for a prototype model, the last
    layer, prototype classes, sources and near-copy groups (export.metadata's keys). outputs(x) on
    preprocessed ECGs -> {'logits'} and, for a prototype model, 'sims' and 'local' (N, P, T/32)."""

    def __init__(self, meta: dict, outputs, explainable: bool, source_ecgs=None, source_codes=None):
        self.meta, self.outputs, self.explainable = meta, outputs, explainable
        self.labels = meta["labels"]
        self.source_ecgs, self.source_codes = source_ecgs, source_codes  # (P, 12, T) preprocessed, or None

    def active(self) -> np.ndarray:
        return np.asarray([g >= 0 for g in self.meta["groups"]])


def open_model(path: Path, runtime: str = "auto", require_prototypes: bool = False, threads: int = 1,
               expect_sha256: str | None = None) -> Runner:
    """The model file checked (ModelError otherwise), its digest included: with expect_sha256, only the model
    file whose digest that is."""
    path = Path(path)
    if runtime == "auto":
        runtime = "onnx" if path.suffix == ".onnx" else "torch"
    if runtime == "onnx":
        from ecgproto.deploy.onnx_model import DeployedModel

        deployed = DeployedModel(path, threads, expect_sha256)
        return Runner(deployed.meta, deployed.predict, True, deployed.source_ecgs, deployed.source_codes)
    if runtime != "torch":
        raise ConfigError(f"--runtime {runtime!r}: expected auto, torch or onnx")
    return _torch_runner(path, require_prototypes, expect_sha256)


def _torch_runner(path: Path, require_prototypes: bool, expect_sha256: str | None = None) -> Runner:
    from ecgproto.model.checkpoint import load_checkpoint

    model, state = load_checkpoint(path, require_prototypes=require_prototypes, expect_sha256=expect_sha256)
    return runner_from_model(model, state)


def runner_from_model(model, state: dict) -> Runner:
    """A Runner over a loaded PyTorch model and its checkpoint dict (the explain stage's, or a file's)."""
    import torch

    from ecgproto.deploy.export import _Deployable, metadata
    from ecgproto.deploy.onnx_model import batched_outputs

    model = model.eval()
    if state["kind"] != "prototype":
        meta = {"labels": state["labels"], "preprocessing": state["preprocessing"]}

        def logits_only(x, batch_size=256):
            from ecgproto.model.inference import predict

            return predict(model, x, "cpu", batch_size)
        return Runner(meta, logits_only, False)
    deployable = _Deployable(model).eval()
    device = next(model.parameters()).device

    @torch.no_grad()
    def outputs(x, batch_size=256):
        def run(batch):  # a read-only array (a memory map, a slice of one) is copied: torch wants writable memory
            batch = batch if batch.flags.writeable else batch.copy()
            return [t.cpu().numpy() for t in deployable(torch.from_numpy(batch).to(device))]
        return batched_outputs(run, x, batch_size)

    sources = state.get("source_signals")
    return Runner(metadata(model, state), outputs, True,
                  None if sources is None else sources.float().cpu().numpy(), state.get("source_codes"))
