"""The evaluation harness: translate once, extract features once, score both protocols.

``evaluate(method, cfg)`` makes every translation the protocols need (``protocols.plan_tasks``)
target by target, batched across source domains, passes each translated image through the
feature extractor exactly once, and scores:

* FID per group (per task for ``stargan2``, per target for ``pooled``) and mFID;
* density & coverage (k = ``eval.nearest_k``) per group and their means;
* LPIPS diversity (mean pairwise LPIPS among the ``outs_per_input`` outputs of one input)
  per group and its mean;
* pseudo-label quality against ground truth where the method does not train with it.

Real-image features come from the statistics cache (one computation per dataset, split,
domain, image size and extractor, reused by every method, run and seed). The real images of
a target are ``eval.real_split`` (default ``val``, LANIT's and TUNIT's choice; StarGAN v2
used the target's *training* images: ``--set eval.real_split=train``); the split is written
in every record. A mode the method does not have is reported as not applicable: its overall
rows carry ``value`` NaN and a note, nothing is invented.

In a distributed run every rank translates a share of each target's batches; features and
LPIPS sums are gathered, so every rank computes the same records (rank 0 writes them).
"""

from __future__ import annotations

import hashlib
import math
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch

from i2ibench import __version__
from i2ibench.train import distributed as dist_utils
from i2ibench.metrics import keys as mk
from i2ibench.errors import ConfigError, I2IError
from i2ibench.features.lpips import MIN_SIZE as LPIPS_MIN_SIZE
from i2ibench.evaluation.protocols import (Group, Task, check_modes, check_protocols, generator, groups, latent_codes,
                        plan_tasks, reference_indices, subset)
from i2ibench.report.records import (MODE_NONE, PROTOCOL_LABELS, PROTOCOL_LABELS_INITIAL, SCOPE_OVERALL, SOURCE_REPRODUCED, from_rows,
                      write_records)
from i2ibench.report import records as R

Log = Callable[[str], None]


def _print(text: str) -> None:
    print(text, flush=True)  # progress lines must show up when stdout is a file (CI logs)

# Defaults for protocol parameters that EvalConfig may not have (yet).
EVAL_DEFAULTS = {"real_split": "val", "nearest_k": 5, "batch_size": 50, "seed": 0,
                 "max_src_per_domain": 0, "outs_per_input": 10, "max_real_per_domain": 0,
                 "feature_precision": "fp32", "lpips": True, "labels": True, "style_plot_per_domain": 100}


def eval_param(ev: Any, name: str) -> Any:
    return getattr(ev, name, EVAL_DEFAULTS[name])


@lru_cache(maxsize=1)
def code_version() -> str:
    """``i2ibench.__version__`` plus the git short hash of the source tree when there is one."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            return f"{__version__}+g{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


def vlm_name(method: Any, cfg: Any) -> str:
    """The vision-language model a method used ('' for methods without one)."""
    for v in (getattr(cfg, "vlm", None), getattr(method, "vlm_name", None),
              getattr(getattr(method, "vlm", None), "name", None)):
        if v:
            return str(v)
    return ""


# --------------------------------------------------------------------------- real features

def _fingerprint_dataset_images(ds: Any, idx: torch.Tensor, batch: int) -> str:
    """What the cached real features of ``ds[idx]`` depend on: the files, or the pixels."""
    from i2ibench.features.cache import fingerprint_files, fingerprint_tensor

    if hasattr(ds, "parent_indices") and hasattr(ds, "parent"):  # a subset: its parent's images
        return _fingerprint_dataset_images(ds.parent, ds.parent_indices[idx], batch)
    paths = getattr(ds, "paths", None)
    if paths is not None:
        return f"files:{fingerprint_files([paths[i] for i in idx.tolist()])}"
    h = hashlib.sha256()
    for start in range(0, len(idx), batch):
        h.update(str(fingerprint_tensor(ds.images(idx[start:start + batch]))).encode())
    return f"pixels:{h.hexdigest()}"


def real_features(real: Any, domain: int, features: Any, ev: Any, cache: bool | str | Path = True) -> torch.Tensor:
    """Features of the real images of ``domain`` (at most ``max_real_per_domain``, seeded choice)."""
    idx = subset(real.indices_of(domain), eval_param(ev, "max_real_per_domain"),
                 generator(eval_param(ev, "seed"), domain, 4))
    batch = max(1, eval_param(ev, "batch_size"))

    def compute() -> torch.Tensor:
        parts = [features(real.images(idx[s:s + batch])) for s in range(0, len(idx), batch)]
        return torch.cat(parts) if parts else torch.zeros(0, 0, dtype=torch.float64)

    if not cache:
        return compute()
    from i2ibench.features.cache import cached_features

    key = {"kind": "real-features", "dataset": real.name, "split": real.split, "domain": real.domains[domain],
           "img_size": real.img_size, "features": features.name, "n": len(idx),
           "images": _fingerprint_dataset_images(real, idx, batch)}
    return cached_features(key, compute, cache_root=None if cache is True else cache)


# --------------------------------------------------------------------------- translation

@dataclass
class TaskOutput:
    """What one task's translations left behind: features and the LPIPS sum over its inputs."""

    feats: list[torch.Tensor] = field(default_factory=list)
    lpips_sum: float = 0.0
    lpips_inputs: int = 0

    def features(self, dim: int = 0) -> torch.Tensor:
        """All features of the task; ``[0, dim]`` if this process made none of its translations."""
        return torch.cat(self.feats) if self.feats else torch.zeros(0, dim, dtype=torch.float64)


def translate_target(method: Any, val: Any, tasks: list[Task], task_ids: list[int], trg: int, mode: str,
                     features: Any, lpips_net: Any, ev: Any, feature_dim: int = 0) -> dict[int, TaskOutput]:
    """All translations into ``trg`` (every task in ``task_ids``), batched across tasks.

    A batch holds whole inputs (all ``outs_per_input`` outputs of an input together, for
    LPIPS). Latent codes and references are drawn for the whole target up front, so they do
    not depend on the batch size or the number of processes.
    """
    outs = max(1, eval_param(ev, "outs_per_input"))
    seed = eval_param(ev, "seed")
    inputs = [(ti, int(i)) for ti in task_ids for i in tasks[ti].inputs.tolist()]
    n_units = len(inputs) * outs
    if mode == "latent":
        latent_dim = getattr(method.mcfg, "latent_dim", None)
        if latent_dim is None:
            raise I2IError(f"{method.name}: latent-guided evaluation needs model.latent_dim in its config")
        codes = latent_codes(n_units, int(latent_dim), seed, trg)
    else:
        refs = reference_indices(n_units, val.indices_of(trg), seed, trg)
    per_batch = max(1, eval_param(ev, "batch_size") // outs)
    class_to_domain = getattr(method, "text_targets", None)
    rank, world = dist_utils.get_rank(), dist_utils.get_world_size()
    results = {ti: TaskOutput() for ti in task_ids}
    device = method.device
    for b, start in enumerate(range(0, len(inputs), per_batch)):
        if b % world != rank:
            continue
        chunk = inputs[start:start + per_batch]
        units = slice(start * outs, (start + len(chunk)) * outs)
        x = val.images(torch.tensor([i for _, i in chunk])).repeat_interleave(outs, dim=0).to(device)
        target = torch.full((x.shape[0],), trg, dtype=torch.long, device=device)
        if class_to_domain is not None:  # a method whose domains are not the classes (LANIT's words)
            target = class_to_domain(target)
        with torch.no_grad():
            if mode == "latent":
                fake = method.translate(x, target, z=codes[units].to(device))
            else:
                fake = method.translate(x, target, ref=val.images(refs[units]).to(device))
        fake = fake.float()
        feats = features(fake)
        # Per task: its rows in this batch are contiguous (inputs are ordered by task).
        task_of = torch.tensor([ti for ti, _ in chunk]).repeat_interleave(outs)
        grouped = fake.reshape(len(chunk), outs, *fake.shape[1:]).transpose(0, 1)  # [outs, inputs, ...]
        for ti in dict.fromkeys(t for t, _ in chunk):
            rows = task_of == ti
            results[ti].feats.append(feats[rows.to(feats.device)])
            if lpips_net is not None and outs >= 2:
                cols = torch.tensor([t == ti for t, _ in chunk])
                n_in = int(cols.sum())
                results[ti].lpips_sum += float(_lpips_diversity(grouped[:, cols.to(grouped.device)], lpips_net)) * n_in
                results[ti].lpips_inputs += n_in
    if world > 1:
        for ti in task_ids:
            out = results[ti]
            out.feats = [dist_utils.all_gather_cat(out.features(feature_dim))]
            sums = dist_utils.all_gather_object((out.lpips_sum, out.lpips_inputs))
            out.lpips_sum, out.lpips_inputs = sum(s for s, _ in sums), sum(n for _, n in sums)
    return results


def _lpips_diversity(outputs: torch.Tensor, lpips_net: Any) -> float:
    from i2ibench.metrics.lpips import lpips_diversity

    return lpips_diversity(outputs, lpips_net)


# --------------------------------------------------------------------------- scoring

@dataclass
class GroupScore:
    group: Group
    n_fake: int
    n_real: int
    values: dict[str, float]
    notes: dict[str, str]


def score_group(group: Group, outputs: dict[int, TaskOutput], real_feats: torch.Tensor, k: int,
                with_lpips: bool, lpips_note: str = "") -> GroupScore:
    """FID, density, coverage (and LPIPS) of one group's pooled translations vs the target's reals."""
    from i2ibench.metrics.fid import fid
    from i2ibench.metrics.prdc import density_coverage

    fake = torch.cat([outputs[t].features() for t in group.tasks])
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


def _mean(values: list[float]) -> float:
    # A NaN part makes the mean NaN: an mFID over some of the tasks is not an mFID.
    return sum(values) / len(values) if values else math.nan


OVERALL_NAME = {mk.FID: mk.MFID}  # the overall row of per-group FIDs is the mFID


# --------------------------------------------------------------------------- records

class _Rows:
    """Collects record rows sharing the run's columns."""

    def __init__(self, common: dict[str, Any]):
        self.common = common
        self.rows: list[dict[str, Any]] = []

    def add(self, protocol: str, mode: str, metric: str, scope: str, domain: str, value: float,
            n_fake: int | None = None, n_real: int | None = None, note: str = "") -> None:
        self.rows.append({**self.common, R.PROTOCOL: protocol, R.MODE: mode, R.METRIC: metric, R.SCOPE: scope,
                          R.DOMAIN: domain, R.VALUE: value, R.N_FAKE: n_fake, R.N_REAL: n_real, R.NOTE: note})


def _common_columns(method: Any, cfg: Any, iterations: int | None, features_name: str, real_split: str,
                    run: str) -> dict[str, Any]:
    ev = cfg.eval
    params = ";".join(f"{k}={eval_param(ev, k)}" for k in (
        "max_src_per_domain", "outs_per_input", "max_real_per_domain", "nearest_k", "seed", "feature_precision"))
    return {R.METHOD: cfg.method, R.DATASET: cfg.dataset, R.PRESET: cfg.preset, R.SEED: cfg.train.seed,
            R.ITERATIONS: iterations, R.N_SEEDS: 1, R.REAL_SPLIT: real_split, R.FEATURES: features_name,
            R.VLM: vlm_name(method, cfg), R.EVAL_PARAMS: params, R.CODE_VERSION: code_version(),
            R.DATE: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), R.SOURCE: SOURCE_REPRODUCED,
            R.RUN: run}


def _group_metrics(with_lpips: bool) -> list[str]:
    return [mk.FID, mk.DENSITY, mk.COVERAGE] + ([mk.LPIPS] if with_lpips else [])


def _add_protocol_rows(rows: _Rows, protocol: str, mode: str, scores: list[GroupScore], metrics: list[str]) -> None:
    for s in scores:
        for m in metrics:
            rows.add(protocol, mode, m, s.group.scope, s.group.name, s.values[m], s.n_fake, s.n_real, s.notes.get(m, ""))
    n_fake = sum(s.n_fake for s in scores)
    n_real = sum({s.group.trg: s.n_real for s in scores}.values())
    for m in metrics:
        vals = [s.values[m] for s in scores]
        notes = {s.notes[m] for s in scores if m in s.notes}
        bad = sum(not math.isfinite(v) for v in vals)
        note = "" if not bad else (notes.pop() if len(notes) == 1 else f"undefined for {bad} of {len(vals)} groups")
        rows.add(protocol, mode, OVERALL_NAME.get(m, m), SCOPE_OVERALL, "", _mean(vals), n_fake, n_real, note)


def _label_rows(method: Any, val: Any, tasks: list[Task], rows: _Rows, batch: int) -> None:
    """Pseudo-label quality on the evaluated validation images, where ground truth exists.

    ``n_real`` of these rows is the number of images scored (the union of the tasks' inputs).
    Labels over a method's own domains (LANIT's N words) are mapped to the dataset's classes
    with ``method.to_classes`` where it has one. A method with ``initial_domain_labels`` (LANIT)
    also gets rows under ``labels-initial``: the labels before prompt learning.
    """
    kind = getattr(method, "label_kind", "ground_truth")
    if kind == "ground_truth":
        return
    if kind not in ("clusters", "clip_multi_hot"):
        raise I2IError(f"{method.name}: unknown label_kind '{kind}' (expected ground_truth, clusters or clip_multi_hot)")
    idx = torch.unique(torch.cat([t.inputs for t in tasks])) if tasks else torch.zeros(0, dtype=torch.long)
    if len(idx) == 0:
        return
    true = val.labels[idx]
    n = len(idx)
    to_classes = getattr(method, "to_classes", None)

    images = [val.images(idx[s:s + batch]).to(method.device) for s in range(0, n, batch)]  # decoded once

    def over(fn: Any, fill: float = 0.0) -> torch.Tensor:
        with torch.no_grad():
            out = torch.cat([fn(x).cpu() for x in images])
        return to_classes(out, fill) if callable(to_classes) else out

    from i2ibench.metrics import labels as ml

    if kind == "clusters":
        if true.dim() != 1:
            return  # clustering accuracy needs one ground-truth class per image
        pred = over(method.domain_labels)
        rows.add(PROTOCOL_LABELS, MODE_NONE, mk.CLUSTER_ACC, SCOPE_OVERALL, "", float(ml.clustering_accuracy(pred, true)), None, n)
        return
    k = len(val.domains)
    true_mh = torch.nn.functional.one_hot(true, k).float() if true.dim() == 1 else true.float()
    label_sets = [(PROTOCOL_LABELS, method.domain_labels, getattr(method, "domain_scores", None))]
    if callable(getattr(method, "initial_domain_labels", None)):
        label_sets.append((PROTOCOL_LABELS_INITIAL, method.initial_domain_labels,
                           getattr(method, "initial_domain_scores", None)))
    for protocol, fn, scores_of in label_sets:
        pred = over(fn)
        p, r = ml.multi_hot_precision_recall(pred, true_mh)
        rows.add(protocol, MODE_NONE, mk.LABEL_PRECISION, SCOPE_OVERALL, "", float(p), None, n)
        rows.add(protocol, MODE_NONE, mk.LABEL_RECALL, SCOPE_OVERALL, "", float(r), None, n)
        rows.add(protocol, MODE_NONE, mk.LABEL_SLACK, SCOPE_OVERALL, "", float((pred.sum(1) == 0).float().mean()), None, n)
        # Top-1 needs the method's scores (argmax of a multi-hot label is no top-1 prediction).
        if true.dim() == 1 and callable(scores_of):
            scores = over(scores_of, float("-inf"))
            rows.add(protocol, MODE_NONE, mk.TOP1_ACC, SCOPE_OVERALL, "", float(ml.top1_accuracy(scores, true)), None, n)


def _style_plot(method: Any, val: Any, per_domain: int, ev: Any, out_dir: Path, iterations: int | None) -> Path:
    """t-SNE of the method's style codes of ``per_domain`` validation images per domain (seeded choice)."""
    from i2ibench.evaluation.style_plot import plot_method_style_codes

    seed = eval_param(ev, "seed")
    idx = torch.cat([subset(val.indices_of(d), per_domain, generator(seed, d, 5)) for d in range(len(val.domains))])
    name = f"style_codes_{int(iterations):08d}.png" if iterations is not None else "style_codes.png"
    return plot_method_style_codes(method, val, idx, out_dir / name, batch_size=max(1, eval_param(ev, "batch_size")),
                                   title=f"{method.name} on {val.name}")


# --------------------------------------------------------------------------- entry points

def evaluate(method: Any, cfg: Any = None, out_dir: str | Path | None = None, *, iterations: int | None = None,
             features: Any = None, lpips_net: Any = None, val: Any = None, real: Any = None,
             cache: bool | str | Path = True, log: Log | None = _print) -> pd.DataFrame:
    """Score ``method`` under every protocol and mode of ``cfg.eval``; the records as a DataFrame.

    ``out_dir``: also write ``out_dir/records.csv`` (merged with earlier evaluations of other
    iterations; rank 0 only). ``features``/``lpips_net``/``val``/``real``: use these instead of
    the Inception extractor, LPIPS AlexNet and ``cfg.dataset``'s splits. ``cache``: use the
    statistics cache for real features (True: the default cache root; a path: that root).
    """
    from i2ibench.seeding import preserved_rng

    cfg = cfg if cfg is not None else method.cfg
    ev = cfg.eval
    protocols = check_protocols(ev.protocols)
    modes = check_modes(ev.modes)
    real_split = eval_param(ev, "real_split")
    if val is None:
        from i2ibench.data.catalog import create_dataset

        val = create_dataset(cfg.dataset, "val", cfg.train.img_size, cfg.data_root)
    if real is None:
        if real_split == "val":
            real = val
        else:
            from i2ibench.data.catalog import create_dataset

            real = create_dataset(cfg.dataset, real_split, cfg.train.img_size, cfg.data_root)
    domains = list(val.domains)
    if len(domains) < 2:
        raise ConfigError(f"evaluation needs at least 2 domains; {cfg.dataset} has {len(domains)}")
    if features is None:
        from i2ibench.features.inception import InceptionFeatures

        features = InceptionFeatures(device=method.device, precision=eval_param(ev, "feature_precision"),
                                     batch_size=eval_param(ev, "batch_size"))
    with_lpips = bool(eval_param(ev, "lpips")) and eval_param(ev, "outs_per_input") >= 2
    lpips_note = ""
    if with_lpips and val.img_size < LPIPS_MIN_SIZE:
        # AlexNet's pooling leaves nothing of smaller images; no resize is invented for them.
        lpips_note = f"LPIPS (AlexNet) needs images of at least {LPIPS_MIN_SIZE} px, these are {val.img_size} px"
    if with_lpips and not lpips_note and lpips_net is None and any(m in method.modes for m in modes):
        from i2ibench.features.lpips import LPIPS

        lpips_net = LPIPS().to(method.device).eval()
    k = int(eval_param(ev, "nearest_k"))
    batch = max(1, eval_param(ev, "batch_size"))
    run = str(out_dir) if out_dir is not None else ""
    rows = _Rows(_common_columns(method, cfg, iterations, getattr(features, "name", type(features).__name__),
                                 real_split, run))
    tasks = plan_tasks([val.indices_of(d) for d in range(len(domains))],
                       eval_param(ev, "max_src_per_domain"), eval_param(ev, "seed"))
    plan = {p: groups(p, tasks, domains) for p in protocols}
    metrics = _group_metrics(with_lpips)
    say = log or (lambda s: None)

    with preserved_rng(), torch.no_grad():
        reals: dict[int, torch.Tensor] = {}
        for mode in modes:
            if mode not in method.modes:
                note = f"not applicable: {cfg.method} has no {mode}-guided translation"
                say(f"[eval] {mode}: {note}")
                for p in protocols:
                    for m in metrics:
                        rows.add(p, mode, OVERALL_NAME.get(m, m), SCOPE_OVERALL, "", math.nan, note=note)
                continue
            scores: dict[str, list[GroupScore]] = {p: [] for p in protocols}
            for trg in range(len(domains)):
                task_ids = [i for i, t in enumerate(tasks) if t.trg == trg]
                if not task_ids:
                    continue
                if trg not in reals:
                    reals[trg] = real_features(real, trg, features, ev, cache=cache)
                outputs = translate_target(method, val, tasks, task_ids, trg, mode, features,
                                           None if lpips_note else lpips_net, ev, feature_dim=reals[trg].shape[1])
                for p in protocols:
                    scores[p] += [score_group(g, outputs, reals[trg], k, with_lpips, lpips_note)
                                  for g in plan[p] if g.trg == trg]
                say(f"[eval] {mode} -> {domains[trg]}: {sum(len(tasks[t].inputs) for t in task_ids) * max(1, eval_param(ev, 'outs_per_input'))} translations")
            for p in protocols:
                _add_protocol_rows(rows, p, mode, scores[p], metrics)
        if eval_param(ev, "labels"):
            _label_rows(method, val, tasks, rows, batch)
        n_plot = int(eval_param(ev, "style_plot_per_domain"))
        if (out_dir is not None and n_plot > 0 and callable(getattr(method, "style_codes", None))
                and dist_utils.is_main_process()):
            say(f"[eval] style codes plotted to {_style_plot(method, val, n_plot, ev, Path(out_dir), iterations)}")

    df = from_rows(rows.rows)
    if out_dir is not None and dist_utils.is_main_process():
        path = write_records(out_dir, df)
        say(f"[eval] records written to {path}")
    if log is not None:
        from i2ibench.report.tables import summary_text

        log(summary_text(df))
    return df


