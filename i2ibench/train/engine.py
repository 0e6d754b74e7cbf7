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

The run directory's layout and resume rules are in ``i2ibench.train.rundir``; only rank 0 writes.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import torch

from i2ibench.config import RunConfig, dump, to_dict
from i2ibench.data.catalog import run_dataset
from i2ibench.data.samplers import TrainSampler, UniformSampler
from i2ibench.errors import ConfigError, DataError, TrainingError
from i2ibench.method import DataInfo, Method
from i2ibench.names import GROUND_TRUTH
from i2ibench.registry import create_method
from i2ibench.seeding import get_rng_states, preserved_rng, seed_everything, set_rng_states
from i2ibench.train import distributed as dist_utils
from i2ibench.train.augment import check_augmentation
from i2ibench.train.batches import iterate_batches, labelled_subset, paired_subset
from i2ibench.train.checkpoint import checkpoint_path, latest_checkpoint, load_checkpoint, save_checkpoint
from i2ibench.train.device import check_precision, configure_fast_mode, device_type, select_device
from i2ibench.train.rundir import (
    CONFIG_FILE,
    SAMPLES_DIR,
    RunLock,
    check_checkpoint_fits,
    check_resumable,
    clear_run_outputs,
    load_method_state,
    nonfinite_weights,
    remove_orphan_run_temps,
)
from i2ibench.train.runlog import RunLog
from i2ibench.train.sample_grid import SampleInputs, pick_sample_inputs, save_sample_grids

# --------------------------------------------------------------------------- the loop

Evaluator = Callable[[Method, int, Callable[[str], None]], None]


def _due(done: int, every: int) -> bool:
    return every > 0 and done % every == 0


def train(cfg: RunConfig, out_dir: str | Path, resume: bool = True, progress: bool = True,
          max_steps: int | None = None, train_set: Any = None, sample_set: Any = None,
          evaluator: Evaluator | None = None) -> Method:
    """Train ``cfg.method`` on ``cfg.dataset`` into ``out_dir``; returns the trained method.

    ``resume``: continue from the newest checkpoint in ``out_dir`` (the run's config must
    match in every training setting); ``False`` starts over, deleting that run's files.
    ``max_steps``: pause after this many completed steps (a checkpoint is written; a later
    call resumes). ``train_set``/``sample_set``: datasets to use instead of creating
    ``cfg.dataset``'s train split / its val split (for sample grids). ``evaluator(method,
    step, note)``: the periodic evaluation, called on every rank after each
    ``train.eval_every`` steps (not after the last step: that evaluation is the caller's,
    ``i2ibench.pipeline.run``); it must not move the training RNG streams (they are saved and
    restored around it). Raises ``ConfigError`` for ``train.eval_every`` > 0 without one.
    """
    out_dir = Path(out_dir)
    tc = cfg.train
    check_precision(tc.precision)
    check_augmentation(tc.augment)
    if tc.eval_every > 0 and evaluator is None:
        raise ConfigError("train.eval_every > 0 needs an evaluator: run through `i2ibench run` "
                          "(i2ibench.pipeline.run), or set train.eval_every=0")
    dinfo = dist_utils.init_distributed(device_type(tc.device))
    device = select_device(tc.device, dinfo.local_rank)
    main = dinfo.is_main

    # Everything that can fail on bad input (settings, data, method, checkpoint) is done before
    # anything in out_dir is written or deleted; the run lock keeps a second writer out.
    lock = RunLock(out_dir) if main else None
    try:
        if lock is not None and out_dir.is_dir():  # an existing run: nobody else may touch it from here on
            lock.acquire()
            remove_orphan_run_temps(out_dir)
        if resume:  # on every rank (it only reads), so a refusal stops all ranks, none left waiting
            check_resumable(out_dir, cfg)
        if train_set is None:
            train_set = run_dataset(cfg, "train")
        elif sample_set is None:
            sample_set = train_set  # a caller's own data: no split to look up by name
        labels = torch.as_tensor(train_set.labels)
        info = DataInfo.of(cfg, train_set)

        # Same seed on every rank while building the nets, so all ranks start from one model.
        seed_everything(tc.seed)
        method = create_method(cfg.method, cfg, info, device)
        memory_format = torch.channels_last if tc.channels_last else None
        method.to(device, memory_format=memory_format)
        configure_fast_mode(device, tc.precision, tc.channels_last)
        if dinfo.enabled:
            dist_utils.broadcast_module_states([method.nets, method.nets_ema])
            method.grad_sync = dist_utils.average_gradients

        start = 0
        last_good: Path | None = None
        ckpt_path = latest_checkpoint(out_dir) if resume else None
        if ckpt_path is not None:
            ckpt = load_checkpoint(ckpt_path)
            check_checkpoint_fits(ckpt, cfg, ckpt_path)
            load_method_state(method, ckpt["method"], ckpt_path)
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

        dist_utils.barrier()
        if main:
            if not lock.held:  # a new run directory: created only now that every input checked out
                lock.acquire()
            if not resume:
                clear_run_outputs(out_dir)
            dump(cfg, out_dir / CONFIG_FILE)
        dist_utils.barrier()
        return _loop(cfg, out_dir, method, train_set, sample_set, labels, start, last_good, ckpt_path,
                     max_steps, progress, evaluator, dinfo, device)
    finally:
        if lock is not None:
            lock.release()


def _loop(cfg: RunConfig, out_dir: Path, method: Method, train_set: Any, sample_set: Any, labels: torch.Tensor,
          start: int, last_good: Path | None, ckpt_path: Path | None, max_steps: int | None, progress: bool,
          evaluator: Evaluator | None, dinfo: Any, device: torch.device) -> Method:
    """The training loop from ``start`` (the run lock is held by the caller on rank 0)."""
    tc = cfg.train
    main = dinfo.is_main
    stop = tc.total_iters if max_steps is None else min(tc.total_iters, max_steps)
    # A method that learns without labels sees none: uniform draws that know no label, and
    # -1 in place of every label it is not given (official TUNIT and LANIT shuffle uniformly).
    supervised = method.label_kind == GROUND_TRUTH
    sampler = (TrainSampler(labels, tc.batch_size, tc.seed + dinfo.rank, domains=method.batch_domains) if supervised
               else UniformSampler(len(labels), tc.batch_size, tc.seed + dinfo.rank))
    log = RunLog(out_dir, start, stop, f"{cfg.method}/{cfg.dataset}", main, progress)
    if start > 0:
        log.note(f"resumed from {ckpt_path} (step {start})")
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=tc.precision == "bf16")
    batch_format = torch.channels_last if tc.channels_last else torch.contiguous_format
    samples: SampleInputs | None = None

    def checkpoint(done: int) -> Path:
        bad = nonfinite_weights(method)  # the same weights on every rank: all stop together
        if bad:
            raise TrainingError(f"non-finite weights at step {done} ({bad}); not saved. Last good checkpoint: "
                                f"{last_good if last_good is not None else 'none (no checkpoint written yet)'}")
        rng = dist_utils.all_gather_object(get_rng_states())  # every rank's streams, for exact resume
        if not main:
            return checkpoint_path(out_dir, done)
        return save_checkpoint(out_dir, done, {"method": method.state_dict(), "rng": rng,
                                               "config": to_dict(cfg), "world_size": dinfo.world_size},
                               keep=tc.keep_ckpts)

    done = start
    try:
        method.train()
        t_window, n_window = time.perf_counter(), 0
        labelled = labelled_subset(labels, method.labelled_fraction, tc.seed)
        pairs = paired_subset(train_set.pairs, method.paired_fraction, tc.seed) if method.uses_pairs else None
        for step, batch in iterate_batches(train_set, sampler, start, stop, tc.num_workers,
                                           pin_memory=device.type == "cuda", labelled=labelled, pairs=pairs,
                                           augmentation=tc.augment, seed=tc.seed + dinfo.rank,
                                           hide_labels=not supervised):
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
                        samples = _sample_inputs(cfg, method, train_set, sample_set)
                    save_sample_grids(method, samples, out_dir / SAMPLES_DIR, done)
                method.train()
            if _due(done, tc.ckpt_every) or done == stop:
                last_good = checkpoint(done)
            if evaluator is not None and _due(done, tc.eval_every) and done < tc.total_iters:
                with preserved_rng():
                    evaluator(method, done, log.note)
                method.train()
    except KeyboardInterrupt:
        # No checkpoint here: a half-finished step may have updated some nets and not others.
        log.note(f"interrupted after step {done}; the newest checkpoint is "
                 f"{last_good if last_good is not None else 'none (no checkpoint written yet)'}; "
                 f"the same command resumes from it")
        raise
    finally:
        log.close()
    if main and stop < tc.total_iters:
        log_line = (f"paused at step {done} of {tc.total_iters} (--max-steps); checkpoint {last_good}; "
                    f"the same command without --max-steps (or with a larger one) continues from it")
        print(log_line, flush=True)
    dist_utils.barrier()
    return method


def _sample_inputs(cfg: RunConfig, method: Method, train_set: Any, sample_set: Any) -> SampleInputs:
    """Fixed grid inputs from the validation split (the train split if the dataset has none)."""
    if sample_set is None:
        try:
            sample_set = run_dataset(cfg, "val")
        except DataError:
            sample_set = train_set
    return pick_sample_inputs(sample_set, method.latent_dim, cfg.train.seed)
