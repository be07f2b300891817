"""The efficiency benchmark's bookkeeping (timings themselves are never asserted: they are noisy)."""
from ecgproto.report.bench_table import table
from ecgproto.tools import bench

from conftest import PARAMS


def test_one_measurement_runs_and_reports_its_shape():
    m = bench._measure("default", "latency", threads=1, repeats=1, params=PARAMS)
    assert m["batch"] == 1 and m["threads"] == 1 and m["seconds_per_batch"] > 0 and m["peak_rss_mb"] > 0
    onnx = bench._measure("default", "latency_onnx", threads=1, repeats=1, params=PARAMS)
    assert onnx["batch"] == 1 and onnx["seconds_per_batch"] > 0


def test_ratios_and_goals_follow_the_numbers():
    row = {"parameters": 100, "macs_per_ecg": 1000, "file_bytes": 400, "latency_ms_batch1_1_thread": 3.0,
           "latency_ms_batch1_1_thread_torchscript": 1.5, "inference_ecg_per_s_batch256_2_threads": 1000.0,
           "train_ecg_per_s_batch32_2_threads": 300.0}
    big = {**row, "parameters": 500, "macs_per_ecg": 8000, "latency_ms_batch1_1_thread": 9.0,
           "train_ecg_per_s_batch32_2_threads": 50.0}
    models = {"default": row, "published_resnet18": big}
    ratio = bench.ratios(models, threads=2)
    assert (ratio["parameters"] == 5.0 and ratio["macs_per_ecg"] == 8.0
            and ratio["train_ecg_per_s_batch32_2_threads"] == 6.0)
    met = bench.goals(models, ratio)
    assert [ok for goal, ok in met.items() if "eager" in goal] == [False]
    assert [ok for goal, ok in met.items() if "TorchScript" in goal] == [True]
    assert all(ok for goal, ok in met.items() if "fewer" in goal or "faster" in goal)
    models["default"]["explain_wall_s_onnx"] = 0.2  # measured for the default model only
    text = table({"models": models, "ratios": ratio, "goals": met})
    assert "| parameters | 100 | 500 | 5.0 |" in text and "NOT met" in text
    assert "| explain_wall_s_onnx | 0.2 | - |" in text


def test_prepare_benchmark_reports_rates_memory_and_speedup(tmp_path):
    from ecgproto.tools import bench_prepare

    result = bench_prepare.run(PARAMS.prepare, PARAMS.data.synthetic_realism, tmp_path, records=60, subset=10,
                               progress=lambda line: None)
    assert result["records"] == 60 and result["straightforward_records"] == 10
    assert result["prepare_records_per_s"] > 0 and result["prepare_peak_rss_mb"] > 0 and result["speedup"] > 0
    assert (tmp_path / "prepared" / "meta.json").is_file()
    assert set(result["goals"]) == {"whole PTB-XL prepared in < 60 s", "peak memory < 4 GB"}
