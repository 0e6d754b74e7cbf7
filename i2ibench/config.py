"""Typed run configuration: nested dataclasses, named presets, dotted overrides.

A run is configured by ``RunConfig``: which method and dataset, the training loop
(``TrainConfig``), the evaluation (``EvalConfig``) and the method's own hyper-parameters
(``model``, the method's ``Config`` dataclass with paper defaults). A preset is a flat dict
of dotted overrides (``{"train.img_size": 32, "model.dim_in": 32}``) that a method declares
for ``paper``, ``cpu`` and ``smoke``. Users override with ``--set key=value`` or a YAML/JSON
file; an unknown key is an error listing the valid keys.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from i2ibench.errors import ConfigError
from i2ibench.fileio import write_text
from i2ibench.names import PROTOCOLS
from i2ibench.registry import suggest

PRESETS = ("paper", "cpu", "smoke")


@dataclass
class TrainConfig:
    """The training loop, shared by every method."""

    img_size: int = 256
    batch_size: int = 8
    total_iters: int = 100_000
    seed: int = 777
    log_every: int = 10          # progress bar / TensorBoard scalars
    sample_every: int = 5_000    # PNG sample grids
    ckpt_every: int = 10_000
    keep_ckpts: int = 2          # older checkpoints are deleted
    eval_every: int = 0          # 0: evaluate only at the end of the run
    precision: str = "fp32"      # fp32 | bf16 (autocast)
    channels_last: bool = False
    num_workers: int = 0
    device: str = "auto"         # auto (cuda if available, else cpu) | cpu | cuda
    augment: str = "none"        # none | flip | crop_flip (i2ibench.train.augment); methods set their official one


@dataclass
class EvalConfig:
    """The evaluation protocol; every field is recorded with the results."""

    protocols: tuple[str, ...] = PROTOCOLS  # pairwise (StarGAN v2), pooled (TUNIT, LANIT)
    # Empty: the method's own modes, plus not-applicable rows for the style modes (latent,
    # reference) a style method lacks, so that tables line methods up by mode.
    modes: tuple[str, ...] = ()
    max_src_per_domain: int = 0     # validation images per source domain; 0 = all
    rounds: int = 1                 # draws of max_src_per_domain images per source (LANIT's eval: 9 rounds of 8)
    outs_per_input: int = 10        # StarGAN v2: 10 outputs per input (LPIPS over their 45 pairs)
    max_real_per_domain: int = 0    # real images per target for FID; 0 = all
    # fakes per pooled target, a seeded subset; 0 = all, -1 = TUNIT's (min + max) // 2 of the
    # real split's class sizes (official validation/validation.py)
    fakes_per_target: int = 0
    real_split: str = "val"
    nearest_k: int = 5              # density & coverage
    batch_size: int = 50
    seed: int = 0
    feature_precision: str = "fp32"  # fp32 | bf16 (fast mode; its FID shift is benchmarked)
    lpips: bool = True
    style_plot_per_domain: int = 100  # images per domain in the style-code t-SNE (methods with style_codes); 0 = none
    labels: bool = True             # score the labels a method trains with against ground truth
    enabled: bool = True            # evaluate at the end of `i2ibench run`


@dataclass
class RunConfig:
    method: str
    dataset: str
    preset: str
    train: TrainConfig
    model: Any
    eval: EvalConfig = field(default_factory=EvalConfig)
    data_root: str | None = None
    vlm: str | None = None


# --------------------------------------------------------------------------- overrides

def _field_types(obj: Any) -> dict[str, Any]:
    hints = typing.get_type_hints(type(obj))
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(obj)}


def valid_keys(obj: Any, prefix: str = "") -> list[str]:
    """Every dotted key settable on a (nested) dataclass instance."""
    keys = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys.extend(valid_keys(value, f"{prefix}{f.name}."))
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"bad value for {key}: {value!r}")
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()] if value.strip() else []
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} expects a comma-separated list, got {value!r}")
        elem = args[0] if args else Any
        out = [_coerce(v, elem, key) for v in value]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in ("1", "true", "yes", "on"):
            return True
        if s in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key} expects true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key} expects an integer, got {value!r}")
        try:
            f = float(str(value).replace("_", ""))
        except ValueError:
            raise ConfigError(f"{key} expects an integer, got {value!r}") from None
        if f != int(f):
            raise ConfigError(f"{key} expects an integer, got {value!r}")
        return int(f)
    if tp is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} expects a number, got {value!r}") from None
    if tp is str:
        return str(value)
    return value


def set_key(obj: Any, key: str, value: Any) -> None:
    """Set a dotted key on nested dataclasses, coercing strings to the field's type."""
    parts = key.split(".")
    target = obj
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(target) or part not in {f.name for f in dataclasses.fields(target)}:
            valid = valid_keys(obj)
            raise ConfigError(f"unknown config key '{key}'.{suggest(key, valid)}")
        if i == len(parts) - 1:
            current = getattr(target, part)
            if dataclasses.is_dataclass(current):
                raise ConfigError(f"'{key}' is a section; set one of its keys, e.g. '{key}.{dataclasses.fields(current)[0].name}'")
            setattr(target, part, _coerce(value, _field_types(target)[part], key))
        else:
            target = getattr(target, part)


def apply_overrides(obj: Any, overrides: Mapping[str, Any]) -> Any:
    for k, v in overrides.items():
        set_key(obj, k, v)
    return obj


def parse_set_args(items: list[str] | None) -> dict[str, str]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": "1", "c": "x"}``."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def load_overrides_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON file of (nested or dotted) overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot parse config file {path}: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return flatten(data)


def to_dict(obj: Any) -> dict[str, Any]:
    d = dataclasses.asdict(obj)

    def fix(x):
        if isinstance(x, tuple):
            return [fix(v) for v in x]
        if isinstance(x, dict):
            return {k: fix(v) for k, v in x.items()}
        return x

    return fix(d)


def dump(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def build_run_config(
    method: str,
    dataset: str,
    preset: str = "cpu",
    overrides: Mapping[str, Any] | None = None,
    data_root: str | None = None,
    vlm: str | None = None,
) -> RunConfig:
    """Resolve method defaults <- preset <- overrides into a ``RunConfig``."""
    from i2ibench.registry import get_method_class

    cls = get_method_class(method)
    if preset not in cls.presets:
        raise ConfigError(f"unknown preset '{preset}' for {method}.{suggest(preset, list(cls.presets))}")
    cfg = RunConfig(method=method, dataset=dataset, preset=preset, train=TrainConfig(),
                    model=cls.Config(), eval=EvalConfig(), data_root=data_root, vlm=vlm)
    apply_overrides(cfg, cls.presets[preset])
    apply_overrides(cfg, overrides or {})
    return cfg


def load_run_config(path: str | Path) -> RunConfig:
    """Rebuild a ``RunConfig`` from a dumped ``config.yaml`` of a run directory."""
    from i2ibench.registry import get_method_class

    data = yaml.safe_load(Path(path).read_text())
    cls = get_method_class(data["method"])
    cfg = RunConfig(method=data["method"], dataset=data["dataset"], preset=data["preset"],
                    train=TrainConfig(), model=cls.Config(), eval=EvalConfig(),
                    data_root=data.get("data_root"), vlm=data.get("vlm"))
    flat = flatten({k: data[k] for k in ("train", "model", "eval") if k in data})
    apply_overrides(cfg, flat)
    return cfg
