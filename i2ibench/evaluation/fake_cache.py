"""On-disk cache of what an evaluation's translations leave behind, so an unchanged checkpoint
is never translated or passed through Inception twice.

For every (mode, target) the harness stores, per task, the Inception features of the
translations, the domain/content classifiers' verdicts on them and the LPIPS diversity sums
(``translate.TaskOutput``), in ``<cache root>/fake-features/`` (the format of the real-feature
cache, ``features.cache``). Everything downstream (FID, KID, precision/recall, density and
coverage, translation accuracy, bootstrap intervals: the metrics of the ``table``) is then
recomputed from them, so re-running ``i2ibench eval`` with other metric settings
(``eval.nearest_k``, ``eval.bootstrap``, ``eval.max_real_per_domain``, ``eval.fakes_per_target``)
costs no translation and no Inception pass on fakes.

The key holds everything the stored values depend on:

* the method's weights: a SHA-256 of every tensor of its nets and EMA nets and of its extra
  state (``weights_digest``), plus its model config, setting and frozen models (the VLM, named
  by a digest of its weights);
* the code that makes the translations: the method's package and the i2ibench modules of
  ``TRANSLATION_CODE`` (``translation_code_digest``: the harness, translation, protocol,
  network, VLM, data, feature and config modules);
* the evaluation inputs: dataset, split, image size and a fingerprint of the validation images
  (``features.cache.fingerprint_dataset_images``), the tasks' input indices, and the eval
  parameters that shape the translations (``FAKE_EVAL_PARAMS``);
* the extractor (name and class), the classifiers (named by weight digests), whether LPIPS
  was computed, the device type and the torch version.

A changed checkpoint, eval parameter, extractor or source file is a different key, i.e. a
miss. Used by one process only: a distributed evaluation computes (its ranks split the work).
An entry takes 8 KiB per translation (2048 Inception features, float32 values that the
extractor hands over as float64, stored losslessly as float32): 7.4 MB for the 900
translations of one mode of a ``cpu``-preset evaluation. Deleting ``fake-features/`` is
always safe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from i2ibench.config import EvalConfig, RunConfig
from i2ibench.evaluation.protocols import Task
from i2ibench.evaluation.translate import Classifiers, TaskOutput
from i2ibench.features.cache import fingerprint_dataset_images, load_tensors, store_tensors
from i2ibench.fileio import state_dict_sha256
from i2ibench.method import Method

SUBDIR = "fake-features"
FORMAT = 1
# The eval.* settings that change which translations are made or what is kept of them.
FAKE_EVAL_PARAMS = ("max_src_per_domain", "rounds", "outs_per_input", "seed", "batch_size", "feature_precision",
                    "lpips", "classifiers")
# i2ibench modules (files or folders, relative to the package) whose code makes or scores the
# translations the cache holds; the method's own package is added per method.
# Conservative: the harness (what it hands the translation) and the config and name modules too.
TRANSLATION_CODE = ("method.py", "config.py", "names.py", "seeding.py", "nets", "vlm", "data", "features",
                    "metrics/lpips.py", "evaluation/harness.py", "evaluation/translate.py", "evaluation/protocols.py",
                    "evaluation/fake_cache.py")
_PACKAGE = Path(__file__).resolve().parents[1]


def _hash_files(paths: list[Path], root: Path, h: Any) -> None:
    for path in sorted(set(paths)):
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            rel = path.name
        h.update(f"{rel}\n".encode())
        h.update(path.read_bytes())


@lru_cache(maxsize=None)
def _method_code_files(cls: type) -> tuple[Path, ...]:
    """Source files of ``cls`` and its bases (not ``Method``'s): the whole folder of each that
    lives in a package (a method's helpers sit beside it), the file alone for a top-level module."""
    files: set[Path] = set()
    for klass in cls.__mro__:
        module = sys.modules.get(klass.__module__)
        source = getattr(module, "__file__", None)
        if module is None or source is None or klass.__module__ in ("builtins", "abc", Method.__module__):
            continue
        path = Path(source).resolve()
        files.update(path.parent.glob("*.py") if getattr(module, "__package__", "") else [path])
    return tuple(sorted(files))


@lru_cache(maxsize=None)
def translation_code_digest(cls: type) -> str:
    """SHA-256 (hex) of the source of ``TRANSLATION_CODE`` and of method class ``cls``'s package."""
    h = hashlib.sha256()
    ours: list[Path] = []
    for rel in TRANSLATION_CODE:
        path = _PACKAGE / rel
        ours.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    _hash_files(ours, _PACKAGE, h)
    own = list(_method_code_files(cls))
    _hash_files(own, own[0].parent if own else _PACKAGE, h)
    return h.hexdigest()


def weights_digest(method: Method) -> str:
    """SHA-256 (hex) of the method's nets, EMA nets and extra state (queues, prompt words, VLM name).

    Optimiser state is left out: it does not change a translation.
    """
    state = {f"nets.{k}": v for k, v in method.nets.state_dict().items()}
    state.update({f"nets_ema.{k}": v for k, v in method.nets_ema.state_dict().items()})
    plain = {}
    for k, v in method.extra_state().items():
        if isinstance(v, torch.Tensor):
            state[f"extra.{k}"] = v
        else:
            plain[k] = v
    h = hashlib.sha256(state_dict_sha256(state).encode())
    h.update(json.dumps(plain, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _plain(obj: Any) -> Any:
    """A JSON-able view of a config object (a dataclass or a namespace)."""
    if dataclasses.is_dataclass(obj):
        obj = dataclasses.asdict(obj)
    elif hasattr(obj, "__dict__"):
        obj = dict(vars(obj))
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def _name(obj: Any) -> str:
    return f"{getattr(obj, 'name', '')}|{type(obj).__module__}.{type(obj).__qualname__}" if obj is not None else ""


class FakeFeatureCache:
    """The fake-feature entries of one evaluation: ``load`` / ``store`` per (mode, target).

    ``cache_root``: None for the i2ibench cache root (``$I2IBENCH_CACHE``), or a folder.
    ``hits`` and ``misses`` count the targets looked up.
    """

    def __init__(self, method: Method, cfg: RunConfig, val: Any, features: Any, classifiers: Classifiers,
                 cache_root: str | Path | None = None) -> None:
        ev: EvalConfig = cfg.eval
        every = torch.cat([torch.as_tensor(val.indices_of(d)).long() for d in range(len(val.domains))])
        self.cache_root = cache_root
        self.weights = weights_digest(method)
        self.base = {
            "kind": "fake-features", "format": FORMAT, "method": cfg.method, "weights": self.weights,
            "code": translation_code_digest(type(method)), "model": _plain(cfg.model),
            "frozen_models": method.frozen_models(), "setting": method.setting(),
            "dataset": cfg.dataset, "split": getattr(val, "split", ""), "img_size": int(val.img_size),
            "images": fingerprint_dataset_images(val, every), "eval": {k: getattr(ev, k) for k in FAKE_EVAL_PARAMS},
            "features": _name(features), "classifiers": [_name(classifiers.domain), _name(classifiers.content)],
            "device": method.device.type, "torch": torch.__version__,
        }
        self.hits = self.misses = 0

    def key(self, mode: str, trg: int, tasks: list[Task], task_ids: list[int], lpips: bool) -> dict:
        """The entry key of the translations into ``trg`` in ``mode`` for ``tasks[task_ids]``."""
        h = hashlib.sha256()
        for ti in task_ids:
            h.update(f"{ti}:{tasks[ti].src}->{tasks[ti].trg}:{tasks[ti].inputs.tolist()}\n".encode())
        return {**self.base, "mode": mode, "target": int(trg), "tasks": h.hexdigest(), "lpips": bool(lpips)}

    def load(self, mode: str, trg: int, tasks: list[Task], task_ids: list[int],
             lpips: bool) -> dict[int, TaskOutput] | None:
        """The stored outputs, or None (counted as a miss)."""
        tensors = load_tensors(self.key(mode, trg, tasks, task_ids, lpips), SUBDIR, self.cache_root)
        if tensors is None or not all(f"{ti}.lpips" in tensors for ti in task_ids):
            self.misses += 1
            return None
        self.hits += 1
        return {ti: unpack(tensors, ti) for ti in task_ids}

    def store(self, mode: str, trg: int, tasks: list[Task], task_ids: list[int], lpips: bool,
              outputs: dict[int, TaskOutput]) -> None:
        tensors: dict[str, torch.Tensor] = {}
        for ti in task_ids:
            tensors.update(pack(outputs[ti], ti))
        store_tensors(self.key(mode, trg, tasks, task_ids, lpips), tensors, SUBDIR, self.cache_root)


def pack(out: TaskOutput, ti: int) -> dict[str, torch.Tensor]:
    """One task's outputs as named tensors (features as float32 when that is lossless)."""
    t: dict[str, torch.Tensor] = {f"{ti}.lpips": torch.tensor([out.lpips_sum, float(out.lpips_inputs)],
                                                               dtype=torch.float64)}
    if out.feats:
        feats = torch.cat([f.cpu() for f in out.feats])
        as32 = feats.float()
        exact = feats.dtype == torch.float64 and torch.equal(as32.double(), feats)
        t[f"{ti}.feats32" if exact else f"{ti}.feats"] = as32 if exact else feats
    for name in ("domain_pred", "content_pred", "content_true"):
        parts = getattr(out, name)
        if parts:
            t[f"{ti}.{name}"] = torch.cat([p.cpu() for p in parts])
    return t


def unpack(tensors: dict[str, torch.Tensor], ti: int) -> TaskOutput:
    """``pack``'s inverse: each list holds one piece (the metrics concatenate them anyway)."""
    lp = tensors[f"{ti}.lpips"]
    out = TaskOutput(lpips_sum=float(lp[0]), lpips_inputs=int(lp[1]))
    if f"{ti}.feats32" in tensors:
        out.feats = [tensors[f"{ti}.feats32"].double()]
    elif f"{ti}.feats" in tensors:
        out.feats = [tensors[f"{ti}.feats"]]
    for name in ("domain_pred", "content_pred", "content_true"):
        if f"{ti}.{name}" in tensors:
            setattr(out, name, [tensors[f"{ti}.{name}"]])
    out.batches = [0] if out.feats else []
    return out
