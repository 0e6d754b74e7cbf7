"""The evaluation harness: translate once, extract features once, score both protocols.

``evaluate(method, cfg)`` makes every translation the protocols need (``protocols.plan_tasks``;
only the tasks the method serves in a mode, ``Method.serves``) target by target, batched
across source classes, passes each translated image through the feature extractor exactly
once, and scores (``scoring``):

* FID per group (per task for ``pairwise``, per target for ``pooled``) and mFID;
* density & coverage (k = ``eval.nearest_k``) per group and their means;
* LPIPS diversity (mean pairwise LPIPS among the ``outs_per_input`` outputs of one input)
  per group and its mean, in the style modes;
* the quality of the labels the method trains with, against ground truth (``labels``).

Real-image features come from the statistics cache (``real_features``); the features,
classifier verdicts and LPIPS sums of the translations of an unchanged checkpoint come from
the fake-feature cache (``fake_cache``), so re-evaluating it translates nothing and passes no
image through Inception. The real images of a target are ``eval.real_split`` (default
``val``; StarGAN v2 used the target's training images: ``--set eval.real_split=train``); the
split is written in every record. A mode the
method does not have is reported as not applicable: its overall rows carry ``value`` NaN
and a note, nothing is invented.

In a distributed run every rank translates a share of each target's batches; features and
LPIPS sums are gathered, so every rank computes the same records (rank 0 writes them).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch
from tqdm.auto import tqdm

from i2ibench.config import RunConfig
from i2ibench.data.catalog import run_dataset
from i2ibench.errors import ConfigError

# The dataset evaluations live in these modules; importing them registers them (evaluation.extras).
from i2ibench.evaluation import colour_eval  # noqa: F401  (cmnist: colour recall, uni-modal MSE, ...)
from i2ibench.evaluation import content as _content  # noqa: F401  (lpips-io, lpips-truth)
from i2ibench.evaluation import timing
from i2ibench.evaluation.extras import ExtraContext, run_extra_evaluations
from i2ibench.evaluation.fake_cache import FakeFeatureCache
from i2ibench.evaluation.labels import label_rows
from i2ibench.evaluation.protocols import check_protocols, fakes_cap, groups, modes_to_score, plan_tasks
from i2ibench.evaluation.provenance import common_columns
from i2ibench.evaluation.real_features import real_features
from i2ibench.evaluation.scoring import GroupScore, Rows, group_metrics, not_served, overall_key, score_group
from i2ibench.evaluation.style_plot import plot_evaluated_style_codes
from i2ibench.evaluation.timing import PhaseTimer
from i2ibench.evaluation.translate import Classifiers, outputs_per_input, translate_target
from i2ibench.features.classifier import ClassifierConfig, content_labels, load_classifier
from i2ibench.features.inception import InceptionFeatures
from i2ibench.features.lpips import LPIPS
from i2ibench.features.lpips import MIN_SIZE as LPIPS_MIN_SIZE
from i2ibench.method import Method
from i2ibench.metrics import keys as mk
from i2ibench.names import CLASSIFIER, DETERMINISTIC, POOLED, STYLE_MODES
from i2ibench.report import records as R
from i2ibench.report.records import SCOPE_OVERALL, from_rows, write_records
from i2ibench.report.tables import summary_text
from i2ibench.seeding import preserved_rng
from i2ibench.train import distributed as dist_utils

Log = Callable[[str], None]


def _print(text: str) -> None:
    print(text, flush=True)  # progress lines must show up when stdout is a file (CI logs)


def load_classifiers(cfg: RunConfig, val: Any, device: Any, log: Log | None) -> Classifiers:
    """The dataset's domain classifier (single-label data) and content classifier (where the
    dataset has a content label), trained once and cached (``features.classifier``); none for
    data without a spec (a caller's own)."""
    spec = getattr(val, "spec", None)  # a caller's own validation data may come without one
    if spec is None or spec.multi_label:
        return Classifiers()
    progress = log is not None
    # At the run's image size: a small CNN for small images, ResNet-18 from scratch above 64 px.
    recipe = ClassifierConfig(img_size=0 if val.img_size == spec.default_img_size else int(val.img_size))
    domain = load_classifier(cfg.dataset, "domain", recipe, data_root=cfg.data_root, device=device, progress=progress)
    found = content_labels(val)
    if found is None:
        return Classifiers(domain=domain)
    content = load_classifier(cfg.dataset, "content", recipe, data_root=cfg.data_root, device=device, progress=progress)
    return Classifiers(domain=domain, content=content, content_of=found[0])


def evaluate(method: Method, cfg: RunConfig | None = None, out_dir: str | Path | None = None, *,
             iterations: int | None = None, features: Any = None, lpips_net: Any = None, val: Any = None,
             real: Any = None, cache: bool | str | Path = True, fake_cache: bool | str | Path | None = None,
             log: Log | None = _print, timer: PhaseTimer | None = None) -> pd.DataFrame:
    """Score ``method`` under every protocol and mode of ``cfg.eval``; the records as a DataFrame.

    ``out_dir``: also write ``out_dir/records.csv`` (merged with earlier evaluations of other
    iterations; rank 0 only). ``features``/``lpips_net``/``val``/``real``: use these instead of
    the Inception extractor, LPIPS AlexNet and ``cfg.dataset``'s splits. ``cache``: use the
    statistics cache for real features (True: the default cache root; a path: that root).
    ``fake_cache``: keep the translations' features and reuse them for an unchanged checkpoint
    (``evaluation.fake_cache``; one process only): None follows ``cache`` (same root), True the
    default cache root, a path that root, False never. ``timer``: a
    ``timing.PhaseTimer`` that gets the wall seconds of each phase (benchmarks read it).
    Raises ``ConfigError`` for unknown protocols or modes and for datasets with < 2 classes.
    """
    cfg = cfg if cfg is not None else method.cfg
    ev = cfg.eval
    protocols = check_protocols(ev.protocols)
    modes = modes_to_score(ev.modes, method.modes)
    if val is None:
        val = run_dataset(cfg, "val")
    if real is None:
        real = val if ev.real_split == "val" else run_dataset(cfg, ev.real_split)
    domains = list(val.domains)
    if len(domains) < 2:
        raise ConfigError(f"evaluation needs at least 2 domains; {cfg.dataset} has {len(domains)}")
    if features is None:
        features = InceptionFeatures(device=method.device, precision=ev.feature_precision, batch_size=ev.batch_size)
    with_lpips = bool(ev.lpips) and ev.outs_per_input >= 2
    lpips_note = ""
    if with_lpips and val.img_size < LPIPS_MIN_SIZE:
        # AlexNet's pooling leaves nothing of smaller images; no resize is invented for them.
        lpips_note = f"LPIPS (AlexNet) needs images of at least {LPIPS_MIN_SIZE} px, these are {val.img_size} px"
    style_modes = [m for m in modes if m in method.modes and m in STYLE_MODES]
    if with_lpips and not lpips_note and lpips_net is None and style_modes:
        lpips_net = LPIPS().to(method.device).eval()
    classifiers = load_classifiers(cfg, val, method.device, log) if ev.classifiers else Classifiers()
    with_cls = (classifiers.domain is not None, classifiers.content is not None)
    rows = Rows(common_columns(method, cfg, iterations, getattr(features, "name", type(features).__name__),
                               ev.real_split, str(out_dir) if out_dir is not None else ""))
    tasks = plan_tasks([val.indices_of(d) for d in range(len(domains))], ev.max_src_per_domain, ev.seed, ev.rounds)
    pooled_cap = fakes_cap(ev.fakes_per_target, [len(real.indices_of(d)) for d in range(len(domains))])
    say = log or (lambda s: None)

    timer = timer if timer is not None else PhaseTimer()
    fakes = None
    fake_root = cache if fake_cache is None else fake_cache
    if fake_root is not False and dist_utils.get_world_size() == 1:
        with timer(timing.FAKE_CACHE):
            fakes = FakeFeatureCache(method, cfg, val, features, classifiers,
                                     None if fake_root is True else fake_root)
    with preserved_rng(), torch.no_grad():
        reals: dict[int, torch.Tensor] = {}
        for mode in modes:
            mode_lpips = with_lpips and mode != DETERMINISTIC
            metrics = group_metrics(mode_lpips, with_cls)
            if mode not in method.modes:
                note = f"not applicable: {cfg.method} has no {mode} translation"
                say(f"[eval] {mode}: {note}")
                for p in protocols:
                    for m in metrics:  # every metric the mode would have had, classifier ones too
                        rows.add(p, mode, overall_key(m), SCOPE_OVERALL, "", math.nan, note=note)
                continue
            served = [i for i, t in enumerate(tasks) if method.serves(t.src, t.trg, mode)]
            plan = {p: groups(p, tasks, domains, served) for p in protocols}
            scores: dict[str, list[GroupScore]] = {p: [] for p in protocols}
            total = sum(len(tasks[i].inputs) for i in served) * outputs_per_input(ev, mode)
            bar = tqdm(total=total, desc=f"[eval] {mode}", unit="img", disable=None if log is not None else True,
                       leave=False, dynamic_ncols=True)
            for trg in range(len(domains)):
                task_ids = [i for i in served if tasks[i].trg == trg]
                if not task_ids:
                    note = f"not served: {cfg.method} does not translate into {domains[trg]} in {mode} mode"
                    for p in protocols:
                        scores[p] += [not_served(g, metrics, note) for g in plan[p] if g.trg == trg]
                    continue
                with timer(timing.REAL_FEATURES):
                    if trg not in reals:
                        reals[trg] = real_features(real, trg, features, ev, cache=cache)
                target_lpips = None if lpips_note or not mode_lpips else lpips_net
                outputs = None
                if fakes is not None:
                    with timer(timing.FAKE_CACHE):
                        outputs = fakes.load(mode, trg, tasks, task_ids, target_lpips is not None)
                if outputs is None:
                    outputs = translate_target(method, val, tasks, task_ids, trg, mode, features, target_lpips, ev,
                                               feature_dim=reals[trg].shape[1], classifiers=classifiers, timer=timer)
                    if fakes is not None:
                        with timer(timing.FAKE_CACHE):
                            fakes.store(mode, trg, tasks, task_ids, target_lpips is not None, outputs)
                with timer(timing.METRICS):
                    for p in protocols:
                        for g in plan[p]:
                            if g.trg != trg:
                                continue
                            cap = pooled_cap if p == POOLED else 0
                            scores[p].append(score_group(g, outputs, reals[trg], ev.nearest_k, mode_lpips,
                                                         lpips_note, cap, ev.seed, with_cls)
                                             if g.tasks else not_served(g, metrics, f"not served: {cfg.method} does "
                                                                                   f"not translate {g.name} in {mode} mode"))
                n_out = sum(len(tasks[t].inputs) for t in task_ids) * outputs_per_input(ev, mode)
                bar.update(n_out)
                say(f"[eval] {mode} -> {domains[trg]}: {n_out} translation{'s' if n_out != 1 else ''}")
            bar.close()
            for p in protocols:
                served_groups = {g.name for g in plan[p] if g.tasks}
                rows.add_protocol(p, mode, scores[p], metrics, served_groups)
                if ev.bootstrap > 0:
                    with timer(timing.BOOTSTRAP):
                        rows.add_intervals(p, mode, scores[p], reals, served_groups, ev.bootstrap, ev.seed)
        if ev.labels:
            with timer(timing.LABELS):
                label_rows(method, val, tasks, rows, max(1, ev.batch_size))
        for kind, clf in (("domain", classifiers.domain), ("content", classifiers.content)):
            if clf is not None:
                rows.add(CLASSIFIER, R.MODE_NONE, mk.CLASSIFIER_VAL_ACC, R.SCOPE_DOMAIN, kind, clf.val_acc,
                         note=f"{clf.name}: the {kind} classifier behind the {kind} metrics, accuracy on the val split")
        spec = getattr(val, "spec", None)  # a caller's own validation data may come without a spec
        if spec is not None and spec.evaluations:
            with timer("dataset evaluations"):
                run_extra_evaluations(spec.evaluations, ExtraContext(method, val, ev, tasks, features, lpips_net, rows))
        if (out_dir is not None and ev.style_plot_per_domain > 0 and method.has_style_codes
                and dist_utils.is_main_process()):
            with timer("style codes"):
                path = plot_evaluated_style_codes(method, val, ev.style_plot_per_domain, ev.seed, ev.batch_size,
                                                  Path(out_dir), iterations)
            say(f"[eval] style codes plotted to {path}")
    if fakes is not None and fakes.hits:
        say(f"[eval] fake features of {fakes.hits} of {fakes.hits + fakes.misses} targets from the cache "
            f"(weights {fakes.weights[:8]} unchanged): no translation, no Inception pass for them")
    say(f"[eval] wall time: {timer.summary()}")

    note = method.evaluation_note()
    if note:
        for row in rows.rows:
            if row[R.MODE] != R.MODE_NONE:
                row[R.NOTE] = f"{row[R.NOTE]}; {note}" if row[R.NOTE] else note
    df = from_rows(rows.rows)
    if out_dir is not None and dist_utils.is_main_process():
        path = write_records(out_dir, df)
        say(f"[eval] records written to {path}")
    if log is not None:
        log(summary_text(df))
    return df
