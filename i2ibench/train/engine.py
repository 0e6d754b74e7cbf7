"""The one training loop every method runs in.

``train(cfg, out_dir)`` picks the device, seeds every generator, builds the dataset, the
method and the sampler, resumes from the newest checkpoint in ``out_dir`` if there is one,
and runs ``method.training_step`` from there to ``cfg.train.total_iters``, writing progress,
TensorBoard scalars, a JSONL loss log, PNG sample grids and atomic checkpoints.

Exact resume: the batch of step ``s`` is a pure function of (seed, rank, s) (the sampler),
the method's state and every RNG state are in the checkpoint, and nothing the engine does
besides the training step itself (sampling grids, logging) moves a global generator. So a
run killed at any moment and resumed ends with the same weights, bit for bit, as the run
never stopped.

Run directory (only rank 0 writes):

    config.yaml                  resolved RunConfig
    checkpoints/ckpt_<step>.pt   the ``keep_ckpts`` newest
    samples/{latent,reference}_<step>.png
    tb/                          TensorBoard scalars
    train_log.jsonl              one row per ``log_every`` steps: step, losses, it/s
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Iterator

import torch
import yaml

from i2ibench.train import distributed as dist_utils
from i2ibench.train.checkpoint import checkpoint_dir, checkpoint_path, latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from i2ibench.config import RunConfig, dump, flatten, to_dict
from i2ibench.errors import ConfigError, DataError, I2IError, TrainingError
from i2ibench.fileio import write_text
from i2ibench.method import Batch, DataInfo, Method
from i2ibench.registry import create_method
from i2ibench.train.sample_grid import SampleInputs, pick_sample_inputs, save_sample_grids
from i2ibench.seeding import get_rng_states, preserved_rng, seed_everything, set_rng_states

CONFIG_FILE = "config.yaml"
LOG_FILE = "train_log.jsonl"
SAMPLES_DIR = "samples"
TB_DIR = "tb"

# Config keys that may change between a run and its resumption without changing what is
# trained: bookkeeping, where the data is, and the evaluation protocol. ``total_iters`` may
# grow to extend a finished run.
RESUME_FREE_KEYS = (
    "train.total_iters", "train.log_every", "train.sample_every", "train.ckpt_every",
    "train.keep_ckpts", "train.eval_every", "train.num_workers", "train.device",
    "train.channels_last", "data_root",
)
RESUME_FREE_PREFIXES = ("eval.",)


# --------------------------------------------------------------------------- setup helpers

def select_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto``: CUDA (GPU ``local_rank``) if available, else CPU."""
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("train.device=cuda but no CUDA device is available; use auto or cpu")
        return torch.device("cuda", local_rank)
    if preference == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"train.device must be auto, cpu or cuda, got '{preference}'")


def _device_type(preference: str) -> str:
    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return preference


def _check_precision(precision: str) -> None:
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"train.precision must be fp32 or bf16, got '{precision}'")


def _normalised(cfg_dict: dict[str, Any]) -> dict[str, Any]:
    # Through YAML and back, so a fresh config compares equal to its dumped copy.
    return flatten(yaml.safe_load(yaml.safe_dump(cfg_dict, sort_keys=False)))


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every training-relevant key that differs."""
    a, b = _normalised(old), _normalised(new)
    diffs = []
    for key in sorted(set(a) | set(b)):
        if key in RESUME_FREE_KEYS or key.startswith(RESUME_FREE_PREFIXES):
            continue
        if a.get(key, "<unset>") != b.get(key, "<unset>"):
            diffs.append(f"{key}: {a.get(key, '<unset>')!r} -> {b.get(key, '<unset>')!r}")
    return diffs


def check_resumable(out_dir: Path, cfg: RunConfig) -> None:
    """Refuse to continue a run directory that holds a run with other training settings."""
    path = out_dir / CONFIG_FILE
    if not path.is_file():
        return
    try:
        old = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        raise I2IError(f"{path} is not readable YAML; pass --no-resume to start the run over") from None
    diffs = config_differences(old, to_dict(cfg))
    if diffs:
        shown = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
        raise I2IError(f"{out_dir} holds a run with other training settings ({shown}); "
                       f"pass another --out, or --no-resume to start it over")


def clear_run_outputs(out_dir: Path) -> None:
    """Remove the files a previous run wrote here (only i2ibench's own names)."""
    for _, p in list_checkpoints(out_dir):
        p.unlink(missing_ok=True)
    for p in (out_dir / SAMPLES_DIR).glob("*.png"):
        p.unlink(missing_ok=True)
    for p in (out_dir / TB_DIR).glob("events.out.tfevents.*"):
        p.unlink(missing_ok=True)
    (out_dir / LOG_FILE).unlink(missing_ok=True)


def _truncate_log(path: Path, keep_until_step: int) -> None:
    """Drop log rows written after the checkpoint we resume from (they will be re-run)."""
    if not path.is_file():
        return
    rows = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= keep_until_step:
                rows.append(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    write_text(path, "".join(r + "\n" for r in rows))


# --------------------------------------------------------------------------- batches

class _StepIndexLists(torch.utils.data.Sampler):
    """For a DataLoader: the concatenated (src, ref, ref2) indices of each step."""

    def __init__(self, sampler: Any, start: int, stop: int):
        self.sampler, self.start, self.stop = sampler, start, stop

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            src, ref, ref2, _ = self.sampler.indices(step)
            yield torch.cat([src, ref, ref2]).tolist()

    def __len__(self) -> int:
        return self.stop - self.start


def _stack_images(items: list[tuple[torch.Tensor, Any]]) -> torch.Tensor:
    return torch.stack([img for img, _ in items])


def iterate_batches(dataset: Any, sampler: Any, start: int, stop: int, num_workers: int,
                    pin_memory: bool = False, labelled: torch.Tensor | None = None) -> Iterator[tuple[int, Batch]]:
    """``(step, Batch)`` for steps ``start..stop-1`` (CPU tensors).

    With ``num_workers`` > 0 images are decoded by DataLoader workers over a per-step batch
    sampler (folder datasets), else by ``dataset.images`` in this process. Either way the
    images of step ``s`` are those of ``sampler.indices(s)``. ``labelled``: a bool mask [N]
    (semi-supervised methods) that becomes ``Batch.labelled``.
    """
    labels = torch.as_tensor(dataset.labels)
    if num_workers > 0:
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=_StepIndexLists(sampler, start, stop), num_workers=num_workers,
            collate_fn=_stack_images, pin_memory=pin_memory,
            # Its own generator: creating the loader iterator must not draw from the global one.
            generator=torch.Generator().manual_seed(0))
        images: Iterator[torch.Tensor] = iter(loader)
    else:
        images = (dataset.images(torch.cat(sampler.indices(s)[:3])) for s in range(start, stop))
    for step, x in zip(range(start, stop), images):
        src, ref, ref2, y_ref = sampler.indices(step)
        n, m = len(src), len(ref)
        yield step, Batch(x_src=x[:n], y_src=labels[src], x_ref=x[n:n + m], x_ref2=x[n + m:],
                          y_ref=torch.as_tensor(y_ref), labelled=None if labelled is None else labelled[src])


def labelled_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor | None:
    """Bool mask [N] of the images whose label a semi-supervised method may use (``None`` for 0).

    A fixed ``fraction`` of every domain, drawn once from ``seed`` (the same on every rank and
    on resume), as in TUNIT's semi-supervised setting. Methods ask for it through a
    ``labelled_fraction`` field in their config.
    """
    if fraction <= 0:
        return None
    labels = torch.as_tensor(labels)
    mask = torch.zeros(labels.shape[0], dtype=torch.bool)
    g = torch.Generator().manual_seed(seed)
    for d in range(labels.shape[1] if labels.dim() == 2 else int(labels.max()) + 1):
        members = (labels[:, d] > 0 if labels.dim() == 2 else labels == d).nonzero().flatten()
        if len(members):
            keep = max(1, round(fraction * len(members)))
            mask[members[torch.randperm(len(members), generator=g)[:keep]]] = True
    return mask


def make_sampler(labels: torch.Tensor, batch_size: int, seed: int, balanced: bool) -> Any:
    from i2ibench.data.samplers import TrainSampler

    return TrainSampler(labels, batch_size, seed, balanced=balanced)


# --------------------------------------------------------------------------- writers

class _RunLog:
    """Progress bar, TensorBoard and JSONL loss log (rank 0; silent elsewhere)."""

    def __init__(self, out_dir: Path, start: int, stop: int, desc: str, active: bool, progress: bool):
        self.active = active
        self.bar = None
        self.tb = None
        self.jsonl = None
        if not active:
            return
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=stop, initial=start, desc=desc, dynamic_ncols=True, unit="it")
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(out_dir / TB_DIR), purge_step=start if start > 0 else None)
        log_path = out_dir / LOG_FILE
        if start > 0:
            _truncate_log(log_path, start)
        else:
            write_text(log_path, "")
        # Append-only: one flushed line per log step; a kill can cut only the last line,
        # which _truncate_log drops on resume.
        self.jsonl = open(log_path, "a")
        self.t_start = time.perf_counter()

    def step(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def scalars(self, step: int, losses: dict[str, float], it_per_s: float) -> None:
        if not self.active:
            return
        for k, v in losses.items():
            self.tb.add_scalar(f"loss/{k}", v, step)
        self.tb.add_scalar("speed/it_per_s", it_per_s, step)
        row = {"step": step, **{k: round(v, 6) for k, v in losses.items()}, "it_per_s": round(it_per_s, 4),
               "elapsed_s": round(time.perf_counter() - self.t_start, 2)}
        self.jsonl.write(json.dumps(row) + "\n")
        self.jsonl.flush()
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)

    def note(self, text: str) -> None:
        if not self.active:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()
        if self.jsonl is not None:
            self.jsonl.close()


# --------------------------------------------------------------------------- the loop

def _due(done: int, every: int) -> bool:
    return every > 0 and done % every == 0


def train(cfg: RunConfig, out_dir: str | Path, resume: bool = True, progress: bool = True,
          max_steps: int | None = None, train_set: Any = None, sample_set: Any = None) -> Method:
    """Train ``cfg.method`` on ``cfg.dataset`` into ``out_dir``; returns the trained method.

    ``resume``: continue from the newest checkpoint in ``out_dir`` (the run's config must
    match in every training setting); ``False`` starts over, deleting that run's files.
    ``max_steps``: pause after this many completed steps (a checkpoint is written; a later
    call resumes). ``train_set``/``sample_set``: datasets to use instead of creating
    ``cfg.dataset``'s train split / its val split (for sample grids).
    """
    out_dir = Path(out_dir)
    tc = cfg.train
    _check_precision(tc.precision)
    dinfo = dist_utils.init_distributed(_device_type(tc.device))
    device = select_device(tc.device, dinfo.local_rank)
    main = dinfo.is_main

    if resume:  # on every rank (it only reads), so a refusal stops all ranks, none left waiting
        check_resumable(out_dir, cfg)
    dist_utils.barrier()
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            clear_run_outputs(out_dir)
        dump(cfg, out_dir / CONFIG_FILE)
    dist_utils.barrier()

    if train_set is None:
        from i2ibench.data.catalog import create_dataset

        train_set = create_dataset(cfg.dataset, "train", tc.img_size, cfg.data_root)
    elif sample_set is None:
        sample_set = train_set  # a caller's own data: no split to look up by name
    eval_set = sample_set  # None: the evaluator opens cfg.dataset's own splits
    labels = torch.as_tensor(train_set.labels)
    info = DataInfo(dataset=cfg.dataset, domains=list(train_set.domains), img_size=tc.img_size,
                    multi_label=labels.dim() == 2)

    # Same seed on every rank while building the nets, so all ranks start from one model.
    seed_everything(tc.seed)
    method = create_method(cfg.method, cfg, info, device)
    memory_format = torch.channels_last if tc.channels_last else None
    method.to(device, memory_format=memory_format)
    if dinfo.enabled:
        dist_utils.broadcast_module_states([method.nets, method.nets_ema])
        method.grad_sync = dist_utils.average_gradients

    start = 0
    last_good: Path | None = None
    ckpt_path = latest_checkpoint(out_dir) if resume else None
    if ckpt_path is not None:
        ckpt = load_checkpoint(ckpt_path)
        method.load_state_dict(ckpt["method"])
        start = int(ckpt["step"])
        last_good = ckpt_path
        rng = ckpt.get("rng") or []
        if len(rng) == dinfo.world_size:
            set_rng_states(rng[dinfo.rank])
        else:  # another world size: the per-rank streams cannot be continued exactly
            seed_everything(tc.seed + dinfo.rank + start)
        del ckpt
    else:
        seed_everything(tc.seed + dinfo.rank)

    stop = tc.total_iters if max_steps is None else min(tc.total_iters, max_steps)
    # Unsupervised methods must not see ground truth through class-balanced sampling.
    sampler = make_sampler(labels, tc.batch_size, tc.seed + dinfo.rank,
                           balanced=method.label_kind == "ground_truth")
    log = _RunLog(out_dir, start, stop, f"{cfg.method}/{cfg.dataset}", main, progress)
    if start > 0:
        log.note(f"resumed from {ckpt_path} (step {start})")
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=tc.precision == "bf16")
    batch_format = torch.channels_last if tc.channels_last else torch.contiguous_format
    samples: SampleInputs | None = None

    def checkpoint(done: int) -> Path:
        rng = dist_utils.all_gather_object(get_rng_states())  # every rank's streams, for exact resume
        if not main:
            return checkpoint_path(out_dir, done)
        return save_checkpoint(out_dir, done, {"method": method.state_dict(), "rng": rng,
                                               "config": to_dict(cfg), "world_size": dinfo.world_size},
                               keep=tc.keep_ckpts)

    try:
        method.train()
        t_window, n_window = time.perf_counter(), 0
        labelled = labelled_subset(labels, float(getattr(method.mcfg, "labelled_fraction", 0.0) or 0.0), tc.seed)
        for step, batch in iterate_batches(train_set, sampler, start, stop, tc.num_workers,
                                           pin_memory=device.type == "cuda", labelled=labelled):
            batch = batch.to(device, memory_format=batch_format)
            with autocast:
                raw = method.training_step(batch, step)
            losses = {k: float(v) for k, v in raw.items()}
            if dinfo.enabled:
                # One collective gives mean losses for the log and lets every rank see a NaN
                # on any rank, so all stop together instead of hanging in the next all-reduce.
                losses = dist_utils.all_reduce_mean(losses)
                dist_utils.broadcast_module_states([method.nets, method.nets_ema], buffers_only=True)
            bad = [k for k, v in losses.items() if not math.isfinite(v)]
            if bad:
                raise TrainingError(f"non-finite loss '{bad[0]}' at step {step}; last good checkpoint: "
                                    f"{last_good if last_good is not None else 'none (no checkpoint written yet)'}")
            done = step + 1
            n_window += 1
            log.step()
            if _due(done, tc.log_every) or done == stop:
                now = time.perf_counter()
                log.scalars(done, losses, n_window / max(now - t_window, 1e-9))
                t_window, n_window = now, 0
            if main and (_due(done, tc.sample_every) or (done == stop and tc.sample_every > 0)):
                with preserved_rng():  # grids must not change the training trajectory
                    if samples is None:
                        samples = _sample_inputs(cfg, method, info, train_set, sample_set)
                    save_sample_grids(method, samples, info.num_domains, out_dir / SAMPLES_DIR, done)
                method.train()
            if _due(done, tc.ckpt_every) or done == stop:
                last_good = checkpoint(done)
            if _due(done, tc.eval_every) and done < tc.total_iters:  # the final one is `run`'s
                with preserved_rng():
                    _evaluate_now(method, cfg, out_dir, done, eval_set, log)
                method.train()
    finally:
        log.close()
    dist_utils.barrier()
    return method


def _evaluate_now(method: Method, cfg: RunConfig, out_dir: Path, step: int, val: Any, log: _RunLog) -> None:
    """Periodic evaluation (``train.eval_every``) on every rank; the evaluator writes on rank 0."""
    from i2ibench.evaluation.harness import evaluate

    evaluate(method, cfg, out_dir=out_dir, iterations=step, val=val, log=log.note if log.active else None)


def _sample_inputs(cfg: RunConfig, method: Method, info: DataInfo, train_set: Any, sample_set: Any) -> SampleInputs:
    """Fixed grid inputs from the validation split (the train split if the dataset has none)."""
    if sample_set is None:
        from i2ibench.data.catalog import create_dataset

        try:
            sample_set = create_dataset(cfg.dataset, "val", cfg.train.img_size, cfg.data_root)
        except DataError:
            sample_set = train_set
    latent_dim = getattr(method.mcfg, "latent_dim", None) if "latent" in method.modes else None
    return pick_sample_inputs(sample_set, info.num_domains, latent_dim, cfg.train.seed)


def resolve_out_dir(cfg: RunConfig, out: str | Path | None) -> Path:
    """``out``, or ``runs/<method>-<dataset>-<preset>-s<seed>``."""
    if out is not None:
        return Path(out)
    from i2ibench.defaults import DEFAULT_RUNS_DIR

    safe_dataset = cfg.dataset.replace("/", "_").replace(":", "_")
    return DEFAULT_RUNS_DIR / f"{cfg.method}-{safe_dataset}-{cfg.preset}-s{cfg.train.seed}"


__all__ = ["train", "select_device", "check_resumable", "config_differences", "iterate_batches",
           "resolve_out_dir", "CONFIG_FILE", "LOG_FILE", "SAMPLES_DIR", "TB_DIR", "checkpoint_dir"]
