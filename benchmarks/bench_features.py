"""Feature-extraction speed and the figures behind i2ibench's evaluation defaults.

    python benchmarks/bench_features.py [--threads 2] [--n-speed 40] [--n-fid 500]

On real Fashion-MNIST test images (28 px, bilinearly resized to 32 px RGB, as tensors in
[-1, 1] like the evaluation gets them), in one run:

1. images/s of torch-fidelity's own ``inception-v3-compat`` extractor (as ``calculate_metrics``
   runs it: fp32, NCHW, uint8 batches of 64) and of ``InceptionFeatures`` in fp32 (NCHW,
   channels_last, channels_last with batch norm folded into the convolutions), with the maximum absolute feature difference to torch-fidelity;
2. images/s of the bf16 autocast mode (timings interleaved, best of ``--rounds``);
3. the time of an evaluation (FID, density, coverage of ``--n-fid`` fakes) whose real features
   are computed and cached (cold), and of a second one that finds them in the statistics
   cache (warm); the FID arithmetic by torch-fidelity's eigenvalue route and by ours;
4. the bf16 mode's FID / density / coverage shift against fp32 on two disjoint sets of
   ``--n-fid`` real images.

Assert-free: it prints figures and ratios measured in the same run (the ratios carry over
between machines and loads; the absolute rates do not). The load average is printed because
the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from i2ibench.data.idx import read_idx
from i2ibench.features.inception import EXTRACTOR_NAME, FEATURE_LAYER, InceptionFeatures, forced_weights_only_load
from i2ibench.features.inception import quantize_uint8, weights_path
from i2ibench.metrics.fid import feature_stats, fid, fid_from_stats
from i2ibench.metrics.prdc import density_coverage
from i2ibench.features.cache import cached_features, fingerprint_tensor

FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


def fashion_images(n: int) -> torch.Tensor:
    """The first ``n`` test images as N x 3 x 32 x 32 floats in [-1, 1]."""
    digits = read_idx(FASHION)[:n]
    rgb = [np.asarray(Image.fromarray(d).resize((32, 32), Image.BILINEAR).convert("RGB")) for d in digits]
    return torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def torch_fidelity_extractor():
    """torch-fidelity's extractor, built and fed the way ``calculate_metrics`` does on CPU
    (uint8 batches of 64, fp32, NCHW), as a callable like ``InceptionFeatures``."""
    from torch_fidelity.utils import create_feature_extractor

    with forced_weights_only_load():
        net = create_feature_extractor(EXTRACTOR_NAME, [FEATURE_LAYER], cuda=False,
                                       feature_extractor_weights_path=str(weights_path()), verbose=False)

    @torch.no_grad()
    def extract(images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        u8 = quantize_uint8(images)
        return torch.cat([net(u8[s:s + batch_size])[0] for s in range(0, len(u8), batch_size)]).double()

    return extract


class Table:
    """Rows printed as soon as they are measured (a long run still leaves its figures)."""

    WIDTH = 60

    def __init__(self):
        print(f"{'figure':<{self.WIDTH}}  {'value':>18}  {'ratio':>8}", flush=True)

    def append(self, row: tuple[str, str, str]) -> None:
        name, value, ratio = row
        print(f"{name:<{self.WIDTH}}  {value:>18}  {ratio:>8}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-speed", type=int, default=40, help="images for the speed comparison")
    parser.add_argument("--n-fid", type=int, default=500, help="images per set for the bf16 FID shift")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="timings per extractor (best is kept)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{args.threads} threads, load average at start {os.getloadavg()[0]:.1f}")
    rows = Table()

    # 1-2. extractors on the same images; best of --rounds interleaved timings each
    speed_images = fashion_images(args.n_speed)
    fp32 = InceptionFeatures(batch_size=args.batch)
    bf16 = InceptionFeatures(batch_size=args.batch, precision="bf16")
    contenders = {
        "torch-fidelity extractor fp32 NCHW": torch_fidelity_extractor(),
        "ours fp32 NCHW": InceptionFeatures(batch_size=args.batch, channels_last=False, fold_bn=False),
        "ours fp32 channels_last": InceptionFeatures(batch_size=args.batch, fold_bn=False),
        "ours fp32 channels_last + BN folded (default)": fp32,
        "ours bf16 autocast channels_last + BN folded": bf16,
    }
    feats, best = {}, {}
    for fn in contenders.values():
        fn(speed_images[:2])  # warm-up
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            feats[name], t = timed(lambda: fn(speed_images))
            best[name] = min(best.get(name, float("inf")), t)
    ref_name = next(iter(contenders))
    for name in contenders:
        rate = args.n_speed / best[name]
        rows.append((f"{name} (img/s)", f"{rate:.2f}", f"{best[ref_name] / best[name]:.2f}"))
        if name != ref_name:
            rows.append(("  max |feature diff| vs torch-fidelity", f"{(feats[name] - feats[ref_name]).abs().max():.2e}", ""))

    # 3. an evaluation against cached real features, cold then warm; FID arithmetic
    images = fashion_images(2 * args.n_fid)
    real, fake = images[:args.n_fid], images[args.n_fid:]
    n = args.n_fid
    key = {"dataset": "fashion-mnist-t10k", "split": "bench", "domain": "all", "extractor": fp32.name,
           "img_size": 32, "inputs": fingerprint_tensor(real)}
    fake32 = fp32(fake)
    with tempfile.TemporaryDirectory() as cache_root:
        def evaluate():
            real_feats = cached_features(key, lambda: fp32(real), cache_root=cache_root)
            return real_feats, fid(real_feats, fake32), density_coverage(real_feats, fake32, k=5)

        (real32, fid32, dc32), t_cold = timed(evaluate)
        _, t_warm = timed(evaluate)
    rows.append((f"evaluation of {n} fakes, real features computed + cached (s)", f"{t_cold:.2f}", "1.00"))
    rows.append((f"evaluation of {n} fakes, real features from the cache (s)", f"{t_warm:.3f}", f"{t_warm / t_cold:.4f}"))
    stats = (*feature_stats(real32), *feature_stats(fake32))
    fid_eig, t_eig = timed(lambda: fid_from_stats(*stats))
    fid_svd, t_svd = timed(lambda: fid(real32, fake32))
    rows.append(("FID arithmetic, eigvals of S1 S2 (torch-fidelity) (s)", f"{t_eig:.2f}", "1.00"))
    rows.append(("FID arithmetic, SVD of X1 X2^T (i2ibench fid) (s)", f"{t_svd:.3f}", f"{t_svd / t_eig:.4f}"))
    rows.append(("  relative difference of the two FIDs", f"{abs(fid_svd - fid_eig) / fid_eig:.1e}", ""))

    # 4. the bf16 mode's metric shift on the same real images
    real16, fake16 = bf16(real), bf16(fake)
    fid16, dc16 = fid(real16, fake16), density_coverage(real16, fake16, k=5)
    feat_diff = (torch.cat([real16, fake16]) - torch.cat([real32, fake32])).abs().max()
    rows.append((f"FID fp32 ({n} vs {n} real images)", f"{fid32:.4f}", ""))
    rows.append(("FID bf16", f"{fid16:.4f}", ""))
    rows.append(("  FID bf16 - fp32 (abs / rel)", f"{fid16 - fid32:+.4f}", f"{(fid16 - fid32) / fid32:+.2%}"))
    rows.append(("  density fp32 / bf16", f"{dc32[0]:.4f} / {dc16[0]:.4f}", ""))
    rows.append(("  coverage fp32 / bf16", f"{dc32[1]:.4f} / {dc16[1]:.4f}", ""))
    rows.append(("  max |feature diff| bf16 vs fp32", f"{feat_diff:.3e}", ""))

    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
