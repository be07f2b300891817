
import numpy as np
import pytest
import yaml

from ecgproto.config import ConfigError, from_dict, load
from ecgproto.data import prepare
from ecgproto.data.filters import LeadScaler, highpass

from conftest import PARAMS, REPO, run_stage, stage_workspace


def test_pos_weights_are_neg_over_pos_and_finite_without_positives():
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0]], dtype=np.float32)
    np.testing.assert_allclose(prepare.pos_weights(y), [1 / 3, 3.0, 1.0])
    np.testing.assert_allclose(prepare.pos_weights(y, cap=2.0), [1 / 3, 2.0, 1.0])  # a rare class capped


def test_jaccard_by_hand():
    y = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=np.float32)
    jac = prepare.jaccard_cooccurrence(y)
    # codes 0 and 1: both in 2 records, either in 4
    np.testing.assert_allclose(jac, [[1, 0.5, 0], [0.5, 1, 0], [0, 0, 1]])


def test_highpass_removes_wander_keeps_qrs_band():
    t = np.arange(1000) / 100
    slow, fast = np.sin(2 * np.pi * 0.05 * t), np.sin(2 * np.pi * 5 * t)
    x = np.broadcast_to(slow + fast, (3, 12, 1000)).astype(np.float32)
    y = highpass(x, 0.5, 1)
    assert y.dtype == np.float32 and y.shape == x.shape
    middle = slice(200, 800)
    assert np.abs(y[0, 0, middle] - fast[middle]).max() < 0.1  # zero phase: no shift of the 5 Hz wave


def test_scaler_fits_per_lead():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(50, 12, 1000)) * np.arange(1, 13)[None, :, None] + 3).astype(np.float32)
    s = LeadScaler.fit(x)
    np.testing.assert_allclose(s.std, np.arange(1, 13), rtol=0.02)
    z = s.transform(x.copy())
    np.testing.assert_allclose(z.mean(axis=(0, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=(0, 2)), 1, atol=1e-3)


def test_prepare_splits_scales_on_train_only(tiny_tree):
    splits, meta = prepare.prepare(tiny_tree, PARAMS.prepare)
    n = {k: len(s.ecg_ids) for k, s in splits.items()}
    assert sum(n.values()) == 160 and min(n.values()) > 0
    assert not set(splits["train"].ecg_ids) & set(splits["test"].ecg_ids)
    train = splits["train"].signals
    np.testing.assert_allclose(train.mean(axis=(0, 2)), 0, atol=1e-3)
    np.testing.assert_allclose(train.std(axis=(0, 2)), 1, atol=1e-2)
    assert len(meta["pos_weight"]) == 16 and np.isfinite(meta["pos_weight"]).all()
    assert np.array(meta["cooccurrence"]).shape == (16, 16)
    counts = prepare.label_counts(splits, meta)
    assert counts["records"] == n and set(counts["positives_test"]) == set(meta["labels"])
    absent = {name: {c for c, k in counts[f"positives_{name}"].items() if k == 0} for name in splits}
    assert {k: set(v.split()) for k, v in counts["codes_without_positives"].items()} == absent


@pytest.mark.parametrize("section, key, value, message", [
    ("prepare", "labels", ["SR", "LBBB"], "prepare.labels"),
    ("prepare", "val_folds", [11], "prepare.val_folds"),
    ("prepare", "train_folds", [1, 9], "overlaps"),
    ("prepare", "highpass_hz", 80, "prepare.highpass_hz"),
    ("prepare", "standardize", "yes", "prepare.standardize"),
    ("prepare", "shuffle", True, "unknown key"),
    ("joint", "backbone", "pretrained", "joint.backbone"),
    ("joint", "lr", 0.0, "joint.lr"),
    ("classifier", "retrain", "backbone", "classifier.retrain"),
    ("classifier", "addon_lr", -1, "classifier.addon_lr"),
])
def test_bad_params_name_the_key(section, key, value, message):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw[section][key] = value
    with pytest.raises(ConfigError, match=message):
        from_dict(raw)


def test_committed_params_are_valid():
    load(REPO / "params.yaml")


def test_prepare_stage_fails_cleanly_on_a_truncated_record(tmp_path, tiny_tree):
    ws = stage_workspace(tmp_path, tiny_tree)
    dat = ws / "data/ptbxl/records100/00000/00017_lr.dat"
    dat.write_bytes(dat.read_bytes()[:100])
    result = run_stage(ws, "prepare")
    assert result.returncode == 1
    assert "00017_lr.dat" in result.stderr and "truncated" in result.stderr
    assert not (ws / "data/prepared").exists() and not (ws / "metrics/data.json").exists()
    assert not [p for p in (ws / "data").iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_prepare_stage_skips_and_reports_when_asked(tmp_path, tiny_tree):
    ws = stage_workspace(tmp_path, tiny_tree, lambda raw: raw["prepare"].update(skip_bad_records=True))
    (ws / "data/ptbxl/records100/00000/00017_lr.dat").unlink()
    result = run_stage(ws, "prepare")
    assert result.returncode == 0, result.stderr
    assert "00017_lr" in result.stderr  # the skipped record is named in the log
    meta = prepare.load_meta(ws / "data/prepared")
    assert meta["skipped_ecg_ids"] == [17]
    assert yaml.safe_load((ws / "metrics/data.json").read_text())["skipped_records"] == 1


def test_bad_params_stop_the_stage_before_work(tmp_path, tiny_tree):
    ws = stage_workspace(tmp_path, tiny_tree, lambda raw: raw["prepare"].update(test_folds=[12]))
    result = run_stage(ws, "prepare")
    assert result.returncode == 1 and "prepare.test_folds" in result.stderr


@pytest.mark.parametrize("cutoff", [0.5, 1.0])
def test_the_numpy_first_order_filter_equals_scipys_sosfiltfilt(cutoff):
    from scipy.signal import butter, sosfiltfilt

    x = np.random.default_rng(0).normal(size=(3, 12, 1000)).cumsum(axis=-1)  # wander-like
    sos = butter(1, cutoff, btype="highpass", fs=100, output="sos")
    np.testing.assert_allclose(highpass(x, cutoff, 1), sosfiltfilt(sos, x, axis=-1), atol=1e-5)
    np.testing.assert_allclose(highpass(x, cutoff, 2), sosfiltfilt(butter(2, cutoff, btype="highpass", fs=100,
                                                                         output="sos"), x, axis=-1), atol=1e-5)


def test_out_of_core_prepare_writes_the_same_arrays_and_scaler_as_in_memory(tiny_tree, tmp_path):
    """The streamed path (signals written memory-mapped a chunk at a time, the scaler fitted in blocks on the
    memory map) gives the in-memory result to the bit; a skipped record is compacted away the same way."""
    import dataclasses
    import shutil

    import numpy as np

    from ecgproto.data import prepare as prep

    tree = tmp_path / "tree"
    shutil.copytree(tiny_tree, tree)
    bad = tree / "records100/00000/00017_lr.dat"
    bad.write_bytes(bad.read_bytes()[:100])
    params = dataclasses.replace(PARAMS.prepare, skip_bad_records=True)
    memory, meta_memory = prep.prepare(tree, params)
    (tmp_path / "out").mkdir()
    streamed, meta_streamed = prep.prepare(tree, params, out_dir=tmp_path / "out")
    assert meta_memory == meta_streamed and meta_streamed["skipped_ecg_ids"] == [17]
    for name in prep.SPLITS:
        assert isinstance(streamed[name].signals, np.memmap)
        assert np.array_equal(memory[name].signals, np.asarray(streamed[name].signals))
        assert np.array_equal(memory[name].ecg_ids, streamed[name].ecg_ids)
    assert not (tmp_path / "out" / "compact").exists()
