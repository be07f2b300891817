"""Efficiency benchmark: the default model against the published-size ResNet-18 prototype model.

Each timing runs in a fresh process (so that its peak memory is its own), after warm-up runs, and
the median of several repeats is quoted. Timings are noisy and machine-bound: they go to the
benchmark's own result file, never into DVC metrics.
"""
from __future__ import annotations

import io
import multiprocessing
import os
import platform
import resource
import statistics
import time
from datetime import datetime, timezone

import torch

from ecgproto.config import Params
from ecgproto.data.ptbxl import LABELS, N_SAMPLES
from ecgproto.model.network import ProtoECGNet1D, count_macs, count_parameters, prototype_model
from ecgproto.recipes import published_size_model

MODELS = ("default", "published_resnet18")
GOALS = {"parameters_ratio": 4.0, "macs_ratio": 4.0, "latency_ms_1_thread": 2.0, "train_throughput_ratio": 4.0,
         "latency_ms_onnx": 1.0, "explain_wall_s": 1.0}


def build_model(name: str, params: Params) -> ProtoECGNet1D:
    """'default': params.yaml's model; 'published_resnet18': the published rhythm branch's size."""
    if name == "default":
        return prototype_model(params.model, len(params.prepare.labels))
    return published_size_model(params)


def file_bytes(model) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def _timed(fn, warmup: int, repeats: int, calls: int) -> float:
    """Median seconds per call over `repeats` rounds of `calls` calls, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        rounds.append((time.perf_counter() - start) / calls)
    return statistics.median(rounds)


def _measure(name: str, mode: str, threads: int, repeats: int, params: Params) -> dict:
    """One measurement in this (fresh) process: 'latency', 'throughput' or 'train'."""
    from ecgproto.model.losses import joint_loss

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(name, params)
    if mode == "train":
        batch = 32
        x, y = torch.randn(batch, 12, N_SAMPLES), (torch.rand(batch, len(LABELS)) < 0.2).float()
        ones, cooc = torch.ones(len(LABELS)), torch.eye(len(LABELS))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()

        def step():
            logits, sims = model(x)
            loss, _ = joint_loss(logits, sims, y, model, ones, cooc, params.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        seconds = _timed(step, warmup=3, repeats=repeats, calls=5)
    elif mode.endswith("onnx"):  # the deployed form: ONNX Runtime on the CPU
        import numpy as np
        import onnxruntime as ort

        from ecgproto.deploy.export import onnx_bytes

        batch = 256 if mode.startswith("throughput") else 1
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(onnx_bytes(model), options, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).standard_normal((batch, 12, N_SAMPLES)).astype(np.float32)

        def step():
            session.run(None, {"ecg": x})

        seconds = _timed(step, warmup=10 if batch == 1 else 1, repeats=repeats, calls=50 if batch == 1 else 2)
    else:
        batch = 256 if mode == "throughput" else 1
        x = torch.randn(batch, 12, N_SAMPLES)
        model.eval()
        if mode == "latency_torchscript":  # deployment form: traced, frozen (batch norm folded)
            with torch.inference_mode():
                model = torch.jit.freeze(torch.jit.trace(model, x))

        def step():
            with torch.inference_mode():
                model(x)

        seconds = _timed(step, warmup=10 if batch == 1 else 1, repeats=repeats, calls=50 if batch == 1 else 2)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes
    return {"seconds_per_batch": seconds, "batch": batch, "threads": threads, "peak_rss_mb": round(peak_mb, 1)}


def run(params: Params, repeats: int = 5, progress=print) -> dict:
    threads = os.cpu_count() or 1
    context = multiprocessing.get_context("spawn")
    result = {"machine": {"cpus": threads, "processor": platform.processor() or platform.machine(),
                          "python": platform.python_version(), "torch": torch.__version__},
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "repeats": repeats,
              "models": {}}
    for name in MODELS:
        model = build_model(name, params)
        row = {"parameters": count_parameters(model), "macs_per_ecg": count_macs(model),
               "file_bytes": file_bytes(model)}
        for mode, n_threads in (("latency", 1), ("latency_torchscript", 1), ("latency_onnx", 1),
                                ("throughput", threads), ("throughput_onnx", threads), ("train", threads)):
            progress(f"{name}: {mode} ({n_threads} thread{'s' if n_threads > 1 else ''})")
            with context.Pool(1) as pool:
                m = pool.apply(_measure, (name, mode, n_threads, repeats, params))
            per_ecg = m["seconds_per_batch"] / m["batch"]
            if mode.startswith("latency"):
                row[mode.replace("latency", "latency_ms_batch1_1_thread")] = round(m["seconds_per_batch"] * 1e3, 3)
            elif mode == "throughput":
                row[f"inference_ecg_per_s_batch256_{threads}_threads"] = round(1 / per_ecg, 1)
                row["peak_rss_mb_inference_batch256"] = m["peak_rss_mb"]
            elif mode == "throughput_onnx":
                row[f"inference_ecg_per_s_batch256_{threads}_threads_onnx"] = round(1 / per_ecg, 1)
            else:
                row[f"train_ecg_per_s_batch32_{threads}_threads"] = round(1 / per_ecg, 1)
                row["peak_rss_mb_train_batch32"] = m["peak_rss_mb"]
        if name == "default":
            progress("default: `ecgproto explain` process wall time, ONNX and PyTorch paths (1 thread)")
            row.update(explain_wall_times(params, repeats))
        result["models"][name] = row
    result["ratios"] = ratios(result["models"], threads)
    result["goals"] = goals(result["models"], result["ratios"])
    return result


def ratios(models: dict, threads: int) -> dict:
    """published / default for sizes and times, default / published for speeds (all > 1 = better)."""
    d, p = models["default"], models["published_resnet18"]
    speed = [f"inference_ecg_per_s_batch256_{threads}_threads", f"train_ecg_per_s_batch32_{threads}_threads"]
    out = {k: round(p[k] / d[k], 2) for k in ("parameters", "macs_per_ecg", "file_bytes",
                                                "latency_ms_batch1_1_thread", "latency_ms_batch1_1_thread_torchscript",
                                                "latency_ms_batch1_1_thread_onnx") if k in d}
    out.update({k: round(d[k] / p[k], 2) for k in speed + [speed[0] + "_onnx"] if k in d})
    return out


def goals(models: dict, ratio: dict) -> dict:
    train_key = next(k for k in ratio if k.startswith("train_"))
    checks = {
        f"default has >= {GOALS['parameters_ratio']:g}x fewer parameters":
            ratio["parameters"] >= GOALS["parameters_ratio"],
        f"default has >= {GOALS['macs_ratio']:g}x fewer multiply-accumulates":
            ratio["macs_per_ecg"] >= GOALS["macs_ratio"],
        f"default latency <= {GOALS['latency_ms_1_thread']:g} ms per ECG (batch 1, 1 thread), eager PyTorch":
            models["default"]["latency_ms_batch1_1_thread"] <= GOALS["latency_ms_1_thread"],
        f"default latency <= {GOALS['latency_ms_1_thread']:g} ms per ECG (batch 1, 1 thread), TorchScript frozen":
            models["default"]["latency_ms_batch1_1_thread_torchscript"] <= GOALS["latency_ms_1_thread"],
        f"default trains >= {GOALS['train_throughput_ratio']:g}x faster":
            ratio[train_key] >= GOALS["train_throughput_ratio"],
    }
    if "latency_ms_batch1_1_thread_onnx" in models["default"]:
        checks[f"default latency <= {GOALS['latency_ms_onnx']:g} ms per ECG (batch 1, 1 thread), ONNX Runtime"] = \
            models["default"]["latency_ms_batch1_1_thread_onnx"] <= GOALS["latency_ms_onnx"]
    if "explain_wall_s_onnx" in models["default"]:
        checks[f"`ecgproto explain RECORD` <= {GOALS['explain_wall_s']:g} s wall (1 thread), ONNX path"] = \
            models["default"]["explain_wall_s_onnx"] <= GOALS["explain_wall_s"]
    return {k: bool(v) for k, v in checks.items()}


def explain_wall_times(params: Params, repeats: int) -> dict:
    """`ecgproto explain RECORD` from process start to exit, median of `repeats`, one thread, on a
    default-size model (random weights: the time does not depend on them) and one 10 s record."""
    import dataclasses
    import statistics
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import numpy as np

    from ecgproto.data.ptbxl import write_record
    from ecgproto.deploy.export import export_onnx
    from ecgproto.model.checkpoint import save_checkpoint

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        model = build_model("default", params)
        n = len(params.prepare.labels)
        meta = {"labels": list(params.prepare.labels), "highpass_hz": params.prepare.highpass_hz,
                "filter_order": params.prepare.filter_order, "scaler": {"mean": [0.0] * 12, "std": [1.0] * 12}}
        extras = {"calibration": {"slope": [1.0] * n, "intercept": [0.0] * n, "threshold": [0.5] * n,
                                  "fitted": [True] * n, "fitted_on": "benchmark"},
                  "guard": dataclasses.asdict(params.guard),
                  "familiarity": {"quantiles": [float(q) for q in np.linspace(-1, 1, 101)], "percentile": 1.0,
                                  "cutoff": -1.0}}
        save_checkpoint(folder / "m.pt", model, meta, **extras)
        export_onnx(model, {**meta, "preprocessing": meta, "labels": meta["labels"], **extras}, folder / "m.onnx")
        t = np.arange(1000) / 100
        write_record(folder / "r", np.tile(np.sin(2 * np.pi * 1.2 * t), (12, 1)) * 0.5)
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        out = {}
        for runtime, model_file in (("onnx", "m.onnx"), ("torch", "m.pt")):
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "ecgproto.cli", "explain", str(folder / "r"), "--model",
                                str(folder / model_file)], env=env, check=True, capture_output=True)
                times.append(time.perf_counter() - start)
            out[f"explain_wall_s_{runtime}"] = round(statistics.median(times), 3)
    return out
