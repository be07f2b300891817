"""The deployed model: ONNX export, parity with PyTorch, and the ONNX path never imports PyTorch."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from ecgproto.cli import main
from ecgproto.data.ptbxl import LABELS, read_metadata, read_signals
from ecgproto.deploy.onnx_model import DeployedModel
from ecgproto.deploy.preprocessing import preprocess
from ecgproto.errors import ModelError
from ecgproto.model.checkpoint import save_checkpoint
from ecgproto.model.inference import predict
from ecgproto.model.network import BackboneConfig, ProtoECGNet1D, PrototypeConfig

from conftest import MODEL_META, PARAMS, REPO


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_tree):
    torch.manual_seed(0)
    backbone = BackboneConfig((8, 16), (1, 1), input_norm="lead")  # as params.yaml's model
    model = ProtoECGNet1D(backbone, PrototypeConfig(len(LABELS), 2, 16, "none")).eval()
    with torch.no_grad():
        model.last_layer.weight.normal_()
    model.prototype_source.copy_(torch.arange(100, 100 + len(model.prototypes)))
    model.prototype_pruned[3] = True
    n = len(LABELS)
    calibration = {"slope": [0.7] * n, "intercept": [-0.3] * n, "threshold": [0.4] * n, "fitted": [True] * n,
                   "fitted_on": "validation folds [9]"}
    folder = tmp_path_factory.mktemp("deploy")
    pt, onnx_file = folder / "final.pt", folder / "final.onnx"
    save_checkpoint(pt, model, MODEL_META, calibration=calibration, guard=dataclasses.asdict(PARAMS.guard),
                    familiarity={"quantiles": [float(v) for v in np.linspace(-1, 1, 101)], "percentile": 1.0,
                                 "cutoff": -0.98},
                    explain={"duplicate_cosine": PARAMS.explain.duplicate_cosine},
                    source_signals=torch.randn(len(model.prototypes), 12, 1000).half(),
                    source_codes=["SR"] * len(model.prototypes))
    assert main(["export", str(pt), "--onnx", str(onnx_file)]) == 0
    return model, pt, onnx_file


def test_onnx_logits_equal_pytorch_and_the_calls_are_identical(files, tiny_tree):
    model, _, onnx_file = files
    metadata = read_metadata(tiny_tree)
    test = metadata[metadata["strat_fold"] == 10]
    signals, _, _ = read_signals(tiny_tree, test["filename_lr"].tolist())
    x = preprocess(signals, MODEL_META)
    ours = predict(model, x, "cpu")
    deployed = DeployedModel(onnx_file).predict(x, batch_size=7)  # uneven batches on purpose
    assert len(x) >= 10
    np.testing.assert_allclose(deployed["logits"], ours["logits"], atol=1e-4)
    np.testing.assert_allclose(deployed["sims"], ours["sims"], atol=1e-4)
    assert np.array_equal(deployed["logits"] > 0, ours["logits"] > 0)
    with torch.no_grad():
        local = model.local_similarities(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(deployed["local"], local, atol=1e-4)


def test_explain_and_predict_agree_across_runtimes(files, tiny_tree, tmp_path, capsys):
    _, pt, onnx_file = files
    record = tiny_tree / "records100/00000/00001_lr"
    docs = []
    for model_file in (pt, onnx_file):
        assert main(["explain", str(record), "--model", str(model_file), "--json"]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    assert docs[0]["called"] == docs[1]["called"] and docs[0]["reliable"] == docs[1]["reliable"]
    for a, b in zip(docs[0]["labels"], docs[1]["labels"]):
        assert a["logit"] == pytest.approx(b["logit"], abs=1e-4)
        assert [p["index"] for p in a["prototypes"]] == [p["index"] for p in b["prototypes"]]
        assert 3 not in [p["index"] for p in a["prototypes"]]  # pruned
    tables = []
    for model_file in (pt, onnx_file):
        out = tmp_path / f"{model_file.suffix[1:]}.csv"
        assert main(["predict", str(tiny_tree / "records100"), "--model", str(model_file), "--out", str(out)]) == 0
        tables.append(pd.read_csv(out))
    assert tables[0]["called"].fillna("").tolist() == tables[1]["called"].fillna("").tolist()
    np.testing.assert_allclose(tables[0][list(LABELS)], tables[1][list(LABELS)], atol=1e-4)


def test_the_onnx_path_never_imports_pytorch(files, tiny_tree, tmp_path):
    _, _, onnx_file = files
    record = tiny_tree / "records100/00000/00001_lr"
    code = ("import sys; from ecgproto.cli import main; "
            f"rc = main(['explain', {str(record)!r}, '--model', {str(onnx_file)!r}]); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("record 00001_lr\nmeasured: HR ")


def test_an_onnx_file_without_our_metadata_is_refused(tmp_path, files):
    import onnx

    _, _, onnx_file = files
    graph = onnx.load(str(onnx_file))
    del graph.metadata_props[:]
    onnx.save(graph, str(tmp_path / "bare.onnx"))
    with pytest.raises(ModelError, match="bare.onnx: not an ecgproto ONNX model"):
        DeployedModel(tmp_path / "bare.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="junk.onnx: not a usable ONNX model"):
        DeployedModel(tmp_path / "junk.onnx")


def test_onnx_metadata_that_does_not_fit_the_graph_or_the_codes_is_refused(tmp_path, files):
    import onnx

    _, _, onnx_file = files
    graph = onnx.load(str(onnx_file))
    meta = json.loads(graph.metadata_props[0].value)
    fewer = {**meta, "prototype_class": meta["prototype_class"][:4], "prototype_source": meta["prototype_source"][:4],
             "groups": [0, 1, 2, -1], "last_layer_weight": [row[:4] for row in meta["last_layer_weight"]],
             "source_signals": None}
    for name, doc, message in [("fewer", fewer, "does not match its ecgproto metadata"),
                               ("codes", {**meta, "labels": ["X" + c for c in meta["labels"]]}, "mis-shaped"),
                               ("groups", {**meta, "groups": [999] * len(meta["groups"])}, "mis-shaped")]:
        graph.metadata_props[0].value = json.dumps(doc)
        onnx.save(graph, str(tmp_path / f"{name}.onnx"))
        with pytest.raises(ModelError, match=message):
            DeployedModel(tmp_path / f"{name}.onnx")


def test_the_onnx_file_carries_the_source_ecgs_for_explain_plot(files, tiny_tree, tmp_path):
    _, pt, onnx_file = files
    stored = torch.load(pt, weights_only=True)["source_signals"].float().numpy()
    deployed = DeployedModel(onnx_file)
    np.testing.assert_array_equal(deployed.source_ecgs, stored)
    assert deployed.source_codes == ["SR"] * len(stored)
    figure = tmp_path / "case.png"
    assert main(["explain", str(tiny_tree / "records100/00000/00001_lr"), "--model", str(onnx_file),
                 "--plot", str(figure)]) == 0
    assert figure.read_bytes()[:4] == b"\x89PNG"
