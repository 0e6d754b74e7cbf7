"""Scoring one protocol group's translations, and the record rows of a protocol and mode.

A group's fakes are scored against the real images of its target on the same features: FID,
KID (mean and std over subsets), precision, recall, density and coverage (k =
``eval.nearest_k``); the LPIPS diversity summed while translating; and, where classifiers were
given, translation accuracy (the domain classifier's verdict against the target) and content
preservation (the content classifier's verdict against the input's content label). The overall row of a metric is the mean over the groups (its key from the metric
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
from i2ibench.metrics.bootstrap import bootstrap_mean_interval
from i2ibench.metrics.classifier import content_preservation, translation_accuracy
from i2ibench.metrics.feature_scores import score_features
from i2ibench.metrics.registry import metric_spec
from i2ibench.report import records as R


@dataclass
class GroupScore:
    group: Group
    n_fake: int
    n_real: int
    values: dict[str, float]
    notes: dict[str, str]
    fake: torch.Tensor | None = None  # the scored fake features [n_fake, D] (bootstrap intervals)


def score_group(group: Group, outputs: dict[int, TaskOutput], real_feats: torch.Tensor, k: int,
                with_lpips: bool, lpips_note: str = "", max_fakes: int = 0, seed: int = 0,
                with_classifiers: tuple[bool, bool] = (False, False)) -> GroupScore:
    """Every metric of one group's pooled translations against the target's reals ``[n, D]``.

    ``max_fakes`` > 0: score a seeded subset of that many of the group's fakes (TUNIT's count;
    the classifier metrics use the same subset). ``with_classifiers``: (translation accuracy,
    content preservation) from the predictions ``translate_target`` kept.
    """
    fake = torch.cat([outputs[t].features() for t in group.tasks])
    keep = torch.arange(fake.shape[0])
    if 0 < max_fakes < fake.shape[0]:
        keep = subset(keep, max_fakes, generator(seed, group.trg, 6))
        fake = fake[keep]
    n_fake, n_real = int(fake.shape[0]), int(real_feats.shape[0])
    values, notes = score_features(real_feats, fake, k)
    if with_lpips:
        s = sum(outputs[t].lpips_sum for t in group.tasks)
        n = sum(outputs[t].lpips_inputs for t in group.tasks)
        values[mk.LPIPS] = s / n if n else math.nan
        if lpips_note:
            notes[mk.LPIPS] = lpips_note
    if with_classifiers[0]:
        pred = torch.cat([outputs[t].domain_predictions() for t in group.tasks])[keep]
        values[mk.TRANSLATION_ACC] = translation_accuracy(pred, group.trg) if len(pred) else math.nan
    if with_classifiers[1]:
        pred = torch.cat([outputs[t].content_predictions() for t in group.tasks])[keep]
        true = torch.cat([outputs[t].content_truth() for t in group.tasks])[keep]
        values[mk.CONTENT_PRESERVATION] = content_preservation(pred, true) if len(pred) else math.nan
    return GroupScore(group, n_fake, n_real, values, notes, fake)


def not_served(group: Group, metrics: list[str], note: str) -> GroupScore:
    """The score of a group the method does not translate into in this mode: no values, a note."""
    return GroupScore(group, 0, 0, {m: math.nan for m in metrics}, {m: note for m in metrics})


def group_metrics(with_lpips: bool, with_classifiers: tuple[bool, bool] = (False, False)) -> list[str]:
    """The metric keys of every group (in table order)."""
    return ([mk.FID, mk.KID, mk.KID_STD, mk.PRECISION, mk.RECALL, mk.DENSITY, mk.COVERAGE]
            + ([mk.LPIPS] if with_lpips else [])
            + ([mk.TRANSLATION_ACC] if with_classifiers[0] else [])
            + ([mk.CONTENT_PRESERVATION] if with_classifiers[1] else []))


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

    def add_intervals(self, protocol: str, mode: str, scores: list[GroupScore], reals: dict[int, torch.Tensor],
                      served: set[str], n_resamples: int, seed: int) -> None:
        """95 % bootstrap intervals of mFID and mKID over the fake images (``metrics.bootstrap``)."""
        used = [s for s in scores if s.group.name in served]
        ok = bool(used) and all(s.fake is not None and s.fake.shape[0] >= 2 for s in used)
        for metric, (low, high) in ((mk.FID, (mk.MFID_CI_LOW, mk.MFID_CI_HIGH)),
                                    (mk.KID, (mk.MKID_CI_LOW, mk.MKID_CI_HIGH))):
            if not ok:
                for key in (low, high):
                    self.add(protocol, mode, key, R.SCOPE_OVERALL, "", math.nan,
                             note="the interval needs >= 2 fakes in every served group")
                continue
            ci = bootstrap_mean_interval(metric, [(reals[s.group.trg], s.fake) for s in used],
                                         n_resamples=n_resamples, seed=seed)
            note = f"{ci.level:.0%} {ci.method} bootstrap over fake images, {ci.n_resamples} resamples, seed {ci.seed}"
            if not math.isfinite(ci.low):
                note += "; undefined: some resamples are one image repeated (too few fakes per group)"
            n_fake = sum(s.n_fake for s in used)
            self.add(protocol, mode, low, R.SCOPE_OVERALL, "", ci.low, n_fake, None, note)
            self.add(protocol, mode, high, R.SCOPE_OVERALL, "", ci.high, n_fake, None, note)
