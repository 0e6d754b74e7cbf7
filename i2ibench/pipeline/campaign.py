"""Benchmark campaigns: methods x datasets x presets x seeds (+ overrides) from one YAML spec.

A campaign spec (``benchmarks/campaigns/*.yaml``)::

    name: fashion10-cpu                  # names the run folder runs/bench/<name>/ and results/campaigns/<name>/
    presets: [cpu]                       # default for every entry
    seeds: [0, 1, 2]                     # default for every entry
    set: {eval.bootstrap: 200}           # overrides for every run (optional)
    runs:                                # entries; each is the product of its lists
      - methods: [stargan2, tunit, lanit]
        datasets: [fashion10]
      - method: cliptravelgan            # singular spellings work too
        dataset: fashion-inv2plain-skewed
        tag: lambda0.0003                # names the variant: <method>-<dataset>-<preset>-s<seed>-<tag>
        set: {model.lambda_travel: 4.8768}

Every run is an ordinary ``i2ibench run`` directory, so a campaign resumes where it stopped
(each run from its newest checkpoint) and finished runs are skipped. The order is seed-major:
all first seeds before any second seed, so an interrupted campaign has one run of every
configuration first. Nothing here schedules jobs: :mod:`i2ibench.pipeline.bench` hands the
runs to submitit (local processes or Slurm).
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from i2ibench.config import RunConfig, build_run_config, flatten
from i2ibench.errors import ConfigError, I2IError

DEFAULT_RUNS_ROOT = Path("runs") / "bench"
DEFAULT_RESULTS_ROOT = Path("results") / "campaigns"
TOP_KEYS = {"name", "presets", "seeds", "set", "runs", "description"}
ENTRY_KEYS = {"method", "methods", "dataset", "datasets", "preset", "presets", "seed", "seeds", "tag", "set"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class CampaignRun:
    """One run of a campaign: what ``i2ibench run`` is given, and where it writes."""

    name: str
    method: str
    dataset: str
    preset: str
    seed: int
    tag: str = ""
    overrides: tuple[tuple[str, str], ...] = ()
    out_dir: Path = Path()

    def config(self) -> RunConfig:
        """The resolved config (raises ``ConfigError`` for an unknown method, preset or key)."""
        sets = dict(self.overrides)
        sets["train.seed"] = self.seed
        return build_run_config(self.method, self.dataset, self.preset, sets)

    def argv(self, *, progress: bool = False) -> list[str]:
        """The ``i2ibench run`` command line of this run (this interpreter)."""
        cmd = [sys.executable, "-m", "i2ibench.cli", "run", "--method", self.method, "--dataset", self.dataset,
               "--preset", self.preset, "--seed", str(self.seed), "--out", str(self.out_dir)]
        for k, v in self.overrides:
            cmd += ["--set", f"{k}={v}"]
        if not progress:
            cmd.append("--no-progress")
        return cmd

    def command_line(self) -> str:
        return shlex.join(["i2ibench"] + self.argv()[3:])


@dataclass
class Campaign:
    """A parsed campaign spec: its runs in execution order and where they live."""

    name: str
    spec_path: Path
    runs: list[CampaignRun] = field(default_factory=list)
    runs_root: Path = DEFAULT_RUNS_ROOT
    results_root: Path = DEFAULT_RESULTS_ROOT
    description: str = ""

    @property
    def out_dir(self) -> Path:
        """Where the runs train: ``runs/bench/<name>/`` (plus ``logs/`` and ``jobs/``)."""
        return self.runs_root / self.name

    @property
    def results_dir(self) -> Path:
        """Where ``bench --collect`` copies what is committed: ``results/campaigns/<name>/``."""
        return self.results_root / self.name

    def run(self, name: str) -> CampaignRun:
        for r in self.runs:
            if r.name == name:
                return r
        raise ConfigError(f"campaign {self.name} has no run '{name}'")


def _as_list(entry: Mapping[str, Any], singular: str, plural: str, default: list | None, where: str) -> list:
    if singular in entry and plural in entry:
        raise ConfigError(f"{where}: give '{singular}' or '{plural}', not both")
    if singular in entry:
        return [entry[singular]]
    if plural in entry:
        value = entry[plural]
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{where}: '{plural}' must be a non-empty list, got {value!r}")
        return value
    if default is None:
        raise ConfigError(f"{where}: missing '{singular}' (or '{plural}')")
    return default


def _overrides(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: 'set' must be a mapping of config keys to values, got {value!r}")
    return {k: _scalar_text(v) for k, v in flatten(value).items()}


def _scalar_text(v: Any) -> str:
    # The form `--set key=value` takes; YAML booleans as the config parser reads them.
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v)


def run_name(method: str, dataset: str, preset: str, seed: int, tag: str = "") -> str:
    """``<method>-<dataset>-<preset>-s<seed>[-<tag>]`` (the default name of ``i2ibench run``)."""
    safe_dataset = dataset.replace("/", "_").replace(":", "_")
    name = f"{method}-{safe_dataset}-{preset}-s{seed}"
    return f"{name}-{tag}" if tag else name


def parse_campaign(data: Any, spec_path: Path, *, runs_root: Path = DEFAULT_RUNS_ROOT,
                   results_root: Path = DEFAULT_RESULTS_ROOT) -> Campaign:
    """Check a loaded spec and expand it into runs; every run's config is resolved here.

    Raises ``ConfigError`` (one line) for an unknown key, a missing method or dataset, an
    unknown preset or config key, a non-integer seed, a bad tag, or two entries that give
    the same run name.
    """
    where = str(spec_path)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: a campaign spec is a mapping with 'name' and 'runs'")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; expected {sorted(TOP_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"{where}: 'name' must be letters, digits, '.', '_' or '-', got {name!r}")
    entries = data.get("runs")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: 'runs' must be a non-empty list of entries")
    presets = _as_list(data, "preset", "presets", ["cpu"], where)
    seeds = _as_list(data, "seed", "seeds", [0], where)
    common = _overrides(data.get("set"), where)

    planned: list[tuple[int, int, CampaignRun]] = []  # (seed index, entry order, run)
    seen: dict[str, str] = {}
    for i, entry in enumerate(entries):
        ewhere = f"{where}: runs[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{ewhere} must be a mapping")
        bad = sorted(set(entry) - ENTRY_KEYS)
        if bad:
            raise ConfigError(f"{ewhere}: unknown key(s) {bad}; expected {sorted(ENTRY_KEYS)}")
        tag = str(entry.get("tag", "") or "")
        if tag and not _NAME_RE.match(tag):
            raise ConfigError(f"{ewhere}: 'tag' must be letters, digits, '.', '_' or '-', got {tag!r}")
        sets = {**common, **_overrides(entry.get("set"), ewhere)}
        if "train.seed" in sets:
            raise ConfigError(f"{ewhere}: give seeds with 'seeds', not with set: train.seed")
        e_seeds = _as_list(entry, "seed", "seeds", seeds, ewhere)
        for s in e_seeds:
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise ConfigError(f"{ewhere}: seeds must be non-negative integers, got {s!r}")
        order = 0
        for method in _as_list(entry, "method", "methods", None, ewhere):
            for dataset in _as_list(entry, "dataset", "datasets", None, ewhere):
                for preset in _as_list(entry, "preset", "presets", presets, ewhere):
                    for si, seed in enumerate(e_seeds):
                        rname = run_name(str(method), str(dataset), str(preset), seed, tag)
                        if rname in seen:
                            raise ConfigError(f"{ewhere}: run {rname} is also made by {seen[rname]}; give one a 'tag'")
                        seen[rname] = ewhere
                        run = CampaignRun(name=rname, method=str(method), dataset=str(dataset), preset=str(preset),
                                          seed=seed, tag=tag, overrides=tuple(sorted(sets.items())),
                                          out_dir=runs_root / name / rname)
                        try:
                            run.config()
                        except I2IError as e:  # unknown method, preset, dataset or config key
                            raise ConfigError(f"{ewhere} ({rname}): {e}") from None
                        planned.append((si, len(planned), run))
                        order += 1
    planned.sort(key=lambda t: (t[0], t[1]))
    return Campaign(name=name, spec_path=spec_path, runs=[r for _, _, r in planned], runs_root=runs_root,
                    results_root=results_root, description=str(data.get("description", "") or ""))


def load_campaign(path: str | Path, **roots: Path) -> Campaign:
    """Read and check a campaign spec file (YAML). Raises ``ConfigError`` (one line)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"campaign spec {path} not found: expected a YAML file such as "
                          f"benchmarks/campaigns/fashion10-cpu.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read campaign spec {path}: {str(e).splitlines()[0]}") from None
    return parse_campaign(data, path, **roots)
