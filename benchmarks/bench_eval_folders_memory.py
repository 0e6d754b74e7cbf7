"""Peak memory of ``i2ibench eval --real DIR --fake DIR`` at N and 8N images: streaming keeps it flat.

    python benchmarks/bench_eval_folders_memory.py [--n 10] [--size 2048] [--threads 2]

Writes 8N real and 8N fake JPEG images of ``--size`` px (real Fashion-MNIST pictures, upscaled
bicubically, so the files decode like photographs rather than noise), then runs the CLI as a
subprocess on the first N of each folder and on all 8N, and prints each run's peak resident
set size (the child's ``ru_maxrss`` from ``os.wait4``), wall time, and the ratio of the two
peaks. Before streaming, every decoded image was held at once: 2.02 GB at 10 images and
3.78 GB at 80 (issue 12). Flat means the 8N peak is within 10 % of the N peak.

Assert-free apart from the CLI's exit status: it prints figures. The load average is printed
because the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def pictures(n: int) -> list[np.ndarray]:
    """``n`` real 28x28 pictures (Fashion-MNIST test set), or smooth synthetic ones without it."""
    from i2ibench.data.idx import find_idx, read_idx

    path = find_idx(FASHION_DIR, "t10k-images-idx3-ubyte") if FASHION_DIR.is_dir() else None
    if path is not None:
        return list(read_idx(path)[:n])
    print("Fashion-MNIST not found: using synthetic gradients")
    g = np.linspace(0, 255, 28)
    return [np.outer(np.roll(g, i), g[::-1]).astype(np.uint8) // 255 * 255 for i in range(n)]


def write_images(folder: Path, pics: list[np.ndarray], size: int, tint: int) -> None:
    folder.mkdir(parents=True)
    for i, p in enumerate(pics):
        rgb = np.dstack([p, p, np.clip(p.astype(int) + tint, 0, 255).astype(np.uint8)])
        Image.fromarray(rgb).resize((size, size), Image.Resampling.BICUBIC).save(folder / f"{i:05d}.jpg", quality=90)


def subset(src: Path, dst: Path, n: int) -> None:
    """The first ``n`` files of ``src`` in ``dst`` (hard links: no copy)."""
    dst.mkdir(parents=True)
    for p in sorted(src.iterdir())[:n]:
        os.link(p, dst / p.name)


def peak_rss(args: list[str], threads: int) -> tuple[float, float, str]:
    """(peak RSS in MiB, wall seconds, stdout) of ``i2ibench ARGS`` run as a child process."""
    exe = Path(sys.executable).with_name("i2ibench")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(exe), *args], stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (ru_maxrss in KiB on Linux)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"i2ibench {' '.join(args)} failed ({proc.returncode}):\n{err.read()}")
        return usage.ru_maxrss / 1024.0, wall, out.read().strip() + " | " + " / ".join(err.read().strip().splitlines())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10, help="images per folder in the small run (the large run has 8N)")
    ap.add_argument("--size", type=int, default=2048, help="image side in pixels")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {a.threads} torch threads")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        pics = pictures(16 * a.n)
        write_images(tmp / "real8", pics[: 8 * a.n], a.size, 0)
        write_images(tmp / "fake8", pics[8 * a.n:], a.size, 40)
        subset(tmp / "real8", tmp / "real1", a.n)
        subset(tmp / "fake8", tmp / "fake1", a.n)
        print(f"wrote {16 * a.n} JPEG images of {a.size} px in {time.perf_counter() - t0:.0f} s")
        peaks = {}
        for label, n in (("1", a.n), ("8", 8 * a.n)):
            rss, wall, text = peak_rss(["eval", "--no-cache", "--device", "cpu", "--json",
                                        "--real", str(tmp / f"real{label}"), "--fake", str(tmp / f"fake{label}")],
                                       a.threads)
            peaks[n] = rss
            print(f"{n:4d} real + {n:4d} fake images of {a.size} px: peak RSS {rss:8.1f} MiB, {wall:6.1f} s")
            print(f"     {text}")
        lo, hi = peaks[a.n], peaks[8 * a.n]
        print(f"peak RSS at 8N / at N = {hi / lo:.3f} ({'flat within 10 %' if hi <= 1.10 * lo else 'NOT flat'})")


if __name__ == "__main__":
    main()
