"""Training in several processes with PyTorch's own engine (`train.processes` > 1): the stage relaunches
itself under torchrun, every process trains a DistributedDataParallel copy of the model on its share of
each epoch (a DistributedSampler), the gradients are averaged over the processes (NCCL on GPUs, gloo on
CPU), and one process (rank 0) measures the validation AUROC and tells the others, so every rank stops at
the same epoch and keeps the same weights. Only rank 0 writes (models, curves, metrics).

One process (the default) never touches torch.distributed: training runs exactly as it always did.
On several machines, start the stage script under torchrun on each (`torchrun --nnodes N --node_rank K
--rdzv-endpoint HOST:PORT --nproc-per-node G stages/train_joint.py`): a script already under torchrun
joins its group instead of relaunching."""
from __future__ import annotations

import os
import subprocess
import sys

import torch
import torch.distributed as dist


def under_torchrun() -> bool:
    """Whether this process was started by torchrun (it sets these for every worker)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def relaunch(script: str, processes: int) -> int:
    """Run `script` again as `processes` workers under torchrun on this machine; its exit code. Ctrl-C and
    SIGTERM reach torchrun, which stops every worker."""
    from ecgproto.tools.clone import stop_group

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               script]
    child = subprocess.Popen(command, start_new_session=True)
    try:
        return child.wait()
    finally:  # a KeyboardInterrupt (Ctrl-C, or SIGTERM through stop_on_sigterm) stops the whole group
        stop_group(child)


def start(device: torch.device) -> torch.device:
    """Join torchrun's process group (NCCL on GPUs, gloo on CPU); the device this rank trains on."""
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_writer() -> bool:
    """The one process that writes files: rank 0, or the only process."""
    return rank() == 0


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model as the training loop calls it: DistributedDataParallel in a process group, else itself."""
    if not dist.is_initialized():
        return model
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def sampler(n: int, seed: int):
    """Each rank's share of an epoch: DistributedSampler's shuffle, the same on every rank, cut into equal
    shares (drop_last, so every rank runs the same number of batches)."""
    from torch.utils.data import DistributedSampler

    return DistributedSampler(range(n), num_replicas=world_size(), rank=rank(), shuffle=True, seed=seed,
                              drop_last=True)


def _tensor(values: list) -> torch.Tensor:
    """Values where the backend can reduce them (NCCL only reduces GPU tensors)."""
    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    return torch.tensor(values, dtype=torch.float64, device=on)


def from_writer(value: float) -> float:
    """Rank 0's value on every rank (the validation AUROC that decides early stopping)."""
    if not dist.is_initialized():
        return value
    tensor = _tensor([value])
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def summed(values: list) -> list:
    """Each value summed over the ranks (the epoch's loss sums and record counts)."""
    if not dist.is_initialized():
        return values
    tensor = _tensor(values)
    dist.all_reduce(tensor)
    return tensor.tolist()
