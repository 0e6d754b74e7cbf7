"""The fast mode's metric shift: one short training run in fp32 and one in the fast mode (bf16
autocast + channels_last; cudnn.benchmark on CUDA), same seed, same data, same evaluation.

    python benchmarks/bench_fast_mode.py [--method stargan2] [--dataset fashion10] [--iters 200]
        [--out runs/bench-fast-mode] [--threads 2] [--preset cpu]

Runs ``i2ibench run -p cpu`` three times, one after the other, with ``train.total_iters``
``--iters`` and the preset's evaluation (bootstrap intervals off, to save time):

- ``fp32``: the default (the optimised step);
- ``fp32 plain``: ``train.plain_step=true``, which differs from the default only by fp32
  round-off: how far the metrics move when nothing but the order of fp32 sums changes;
- ``fast``: ``--precision bf16 --set train.channels_last=true``.

Runs whose ``records.csv`` exists under ``--out`` are reused. Prints each run's wall time (training + evaluation) and the overall metrics of every protocol
and mode (mFID, KID, LPIPS, translation accuracy, ...) side by side, with fast − fp32 and
plain − fp32. A fast-mode shift within the plain − fp32 spread is round-off-sized; one well
beyond it is what the fast mode costs. The fast mode is never a default: it is
``--precision bf16`` and ``--set train.channels_last=true`` on the command line.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

VARIANTS = {
    "fp32": [],
    "fp32 plain": ["--set", "train.plain_step=true"],
    "fast": ["--precision", "bf16", "--set", "train.channels_last=true"],
}


def run(name: str, extra: list[str], args) -> tuple[float | None, pd.DataFrame]:
    """(wall seconds or None if reused, records) of one variant's run."""
    out = args.out / name.replace(" ", "-")
    if (out / "records.csv").is_file():
        print(f"{name}: reusing the finished run in {out} (delete it to run again)", flush=True)
        return None, pd.read_csv(out / "records.csv")
    cmd = [sys.executable, "-m", "i2ibench.cli", "run", "-m", args.method, "-d", args.dataset, "-p", args.preset,
           "--seed", str(args.seed), "--out", str(out), "--set", f"train.total_iters={args.iters}",
           "--set", "eval.bootstrap=0", *[a for kv in args.set for a in ("--set", kv)], *extra]
    print("$", " ".join(cmd[1:]), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, pd.read_csv(out / "records.csv")


def overall(df: pd.DataFrame) -> pd.Series:
    rows = df[(df["scope"] == "overall") & df["value"].notna()]
    return rows.set_index(["protocol", "mode", "metric"])["value"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="stargan2")
    ap.add_argument("--dataset", default="fashion10")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--preset", default="cpu", help="cpu (default); smoke only checks that the script runs")
    ap.add_argument("--seed", type=int, default=777)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-fast-mode"))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="passed to every run, e.g. model.ema_beta=0.9 so that a short run's EMA generator "
                         "is not mostly its initialisation")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="which runs (fp32 is needed for the shifts)")
    args = ap.parse_args()
    names = [v.strip() for v in args.variants.split(",")]
    if "fp32" not in names or any(n not in VARIANTS for n in names):
        sys.exit(f"--variants: a comma list of {', '.join(VARIANTS)} that includes fp32")
    times, values = {}, {}
    for name in names:
        times[name], df = run(name, VARIANTS[name], args)
        values[name] = overall(df)
        if times[name] is not None:
            print(f"{name}: {times[name]:.0f} s (training {args.iters} iterations + evaluation)", flush=True)
    table = pd.DataFrame(values)
    for name in names[1:]:
        table[f"{name} - fp32"] = table[name] - table["fp32"]
    print(f"\n{args.method} on {args.dataset}, {args.preset} preset, {args.iters} iterations, seed {args.seed}"
          + (f", {' '.join(args.set)}" if args.set else ""))
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    timed = {k: v for k, v in times.items() if v is not None}
    if timed:
        print("\nwall time (training + evaluation): " + ", ".join(f"{k} {v:.0f} s" for k, v in timed.items()))


if __name__ == "__main__":
    main()
