"""Training throughput of stargan2 in fp32, bf16 autocast and bf16 + channels_last.

    python benchmarks/bench_train.py [--quick] [--threads N] [--only paper|cpu]

Rows: the paper architecture (official widths: dim_in = 2**14 // img_size, max_conv_dim 512,
mapping hidden 512) at img 64 with K = 3 domains and batch 8; and the `cpu` preset (img 32,
fashion10's 10 domains, its own batch size). Each setting runs the method's real
``training_step`` (all four D/G updates, R1, EMA) exactly as the engine does (autocast
context, channels_last nets and inputs), after a warm-up step, and prints iterations/s and
the speed-up over fp32 measured in the same run. Inputs are fixed random images: throughput
does not depend on pixel content.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch

from i2ibench.config import build_run_config
from i2ibench.method import Batch, DataInfo
from i2ibench.registry import create_method
from i2ibench.seeding import seed_everything


@dataclass
class Setting:
    name: str
    preset: str
    overrides: dict
    num_domains: int
    precisions: tuple[tuple[str, bool], ...]  # (precision, channels_last)
    timed_iters: int


def make_batch(n: int, k: int, size: int, memory_format) -> Batch:
    g = torch.Generator().manual_seed(0)
    img = lambda: (torch.rand(n, 3, size, size, generator=g) * 2 - 1).contiguous(memory_format=memory_format)  # noqa: E731
    y_src = torch.randint(0, k, (n,), generator=g)
    y_ref = torch.randint(0, k, (n,), generator=g)
    return Batch(x_src=img(), y_src=y_src, x_ref=img(), x_ref2=img(), y_ref=y_ref)


def time_setting(s: Setting, precision: str, channels_last: bool) -> tuple[float, float, int]:
    """(iterations/s, seconds per iteration, batch size) of ``s`` at one precision."""
    overrides = {**s.overrides, "train.precision": precision, "train.channels_last": channels_last}
    cfg = build_run_config("stargan2", "fashion10", s.preset, overrides)
    seed_everything(cfg.train.seed)
    info = DataInfo(dataset="bench", domains=[f"d{i}" for i in range(s.num_domains)], img_size=cfg.train.img_size)
    method = create_method("stargan2", cfg, info, "cpu")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    method.to("cpu", memory_format=fmt if channels_last else None).train()
    batch = make_batch(cfg.train.batch_size, s.num_domains, cfg.train.img_size, fmt)
    autocast = torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    with autocast:
        method.training_step(batch, 0)  # warm-up: allocator, kernel selection
    t0 = time.perf_counter()
    for step in range(1, s.timed_iters + 1):
        with autocast:
            method.training_step(batch, step)
    dt = (time.perf_counter() - t0) / s.timed_iters
    return 1.0 / dt, dt, cfg.train.batch_size


def cpu_bf16_flags() -> str:
    """The CPU's bf16-related feature flags (AMX / AVX-512 BF16), from /proc/cpuinfo on Linux."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    found = [f for f in flags if f in ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f")]
    return ", ".join(found) or "no bf16 units"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer timed iterations (1 paper, 3 cpu)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--only", choices=("paper", "cpu"), default=None, help="run one group of rows")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = [
        Setting("paper arch, img 64, K 3, batch 8", "paper", {"train.img_size": 64, "train.batch_size": 8}, 3,
                (("fp32", False), ("bf16", False), ("bf16", True)), 1 if args.quick else 2),
        Setting("cpu preset (img 32, K 10)", "cpu", {}, 10,
                (("fp32", False), ("bf16", False), ("bf16", True)), 3 if args.quick else 10),
    ]
    settings = [s for s in settings if args.only is None or s.preset == args.only]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU flags: {cpu_bf16_flags()}")
    header = f"{'setting':36s} {'precision':20s} {'it/s':>8s} {'s/it':>8s} {'vs fp32':>8s}"
    print(header)
    print("-" * len(header))
    for s in settings:
        base = None
        for precision, cl in s.precisions:
            its, dt, batch = time_setting(s, precision, cl)
            base = its if base is None else base
            label = precision + (" + channels_last" if cl else "")
            name = s.name if "batch" in s.name else f"{s.name[:-1]}, batch {batch})"
            print(f"{name:36s} {label:20s} {its:8.3f} {dt:8.2f} {its / base:7.2f}x", flush=True)


if __name__ == "__main__":
    main()
