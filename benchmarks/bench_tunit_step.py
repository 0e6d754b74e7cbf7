"""Seconds per training iteration of tunit's cpu preset (separated and joint phase), fp32 and
bf16 autocast, next to stargan2's cpu preset measured in the same run (the ratio is what
carries over between machines and loads).

    python benchmarks/bench_tunit_step.py [--threads 2] [--steps 5] [--precisions fp32,bf16]

Prints wall and process-CPU seconds per iteration (CPU seconds summed over threads: on a
machine shared with other jobs, wall time inflates but CPU time much less), and the
estimated time of a full cpu run of each method (tunit: separated iterations at the
separated rate, the rest at the joint rate), from CPU time / threads.
"""

from __future__ import annotations

import argparse
import time

import torch

from i2ibench.config import build_run_config
from i2ibench.method import Batch, DataInfo
from i2ibench.registry import create_method

DOMAINS = [f"d{k}" for k in range(10)]


def batch(n: int, size: int, seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    img = lambda: torch.rand(n, 3, size, size, generator=g) * 2 - 1  # noqa: E731
    y = lambda: torch.randint(0, len(DOMAINS), (n,), generator=g)  # noqa: E731
    return Batch(img(), y(), img(), img(), y())


def seconds_per_step(name: str, step: int, precision: str, steps: int, warmup: int = 1) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) per training step."""
    cfg = build_run_config(name, "fashion10", "cpu")
    torch.manual_seed(0)
    m = create_method(name, cfg, DataInfo("fashion10", DOMAINS, cfg.train.img_size), "cpu")
    m.train()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    b = batch(cfg.train.batch_size, cfg.train.img_size, 0)
    for i in range(warmup + steps):
        if i == warmup:
            t0, c0 = time.perf_counter(), time.process_time()
        with autocast:
            m.training_step(b, step + i)
    return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--precisions", default="fp32,bf16")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tunit = build_run_config("tunit", "fashion10", "cpu")
    sg2 = build_run_config("stargan2", "fashion10", "cpu")
    sep, total = tunit.model.separated_iters, tunit.train.total_iters
    print(f"threads={args.threads} steps={args.steps} img={tunit.train.img_size} K=10 "
          f"batch tunit={tunit.train.batch_size} stargan2={sg2.train.batch_size}")
    for precision in args.precisions.split(","):
        t_sep = seconds_per_step("tunit", 0, precision, args.steps)
        t_joint = seconds_per_step("tunit", sep + 100, precision, args.steps)
        t_sg2 = seconds_per_step("stargan2", 0, precision, args.steps)
        for label, (wall, cpu) in (("tunit separated", t_sep), ("tunit joint", t_joint), ("stargan2", t_sg2)):
            print(f"{precision:5s} {label:16s} wall {wall:7.3f} s/it  cpu {cpu:7.3f} s/it")
        est = lambda t: t[1] / args.threads  # noqa: E731  (idle-machine wall estimate)
        wall_tunit = sep * est(t_sep) + (total - sep) * est(t_joint)
        wall_sg2 = sg2.train.total_iters * est(t_sg2)
        print(f"{precision:5s} full cpu run (cpu time / threads): tunit {total} it ~ {wall_tunit / 60:.1f} min, "
              f"stargan2 {sg2.train.total_iters} it ~ {wall_sg2 / 60:.1f} min; joint/stargan2 per it "
              f"{t_joint[1] / t_sg2[1]:.2f}, separated/stargan2 {t_sep[1] / t_sg2[1]:.2f}")


if __name__ == "__main__":
    main()
