"""What the small-n metrics add to an evaluation's wall time, at the `cpu` preset's evaluation size.

    python benchmarks/bench_eval_metrics.py [--threads N] [--src N] [--outs N] [--real N]

One untrained stargan2 at the `cpu` preset's size on real fashion10 validation images is
evaluated three times in one process, interleaved, with one warm statistics cache: with the
FID-era metrics only (FID, density, coverage, LPIPS; KID and precision/recall are computed in the
same call and cost milliseconds, see bench_metrics.py), then with everything (plus translation
accuracy from the cached domain classifier and the 95 % bootstrap intervals of mFID and mKID).
The domain classifier is trained (once, cached) before timing starts; its training time is
printed separately. Prints wall time per configuration, the harness's per-phase times, and the
increase in percent (the target is < 10 %).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from i2ibench.config import build_run_config
from i2ibench.data.catalog import create_dataset
from i2ibench.evaluation.harness import evaluate
from i2ibench.features.classifier import load_classifier
from i2ibench.features.inception import InceptionFeatures
from i2ibench.method import DataInfo
from i2ibench.registry import create_method
from i2ibench.seeding import seed_everything


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--src", type=int, default=5, help="validation images per source domain (cpu preset: 5)")
    ap.add_argument("--outs", type=int, default=2, help="outputs per input (cpu preset: 2)")
    ap.add_argument("--real", type=int, default=200, help="real images per target domain (cpu preset: 200)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    clf = load_classifier("fashion10", "domain")
    print(f"domain classifier {clf.name} (val acc {clf.val_acc:.4f}) ready in {time.perf_counter() - t0:.1f} s "
          f"(training, when not cached, is one-time and not in the figures below)")
    base = {"eval.max_src_per_domain": args.src, "eval.outs_per_input": args.outs,
            "eval.max_real_per_domain": args.real, "eval.batch_size": 50}
    configs = {
        "FID, D&C, LPIPS": {**base, "eval.classifiers": False, "eval.bootstrap": 0},
        "+ classifier, intervals": base,
    }
    val = create_dataset("fashion10", "val", 32)
    cfg0 = build_run_config("stargan2", "fashion10", "cpu", base)
    seed_everything(cfg0.train.seed)
    method = create_method("stargan2", cfg0, DataInfo.of(cfg0, val), "cpu").to("cpu")
    feats = InceptionFeatures(batch_size=50)
    walls: dict[str, list[float]] = {k: [] for k in configs}
    phases: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as cache_root:
        evaluate(method, build_run_config("stargan2", "fashion10", "cpu", configs["FID, D&C, LPIPS"]), val=val,
                 features=feats, cache=cache_root, fake_cache=False, log=None)  # warm: real features into the cache
        for _ in range(args.repeats):
            for name, overrides in configs.items():
                cfg = build_run_config("stargan2", "fashion10", "cpu", overrides)
                lines: list[str] = []
                t1 = time.perf_counter()
                # fake_cache off: every repeat translates and extracts, as a new checkpoint's evaluation does
                evaluate(method, cfg, val=val, features=feats, cache=cache_root, fake_cache=False, log=lines.append)
                walls[name].append(time.perf_counter() - t1)
                phases[name] = next((ln for ln in lines if ln.startswith("[eval] wall time")), "")
    k = len(val.domains)
    print(f"fashion10 K={k}: {k * (k - 1) * args.src * args.outs} translations per mode, 2 modes, {args.real} "
          f"reals/domain, {args.threads} thread(s), best of {args.repeats}")
    best = {name: min(v) for name, v in walls.items()}
    for name, wall in best.items():
        print(f"{name:26s} {wall:8.1f} s   {phases[name]}")
    a, b = best["FID, D&C, LPIPS"], best["+ classifier, intervals"]
    print(f"increase: {100 * (b / a - 1):+.1f} % (target < 10 %)")


if __name__ == "__main__":
    main()
