"""Making the translations a protocol scores: every served task into one target, in one mode.

Translations are made once and shared by both protocols; each output passes through the
feature extractor exactly once, and its LPIPS diversity is summed per task on the way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from i2ibench.config import EvalConfig
from i2ibench.evaluation import timing
from i2ibench.evaluation.protocols import Task, latent_codes, reference_indices
from i2ibench.method import Method
from i2ibench.metrics.lpips import lpips_diversity
from i2ibench.names import DETERMINISTIC, LATENT, REFERENCE
from i2ibench.train import distributed as dist_utils


@dataclass
class TaskOutput:
    """What one task's translations left behind: features and the LPIPS sum over its inputs."""

    feats: list[torch.Tensor] = field(default_factory=list)
    lpips_sum: float = 0.0
    lpips_inputs: int = 0
    # classifier verdicts on the same outputs, in the same order (LongTensor [n] each)
    domain_pred: list[torch.Tensor] = field(default_factory=list)
    content_pred: list[torch.Tensor] = field(default_factory=list)
    content_true: list[torch.Tensor] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)  # the batch number of each piece, for gathering

    def features(self, dim: int = 0) -> torch.Tensor:
        """All features of the task ``[n, dim]``; ``[0, dim]`` if this process made none of them."""
        return torch.cat(self.feats) if self.feats else torch.zeros(0, dim, dtype=torch.float64)

    def domain_predictions(self) -> torch.Tensor:
        return _cat_long(self.domain_pred)

    def content_predictions(self) -> torch.Tensor:
        return _cat_long(self.content_pred)

    def content_truth(self) -> torch.Tensor:
        return _cat_long(self.content_true)


def _cat_long(parts: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


@dataclass
class Classifiers:
    """The classifiers whose verdicts on every output the harness keeps (``None``: not used).

    ``content_of``: the content label of every validation image (LongTensor ``[N_val]``) when a
    content classifier is used.
    """

    domain: Any = None
    content: Any = None
    content_of: torch.Tensor | None = None


def outputs_per_input(ev: EvalConfig, mode: str) -> int:
    """``eval.outs_per_input`` for the style modes; 1 in deterministic mode (every output would be equal)."""
    return 1 if mode == DETERMINISTIC else max(1, ev.outs_per_input)


def class_target(method: Method, trg: int, n: int) -> torch.Tensor | None:
    """The method's domain for class ``trg``, repeated ``n`` times (``None`` if it has none)."""
    domain = method.domain_of_class(trg)
    if domain is None:
        return None
    return torch.full((n,), domain, dtype=torch.long, device=method.device)


def source_kw(method: Method, src_classes: list[int], repeat: int = 1, device=None) -> dict[str, torch.Tensor]:
    """``{"src": domains [n * repeat]}`` for a method that ``needs_source`` (each class mapped by
    ``domain_of_class``, repeated ``repeat`` times in a row), else ``{}``."""
    if not method.needs_source:
        return {}
    domains = [method.domain_of_class(c) for c in src_classes]
    return {"src": torch.tensor(domains, dtype=torch.long, device=device).repeat_interleave(repeat)}


def translate_target(method: Method, val: Any, tasks: list[Task], task_ids: list[int], trg: int, mode: str,
                     features: Any, lpips_net: Any, ev: EvalConfig, feature_dim: int = 0,
                     classifiers: Classifiers | None = None, timer: Any = timing.no_timer) -> dict[int, TaskOutput]:
    """All translations into class ``trg`` for the tasks ``task_ids`` (indices into ``tasks``), batched across tasks.

    A batch holds whole inputs (all outputs of an input together, for LPIPS). Latent codes
    and references are drawn for the whole target up front, so they do not depend on the
    batch size or the number of processes. ``lpips_net`` ``None``: no LPIPS. ``timer``: a
    ``timing.PhaseTimer`` that gets the translation, fake-feature and classifier/LPIPS seconds.
    """
    outs = outputs_per_input(ev, mode)
    inputs = [(ti, int(i)) for ti in task_ids for i in tasks[ti].inputs.tolist()]
    n_units = len(inputs) * outs
    if mode == LATENT:
        codes = latent_codes(n_units, int(method.latent_dim), ev.seed, trg)
    if mode == REFERENCE or (mode == LATENT and method.latent_targets_from_references):
        # the same draws in both modes: latent-guided targets then come from the references
        # that reference-guided translation uses
        refs = reference_indices(n_units, val.indices_of(trg), ev.seed, trg)
    per_batch = max(1, ev.batch_size // outs)
    rank, world = dist_utils.get_rank(), dist_utils.get_world_size()
    results = {ti: TaskOutput() for ti in task_ids}
    device = method.device
    for b, start in enumerate(range(0, len(inputs), per_batch)):
        if b % world != rank:
            continue
        chunk = inputs[start:start + per_batch]
        units = slice(start * outs, (start + len(chunk)) * outs)
        with timer(timing.TRANSLATION), torch.no_grad():
            x = val.images(torch.tensor([i for _, i in chunk])).repeat_interleave(outs, dim=0).to(device)
            kw = source_kw(method, [tasks[ti].src for ti, _ in chunk], outs, device)
            if mode == LATENT and method.latent_targets_from_references:
                target = method.target_of_reference(val.images(refs[units]).to(device))
            else:
                target = class_target(method, trg, x.shape[0])
            if mode == LATENT:
                fake = method.translate(x, target, z=codes[units].to(device), **kw)
            elif mode == REFERENCE:
                fake = method.translate(x, target, ref=val.images(refs[units]).to(device), **kw)
            else:
                fake = method.translate(x, target, **kw)
            fake = fake.float()
        with timer(timing.FAKE_FEATURES):
            feats = features(fake)
        with timer(timing.OUTPUT_SCORES):  # classifier verdicts and LPIPS diversity of these outputs
            # Per task: its rows in this batch are contiguous (inputs are ordered by task).
            task_of = torch.tensor([ti for ti, _ in chunk]).repeat_interleave(outs)
            grouped = fake.reshape(len(chunk), outs, *fake.shape[1:]).transpose(0, 1)  # [outs, inputs, ...]
            clf = classifiers or Classifiers()
            domain_pred = clf.domain.predict(fake) if clf.domain is not None else None
            content_pred = clf.content.predict(fake) if clf.content is not None else None
            input_idx = torch.tensor([i for _, i in chunk]).repeat_interleave(outs)
            for ti in dict.fromkeys(t for t, _ in chunk):
                rows = task_of == ti
                results[ti].batches.append(b)
                results[ti].feats.append(feats[rows.to(feats.device)])
                if domain_pred is not None:
                    results[ti].domain_pred.append(domain_pred[rows])
                if content_pred is not None:
                    results[ti].content_pred.append(content_pred[rows])
                    results[ti].content_true.append(clf.content_of[input_idx[rows]])
                if lpips_net is not None and outs >= 2:
                    cols = torch.tensor([t == ti for t, _ in chunk])
                    n_in = int(cols.sum())
                    results[ti].lpips_sum += float(lpips_diversity(grouped[:, cols.to(grouped.device)], lpips_net)) * n_in
                    results[ti].lpips_inputs += n_in
    if world > 1:
        for ti in task_ids:
            _gather_in_batch_order(results[ti], classifiers is not None)
    return results


def _gather_in_batch_order(out: TaskOutput, with_classifiers: bool) -> None:
    """Every rank's pieces of one task, in batch order: the order one process makes them in, so
    that order-dependent metrics (KID's subsets, bootstrap draws) equal a one-process evaluation."""
    names = ["feats"] + (["domain_pred", "content_pred", "content_true"] if with_classifiers else [])
    mine = [(b, *[getattr(out, n)[i].cpu() if getattr(out, n) else None for n in names])
            for i, b in enumerate(out.batches)]
    pieces = sorted((p for rank in dist_utils.all_gather_object(mine) for p in rank), key=lambda p: p[0])
    out.batches = [p[0] for p in pieces]
    for j, n in enumerate(names, start=1):
        setattr(out, n, [p[j] for p in pieces if p[j] is not None])
    sums = dist_utils.all_gather_object((out.lpips_sum, out.lpips_inputs))
    out.lpips_sum, out.lpips_inputs = sum(s for s, _ in sums), sum(n for _, n in sums)
