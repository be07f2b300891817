"""Export the final prototype model to ONNX, for a clinic that runs it without PyTorch (deployed.py).

The ONNX graph takes the preprocessed ECG (N, 12, T): zero-phase filtering is not a graph operation,
so the filter and scaler travel as metadata and preprocessing.py applies them (NumPy/SciPy). Outputs:
logits (N, C), similarities (N, P) and the per-time-step similarities (N, P, T/32) that say where each
prototype matches. Everything else an explanation needs (labels, last-layer weights, prototype sources,
near-copy groups, calibration, guard) is plain JSON metadata: an ONNX file holds no code to run. The
file carries its own digest (onnx_model.seal), which `ecgproto export` prints.
"""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import torch
from torch import nn

from ecgproto.deploy.onnx_model import DIGEST_PROP, FORMAT, UNSEALED, seal
from ecgproto.files.atomic import atomic_path
from ecgproto.trust.cases import duplicate_groups

OUTPUTS = ("logits", "similarities", "local_similarities")


class _Deployable(nn.Module):
    """The prototype model with the backbone run once for both the pooled and the per-step outputs."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        m = self.model
        feature_map = m.backbone(x)
        sims = m.similarities(m.addon(feature_map.mean(dim=-1)))
        local = m.similarities(m.addon(feature_map.transpose(1, 2))).transpose(1, 2)
        return m.last_layer(sims), sims, local


def metadata(model, state: dict) -> dict:
    labels = state["labels"]
    classes = model.prototype_class.tolist()
    if any(not 0 <= c < len(labels) for c in classes):  # a damaged model file: refused by name, no IndexError
        from ecgproto.errors import ModelError

        raise ModelError(f"prototype classes {sorted(set(classes))[:8]} do not index the model's {len(labels)} "
                         "labels; the model file is damaged")
    return {"format": FORMAT, "labels": labels, "preprocessing": state["preprocessing"],
            "last_layer_weight": model.last_layer.weight.detach().cpu().tolist(),
            "prototype_class": [labels[c] for c in model.prototype_class.tolist()],
            "prototype_source": model.prototype_source.tolist(),
            "groups": duplicate_groups(model, state.get("explain", {}).get("duplicate_cosine", 1.1)),
            "calibration": state.get("calibration"), "guard": state.get("guard"),
            "familiarity": state.get("familiarity"), "cooccurrence": state.get("cooccurrence"),
            "provenance": state.get("provenance"), **_sources(state)}


def _sources(state: dict) -> dict:
    """The prototypes' source ECGs (preprocessed, float16, base64) and their codes, when the model has them."""
    signals = state.get("source_signals")
    if signals is None:
        return {}
    array = signals.to(torch.float16).cpu().numpy()
    return {"source_signals": {"shape": list(array.shape),
                               "float16_base64": base64.b64encode(array.tobytes()).decode()},
            "source_codes": state.get("source_codes")}


def onnx_bytes(model, n_samples: int = 1000) -> bytes:
    """The model's graph as ONNX (any batch size), without metadata."""
    model = model.cpu().eval()
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(_Deployable(model), (torch.zeros(1, 12, n_samples),), buffer, input_names=["ecg"],
                          output_names=list(OUTPUTS), opset_version=17, dynamo=False,
                          dynamic_axes={"ecg": {0: "batch"}, **{o: {0: "batch"} for o in OUTPUTS}})
    return buffer.getvalue()


def export_onnx(model, state: dict, out: Path, n_samples: int = 1000) -> str:
    """Write the model to `out` (atomically) as ONNX with its metadata and digest; returns the digest."""
    import onnx

    graph = onnx.load_from_string(onnx_bytes(model, n_samples))
    meta = metadata(model, state)
    onnx.helper.set_model_props(graph, {"ecgproto": json.dumps(meta, allow_nan=False), DIGEST_PROP: UNSEALED})
    onnx.checker.check_model(graph)
    data, digest = seal(graph.SerializeToString())
    with atomic_path(Path(out)) as tmp:
        tmp.write_bytes(data)
    return digest
