"""``i2ibench run``: train a method, with periodic evaluation, then evaluate the final weights.

The training loop (``i2ibench.train.engine``) knows nothing of evaluation; this module hands it
the evaluator for ``train.eval_every`` and scores the trained method at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pandas as pd

from i2ibench.config import RunConfig
from i2ibench.data.catalog import run_dataset
from i2ibench.evaluation.harness import evaluate
from i2ibench.evaluation.protocols import check_modes, check_protocols, fakes_cap
from i2ibench.method import Method
from i2ibench.train.checkpoint import list_checkpoints
from i2ibench.train.engine import train


def periodic_evaluator(cfg: RunConfig, out_dir: Path, val: Any = None) -> Callable[[Method, int, Callable[[str], None]], None]:
    """The engine's ``evaluator``: evaluate on every rank, records into ``out_dir`` (rank 0 writes)."""
    def run_evaluation(method: Method, step: int, note: Callable[[str], None]) -> None:
        evaluate(method, cfg, out_dir=out_dir, iterations=step, val=val, log=note)
    return run_evaluation


def train_and_evaluate(cfg: RunConfig, out_dir: str | Path, *, resume: bool = True, progress: bool = True,
                       max_steps: int | None = None, evaluate_at_end: bool = True,
                       log: Callable[[str], None] | None = print) -> tuple[Method, pd.DataFrame | None]:
    """Train ``cfg`` into ``out_dir`` (resuming by default), then evaluate the trained method.

    Returns the method and the final records (``None`` when the run paused at ``max_steps``,
    when ``evaluate_at_end`` is False, or ``eval.enabled`` is off).
    """
    out_dir = Path(out_dir)
    evaluating = evaluate_at_end and cfg.eval.enabled
    val = real = None
    if evaluating or cfg.train.eval_every > 0:
        # Found before training, not after it: bad eval settings, a missing val or real split.
        val, real = evaluation_data(cfg)
    done = finished_step(out_dir, cfg) if resume else None
    method = train(cfg, out_dir, resume=resume, progress=progress, max_steps=max_steps,
                   evaluator=periodic_evaluator(cfg, out_dir, val))
    paused = max_steps is not None and max_steps < cfg.train.total_iters
    if paused or not evaluating:
        return method, None
    if done is not None and log is not None:
        log(f"[run] {out_dir} was already trained ({done} of {cfg.train.total_iters} iterations): nothing to train; "
            f"evaluating it again (an unchanged checkpoint's translations come from the fake-feature cache)")
    return method, evaluate(method, cfg, out_dir=out_dir, iterations=cfg.train.total_iters, val=val, real=real,
                            log=log)


def finished_step(out_dir: Path, cfg: RunConfig) -> int | None:
    """The step of ``out_dir``'s newest checkpoint when it is at (or past) ``train.total_iters``, else None."""
    found = list_checkpoints(out_dir) if out_dir.is_dir() else []
    step = max((s for s, _ in found), default=None)
    return step if step is not None and step >= cfg.train.total_iters else None


def evaluation_data(cfg: RunConfig) -> tuple[Any, Any]:
    """The validation split and the real split of ``cfg``'s evaluation, after checking its settings.

    Raises ``ConfigError`` (unknown protocol, mode, fakes rule) or ``DataError`` (a split that
    is not there) before anything is trained.
    """
    ev = cfg.eval
    check_protocols(ev.protocols)
    check_modes(ev.modes)
    fakes_cap(ev.fakes_per_target, [])
    val = run_dataset(cfg, "val")
    real = val if ev.real_split == "val" else run_dataset(cfg, ev.real_split)
    return val, real
