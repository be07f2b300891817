"""Hostile and careless input, one test per class of failure: a model file never runs code, nothing is
written or read outside its root, nothing already written is lost, nothing non-finite passes, every
error comes early and named, and a bad network cannot hang or fill the disk."""
import dataclasses
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ecgproto import config
from ecgproto.cli import main as cli
from ecgproto.data.checksums import sha256, write_checksums
from ecgproto.data.download import DownloadError, Limits, download
from ecgproto.data.prepare import Split, check_trainable, prepare
from ecgproto.data.ptbxl import LABELS, read_metadata, read_record, write_record
from ecgproto.data.source import copy_tree, materialise
from ecgproto.errors import ConfigError, ModelError, RecordError, TrainingError
from ecgproto.files.atomic import atomic_dir, sweep_stale
from ecgproto.files.paths import inside, walk_files
from ecgproto.model.checkpoint import load_checkpoint, save_checkpoint
from ecgproto.model.network import BackboneConfig, ProtoECGNet1D, PrototypeConfig
from ecgproto.model.seeding import pick_device
from ecgproto.model.train import fit
from ecgproto.tools.physionet_server import LocalPhysioNet

from conftest import PARAMS, REPO

MARKER = Path(os.environ.get("TMPDIR", "/tmp")) / f"ecgproto-payload-ran-{os.getpid()}"
META = {"labels": list(LABELS), "highpass_hz": 0.5, "filter_order": 1,
        "scaler": {"mean": [0.0] * 12, "std": [1.0] * 12}}


def _payload_ran():
    MARKER.write_text("the payload ran")


class Evil:
    def __reduce__(self):
        return (_payload_ran, ())


def _small_model():
    return ProtoECGNet1D(BackboneConfig((8,), (1,)), PrototypeConfig(len(LABELS), 1, 4, "none"))


def _run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ecgproto.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=dict(os.environ, PYTHONPATH=str(REPO)))


def _copy(tree, tmp_path, name="tree"):
    dst = tmp_path / name
    shutil.copytree(tree, dst)
    return dst


# --- security: a model file never runs code ------------------------------------------------------

@pytest.mark.parametrize("how", ["torch.save", "plain pickle"])
def test_a_model_file_carrying_code_is_refused_without_running_it(tmp_path, how):
    MARKER.unlink(missing_ok=True)
    path = tmp_path / "evil.pt"
    model = _small_model()
    state = {"kind": "prototype", "config": model.config(), "state_dict": model.state_dict(),
             "labels": list(LABELS), "preprocessing": META, "extra": Evil()}
    if how == "torch.save":
        torch.save(state, path)
    else:
        path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ModelError, match=rf"{path}: refused"):
        load_checkpoint(path)
    assert not MARKER.exists()
    assert cli(["predict", str(tmp_path), "--model", str(path), "--out", str(tmp_path / "p.csv")]) == 1
    assert not MARKER.exists() and not (tmp_path / "p.csv").exists()


def test_a_model_file_with_non_finite_weights_or_preprocessing_is_refused(tmp_path):
    model = _small_model()
    with torch.no_grad():
        model.prototypes[0, 0] = float("nan")
    save_checkpoint(tmp_path / "nan.pt", model, META)
    with pytest.raises(ModelError, match="nan.pt: non-finite"):
        load_checkpoint(tmp_path / "nan.pt")
    bad = {**META, "scaler": {"mean": [0.0] * 12, "std": [float("inf")] + [1.0] * 11}}
    save_checkpoint(tmp_path / "inf.pt", _small_model(), bad)
    with pytest.raises(ModelError, match="inf.pt: preprocessing"):
        load_checkpoint(tmp_path / "inf.pt")


# --- security: nothing is read or written outside its root ---------------------------------------

@pytest.mark.parametrize("bad", ["../x", "records100/../../x.dat", "/etc/passwd", "a/../../b", "C:\\x"])
def test_paths_from_outside_must_stay_inside_their_root(tmp_path, bad):
    with pytest.raises(RecordError, match="manifest, line 3"):
        inside(tmp_path, bad, "manifest, line 3")
    assert inside(tmp_path, "records100/00000/00001_lr", "x") == tmp_path / "records100/00000/00001_lr"


def test_a_symlink_leading_out_of_the_root_is_refused(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "secret").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(RecordError, match="through a symbolic link"):
        inside(tmp_path / "root", "link/x.dat", "metadata")


def test_a_server_manifest_cannot_write_outside_the_download_folder(tiny_tree, tmp_path):
    tree = _copy(tiny_tree, tmp_path)
    victim = tmp_path / "outside" / "x.dat"
    payload = b"overwritten"
    digest = __import__("hashlib").sha256(payload).hexdigest()
    sums = (tree / "SHA256SUMS.txt").read_text() + f"{digest}  records100/../../../outside/x.dat\n"
    server = LocalPhysioNet(tree)
    server.faults.replace["SHA256SUMS.txt"] = sums.encode()
    try:
        with pytest.raises(RecordError, match=r"SHA256SUMS.txt, line \d+: path 'records100/../../../outside/x.dat'"):
            download(tmp_path / "dl" / "ptb-xl", server.url)
    finally:
        server.stop()
    assert not victim.exists() and not list(tmp_path.rglob("x.dat"))


def test_a_folder_source_cannot_hash_or_read_outside_its_tree(tiny_tree, tmp_path):
    tree = _copy(tiny_tree, tmp_path)
    (tmp_path / "outside.dat").write_bytes(b"private")
    with open(tree / "SHA256SUMS.txt", "a") as f:
        f.write(f"{sha256(tmp_path / 'outside.dat')}  ../outside.dat\n")
    out = tmp_path / "copy"
    out.mkdir()
    with pytest.raises(RecordError, match=r"SHA256SUMS.txt, line \d+: path '../outside.dat'"):
        copy_tree(tree, out)
    # a filename_lr with '..' in the metadata: prepare refuses it by name, reads nothing outside
    tree2 = _copy(tiny_tree, tmp_path, "tree2")
    shutil.copytree(tree2 / "records100/00000", tmp_path / "elsewhere")
    db = (tree2 / "ptbxl_database.csv").read_text().replace("records100/00000/00001_lr", "../elsewhere/00001_lr")
    (tree2 / "ptbxl_database.csv").write_text(db)
    with pytest.raises(RecordError, match=r"filename_lr: path '../elsewhere/00001_lr'"):
        prepare(tree2, PARAMS.prepare)
    # a record file that is a symbolic link out of the tree is not copied in
    tree3 = _copy(tiny_tree, tmp_path, "tree3")
    (tree3 / "SHA256SUMS.txt").unlink()
    target = tree3 / "records100/00000/00002_lr.dat"
    target.unlink()
    target.symlink_to(tmp_path / "outside.dat")
    out3 = tmp_path / "copy3"
    out3.mkdir()
    with pytest.raises(RecordError, match="00002_lr.dat' leads outside"):
        copy_tree(tree3, out3)


def test_a_header_naming_another_signal_file_is_read_from_its_folder_or_refused(tmp_path):
    base = tmp_path / "rec"
    signal_mv = np.random.default_rng(0).normal(0, 0.3, (12, 1000))
    write_record(base, signal_mv)
    write_record(tmp_path / "other", -signal_mv)
    header = (tmp_path / "rec.hea").read_text()
    (tmp_path / "rec.hea").write_text(header.replace("rec.dat", "other.dat"))
    assert np.allclose(read_record(base), read_record(tmp_path / "other"))  # the file the header names
    (tmp_path / "rec.hea").write_text(header.replace("rec.dat", "../rec.dat"))
    with pytest.raises(RecordError, match="is not in the record's folder"):
        read_record(base)


def test_gate_passes_no_option_to_git(tmp_path, capsys):
    metrics = tmp_path / "m.json"
    metrics.write_text(json.dumps({"final": {"macro_auroc": 0.9}}))
    evil = tmp_path / "written-by-git"
    assert cli(["gate", "--file", str(metrics), f"--against=--output={evil}"]) == 1
    assert "cannot start with '-'" in capsys.readouterr().err and not evil.exists()


# --- nothing lost ------------------------------------------------------------------------------

def test_synth_refuses_a_non_empty_folder_and_writes_atomically(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "ptbxl_database.csv").write_text("precious")
    assert cli(["synth", str(out), "--records", "20"]) == 1
    assert "not empty; refusing" in capsys.readouterr().err
    assert (out / "ptbxl_database.csv").read_text() == "precious"
    assert cli(["synth", str(out), "--records", "20", "--overwrite"]) == 0
    assert len(read_metadata(out)) == 20 and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_download_removes_only_its_own_temporary_files(tiny_tree, tmp_path):
    out = tmp_path / "dl"
    (out / "records100/00000").mkdir(parents=True)
    foreign = out / "records100/00000/.notes.part"
    foreign.write_text("someone else's")
    ours = out / "records100/00000/.00001_lr.dat.part"  # what a killed run of ours leaves
    ours.write_text("half a file")
    server = LocalPhysioNet(tiny_tree)
    try:
        download(out, server.url)
    finally:
        server.stop()
    assert foreign.read_text() == "someone else's" and not ours.exists()


def test_stale_temporary_folders_of_dead_processes_are_swept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".ptbxl.ecgproto-pid{dead.stdout.strip()}.abc.tmp"
    live = tmp_path / f".ptbxl.ecgproto-pid{os.getppid()}.def.tmp"  # a running process's: left alone
    users = tmp_path / f".ptbxl.pid{dead.stdout.strip()}.mine.tmp"  # not a name ecgproto makes: left alone
    for d in (stale, live, users):
        (d / "records100").mkdir(parents=True)
    with atomic_dir(tmp_path / "ptbxl") as tmp:
        (tmp / "x").write_text("new")
    assert not stale.exists() and live.exists() and (tmp_path / "ptbxl/x").read_text() == "new"
    assert users.exists()
    assert sweep_stale(tmp_path / "ptbxl") == []


def test_sigterm_during_the_data_step_leaves_no_temporary_folder(tmp_path, tmp_path_factory):
    out = tmp_path / "big"
    # stderr to a file, not a pipe: a progress bar could fill a pipe nobody reads and block the child
    err_path = tmp_path_factory.mktemp("stderr") / "synth.txt"
    with open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "ecgproto.cli", "synth", str(out), "--records", "20000"],
                                stdout=subprocess.DEVNULL, stderr=err, env=dict(os.environ, PYTHONPATH=str(REPO)))
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".big.*.tmp/records100/00000/*.dat")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
    assert code == 130 and "interrupted" in err_path.read_text(), err_path.read_text()[-500:]
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary folder


def test_a_sigterm_lost_in_a_finalizer_still_stops_the_next_iteration(monkeypatch):
    from ecgproto.files import atomic as files

    monkeypatch.setitem(files._stop, "requested", False)
    files.raise_if_stopped()  # nothing asked: goes on
    monkeypatch.setitem(files._stop, "requested", True)  # what the handler leaves when its exception was dropped
    with pytest.raises(KeyboardInterrupt):
        files.raise_if_stopped()


# --- nothing non-finite passes -----------------------------------------------------------------

def test_a_header_with_a_non_finite_gain_is_refused_by_name(tmp_path, capsys):
    base = tmp_path / "rec"
    write_record(base, np.zeros((12, 1000)))
    header = (tmp_path / "rec.hea").read_text()
    for bad in ("nan", "inf"):
        (tmp_path / "rec.hea").write_text(header.replace("1000.0(0)/mV", f"{bad}(0)/mV", 1))
        with pytest.raises(RecordError, match=r"rec.hea: non-finite"):
            read_record(base)


@pytest.mark.parametrize("key, value", [("loss.clst", float("nan")), ("train.weight_decay", float("inf")),
                                        ("loss.div", float("-inf"))])
def test_non_finite_params_are_refused(key, value):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    section, name = key.split(".")
    raw[section][name] = value
    with pytest.raises(ConfigError, match=rf"{key} = .*finite"):
        config.from_dict(raw)


def test_a_non_finite_training_loss_stops_training_naming_epoch_and_batch():
    model = _small_model()
    x = np.random.default_rng(0).normal(size=(12, 12, 1000)).astype(np.float32)
    y = np.zeros((12, len(LABELS)), np.float32)
    y[::2, 4] = 1
    split = Split(x, y, np.arange(12))
    settings = dataclasses.replace(PARAMS.train, batch_size=4, max_epochs=2)
    calls = []

    def loss_fn(model, xb, yb):
        calls.append(1)
        value = model(xb)[0].mean() * (float("nan") if len(calls) == 2 else 1.0)
        return value, {}

    with pytest.raises(TrainingError, match="non-finite training loss .* epoch 1, batch 2"):
        fit(model, split, split, settings, loss_fn, "cpu", seed=0)


@pytest.mark.parametrize("doc, message", [({"final": {"macro_auroc": float("nan")}}, "expected a finite number"),
                                          ({"final": {}}, "missing key 'macro_auroc'"),
                                          ({"final": {"macro_auroc": None}}, "not a number")])
def test_gate_fails_on_a_non_finite_or_missing_metric(tmp_path, capsys, doc, message):
    metrics = tmp_path / "m.json"
    metrics.write_text(json.dumps(doc))
    assert cli(["gate", "--file", str(metrics)]) == 1
    assert message in capsys.readouterr().err
    assert cli(["gate", "--file", str(tmp_path / "absent.json")]) == 1
    assert "cannot read the metrics file" in capsys.readouterr().err


# --- every error early, clear and named --------------------------------------------------------

@pytest.mark.parametrize("edit, message", [
    (lambda p: p["explain"].update(codes=["SR", "AFIB"]) or p["prepare"].update(labels=["SR"]),
     r"explain.codes \['AFIB'\] are not in prepare.labels"),
    (lambda p: p.update(seed=-1), "seed = -1"),
    (lambda p: p.update(sed=7), r"unknown key\(s\) \['sed'\]"),
    (lambda p: p["data"].update(synthetic_records=5), "data.synthetic_records = 5: expected at least 100"),
    (lambda p: p["joint"].pop("backbone"), r"missing key\(s\) \['joint.backbone'\]"),
])
def test_params_are_cross_checked_before_any_work(edit, message):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    edit(raw)
    with pytest.raises(ConfigError, match=message):
        config.from_dict(raw)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_a_named_error():
    with pytest.raises(ConfigError, match="device = 'cuda'.*no CUDA device"):
        pick_device("cuda")


def test_splits_too_small_for_the_stages_that_follow_are_refused(tiny_tree):
    splits, meta = prepare(tiny_tree, PARAMS.prepare)
    check_trainable(splits, meta)  # the tiny tree is enough
    few = {**splits, "val": Split(splits["val"].signals[:3], splits["val"].labels[:3], splits["val"].ecg_ids[:3])}
    with pytest.raises(RecordError, match=r"3 records in the val split \(prepare.val_folds = \[9\]\)"):
        check_trainable(few, meta)
    n = len(splits["test"].ecg_ids)
    flat = {**splits, "test": Split(splits["test"].signals, np.zeros((n, len(LABELS)), np.float32),
                                    splits["test"].ecg_ids)}
    with pytest.raises(RecordError, match="no code has both a positive and a negative in the test split"):
        check_trainable(flat, meta)


def test_malformed_metadata_and_records_get_named_errors(tiny_tree, tmp_path):
    for column in ("filename_lr", "ecg_id"):
        tree = _copy(tiny_tree, tmp_path, f"no_{column}")
        db = (tree / "ptbxl_database.csv").read_text().splitlines()
        cols = db[0].split(",")
        (tree / "ptbxl_database.csv").write_text("\n".join([db[0].replace(column, "renamed")] + db[1:]) + "\n")
        assert column in cols
        with pytest.raises(RecordError, match=rf"missing columns \['{column}'\]"):
            read_metadata(tree)
    tree = _copy(tiny_tree, tmp_path, "binary")
    (tree / "records100/00000/00003_lr.hea").write_bytes(bytes(range(256)))
    with pytest.raises(RecordError, match="00003_lr.hea: not a WFDB header"):
        prepare(tree, PARAMS.prepare)
    splits, meta = prepare(tree, dataclasses.replace(PARAMS.prepare, skip_bad_records=True))
    assert meta["skipped_ecg_ids"] == [3]  # a bad record, counted, not a crash
    dat = tree / "records100/00000/00004_lr.dat"
    dat.unlink()
    dat.mkdir()
    with pytest.raises(RecordError, match="00004_lr.dat: is a folder; expected a signal file"):
        read_record(tree / "records100/00000/00004_lr")


def test_cli_options_and_outputs_are_checked_before_the_work(tiny_tree, tmp_path, capsys):
    record = str(tiny_tree / "records100/00000/00001_lr")
    for args in (["predict", record, "--out", "x.csv", "--runtime", "tensorflow"],
                 ["synth", str(tmp_path / "s"), "--records", "-1"],
                 ["download", str(tmp_path / "d"), "--retries", "-1"],
                 ["explain", record, "--top", "0"]):
        with pytest.raises(SystemExit) as info:
            cli(args)
        assert info.value.code == 2
    model = tmp_path / "m.pt"
    save_checkpoint(model, _small_model(), META)
    assert cli(["explain", record, "--model", str(model), "--plot", str(tmp_path / "nowhere/x.png")]) == 1
    assert "does not exist" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        assert cli(["predict", record, "--model", str(model), "--out", str(locked / "p.csv")]) == 1
        assert "is not writable" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_a_folder_without_checksums_says_nothing_was_verified(tiny_tree, tmp_path):
    tree = _copy(tiny_tree, tmp_path)
    (tree / "SHA256SUMS.txt").unlink()
    params = dataclasses.replace(PARAMS.data, source="folder", folder=str(tree))
    summary = materialise(tmp_path / "data" / "ptbxl", params)
    assert "WARNING: no file verified" in summary


def test_folder_walks_do_not_follow_symlink_loops(tmp_path):
    (tmp_path / "a").mkdir()
    write_record(tmp_path / "a" / "r", np.zeros((12, 1000)))
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a")
    assert [p.name for p in walk_files(tmp_path)] == ["r.dat", "r.hea"]
    assert write_checksums(tmp_path / "a") == 2


# --- downloads under a bad network -------------------------------------------------------------

def test_a_trickling_or_endless_server_fails_by_deadline_or_size_cap(tiny_tree, tmp_path):
    server = LocalPhysioNet(tiny_tree)
    server.faults.trickle.add("records100/00000/00002_lr.dat")
    server.faults.endless.add("records100/00000/00003_lr.dat")
    start = time.monotonic()
    try:
        with pytest.raises(DownloadError) as info:
            download(tmp_path / "dl", server.url, limits=Limits(deadline=1.0, max_bytes=1 << 20, retries=0))
    finally:
        server.stop()
    message = str(info.value)
    assert "00002_lr.dat: not complete after 1 s (the per-file deadline)" in message
    assert "00003_lr.dat: more than 1048576 bytes (the size cap)" in message
    assert time.monotonic() - start < 30
    assert not list((tmp_path / "dl").rglob(".*.part")) and not (tmp_path / "dl/records100/00000/00003_lr.dat").exists()


def test_ctrl_c_stops_a_download_within_seconds_and_keeps_verified_files(tiny_tree, tmp_path):
    server = LocalPhysioNet(tiny_tree)
    server.faults.delay = 0.2  # 330 files at 2 jobs: about 30 s to fetch them all
    out = tmp_path / "dl"
    try:
        proc = subprocess.Popen([sys.executable, "-m", "ecgproto.cli", "download", str(out), "--base-url", server.url,
                                 "--jobs", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, PYTHONPATH=str(REPO)),
                                # Ctrl-C's default, whatever this run inherited: a job a script starts with `&`
                                # ignores SIGINT, and so would the child
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 30
        while time.time() < deadline and len(list(out.rglob("*.dat"))) < 5:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stopped = time.monotonic()
        assert proc.wait(timeout=10) == 130
        assert time.monotonic() - stopped < 5
        asked = len(server.faults.requests)
        time.sleep(0.5)
        assert len(server.faults.requests) == asked < 200  # nothing fetched after the stop
    finally:
        server.stop()
    assert not list(out.rglob(".*.part"))
    assert len(list(out.rglob("*.dat"))) >= 5


def test_an_older_model_file_with_sources_as_extras_still_loads(tmp_path):
    """Model files from before the prototype sources and pruning mask became model state."""
    model = _small_model()
    n = len(model.prototypes)
    weights = {k: v for k, v in model.state_dict().items() if k not in ("prototype_source", "prototype_pruned")}
    torch.save({"kind": "prototype", "config": model.config(), "state_dict": weights, "labels": list(LABELS),
                "preprocessing": META, "prototype_source_ecg_ids": list(range(n)),
                "prototype_pruned": [j % 2 == 1 for j in range(n)]}, tmp_path / "old.pt")
    loaded, _ = load_checkpoint(tmp_path / "old.pt")
    assert loaded.prototype_source.tolist() == list(range(n))
    assert loaded.prototype_pruned.tolist() == [j % 2 == 1 for j in range(n)]


# --- found by an independent audit of the model-file and record paths -------------------------

def test_a_model_file_cannot_switch_the_guard_off_or_carry_malformed_entries(tmp_path):
    good = {"flat_mv": 0.05, "clip_share": 0.03, "noise_ratio": 0.5, "familiarity_percentile": 1.0}
    cases = {"guard": {**good, "flat_mv": 0.0}, "calibration": torch.zeros(3), "explain": "x",
             "familiarity": {"quantiles": [float(v) for v in np.linspace(1, -1, 101)], "percentile": 1.0,
                             "cutoff": 0.0}}
    for key, value in cases.items():
        save_checkpoint(tmp_path / f"{key}.pt", _small_model(), META, **{key: value})
        with pytest.raises(ModelError, match=f"{key}.pt: "):
            load_checkpoint(tmp_path / f"{key}.pt")
    model = _small_model()
    torch.save({"kind": "prototype", "config": model.config(), "state_dict": [1], "labels": list(LABELS),
                "preprocessing": META}, tmp_path / "list.pt")
    with pytest.raises(ModelError, match="list.pt: not an ecgproto model file"):
        load_checkpoint(tmp_path / "list.pt")
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    with pytest.raises(ModelError, match="m.onnx: an ONNX model; run it with --runtime onnx"):
        load_checkpoint(tmp_path / "m.onnx")


def test_a_gain_that_gives_non_finite_millivolts_is_refused(tmp_path):
    write_record(tmp_path / "rec", np.ones((12, 1000)))
    header = (tmp_path / "rec.hea").read_text()
    (tmp_path / "rec.hea").write_text(header.replace("1000.0(0)/mV", "1e-300(0)/mV", 1))
    with pytest.raises(RecordError, match="rec: gain .* non-finite millivolts"):
        read_record(tmp_path / "rec")


def test_export_never_overwrites_its_model_and_outputs_keep_a_readable_mode(tmp_path, capsys):
    model = tmp_path / "m.pt"
    save_checkpoint(model, _small_model(), META)
    before = model.read_bytes()
    assert cli(["export", str(model), "--onnx", str(model)]) == 1
    assert "never the model itself" in capsys.readouterr().err and model.read_bytes() == before
    assert oct(model.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_familiarity_reference_at_percentile_0_is_accepted_back():
    from ecgproto.trust.guard import familiarity_reference, malformed

    rng = np.random.default_rng(0)
    for _ in range(50):
        reference = familiarity_reference(rng.random(37) * 0.7 + 0.123456789, 0.0)
        assert malformed(None, reference, None, 16) == []
