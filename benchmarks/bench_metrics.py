"""Cost of the issue-14 metrics on the features the harness already has, at the cpu preset's sizes.

    python benchmarks/bench_metrics.py [--threads N] [--real N] [--fakes N]

Real Inception features of fashion10 validation images (domain 0 as the reals, domain 1 as
stand-in "translations"; computed once, then from the feature cache) are scored in the group
shapes of the two protocols at the cpu preset (10 targets x 90 pooled fakes; 90 tasks x 10
fakes; 200 reals): FID alone (what evaluation computed before), then KID, precision/recall/
density/coverage (``score_features``), the 95 % bootstrap intervals of mFID and mKID, and the
fashion10 domain classifier on 900 images (its training is one-time and not counted). Prints
seconds per protocol and mode; the harness's evaluation wall time comes from bench_eval.py.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--real", type=int, default=200)
    ap.add_argument("--fakes", type=int, default=300, help="distinct stand-in fake features to draw groups from")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits

    from i2ibench.data.catalog import create_dataset
    from i2ibench.features.classifier import load_classifier
    from i2ibench.features.inception import InceptionFeatures
    from i2ibench.evaluation.stats_export import domain_real_features
    from i2ibench.metrics.bootstrap import bootstrap_mean_interval
    from i2ibench.metrics.feature_scores import score_features
    from i2ibench.metrics.fid import fid

    val = create_dataset("fashion10", "val", 32)
    feats = InceptionFeatures()
    t0 = time.perf_counter()
    real_all = domain_real_features(val, 0, feats).numpy()
    other = domain_real_features(val, 1, feats).numpy()
    print(f"real features (2 x 500 images): {time.perf_counter() - t0:.1f} s (0 when cached)")
    real = real_all[:args.real]
    rng = np.random.default_rng(0)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for name, n_groups, m in (("pooled", 10, 90), ("stargan2", 90, 10)):
            fakes = [other[rng.choice(min(args.fakes, len(other)), m, replace=False)] for _ in range(n_groups)]
            t = time.perf_counter()
            fids = [fid(real, x) for x in fakes]
            t_fid = time.perf_counter() - t
            t = time.perf_counter()
            scores = [score_features(real, x)[0] for x in fakes]
            t_all = time.perf_counter() - t
            t = time.perf_counter()
            iv_f = bootstrap_mean_interval("fid", [(real, x) for x in fakes])
            t_bf = time.perf_counter() - t
            t = time.perf_counter()
            iv_k = bootstrap_mean_interval("kid", [(real, x) for x in fakes])
            t_bk = time.perf_counter() - t
            mkid = np.mean([s["kid"] for s in scores])
            print(f"{name:8s} {n_groups} groups x {m} fakes vs {len(real)} reals: FID only {t_fid:.2f} s | "
                  f"all feature metrics {t_all:.2f} s | mFID interval {t_bf:.2f} s | mKID interval {t_bk:.2f} s | "
                  f"mFID {np.mean(fids):.1f} [{iv_f.low:.1f}, {iv_f.high:.1f}] mKID {mkid:.4f} "
                  f"[{iv_k.low:.4f}, {iv_k.high:.4f}]")
    clf = load_classifier("fashion10", progress=False)
    x = val.images(torch.arange(900))
    t = time.perf_counter()
    clf.predict(x)
    print(f"domain classifier ({clf.name}, val acc {clf.val_acc:.4f}): 900 images in {time.perf_counter() - t:.2f} s; "
          f"its one-time training took {clf.meta['training']['seconds']:.0f} s")


if __name__ == "__main__":
    main()
