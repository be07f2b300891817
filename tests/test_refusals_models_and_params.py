"""Hostile and careless input, third round (#24): a model file carries the digest of its weights and
metadata and an edited one is refused; a model file cannot ask for gigabytes or carry a calibration, source
ECGs or familiarity that contradict themselves; downloads follow redirects only to the base URL's own scheme
and host; params.yaml cannot explode (aliases), hide its encoding or repeat a label; the cross-validation
results are read only in the shape they are written. Each case ends in a named refusal (the CLI: exit 1, no
traceback, nothing written) or in the right answer."""
import base64
import dataclasses
import json
import logging
import threading
import time
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from ecgproto import config
from ecgproto.cli import main as cli
from ecgproto.data.download import DownloadError, Limits, download, fetch_with_retries
from ecgproto.data.ptbxl import LABELS, N_SAMPLES, write_record
from ecgproto.deploy.onnx_model import DIGEST_PROP, DeployedModel
from ecgproto.errors import ConfigError, ModelError
from ecgproto.model import checkpoint
from ecgproto.model.checkpoint import load_checkpoint, model_digest, save_checkpoint
from ecgproto.model.network import (
    BackboneConfig,
    LinearHeadNet,
    ProtoECGNet1D,
    PrototypeConfig,
    build,
    config_problem,
    count_parameters,
    parameter_count,
)
from ecgproto.tools import crossval
from ecgproto.tools.physionet_server import Faults, LocalPhysioNet, _Handler
from ecgproto.trust.guard import familiarity_reference, malformed

from conftest import PARAMS, REPO

META = {"labels": list(LABELS), "highpass_hz": 0.5, "filter_order": 1,
        "scaler": {"mean": [0.0] * 12, "std": [1.0] * 12}}
N = len(LABELS)
CALIBRATION = {"slope": [0.7] * N, "intercept": [-0.3] * N, "threshold": [0.4] * N, "fitted": [True] * N,
               "fitted_on": "validation folds [9]"}
FAMILIARITY = {"quantiles": [round(float(v), 6) for v in np.linspace(-1, 1, 101)], "percentile": 1.0, "cutoff": -0.98}


def _model(seed=0):
    torch.manual_seed(seed)
    return ProtoECGNet1D(BackboneConfig((8,), (1,)), PrototypeConfig(N, 1, 8, "none")).eval()


def _save(path, model=None, **extra):
    save_checkpoint(path, model or _model(), META, **extra)
    return path


def _edit(path, change):
    """Load a model file as plain data, change it in place with `change(state)`, write it back."""
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)
    return path


def _record(folder, name="rec"):
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(1000) / 100
    mv = 0.05 * np.random.default_rng(0).standard_normal((12, 1000))
    mv[:, (np.arange(1000) % 80) < 3] += 1.0
    write_record(folder / name, mv + 0.1 * np.sin(t))
    return folder / name


def _refused(capsys, args, *expected):
    """The CLI refuses with exit 1, a one-line named error and no traceback; returns what it printed."""
    assert cli(args) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"ecgproto {args[0]}: error: " in err
    for text in expected:
        assert text in err, err
    return err


# --- 1. the model-file digest ------------------------------------------------------------------------------

def test_a_model_file_carries_a_deterministic_digest_and_the_same_bytes_for_the_same_model(tmp_path):
    a = _save(tmp_path / "a.pt", source_signals=torch.randn(N, 12, N_SAMPLES).half(), source_codes=["SR"] * N)
    sources = torch.load(a, weights_only=True)["source_signals"]
    b = _save(tmp_path / "b.pt", source_signals=sources, source_codes=["SR"] * N)
    assert a.read_bytes() == b.read_bytes()  # DVC caching relies on it
    _, state = load_checkpoint(a)
    assert len(state["sha256"]) == 64 and state["sha256"] == model_digest(state)
    other = _save(tmp_path / "c.pt", _model(seed=1))
    assert torch.load(other, weights_only=True)["sha256"] != state["sha256"]


def _swap_labels(state):
    state["labels"] = [state["labels"][1], state["labels"][0], *state["labels"][2:]]


def _nudge_weight(state):
    state["state_dict"]["prototypes"][0, 0] += 1e-3


def _move_threshold(state):
    state["calibration"]["threshold"][0] = 0.41


@pytest.mark.parametrize("change", [_swap_labels, _nudge_weight, _move_threshold,
                                    lambda s: s.update(sha256="0" * 64), lambda s: s.update(sha256=12345),
                                    lambda s: s.update(best_epoch=99)],
                         ids=["labels swapped", "a weight changed", "a threshold moved", "digest zeroed",
                              "digest not text", "an entry added"])
def test_an_edited_model_file_is_refused_by_its_digest(tmp_path, capsys, change):
    path = _edit(_save(tmp_path / "m.pt", calibration=json.loads(json.dumps(CALIBRATION))), change)
    with pytest.raises(ModelError, match="m.pt: digest does not match: edited or damaged"):
        load_checkpoint(path)
    rec = _record(tmp_path / "in")
    _refused(capsys, ["predict", str(rec), "--model", str(path), "--out", str(tmp_path / "p.csv")],
             "digest does not match: edited or damaged")
    assert not (tmp_path / "p.csv").exists()


def test_a_model_file_from_before_digests_loads_with_a_warning_but_never_where_one_is_expected(tmp_path, caplog,
                                                                                                capsys):
    path = _edit(_save(tmp_path / "old.pt"), lambda s: s.pop("sha256"))
    with caplog.at_level(logging.WARNING):
        load_checkpoint(path)
    assert "no digest (a model file from before digests): its weights and metadata are not verified" in caplog.text
    rec = _record(tmp_path / "in")
    _refused(capsys, ["predict", str(rec), "--model", str(path), "--out", str(tmp_path / "p.csv"),
                      "--expect-sha256", "a" * 64], "has no digest", "cannot be checked against --expect-sha256")
    assert not (tmp_path / "p.csv").exists()


def test_expect_sha256_runs_that_model_only(tmp_path, capsys):
    path = _save(tmp_path / "m.pt")
    digest = torch.load(path, weights_only=True)["sha256"]
    rec = _record(tmp_path / "in")
    out = tmp_path / "p.csv"
    assert cli(["predict", str(rec), "--model", str(path), "--out", str(out), "--expect-sha256", digest.upper()]) == 0
    assert out.is_file()
    other = _save(tmp_path / "other.pt", _model(seed=1))
    _refused(capsys, ["predict", str(rec), "--model", str(other), "--out", str(tmp_path / "q.csv"),
                      "--expect-sha256", digest], f"is not the expected {digest} (--expect-sha256)")
    _refused(capsys, ["explain", str(rec), "--model", str(other), "--plot", str(tmp_path / "x.png"),
                      "--expect-sha256", digest], "(--expect-sha256)")
    assert not (tmp_path / "q.csv").exists() and not (tmp_path / "x.png").exists()
    for bad in ("abc", "g" * 64, digest + "0"):
        with pytest.raises(SystemExit) as info:
            cli(["predict", str(rec), "--model", str(path), "--out", str(out), "--expect-sha256", bad])
        assert info.value.code == 2
    assert "expected a SHA-256 digest, 64 hexadecimal characters" in capsys.readouterr().err


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A guarded prototype model with its source ECGs, as .pt and as exported .onnx, with the digest printed."""
    folder = tmp_path_factory.mktemp("exported")
    pt, onnx_file = folder / "final.pt", folder / "final.onnx"
    _save(pt, calibration=CALIBRATION, guard=dataclasses.asdict(PARAMS.guard), familiarity=FAMILIARITY,
          source_signals=torch.randn(N, 12, N_SAMPLES).half(), source_codes=["SR"] * N)
    return pt, onnx_file


def _export(exported, capsys):
    pt, onnx_file = exported
    if not onnx_file.exists():
        assert cli(["export", str(pt), "--onnx", str(onnx_file)]) == 0
        printed = capsys.readouterr().out
        digest = printed.split("digest (sha256 of its weights and metadata) ")[1][:64]
        onnx_file.with_suffix(".digest").write_text(digest)
    return onnx_file, onnx_file.with_suffix(".digest").read_text()


def test_export_prints_the_digest_that_explain_and_predict_can_expect(exported, tmp_path, capsys):
    onnx_file, digest = _export(exported, capsys)
    assert DeployedModel(onnx_file, expect_sha256=digest).sha256 == digest
    rec = _record(tmp_path / "in")
    assert cli(["explain", str(rec), "--model", str(onnx_file), "--expect-sha256", digest]) == 0
    assert cli(["predict", str(rec), "--model", str(onnx_file), "--out", str(tmp_path / "p.csv"),
                "--expect-sha256", digest]) == 0
    capsys.readouterr()
    _refused(capsys, ["predict", str(rec), "--model", str(onnx_file), "--out", str(tmp_path / "q.csv"),
                      "--expect-sha256", "0" * 64], "(--expect-sha256)")
    # the same model exported again: the same digest
    again = tmp_path / "again.onnx"
    assert cli(["export", str(exported[0]), "--onnx", str(again)]) == 0
    assert digest in capsys.readouterr().out


def _onnx_edit(onnx_file, out, change):
    import onnx

    graph = onnx.load(str(onnx_file))
    change(graph)
    onnx.save(graph, str(out))
    return out


def _props(graph):
    return {p.key: p for p in graph.metadata_props}


def _swap_onnx_labels(graph):
    meta = json.loads(_props(graph)["ecgproto"].value)
    meta["labels"][0], meta["labels"][1] = meta["labels"][1], meta["labels"][0]
    _props(graph)["ecgproto"].value = json.dumps(meta)


def _nudge_onnx_weight(graph):
    from onnx import numpy_helper

    init = max(graph.graph.initializer, key=lambda t: len(t.raw_data))
    array = numpy_helper.to_array(init).copy()
    array.flat[0] += 1e-3
    init.CopyFrom(numpy_helper.from_array(array, init.name))


def _garble_digest(graph):
    _props(graph)[DIGEST_PROP].value = "not a digest"


@pytest.mark.parametrize("change", [_swap_onnx_labels, _nudge_onnx_weight, _garble_digest],
                         ids=["labels swapped in the metadata", "a weight changed", "digest not hex"])
def test_an_edited_onnx_file_is_refused_by_its_digest(exported, tmp_path, capsys, change):
    onnx_file, _ = _export(exported, capsys)
    edited = _onnx_edit(onnx_file, tmp_path / "edited.onnx", change)
    with pytest.raises(ModelError, match="edited.onnx: digest does not match: edited or damaged"):
        DeployedModel(edited)
    rec = _record(tmp_path / "in")
    _refused(capsys, ["explain", str(rec), "--model", str(edited)], "digest does not match")


def test_an_onnx_file_exported_before_digests_warns_and_cannot_be_expected(exported, tmp_path, capsys, caplog):
    onnx_file, digest = _export(exported, capsys)

    def drop(graph):
        kept = [p for p in graph.metadata_props if p.key != DIGEST_PROP]
        del graph.metadata_props[:]
        graph.metadata_props.extend(kept)
    old = _onnx_edit(onnx_file, tmp_path / "old.onnx", drop)
    with caplog.at_level(logging.WARNING):
        assert DeployedModel(old).sha256 is None
    assert "no digest (exported before digests): its weights and metadata are not verified" in caplog.text
    with pytest.raises(ModelError, match="old.onnx: has no digest"):
        DeployedModel(old, expect_sha256=digest)


# --- 2. bounded architecture, calibration, source ECGs, familiarity ----------------------------------------

def _raw_model_file(path, config, kind="prototype"):
    """A model file of a few bytes whose architecture asks for whatever `config` says."""
    torch.save({"kind": kind, "config": config, "state_dict": {}, "labels": list(LABELS),
                "preprocessing": {k: META[k] for k in ("highpass_hz", "filter_order", "scaler")}}, path)
    return path


def _config(**changes):
    backbone = {"widths": [8], "depths": [1], "stem_kernel": 7, "input_norm": "none"}
    proto = {"n_classes": N, "prototypes_per_class": 1, "latent_dim": 8, "latent_activation": "none"}
    for key, value in changes.items():
        (backbone if key in backbone else proto)[key] = value
    return {"backbone": backbone, "prototype": proto}


@pytest.mark.parametrize("changes, message", [
    ({"widths": [40000]}, "config.backbone.widths = [40000]: expected 1 to 8 integers from 1 to 2048"),
    ({"widths": [8] * 9, "depths": [1] * 9}, "expected 1 to 8 integers"),
    ({"widths": ["8"]}, "config.backbone.widths = ['8']"),
    ({"widths": [True]}, "config.backbone.widths = [True]"),
    ({"depths": [10 ** 6]}, "config.backbone.depths = [1000000]: expected an integer from 1 to 16 for each of the 1"),
    ({"depths": [1, 1]}, "for each of the 1 widths"),
    ({"stem_kernel": 10 ** 6 + 1}, "config.backbone.stem_kernel = 1000001: expected an odd integer from 1 to 63"),
    ({"stem_kernel": 8}, "config.backbone.stem_kernel = 8"),
    ({"latent_dim": 10 ** 6}, "config.prototype.latent_dim = 1000000: expected an integer from 1 to 4096"),
    ({"prototypes_per_class": 10 ** 5}, "config.prototype.prototypes_per_class = 100000: expected an integer from 1"),
    ({"n_classes": 10 ** 4}, "config.prototype.n_classes = 10000: expected an integer from 1 to 16"),
    ({"latent_activation": "gelu"}, "config.prototype.latent_activation = 'gelu'"),
    ({"input_norm": ["lead"]}, "config.backbone.input_norm = ['lead']"),
    ({"widths": [2048] * 8, "depths": [16] * 8}, "weights (widths [2048, 2048"),
])
def test_a_model_file_asking_for_a_huge_or_malformed_architecture_is_refused_before_anything_is_built(
        tmp_path, monkeypatch, capsys, changes, message):
    def never(*args):
        raise AssertionError("built")
    monkeypatch.setattr(checkpoint, "build", never)
    path = _raw_model_file(tmp_path / "huge.pt", _config(**changes))
    start = time.monotonic()
    with pytest.raises(ModelError, match="huge.pt: .*refused before anything is built") as info:
        load_checkpoint(path)
    assert message in str(info.value) and len(str(info.value)) < 400
    assert time.monotonic() - start < 5
    monkeypatch.undo()
    _refused(capsys, ["predict", str(_record(tmp_path / "in")), "--model", str(path), "--out",
                      str(tmp_path / "p.csv")], message)


@pytest.mark.parametrize("kind, config", [
    ("resnet", _config()), (["prototype"], _config()), ("linear", _config()),
    ("prototype", {"backbone": [8], "prototype": {}}), ("prototype", {**_config(), "extra": 1}),
    ("linear", {"backbone": _config()["backbone"], "n_classes": 0}),
    ("prototype", {"backbone": {"widths": [8], "depths": [1], "dilation": 4}, "prototype": _config()["prototype"]}),
])
def test_a_model_file_with_an_unknown_kind_or_keys_is_refused_by_name(tmp_path, kind, config):
    path = _raw_model_file(tmp_path / "odd.pt", config, kind)
    with pytest.raises(ModelError, match="odd.pt: .*expected.*refused before anything is built"):
        load_checkpoint(path)


def test_the_bounds_are_config_pys_for_params_yaml_and_model_files_alike():
    """One set of numbers: the largest width params.yaml accepts is the largest a model file may ask for."""
    widest = {"backbone": {"widths": [config.MAX_WIDTH], "depths": [1]}, "n_classes": N}
    assert config_problem("linear", widest) is None
    wider = {"backbone": {"widths": [config.MAX_WIDTH + 1], "depths": [1]}, "n_classes": N}
    assert "MAX_WIDTH" in config_problem("linear", wider)
    model = dataclasses.replace(PARAMS.model, widths=(config.MAX_WIDTH,), depths=(1,))
    model.validate()
    for key, value, name in (("widths", (config.MAX_WIDTH + 1,), "MAX_WIDTH"), ("depths", (config.MAX_DEPTH + 1,),
                             "MAX_DEPTH"), ("latent_dim", config.MAX_LATENT_DIM + 1, "MAX_LATENT_DIM"),
                             ("prototypes_per_class", config.MAX_PROTOTYPES_PER_CLASS + 1, "MAX_PROTOTYPES_PER_CLASS"),
                             ("stem_kernel", config.MAX_STEM_KERNEL + 2, "MAX_STEM_KERNEL")):
        changed = {"widths": (8,), "depths": (1,), key: value}
        with pytest.raises(ConfigError, match=f"model.{key} = .*{name}"):
            dataclasses.replace(PARAMS.model, **changed).validate()
    published = {"backbone": {"widths": [64, 128, 256, 512], "depths": [2, 2, 2, 2]},
                 "prototype": {"n_classes": N, "prototypes_per_class": 5, "latent_dim": 512,
                               "latent_activation": "sigmoid"}}
    assert config_problem("prototype", published) is None


@pytest.mark.parametrize("kind, cfg", [
    ("prototype", _config(widths=[8, 16, 24], depths=[2, 1, 3], stem_kernel=5, latent_dim=12,
                          prototypes_per_class=3)),
    ("prototype", _config(widths=[16, 8], depths=[1, 2], stem_kernel=1)),
    ("linear", {"backbone": {"widths": [8, 8], "depths": [1, 2]}, "n_classes": 7}),
])
def test_the_weights_are_counted_exactly_without_building(kind, cfg):
    assert parameter_count(kind, cfg) == count_parameters(build(kind, cfg))
    assert count_parameters(LinearHeadNet(BackboneConfig((8,), (1,)), 3)) == parameter_count(
        "linear", {"backbone": {"widths": [8], "depths": [1]}, "n_classes": 3})


@pytest.mark.parametrize("calibration, message", [
    ({**CALIBRATION, "fitted": "yes"}, "fitted is not a list of true/false"),
    ({**CALIBRATION, "fitted": [1] * N}, "fitted is not a list of true/false"),
    ({**CALIBRATION, "threshold": ["0.4"] * N}, "not a list of finite numbers, one per label"),
    ({**CALIBRATION, "slope": [0.7] * (N - 1)}, "not a list of finite numbers, one per label"),
    ({**CALIBRATION, "intercept": [float("nan")] * N}, "not a list of finite numbers"),
    ({**CALIBRATION, "threshold": [1.0] * N}, "a threshold outside (0, 1)"),
    ({**CALIBRATION, "positives": [-1] * N}, "positives is not a list of counts"),
    ({**CALIBRATION, "fitted_on": ["x"] * 100000}, "fitted_on is not text"),
    ({**CALIBRATION, "extra": "x" * 100000}, "has the keys"),
    ({k: v for k, v in CALIBRATION.items() if k != "slope"}, "has the keys"),
    (list(range(100000)), "is a list, not a mapping"),
])
def test_a_malformed_calibration_is_refused_by_name_with_a_short_message(tmp_path, capsys, calibration, message):
    path = _save(tmp_path / "cal.pt", calibration=calibration)
    with pytest.raises(ModelError, match="cal.pt: calibration ") as info:
        load_checkpoint(path)
    assert message in str(info.value) and len(str(info.value)) < 500
    _refused(capsys, ["explain", str(_record(tmp_path / "in")), "--model", str(path)], "calibration")


@pytest.mark.parametrize("signals, message", [
    (torch.zeros(N, 12, 10), f"source_signals ([{N}, 12, 10] torch.float32; expected finite numbers of shape [{N}, 12, "
                             "1000]"),
    (torch.zeros(N, 12, N_SAMPLES, dtype=torch.int16), "source_signals"),
    (torch.full((N, 12, N_SAMPLES), float("nan")), "source_signals"),
    (torch.zeros(N + 1, 12, N_SAMPLES), f"source_signals ([{N + 1}, 12, 1000]"),
    ([[0.0]] * N, "source_signals (list;"),
])
def test_source_ecgs_of_another_shape_are_refused_by_name(tmp_path, capsys, signals, message):
    path = _save(tmp_path / "src.pt", source_signals=signals, source_codes=["SR"] * N)
    with pytest.raises(ModelError, match="src.pt: malformed") as info:
        load_checkpoint(path)
    assert message in str(info.value)
    _refused(capsys, ["explain", str(_record(tmp_path / "in")), "--model", str(path)], "source_signals")


@pytest.mark.parametrize("stored, why", [
    ({"shape": [N, 12, 10 ** 9], "float16_base64": "AAAA"}, "a claim of a huge array"),
    ({"shape": [str(N), "12", "1000"], "float16_base64": None}, "numbers as text"),
    ({"shape": [N, 12, N_SAMPLES], "float16_base64": "AAAA"}, "too little data"),
    ({"shape": [N, 12, N_SAMPLES], "float16_base64": "!" * (4 * -(-N * 12 * N_SAMPLES * 2 // 3))}, "not base64"),
    ([1, 2, 3], "not an object"),
])
def test_onnx_source_ecgs_are_checked_before_they_are_decoded(exported, tmp_path, capsys, monkeypatch, stored, why):
    onnx_file, _ = _export(exported, capsys)

    def change(graph):
        meta = json.loads(_props(graph)["ecgproto"].value)
        meta["source_signals"] = stored
        _props(graph)["ecgproto"].value = json.dumps(meta)
    bad = _onnx_edit(onnx_file, tmp_path / "src.onnx", change)
    decoded = []
    real = base64.b64decode
    monkeypatch.setattr(base64, "b64decode", lambda *a, **k: decoded.append(1) or real(*a, **k))
    with pytest.raises(ModelError, match=rf"src.onnx: malformed source ECGs .*shape \[{N}, 12, 1000\]"):
        DeployedModel(bad)
    if why != "not base64":
        assert not decoded, why


def test_a_familiarity_cutoff_that_contradicts_its_percentile_is_refused():
    q = FAMILIARITY["quantiles"]
    assert malformed(None, FAMILIARITY, None, N) == []
    for cutoff in (0.0, q[1] + 2e-6, q[2], q[0]):  # among the quantiles, but not at percentile 1
        assert malformed(None, {**FAMILIARITY, "cutoff": cutoff}, None, N), cutoff
    assert malformed(None, {**FAMILIARITY, "cutoff": q[1] + 1e-6}, None, N) == []  # rounding to 6 decimals
    rng = np.random.default_rng(0)
    for percentile in (2.5, 0.5, 33.3):  # between whole percentiles: between the two stored quantiles
        reference = familiarity_reference(rng.random(5000), percentile)
        assert malformed(None, reference, None, N) == []
        high = reference["quantiles"][int(percentile) + 1]
        assert malformed(None, {**reference, "cutoff": high + 1e-3}, None, N)


def test_a_model_file_whose_familiarity_cutoff_moved_is_refused_at_load(tmp_path, capsys):
    path = _save(tmp_path / "fam.pt", guard=dataclasses.asdict(PARAMS.guard),
                 familiarity={**FAMILIARITY, "cutoff": -0.5})  # would call most ECGs unfamiliar
    with pytest.raises(ModelError, match="fam.pt: malformed familiarity"):
        load_checkpoint(path)
    _refused(capsys, ["explain", str(_record(tmp_path / "in")), "--model", str(path)], "malformed familiarity")


def test_an_oversized_model_file_is_refused_before_it_is_read(tmp_path, monkeypatch, capsys):
    path = _save(tmp_path / "big.pt")
    with open(path, "r+b") as f:
        f.truncate(config.MAX_MODEL_FILE_BYTES + 1)  # sparse: no disk used
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("read"))
    with pytest.raises(ModelError, match="big.pt: .* MiB, over the .* refused before reading it"):
        load_checkpoint(path)
    big = tmp_path / "big.onnx"
    big.write_bytes(b"")
    with open(big, "r+b") as f:
        f.truncate(config.MAX_MODEL_FILE_BYTES + 1)
    with pytest.raises(ModelError, match="big.onnx: .* refused before reading it"):
        DeployedModel(big)


# --- 3. downloads: redirects to the base URL's own scheme and host only ------------------------------------

class _Redirector(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.asked.append(self.path)
        self.send_response(302)
        self.send_header("Location", self.server.to(self.path))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _serve(handler, **attributes):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    for key, value in attributes.items():
        setattr(server, key, value)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def real_server(tiny_tree):
    s = LocalPhysioNet(tiny_tree)
    yield s
    s.stop()


@pytest.mark.parametrize("target", ["other server", "file", "ftp", "https on the same host"])
def test_a_redirect_away_from_the_base_url_fails_naming_both_urls(real_server, tmp_path, target):
    redirector, origin = _serve(_Redirector, asked=[], to=None)
    port = redirector.server_port
    redirector.to = {"other server": lambda path: real_server.url + path.rsplit("/", 1)[1],
                     "file": lambda path: "file:///etc/passwd",
                     "ftp": lambda path: f"ftp://127.0.0.1:{port}/x",
                     "https on the same host": lambda path: f"https://127.0.0.1:{port}{path}"}[target]
    base = f"{origin}/files/ptb-xl/1.0.3/"
    try:
        with pytest.raises(DownloadError) as info:
            download(tmp_path / "dl", base, limits=Limits(retries=2, backoff=0.01))
    finally:
        redirector.shutdown()
        redirector.server_close()
    message = str(info.value)
    assert f"the server redirects {base}SHA256SUMS.txt to " in message and "refusing to follow it" in message
    assert redirector.to("/x/SHA256SUMS.txt")[:20] in message
    assert len(redirector.asked) == 1  # refused at once, never retried
    assert not real_server.faults.requests  # nothing fetched from the other server
    assert not (tmp_path / "dl" / "SHA256SUMS.txt").exists()


class _MovedHere(_Handler):
    """The tree under /files/ptb-xl/1.0.3/, and /old/... redirected to it on the same host; one record sent
    to another server."""

    def do_GET(self):
        if self.path.startswith("/old/"):
            self.send_response(301)
            self.send_header("Location", "/files/ptb-xl/1.0.3/" + self.path[len("/old/"):])
            self.end_headers()
            return
        if self.path.endswith("00002_lr.dat") and self.server.elsewhere:
            self.send_response(302)
            self.send_header("Location", self.server.elsewhere)
            self.end_headers()
            return
        super().do_GET()


def test_a_redirect_on_the_same_host_is_followed_and_one_elsewhere_fails_that_file_only(tiny_tree, real_server,
                                                                                       tmp_path):
    handler = partial(_MovedHere, faults=Faults(), prefix="/files/ptb-xl/1.0.3/", root=tiny_tree,
                      directory=str(tiny_tree))
    server, origin = _serve(handler, elsewhere=None)
    try:
        got = download(tmp_path / "dl", f"{origin}/old/", jobs=4)
        assert got["fetched"] == got["files"] > 300
        server.elsewhere = real_server.url + "records100/00000/00002_lr.dat"
        with pytest.raises(DownloadError) as info:
            download(tmp_path / "dl2", f"{origin}/old/", jobs=4, limits=Limits(retries=0))
    finally:
        server.shutdown()
        server.server_close()
    message = str(info.value)
    assert message.startswith("1 of ") and "00002_lr.dat: the server redirects" in message
    assert real_server.url in message and "refusing to follow it" in message
    assert not real_server.faults.requests
    assert not (tmp_path / "dl2/records100/00000/00002_lr.dat").exists()
    assert (tmp_path / "dl2/records100/00000/00001_lr.dat").is_file()


@pytest.mark.parametrize("url", ["file:///etc/", "ftp://127.0.0.1/ptb-xl/", "/tmp/ptb-xl/", "data:,x",
                                 "http:///nohost/"])
def test_only_http_and_https_base_urls_are_fetched(tmp_path, capsys, url):
    with pytest.raises(DownloadError, match="expected an http:// or https:// URL"):
        download(tmp_path / "dl", url)
    with pytest.raises(DownloadError, match="expected an http:// or https:// URL"):
        fetch_with_retries(url + "SHA256SUMS.txt", tmp_path / "x", None, Limits())
    _refused(capsys, ["download", str(tmp_path / "dl"), "--base-url", url], "expected an http:// or https:// URL")
    assert not (tmp_path / "dl").exists() and not (tmp_path / "x").exists()


# --- 4. params.yaml ---------------------------------------------------------------------------------------

def _params_file(tmp_path, edit=None, text=None):
    text = text if text is not None else (REPO / "params.yaml").read_text()
    path = tmp_path / "params.yaml"
    path.write_text(edit(text) if edit else text)
    return path


BOMB = "".join(f"  - &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n" for i in range(10))


@pytest.mark.parametrize("where", ["prepare.labels", "device", "explain.codes"])
def test_a_yaml_alias_bomb_under_a_real_key_is_refused_at_once_with_a_short_message(tmp_path, capsys, where):
    def edit(text):
        text = text.replace("seed: 42", "seed: 42\nbombs:\n" + BOMB, 1)
        if where == "prepare.labels":
            return text.replace("  labels: [1AVB,", "  labels: *l9\n  old_labels: [1AVB,", 1)
        if where == "device":
            return text.replace("device: auto", "device: *l9", 1)
        return text.replace("  codes: [SR, AFIB", "  codes: *l9\n  old_codes: [SR, AFIB", 1)
    path = _params_file(tmp_path, edit)
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"params.yaml, line \d+: YAML anchor &l0: anchors and aliases are not "
                       "allowed") as info:
        config.load(path)
    assert time.monotonic() - start < 2 and len(str(info.value)) < 300
    err = _refused(capsys, ["synth", str(tmp_path / "out"), "--params", str(path)], "YAML anchor")
    assert len(err) < 400 and not (tmp_path / "out").exists()


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("device: auto", "device: " + "x" * 100000), "device = 'xxxx"),
    (lambda t: t.replace("  labels: [1AVB,", "  labels: [" + ", ".join(f"X{i}" for i in range(20000)) + ", 1AVB,"),
     "prepare.labels = ['X0', 'X1'"),
    (lambda t: t.replace("seed: 42", "seed: [" + ", ".join(["1"] * 100000) + "]"), "seed = [1, 1, 1"),
    (lambda t: t.replace("  widths: [32, 64, 128, 256]", "  widths: [40000, 64, 128, 256]"),
     "model.widths = [40000, 64, 128, 256]: expected integers from 1 to 2048 (MAX_WIDTH)"),
    (lambda t: t.replace("  latent_dim: 128", "  latent_dim: 10000000"),
     "model.latent_dim = 10000000: expected an integer from 1 to 4096 (MAX_LATENT_DIM)"),
])
def test_a_long_value_is_quoted_short_in_the_error(tmp_path, edit, message):
    with pytest.raises(ConfigError) as info:
        config.load(_params_file(tmp_path, edit))
    assert message in str(info.value) and len(str(info.value)) < 600


def test_a_params_file_that_is_not_utf8_is_named(tmp_path, capsys):
    path = tmp_path / "params.yaml"
    path.write_bytes((REPO / "params.yaml").read_bytes().replace(b"# Every", b"# \xe9very", 1))
    with pytest.raises(ConfigError, match=r"params.yaml: not UTF-8 text \(byte 2 is b'\\xe9'\)"):
        config.load(path)
    _refused(capsys, ["synth", str(tmp_path / "out"), "--params", str(path)], "params.yaml: not UTF-8 text")
    (tmp_path / "folder" / "params.yaml").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"folder/params.yaml: not a regular file"):
        config.load(tmp_path / "folder" / "params.yaml")


@pytest.mark.parametrize("kind", ["fifo", "device", "huge", "repeated key"])
def test_a_params_file_that_is_a_fifo_a_device_huge_or_repeats_a_key_is_refused_at_once(tmp_path, kind):
    import os

    path = tmp_path / "params.yaml"
    if kind == "fifo":
        os.mkfifo(path)  # a read would wait for a writer forever
    elif kind == "device":
        path = Path("/dev/zero")  # a read would never end
    elif kind == "huge":
        path.write_bytes((REPO / "params.yaml").read_bytes() + b"#" * (config.MAX_PARAMS_BYTES + 1))
    else:
        path.write_text((REPO / "params.yaml").read_text().replace("seed: 42\n", "seed: 42\nseed: 7\n", 1))
    expected = {"fifo": "not a regular file", "device": "not a regular file", "huge": "a params file is at most",
                "repeated key": r"line \d+: key 'seed' appears twice"}[kind]
    with pytest.raises(ConfigError, match=expected):
        config.load(path)


@pytest.mark.parametrize("labels, message", [
    ("[SR, AFIB, SR]", "repeated codes ['SR']"),
    ("[SR, AFIB, SR, AFIB, STACH]", "repeated codes ['SR', 'AFIB']"),
    ("[SR, XYZ, SR]", "unknown codes ['XYZ']; repeated codes ['SR']"),
    ("[]", "no code"),
])
def test_repeated_labels_are_named(tmp_path, labels, message):
    def edit(text):
        text = text.replace("  codes: [SR, AFIB, STACH, SBRAD, PACE]", "  codes: [SR]")
        return text.replace("  labels: [1AVB, IVCD, 3AVB, 2AVB, SR, AFIB, STACH, SARRH, SBRAD, PACE, SVARR, BIGU, "
                            "AFLT, SVTAC, PSVT, TRIGU]", f"  labels: {labels}")
    with pytest.raises(ConfigError, match="prepare.labels") as info:
        config.load(_params_file(tmp_path, edit))
    assert message in str(info.value)


@pytest.mark.parametrize("text, message", [
    ("1: x\nfoo: y\nnull: z\n", "unknown key(s) ['1', 'None', 'foo']"),
    ("[" * 20000 + "]" * 20000, "brackets nested over 32 deep"),
    ("a: &x 1\nb: *x\n", "YAML anchor &x"),
])
def test_odd_yaml_gives_a_named_error(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        config.load(_params_file(tmp_path, text=text))
    assert message in str(info.value)


# --- 5. cross-validation results of the wrong shape ---------------------------------------------------------

def _run(value=0.8, **changes):
    run = {m: {"macro_auroc": value, "macro_auroc_ci_low": value - 0.05, "macro_auroc_ci_high": value + 0.05,
               "macro_auroc_labels_with_10_positives": value} for m in ("final", "projected", "joint", "baseline")}
    return {**run, "overrides": "", "commit": "abc", **changes}


def _mean(**changes):
    mean = {m: {"macro_auroc_mean": 0.8, "macro_auroc_min": 0.8, "macro_auroc_max": 0.8}
            for m in ("final", "projected", "joint", "baseline")}
    return {**mean, "seeds": "1", **changes}


GOOD = {"params": {"seed1": _run(), "mean_over_seeds": _mean()}}


@pytest.mark.parametrize("doc, message", [
    ([GOOD], "expected a JSON object of recipes, not a list"),
    ("results", "expected a JSON object of recipes, not a string"),
    ({"params": [1, 2]}, "recipe 'params': expected an object of runs by seed, not a list"),
    ({"params": {"seed1": "0.8", "mean_over_seeds": _mean()}}, "recipe 'params', seed1: expected an object, not a "
                                                               "string"),
    ({"params": {"seedX": _run(), "mean_over_seeds": _mean()}}, "key 'seedX': expected seed<N> or mean_over_seeds"),
    ({"params": {"seed1": _run()}}, "expected at least one seed<N> and mean_over_seeds"),
    ({"params": {"mean_over_seeds": _mean()}}, "expected at least one seed<N> and mean_over_seeds"),
    ({"params": {"seed1": {k: v for k, v in _run().items() if k != "final"}, "mean_over_seeds": _mean()}},
     "recipe 'params', seed1: final: expected an object of figures, not null"),
    ({"params": {"seed1": _run(final={"macro_auroc": "0.8", "macro_auroc_ci_low": 0.7, "macro_auroc_ci_high": 0.9}),
                 "mean_over_seeds": _mean()}}, "seed1: final.macro_auroc = '0.8': expected a number from 0 to 1"),
    ({"params": {"seed1": _run(final={"macro_auroc": 0.8, "macro_auroc_ci_low": 0.7}), "mean_over_seeds": _mean()}},
     "final.macro_auroc_ci_high = None: expected a number from 0 to 1 (missing)"),
    ({"params": {"seed1": _run(final={"macro_auroc": True, "macro_auroc_ci_low": 0.7, "macro_auroc_ci_high": 0.9}),
                 "mean_over_seeds": _mean()}}, "final.macro_auroc = True"),
    ({"params": {"seed1": _run(value=80.0), "mean_over_seeds": _mean()}}, "= 80.0: expected a number from 0 to 1"),
    ({"params": {"seed1": _run(overrides=["train.lr=0.1"]), "mean_over_seeds": _mean()}},
     "seed1: overrides = ['train.lr=0.1']: expected text, not a list"),
    ({"params": {"seed1": _run(), "mean_over_seeds": _mean(seeds=[1])}}, "mean_over_seeds: seeds = [1]: expected "
                                                                        "text"),
    ({"params": {"seed1": _run(), "mean_over_seeds": _mean(final={"macro_auroc_mean": "x"})}},
     "mean_over_seeds: final.macro_auroc_mean = 'x'"),
])
def test_summary_and_repool_refuse_results_of_the_wrong_shape_and_change_nothing(tiny_tree, tmp_path, monkeypatch,
                                                                                  capsys, doc, message):
    monkeypatch.chdir(REPO)  # --repool reads this checkout's params.yaml
    out = tmp_path / "cv.json"
    out.write_text(json.dumps(doc))
    before = out.read_bytes(), out.stat().st_mtime_ns
    _refused(capsys, ["crossval", "--summary", "--out", str(out)], message)
    _refused(capsys, ["crossval", "--repool", "--out", str(out), "--folder", str(tiny_tree), "--workdir",
                      str(tmp_path / "work")], message)
    assert (out.read_bytes(), out.stat().st_mtime_ns) == before
    assert not (tmp_path / "cv_per_label.json").exists() and not (tmp_path / "work").exists()
    with pytest.raises(ConfigError, match="cross-validation results: "):
        crossval.markdown(doc)


def test_summary_of_a_well_formed_file_and_a_mis_shaped_per_label_file(tiny_tree, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    out = tmp_path / "cv.json"
    out.write_text(json.dumps(GOOD))
    assert cli(["crossval", "--summary", "--out", str(out)]) == 0
    assert "| params | (params.yaml at its commit) | 1 | 0.800 (0.750-0.850)" in capsys.readouterr().out
    per_label = tmp_path / "cv_per_label.json"
    per_label.write_text(json.dumps({"params": ["final"]}))
    before = out.read_bytes(), per_label.read_bytes()
    _refused(capsys, ["crossval", "--repool", "--out", str(out), "--folder", str(tiny_tree), "--workdir",
                      str(tmp_path / "work")], "cv_per_label.json: recipe 'params': expected an object")
    assert (out.read_bytes(), per_label.read_bytes()) == before

