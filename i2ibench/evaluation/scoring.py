"""Scoring one protocol group's translations, and the record rows of a protocol and mode.

A group's fakes are scored against the real images of its target: FID, density and coverage
(k = ``eval.nearest_k``) on the same features, and the LPIPS diversity summed while
translating. The overall row of a metric is the mean over the groups (its key from the metric
registry: per-group ``fid`` -> ``mfid``). A group the method does not serve in that mode is a
row with no value and a note; the mean then runs over the served groups and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from i2ibench.evaluation.protocols import Group, generator, subset
from i2ibench.evaluation.translate import TaskOutput
from i2ibench.metrics import keys as mk
from i2ibench.metrics.fid import fid
from i2ibench.metrics.prdc import density_coverage
from i2ibench.metrics.registry import metric_spec
from i2ibench.report import records as R


@dataclass
class GroupScore:
    group: Group
    n_fake: int
    n_real: int
    values: dict[str, float]
    notes: dict[str, str]


def score_group(group: Group, outputs: dict[int, TaskOutput], real_feats: torch.Tensor, k: int,
                with_lpips: bool, lpips_note: str = "", max_fakes: int = 0, seed: int = 0) -> GroupScore:
    """FID, density, coverage (and LPIPS) of one group's pooled translations vs the target's reals ``[n, D]``.

    ``max_fakes`` > 0: score a seeded subset of that many of the group's fakes (TUNIT's count).
    """
    fake = torch.cat([outputs[t].features() for t in group.tasks])
    if 0 < max_fakes < fake.shape[0]:
        fake = fake[subset(torch.arange(fake.shape[0]), max_fakes, generator(seed, group.trg, 6))]
    n_fake, n_real = int(fake.shape[0]), int(real_feats.shape[0])
    values: dict[str, float] = {}
    notes: dict[str, str] = {}
    if n_fake >= 2 and n_real >= 2:
        values[mk.FID] = float(fid(real_feats, fake))
    else:
        values[mk.FID] = math.nan
        notes[mk.FID] = f"FID needs >= 2 real and fake images (real {n_real}, fake {n_fake})"
    if n_real > k and n_fake >= 1:  # the k-NN radii are of the real images only
        d, c = density_coverage(real_feats, fake, k=k)
        values[mk.DENSITY], values[mk.COVERAGE] = float(d), float(c)
    else:
        values[mk.DENSITY] = values[mk.COVERAGE] = math.nan
        notes[mk.DENSITY] = notes[mk.COVERAGE] = f"density/coverage need more than k={k} real images (real {n_real}, fake {n_fake})"
    if with_lpips:
        s = sum(outputs[t].lpips_sum for t in group.tasks)
        n = sum(outputs[t].lpips_inputs for t in group.tasks)
        values[mk.LPIPS] = s / n if n else math.nan
        if lpips_note:
            notes[mk.LPIPS] = lpips_note
    return GroupScore(group, n_fake, n_real, values, notes)


def not_served(group: Group, metrics: list[str], note: str) -> GroupScore:
    """The score of a group the method does not translate into in this mode: no values, a note."""
    return GroupScore(group, 0, 0, {m: math.nan for m in metrics}, {m: note for m in metrics})


def group_metrics(with_lpips: bool) -> list[str]:
    return [mk.FID, mk.DENSITY, mk.COVERAGE] + ([mk.LPIPS] if with_lpips else [])


def overall_key(metric: str) -> str:
    """The key of a group metric's mean over groups (``fid`` -> ``mfid``)."""
    return metric_spec(metric).overall or metric


def _mean(values: list[float]) -> float:
    # A NaN part makes the mean NaN: an mFID over some of the tasks is not an mFID.
    return sum(values) / len(values) if values else math.nan


class Rows:
    """Collects record rows sharing the columns of one evaluation (``provenance.common_columns``)."""

    def __init__(self, common: dict[str, Any]):
        self.common = common
        self.rows: list[dict[str, Any]] = []

    def add(self, protocol: str, mode: str, metric: str, scope: str, domain: str, value: float,
            n_fake: int | None = None, n_real: int | None = None, note: str = "") -> None:
        self.rows.append({**self.common, R.PROTOCOL: protocol, R.MODE: mode, R.METRIC: metric, R.SCOPE: scope,
                          R.DOMAIN: domain, R.VALUE: value, R.N_FAKE: n_fake, R.N_REAL: n_real, R.NOTE: note})

    def add_protocol(self, protocol: str, mode: str, scores: list[GroupScore], metrics: list[str],
                     served: set[str]) -> None:
        """Group rows and overall rows of one protocol in one mode.

        ``served``: names of the groups the method translates into; the others were scored by
        ``not_served`` and stay out of the means, which then say over how many groups they run.
        """
        for s in scores:
            for m in metrics:
                self.add(protocol, mode, m, s.group.scope, s.group.name, s.values[m], s.n_fake, s.n_real,
                         s.notes.get(m, ""))
        used = [s for s in scores if s.group.name in served]
        n_fake = sum(s.n_fake for s in used)
        n_real = sum({s.group.trg: s.n_real for s in used}.values())
        for m in metrics:
            vals = [s.values[m] for s in used]
            notes = {s.notes[m] for s in used if m in s.notes}
            bad = sum(not math.isfinite(v) for v in vals)
            note = "" if not bad else (notes.pop() if len(notes) == 1 else f"undefined for {bad} of {len(vals)} groups")
            if len(used) < len(scores):
                part = f"mean over the {len(used)} of {len(scores)} groups the method serves in {mode} mode"
                note = f"{part}; {note}" if note else part
            self.add(protocol, mode, overall_key(m), R.SCOPE_OVERALL, "", _mean(vals), n_fake, n_real, note)
