"""Training-iteration speed: the official StarGAN v2 iteration against i2ibench's, and each
method's optimised step against its plain one, measured side by side in one process.

    python benchmarks/bench_train.py --official PATH [--only paper|cpu] [--threads 2]
        [--paper-iters 3] [--cpu-iters 10] [--warmup 1] [--ablation] [--fast] [--methods stargan2,tunit,lanit]

``--official PATH``: a checkout of clovaai/stargan-v2 whose ``core/`` is importable (it is not
vendored; ``git clone https://github.com/clovaai/stargan-v2``). Third-party modules that only
its FAN landmark network, video and metric helpers import (cv2, skimage, ffmpeg) and ``munch``
are replaced by stand-ins when they are not installed; the benchmark never calls that code.

Paper rows (img 64, K 3, batch 8, fp32; the official widths): the official iteration (its
``compute_d_loss``/``compute_g_loss``/``moving_average`` in the order of ``Solver.train``: D
latent, D reference, G latent, G reference, EMA), i2ibench's plain step
(``train.plain_step=true``) and its optimised default, all from the same weights (the official
nets' He initialisation, loaded key for key), on the same images and the same latent codes.
Each variant runs ``--warmup`` untimed iterations and then ``--paper-iters`` timed ones,
interleaved (variant A iteration i, variant B iteration i, ...), so load changes on a shared
machine hit every variant alike. Each row prints wall seconds per iteration (mean of the timed
ones, and each), the speed ratio to the official and to the plain step, process CPU seconds
per iteration and their ratio to the official (on a machine shared with other jobs, wall time
inflates with the load while CPU time much less), and the largest weight difference to the
official nets after the same iterations.

``--ablation`` adds the single changes (shared work alone; shared work + fused resampling
convolutions) so that each change's share of the gain is measured. ``--fast`` adds the fast
mode (bf16 autocast + channels_last; cudnn.benchmark on CUDA), not a default, whose metric
shift is measured by ``benchmarks/bench_fast_mode.py``.

cpu rows (each method's ``cpu`` preset, fashion10's 10 domains): i2ibench plain vs optimised
for stargan2, tunit (joint phase) and lanit (tiny-clip; needs ``i2ibench vlm pretrain``),
``--cpu-iters`` timed iterations each, interleaved.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
import types
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from i2ibench.config import build_run_config
from i2ibench.method import Batch, DataInfo
from i2ibench.nets.stargan2 import set_fused_resampling
from i2ibench.registry import create_method

OFFICIAL_HOWTO = ("get the official code with `git clone https://github.com/clovaai/stargan-v2` and pass "
                  "--official PATH (the folder that holds core/)")


# --------------------------------------------------------------------------- the official code

def _stand_in(name: str) -> types.ModuleType:
    """A module whose every attribute raises when used: for imports of code the benchmark never runs."""
    mod = types.ModuleType(name)

    def missing(attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)

        def fail(*_a, **_k):
            raise RuntimeError(f"{name}.{attr} is a benchmark stand-in (the module is not installed)")
        return fail
    mod.__getattr__ = missing  # type: ignore[attr-defined]
    return mod


class _Munch(dict):
    """munch.Munch's behaviour the official code uses: a dict with attribute access."""

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError as e:
            raise AttributeError(k) from e

    def __setattr__(self, k, v):
        self[k] = v


def import_official(path: Path) -> tuple[types.ModuleType, types.ModuleType, types.ModuleType, list[str]]:
    """``core.model``, ``core.solver``, ``core.utils`` of the official checkout, and the stand-ins used."""
    if not (path / "core" / "model.py").is_file() or not (path / "core" / "solver.py").is_file():
        sys.exit(f"--official {path}: no core/model.py and core/solver.py there; {OFFICIAL_HOWTO}")
    stood_in = []
    for name in ("cv2", "skimage", "skimage.filters", "ffmpeg", "munch"):
        top = name.split(".")[0]
        if name in sys.modules or (top not in sys.modules and importlib.util.find_spec(top) is not None):
            continue
        mod = _stand_in(name)
        if name == "munch":
            mod.Munch = _Munch  # type: ignore[attr-defined]
        sys.modules[name] = mod
        stood_in.append(name)
    sys.path.insert(0, str(path))
    import core.model as model
    import core.solver as solver
    import core.utils as utils
    return model, solver, utils, stood_in


# --------------------------------------------------------------------------- variants

@dataclass
class Variant:
    name: str
    step: Callable[[int], None]            # one iteration, 0-based index
    weights: Callable[[], dict[str, torch.Tensor]]
    times: list[float] = field(default_factory=list)      # wall seconds of the timed iterations
    cpu_times: list[float] = field(default_factory=list)  # process CPU seconds (all threads) of the same


def fixed_batch(n: int, k: int, size: int, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    img = lambda: torch.rand(n, 3, size, size, generator=g) * 2 - 1  # noqa: E731
    y_src, y_ref = torch.randint(0, k, (n,), generator=g), torch.randint(0, k, (n,), generator=g)
    return Batch(x_src=img(), y_src=y_src, x_ref=img(), x_ref2=img(), y_ref=y_ref)


def latent_seed(i: int) -> int:
    """Iteration i's global seed: i2ibench draws z1, z2 from it inside the step, the official loop before it."""
    return 1000 + i


def official_variant(official, batch: Batch, img: int, k: int, latent_dim: int = 16) -> Variant:
    model, solver, utils, _ = official
    args = _Munch(img_size=img, style_dim=64, latent_dim=latent_dim, num_domains=k, w_hpf=0.0, lr=1e-4,
                  f_lr=1e-6, beta1=0.0, beta2=0.99, weight_decay=1e-4, lambda_reg=1.0, lambda_sty=1.0,
                  lambda_ds=1.0, lambda_cyc=1.0, ds_iter=100_000)
    torch.manual_seed(0)
    nets, nets_ema = model.build_model(args)
    for net in nets.values():  # official Solver.__init__: EMA copies first, then He init of the trained nets
        net.apply(utils.he_init)
    optims = {name: torch.optim.Adam(net.parameters(), lr=args.f_lr if name == "mapping_network" else args.lr,
                                     betas=[args.beta1, args.beta2], weight_decay=args.weight_decay)
              for name, net in nets.items()}
    initial_ds = args.lambda_ds

    def reset():
        for o in optims.values():
            o.zero_grad()

    def step(i: int) -> None:
        torch.manual_seed(latent_seed(i))
        n = batch.x_src.size(0)
        z1, z2 = torch.randn(n, latent_dim), torch.randn(n, latent_dim)
        x_real = batch.x_src.clone()  # the official D loss sets requires_grad on it in place
        y_org, x_ref, x_ref2, y_trg = batch.y_src, batch.x_ref, batch.x_ref2, batch.y_ref
        loss, _ = solver.compute_d_loss(nets, args, x_real, y_org, y_trg, z_trg=z1, masks=None)
        reset(), loss.backward(), optims["discriminator"].step()
        loss, _ = solver.compute_d_loss(nets, args, x_real, y_org, y_trg, x_ref=x_ref, masks=None)
        reset(), loss.backward(), optims["discriminator"].step()
        loss, _ = solver.compute_g_loss(nets, args, x_real, y_org, y_trg, z_trgs=[z1, z2], masks=None)
        reset(), loss.backward()
        for name in ("generator", "mapping_network", "style_encoder"):
            optims[name].step()
        loss, _ = solver.compute_g_loss(nets, args, x_real, y_org, y_trg, x_refs=[x_ref, x_ref2], masks=None)
        reset(), loss.backward(), optims["generator"].step()
        for name in ("generator", "mapping_network", "style_encoder"):
            solver.moving_average(nets[name], nets_ema[name], beta=0.999)
        args.lambda_ds -= initial_ds / args.ds_iter

    def weights() -> dict[str, torch.Tensor]:
        out = {}
        for prefix, group in (("nets", nets), ("nets_ema", nets_ema)):
            for name, net in group.items():
                for key, v in net.state_dict().items():
                    out[f"{prefix}.{name}.{key.removeprefix('module.')}"] = v
        return out

    return Variant("official clovaai/stargan-v2", step, weights)


def method_variant(label: str, method_name: str, preset: str, overrides: dict, info: DataInfo, batch: Batch,
                   *, plain: bool, fuse: bool | None = None, fused_optim: bool | None = None,
                   fast: bool = False, step_offset: int = 0, load_from: Variant | None = None) -> Variant:
    """An i2ibench method's ``training_step`` as the engine runs it. ``fuse``/``fused_optim`` override
    what ``plain`` chose (ablations); ``fast``: bf16 autocast + channels_last (+ cudnn.benchmark on CUDA)."""
    cfg = build_run_config(method_name, "fashion10", preset, {**overrides, "train.plain_step": plain,
                                                             "train.precision": "bf16" if fast else "fp32",
                                                             "train.channels_last": fast})
    torch.manual_seed(0)
    m = create_method(method_name, cfg, info, "cpu")
    if load_from is not None:
        w = load_from.weights()
        for prefix, group in (("nets", m.nets), ("nets_ema", m.nets_ema)):
            for name, net in group.items():
                net.load_state_dict({k: w[f"{prefix}.{name}.{k}"] for k in net.state_dict()})
    if fuse is not None:
        for group in (m.nets, m.nets_ema):
            set_fused_resampling(group, fuse)
    if fused_optim is not None:
        for o in m.optims.values():
            for g in o.param_groups:
                if isinstance(o, torch.optim.Adam):
                    g["fused"], g["foreach"] = (True, None) if fused_optim else (None, False)
                else:
                    g["foreach"] = fused_optim
    fmt = torch.channels_last if fast else torch.contiguous_format
    m.to("cpu", memory_format=fmt if fast else None).train()
    b = Batch(**{k: (v.contiguous(memory_format=fmt) if torch.is_tensor(v) and v.dim() == 4 else v)
                 for k, v in vars(batch).items()})
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if fast else nullcontext()

    def step(i: int) -> None:
        torch.manual_seed(latent_seed(i))
        with autocast:
            m.training_step(b, step_offset + i)

    def weights() -> dict[str, torch.Tensor]:
        out = {}
        for prefix, group in (("nets", m.nets), ("nets_ema", m.nets_ema)):
            for name, net in group.items():
                for key, v in net.state_dict().items():
                    out[f"{prefix}.{name}.{key}"] = v.float()
        return out

    return Variant(label, step, weights)


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a if k in b)


def run_interleaved(variants: list[Variant], warmup: int, iters: int) -> None:
    for i in range(warmup + iters):
        for v in variants:
            t0, c0 = time.perf_counter(), time.process_time()
            v.step(i)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if i >= warmup:
                v.times.append(dt)
                v.cpu_times.append(dc)
            print(f"  iteration {i} {'(warm-up) ' if i < warmup else ''}{v.name}: {dt:.2f} s wall, {dc:.2f} s CPU",
                  flush=True)


def print_table(title: str, variants: list[Variant], ref: Variant, plain: Variant | None, diff_to: Variant | None) -> None:
    print(f"\n{title}")
    head = f"{'variant':52s} {'s/iter':>8s}  {'vs ' + ref.name.split()[0]:>12s} {'vs plain':>9s} {'CPU s/iter':>10s} {'CPU ratio':>9s}"
    head += f"  {'max|dW| vs ' + diff_to.name.split()[0]:>20s}" if diff_to else ""
    print(head + "   timed iterations (s)")
    print("-" * (len(head) + 24))
    ref_t = statistics.mean(ref.times)
    plain_t = statistics.mean(plain.times) if plain else None
    ref_w = diff_to.weights() if diff_to else None
    for v in variants:
        t = statistics.mean(v.times)
        row = f"{v.name:52s} {t:8.3f}  {ref_t / t:11.2f}x"
        row += f" {plain_t / t:8.2f}x" if plain_t else f" {'':>9s}"
        c = statistics.mean(v.cpu_times)
        row += f" {c:10.2f} {statistics.mean(ref.cpu_times) / c:8.2f}x"
        if ref_w is not None:
            row += f"  {max_diff(ref_w, v.weights()):20.3g}"
        print(row + "   " + " ".join(f"{x:.2f}" for x in v.times), flush=True)


# --------------------------------------------------------------------------- settings

def paper_rows(args, official) -> None:
    img, k, n = 64, 3, 8
    info = DataInfo("bench", [f"d{i}" for i in range(k)], img)
    batch = fixed_batch(n, k, img)
    ov = {"train.img_size": img, "train.batch_size": n}
    off = official_variant(official, batch, img, k)
    mk = lambda label, **kw: method_variant(label, "stargan2", "paper", ov, info, batch, load_from=off, **kw)  # noqa: E731
    variants = [off, mk("i2ibench plain (train.plain_step=true)", plain=True)]
    if args.ablation:
        variants += [mk("i2ibench shared work only", plain=False, fuse=False, fused_optim=False),
                     mk("i2ibench shared work + fused resampling convs", plain=False, fused_optim=False)]
    variants.append(mk("i2ibench optimised (default)", plain=False))
    if args.fast:
        variants.append(mk("i2ibench optimised + fast mode (bf16, channels_last)", plain=False, fast=True))
    print(f"\npaper architecture: img {img}, K {k}, batch {n}, fp32, {torch.get_num_threads()} threads; "
          f"{args.warmup} warm-up + {args.paper_iters} timed iterations per variant, interleaved", flush=True)
    run_interleaved(variants, args.warmup, args.paper_iters)
    print_table(f"paper architecture (img {img}, K {k}, batch {n}), fp32 unless named", variants, off, variants[1], off)


def cpu_rows(args) -> None:
    info = DataInfo("fashion10", [f"d{i}" for i in range(10)], 32)
    for name in args.methods.split(","):
        cfg = build_run_config(name, "fashion10", "cpu")
        batch = fixed_batch(cfg.train.batch_size, 10, cfg.train.img_size)
        offset = max(cfg.model.separated_iters, cfg.model.ema_start_iters) if name == "tunit" else 0
        mk = lambda label, **kw: method_variant(f"{name} {label}", name, "cpu", {}, info, batch,  # noqa: E731
                                                step_offset=offset, **kw)
        variants = [mk("plain", plain=True)]
        if args.ablation:
            variants += [mk("shared work only", plain=False, fuse=False, fused_optim=False),
                         mk("shared work + fused resampling convs", plain=False, fused_optim=False)]
        variants.append(mk("optimised (default)", plain=False))
        if args.fast:
            variants.append(mk("optimised + fast mode (bf16, channels_last)", plain=False, fast=True))
        phase = f" (joint phase, from step {offset})" if offset else ""
        print(f"\n{name} cpu preset{phase}: img {cfg.train.img_size}, K 10, batch {cfg.train.batch_size}; "
              f"{args.warmup} warm-up + {args.cpu_iters} timed iterations per variant, interleaved", flush=True)
        run_interleaved(variants, args.warmup, args.cpu_iters)
        print_table(f"{name} cpu preset{phase}", variants, variants[0], None, variants[0])


def cpu_flags() -> str:
    """The CPU's vector and bf16 feature flags (AVX2, AVX-512, AVX-512 BF16, AMX), from /proc/cpuinfo on Linux:
    whether bf16 autocast can be fast here."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    found = [f for f in flags if f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")]
    return ", ".join(found) or "none of avx2, avx512f, avx512_bf16, amx"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", type=Path, default=None, help="clovaai/stargan-v2 checkout (paper rows)")
    ap.add_argument("--only", choices=("paper", "cpu"), default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--paper-iters", type=int, default=3)
    ap.add_argument("--cpu-iters", type=int, default=10)
    ap.add_argument("--methods", default="stargan2,tunit,lanit", help="cpu rows")
    ap.add_argument("--ablation", action="store_true", help="also time each change alone")
    ap.add_argument("--fast", action="store_true", help="also time the fast mode (bf16 autocast + channels_last)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU flags: {cpu_flags()}")
    if args.only in (None, "paper"):
        if args.official is None:
            sys.exit(f"the paper rows compare with the official code: {OFFICIAL_HOWTO} (or --only cpu)")
        official = import_official(args.official.expanduser().resolve())
        if official[3]:
            print(f"official code: {args.official}; stand-ins for modules it imports but the benchmark never "
                  f"runs: {', '.join(official[3])}")
        paper_rows(args, official)
    if args.only in (None, "cpu"):
        cpu_rows(args)


if __name__ == "__main__":
    main()
