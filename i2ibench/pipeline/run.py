"""``i2ibench run``: train a method, with periodic evaluation, then evaluate the final weights.

The training loop (``i2ibench.train.engine``) knows nothing of evaluation; this module hands it
the evaluator for ``train.eval_every`` and scores the trained method at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pandas as pd

from i2ibench.config import RunConfig
from i2ibench.evaluation.harness import evaluate
from i2ibench.method import Method
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
    method = train(cfg, out_dir, resume=resume, progress=progress, max_steps=max_steps,
                   evaluator=periodic_evaluator(cfg, out_dir))
    paused = max_steps is not None and max_steps < cfg.train.total_iters
    if paused or not evaluate_at_end or not cfg.eval.enabled:
        return method, None
    return method, evaluate(method, cfg, out_dir=out_dir, iterations=cfg.train.total_iters, log=log)
