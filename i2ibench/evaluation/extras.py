"""Evaluations a dataset asks for beyond the protocols (colour recall on cmnist, LPIPS to the
true translation on a task whose answer is known, ...).

A dataset declares them by name in its spec (``DatasetSpec.evaluations``); each name is a
function registered here with ``@register_evaluation("name")`` that adds record rows for any
method evaluated on that dataset, so that the baseline and the method are scored alike. It
gets an ``ExtraContext`` and appends rows through ``ctx.rows.add(...)``; its protocol and
metric names go in ``i2ibench.names`` and ``i2ibench.metrics.keys``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from i2ibench.config import EvalConfig
from i2ibench.errors import ConfigError
from i2ibench.evaluation.protocols import Task
from i2ibench.evaluation.scoring import Rows
from i2ibench.method import Method
from i2ibench.registry import suggest


@dataclass
class ExtraContext:
    """What an extra evaluation may use: the method, the validation split, the eval settings,
    the planned tasks (class indices), the feature extractor and LPIPS net of this evaluation
    (``lpips_net`` may be ``None``), and the rows to add to."""

    method: Method
    val: Any
    ev: EvalConfig
    tasks: list[Task]
    features: Any
    lpips_net: Any
    rows: Rows


ExtraEvaluation = Callable[[ExtraContext], None]
_EVALUATIONS: dict[str, ExtraEvaluation] = {}


def register_evaluation(name: str) -> Callable[[ExtraEvaluation], ExtraEvaluation]:
    """Decorator: register ``fn(ctx)`` as the extra evaluation ``name``."""
    def deco(fn: ExtraEvaluation) -> ExtraEvaluation:
        if name in _EVALUATIONS and _EVALUATIONS[name] is not fn:
            raise ValueError(f"evaluation {name!r} is already registered")
        _EVALUATIONS[name] = fn
        return fn
    return deco


def run_extra_evaluations(names: tuple[str, ...], ctx: ExtraContext) -> None:
    """Run the named extra evaluations in order; ConfigError for an unknown name."""
    for name in names:
        if name not in _EVALUATIONS:
            raise ConfigError(f"unknown evaluation '{name}' declared by dataset {ctx.val.name}.{suggest(name, list(_EVALUATIONS))}")
        _EVALUATIONS[name](ctx)
