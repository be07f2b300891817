"""DVC stage `export`: models/final.pt -> models/final.onnx, the deployable model (runs without PyTorch)."""
from pathlib import Path

from ecgproto.deploy.export import export_onnx
from ecgproto.model.checkpoint import load_checkpoint

from _common import run


def main(params):
    model, state = load_checkpoint(Path("models/final.pt"), require_prototypes=True)
    export_onnx(model, state, Path("models/final.onnx"))
    return f"wrote models/final.onnx ({Path('models/final.onnx').stat().st_size / 1e6:.2f} MB)"


run("export", main)
