"""The two evaluation protocols: which translations are made, and how they are grouped for FID.

Both protocols score the same translations, so the harness makes them once:

* a **task** is an ordered pair of classes ``src -> trg``: the chosen validation images of
  ``src``, each translated ``outs_per_input`` times into ``trg`` (StarGAN v2 makes 10 outputs
  per input and uses all of them for FID and LPIPS; deterministic translation makes one);
* a **group** is a set of tasks whose translations are scored together against the real
  images of one target class.

``pairwise`` (StarGAN v2, Choi et al. 2020, official ``metrics/eval.py``; recorded as
``stargan2`` before it was renamed): one group per task, K(K-1) groups; mFID = mean of the
task FIDs. ``pooled`` (TUNIT / LANIT): one group per target, holding the tasks from every
other class, K groups; the per-target FID is the class-wise result and mFID = mean over
targets. A method that does not serve a task in a mode (``Method.serves``) leaves it out of
that mode's groups.

Which images are used is decided here, seeded, and independent of batch sizes: the source
images of a task (``max_src_per_domain``, 0 = all validation images of the source), the
latent codes and the reference images (drawn from the target's validation images).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from i2ibench.errors import ConfigError
from i2ibench.names import MODES, PAIRWISE, PROTOCOL_ALIASES, PROTOCOLS, STYLE_MODES, canonical_protocol
from i2ibench.registry import suggest
from i2ibench.report.records import SCOPE_DOMAIN, SCOPE_TASK, task_name


@dataclass(frozen=True)
class Task:
    """Translate validation images ``inputs`` of domain ``src`` into domain ``trg``."""

    src: int
    trg: int
    inputs: torch.Tensor  # LongTensor of validation-set indices


@dataclass(frozen=True)
class Group:
    """Tasks scored together against the real images of domain ``trg``."""

    name: str      # a class name (pooled) or 'src->trg' (pairwise)
    scope: str     # records.SCOPE_DOMAIN | records.SCOPE_TASK
    trg: int
    tasks: tuple[int, ...]  # indices into the task list


def check_protocols(names) -> tuple[str, ...]:
    """The protocol names, old aliases replaced; ConfigError for an unknown one."""
    names = tuple(canonical_protocol(n) for n in names)
    for n in names:
        if n not in PROTOCOLS:
            raise ConfigError(f"unknown evaluation protocol '{n}'.{suggest(n, list(PROTOCOLS) + list(PROTOCOL_ALIASES))}")
    return names


def check_modes(names) -> tuple[str, ...]:
    names = tuple(names)
    for n in names:
        if n not in MODES:
            raise ConfigError(f"unknown translation mode '{n}'.{suggest(n, list(MODES))}")
    return names


def modes_to_score(requested, method_modes) -> tuple[str, ...]:
    """The modes an evaluation reports: ``requested`` (checked), or when it is empty the
    method's own modes plus the style modes it lacks if it has any (reported not applicable)."""
    requested = check_modes(requested)
    if requested:
        return requested
    if any(m in STYLE_MODES for m in method_modes):
        return tuple(m for m in MODES if m in method_modes or m in STYLE_MODES)
    return tuple(m for m in MODES if m in method_modes)


def generator(*key: int) -> torch.Generator:
    """A CPU generator seeded from integers (e.g. (eval seed, target, stream)), reproducibly."""
    seed = 0
    for k in key:
        seed = (seed * 1_000_003 + int(k) + 1) % (2**63 - 1)
    return torch.Generator().manual_seed(seed)


def subset(indices: torch.Tensor, limit: int, gen: torch.Generator) -> torch.Tensor:
    """At most ``limit`` of ``indices`` (0 = all), a seeded random choice kept in dataset order."""
    if limit <= 0 or len(indices) <= limit:
        return indices
    pick = torch.randperm(len(indices), generator=gen)[:limit]
    return indices[pick.sort().values]


def plan_tasks(domain_indices: list[torch.Tensor], max_src_per_domain: int = 0, seed: int = 0,
               rounds: int = 1) -> list[Task]:
    """Every ordered pair src != trg, K(K-1) tasks, ordered by target then source.

    ``domain_indices[d]``: the validation indices of domain ``d``. A source's chosen images are
    the same for every target. ``rounds`` > 1: that many independent draws of
    ``max_src_per_domain`` images, concatenated (an image may come up in several rounds), as
    LANIT's official ``metrics/eval.py`` draws 8 shuffled images per source in each of 9 rounds.
    """
    if rounds < 1:
        raise ConfigError(f"eval.rounds must be >= 1, got {rounds}")
    k = len(domain_indices)

    def draw(d: int, idx: torch.Tensor) -> torch.Tensor:
        # round 0 keeps the generator key of single-round plans, so they are unchanged
        keys = [(seed, d, 1)] + [(seed, d, 1, r) for r in range(1, rounds)]
        return torch.cat([subset(idx, max_src_per_domain, generator(*key)) for key in keys])

    chosen = [draw(d, idx) for d, idx in enumerate(domain_indices)]
    return [Task(src, trg, chosen[src]) for trg in range(k) for src in range(k) if src != trg]


def fakes_cap(fakes_per_target: int, real_class_sizes: list[int]) -> int:
    """The pooled fakes per target: ``fakes_per_target`` (0: no cap); -1: TUNIT's rule,
    ``(min + max) // 2`` of the real split's class sizes (official validation/validation.py)."""
    if fakes_per_target == -1:
        sizes = [n for n in real_class_sizes if n > 0]
        return (min(sizes) + max(sizes)) // 2 if sizes else 0
    if fakes_per_target < -1:
        raise ConfigError(f"eval.fakes_per_target must be >= 0, or -1 for TUNIT's rule; got {fakes_per_target}")
    return fakes_per_target


def groups(protocol: str, tasks: list[Task], domains: list[str], served: list[int] | None = None) -> list[Group]:
    """The FID groups of a protocol over the planned tasks.

    ``served``: indices of the tasks that are translated (default: all). A group with no
    served task is still returned, with no tasks, so that it can be reported as not served.
    """
    (protocol,) = check_protocols([protocol])
    served_set = set(range(len(tasks)) if served is None else served)
    if protocol == PAIRWISE:
        return [Group(task_name(domains[t.src], domains[t.trg]), SCOPE_TASK, t.trg, (i,) if i in served_set else ())
                for i, t in enumerate(tasks)]
    targets = sorted({t.trg for t in tasks})
    return [Group(domains[trg], SCOPE_DOMAIN, trg,
                  tuple(i for i, t in enumerate(tasks) if t.trg == trg and i in served_set))
            for trg in targets]


def latent_codes(n: int, latent_dim: int, seed: int, trg: int) -> torch.Tensor:
    """z ~ N(0, 1) for ``n`` translations into ``trg``, seeded per (eval seed, target)."""
    return torch.randn(n, latent_dim, generator=generator(seed, trg, 2))


def reference_indices(n: int, candidates: torch.Tensor, seed: int, trg: int) -> torch.Tensor:
    """Reference images for ``n`` translations: uniform draws from the target's validation images."""
    if len(candidates) == 0:
        raise ConfigError("reference-guided evaluation needs validation images of every target domain")
    pick = torch.randint(len(candidates), (n,), generator=generator(seed, trg, 3))
    return candidates[pick]
