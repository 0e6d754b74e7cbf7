"""Multi-process training under ``torchrun``: setup, gradient averaging, gathers.

``torchrun --nproc_per_node N -m i2ibench.cli run ...`` sets ``RANK``/``WORLD_SIZE``/
``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``; ``init_distributed`` reads them and joins the
process group (NCCL on GPUs, gloo on CPU). Without them everything here is a no-op for a
single process, so callers never branch on "distributed or not".

Why gradients are averaged by a hook and not by wrapping nets in DistributedDataParallel:
the engine must serve every method through the ``Method`` interface, and DDP only
synchronises what goes through the wrapper's ``forward``. Methods call other entry points of
their nets (tunit's guiding network: ``.style()``, ``.cluster_logits()``), which a DDP wrapper
does not expose (AttributeError) and which, called on ``.module``, would bypass DDP's
reducer; wrapping also renames every checkpoint key (``module.``). Measured on 2 gloo
processes (torch 2.14): wrapping stargan2's four nets in DDP works and gives weights
bit-identical to this hook after 3 steps, while tunit fails at its first step.
``Method.optimize`` calls ``average_gradients`` between ``backward`` and ``step``: one
all-reduce per update of exactly the nets being updated, the averaged gradient DDP computes.
Buffers are broadcast from rank 0 after each step (DDP's ``broadcast_buffers``), and
parameters are broadcast once at start (what DDP's constructor does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterable

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device_type: str, timeout_s: float = 1800.0) -> DistInfo:
    """Join the process group described by torchrun's environment (no-op for one process).

    ``device_type`` "cuda" uses NCCL and pins this process to GPU ``LOCAL_RANK``; "cpu" uses gloo.
    """
    world = env_world_size()
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world,
                                timeout=timedelta(seconds=timeout_s))
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 (and in single-process runs): the only process that writes files."""
    return get_rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _comm_device(t: torch.Tensor) -> torch.device:
    # NCCL only moves CUDA tensors; gloo moves CPU tensors.
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


@torch.no_grad()
def average_gradients(modules: Iterable[nn.Module]) -> None:
    """All-reduce the gradients of ``modules`` and divide by the world size (the ``grad_sync`` hook).

    A parameter may have a gradient on one rank and none on another (a domain head no image of
    that rank's batch used). Ranks first agree on which parameters have a gradient anywhere;
    those get zeros where missing and are averaged, the rest stay ``None`` on every rank, so the
    optimisers take identical steps everywhere.
    """
    if not is_distributed():
        return
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    if not params:
        return
    world = dist.get_world_size()
    dev = _comm_device(params[0])
    has_grad = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=dev)
    dist.all_reduce(has_grad)
    used = [p for p, h in zip(params, has_grad.tolist()) if h > 0]
    for p in used:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    if not used:
        return
    # One flat buffer per dtype: a single all-reduce instead of one per parameter.
    by_dtype: dict[torch.dtype, list[nn.Parameter]] = {}
    for p in used:
        by_dtype.setdefault(p.grad.dtype, []).append(p)
    for group in by_dtype.values():
        flat = torch.cat([p.grad.reshape(-1) for p in group]).to(dev)
        dist.all_reduce(flat)
        flat.div_(world)
        offset = 0
        for p in group:
            n = p.grad.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n


@torch.no_grad()
def broadcast_tensors(tensors: Iterable[torch.Tensor], src: int = 0) -> None:
    """Overwrite ``tensors`` on every rank with rank ``src``'s values."""
    if not is_distributed():
        return
    for t in tensors:
        buf = t.detach().to(_comm_device(t))  # the tensor itself when already on that device
        dist.broadcast(buf, src)
        if buf.data_ptr() != t.data_ptr():
            t.copy_(buf)


def broadcast_module_states(modules: Iterable[nn.Module], src: int = 0, buffers_only: bool = False) -> None:
    """Make parameters (unless ``buffers_only``) and buffers identical to rank ``src``'s."""
    for m in modules:
        if not buffers_only:
            broadcast_tensors((p.data for p in m.parameters()), src)
        broadcast_tensors(m.buffers(), src)


def all_reduce_mean(values: dict[str, float]) -> dict[str, float]:
    """Mean of each scalar over ranks (keys must be the same on every rank). NaN anywhere stays NaN."""
    if not is_distributed() or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_comm_device(torch.empty(0)))
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist()))


def all_gather_object(obj: Any) -> list[Any]:
    """``obj`` from every rank, in rank order (``[obj]`` for one process)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


@torch.no_grad()
def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate along dim 0 the tensors of every rank, in rank order (sizes may differ).

    For evaluators: each rank extracts features of its share of the images; every rank gets
    all of them. Returned on ``tensor``'s device. One process: ``tensor`` itself.
    """
    if not is_distributed():
        return tensor
    dev = _comm_device(tensor)
    local = tensor.detach().to(dev).contiguous()
    sizes = torch.tensor([local.shape[0]], dtype=torch.int64, device=dev)
    all_sizes = [torch.zeros_like(sizes) for _ in range(dist.get_world_size())]
    dist.all_gather(all_sizes, sizes)
    counts = [int(s.item()) for s in all_sizes]
    biggest = max(counts)
    padded = local.new_zeros((biggest, *local.shape[1:]))
    padded[: local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return torch.cat([p[:n] for p, n in zip(parts, counts)]).to(tensor.device)
