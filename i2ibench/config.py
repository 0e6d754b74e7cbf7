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
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from i2ibench.errors import ConfigError
from i2ibench.fileio import write_text
from i2ibench.names import AUGMENTATIONS, MODES, PRECISIONS, PROTOCOL_ALIASES, PROTOCOLS
from i2ibench.registry import suggest

PRESETS = ("paper", "cpu", "smoke")


# --------------------------------------------------------------------------- allowed values

RULE = "i2ibench.rule"  # dataclass field metadata key of a field's Rule


@dataclass(frozen=True)
class Rule:
    """The values a config field accepts: a closed/open range, a set of choices (or a function
    returning them, for lists owned by other modules), and for lists: each item checked,
    optionally non-empty. Every float anywhere must be finite, whatever its rule."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False           # lo itself excluded (e.g. a learning rate > 0)
    hi_open: bool = False
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None
    nonempty: bool = False          # a list needs at least one item
    what: str = ""                  # what the value means, for the error message

    def allowed(self) -> tuple[str, ...] | None:
        return self.choices() if callable(self.choices) else self.choices

    def expected(self, integer: bool = False) -> str:
        """What the rule accepts, in words (``integer``: say "an integer" rather than "a number")."""
        noun = "an integer" if integer else "a number"
        parts = []
        if self.choices is not None:
            parts.append("one of " + ", ".join(self.allowed()))
        if self.lo is not None and self.hi is not None:
            parts.append(f"{noun} in {'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}")
        elif self.lo is not None:
            parts.append(f"{noun} {'>' if self.lo_open else '>='} {_num(self.lo)}")
        elif self.hi is not None:
            parts.append(f"{noun} {'<' if self.hi_open else '<='} {_num(self.hi)}")
        text = " and ".join(parts) or "a finite value"
        return text + (f" ({self.what})" if self.what else "")

    def violation(self, value: Any) -> str | None:
        """What was expected instead of ``value`` (a phrase for "expected ..."), or None if allowed."""
        if isinstance(value, (list, tuple)):
            if self.nonempty and not value:
                return "at least one item"
            for v in value:
                bad = self.violation(v)
                if bad:
                    return f"{bad}; '{v}' is not" if self.choices is not None else bad
            return None
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return "a finite number"
        if self.choices is not None and value not in self.allowed():
            return self.expected()
        if isinstance(value, (int, float)):
            integer = isinstance(value, int)
            if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
                return self.expected(integer)
            if self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi):
                return self.expected(integer)
        return None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


FINITE = Rule()


def ranged(default: Any, **rule: Any) -> Any:
    """A dataclass field with ``default`` whose values must satisfy ``Rule(**rule)``."""
    return field(default=default, metadata={RULE: Rule(**rule)})


def _protocol_names() -> tuple[str, ...]:
    return tuple(PROTOCOLS) + tuple(PROTOCOL_ALIASES)  # old names kept readable after a rename


def _mode_names() -> tuple[str, ...]:
    return tuple(MODES)


SEED_MAX = 2**32 - 1  # numpy's seed range
DEVICES = ("auto", "cpu", "cuda")


# Method hyper-parameters (``model.*``) are checked by their name unless the method's Config
# field declares its own Rule in its metadata. First matching pattern wins.
METHOD_FIELD_RULES: tuple[tuple[str, Rule], ...] = (
    (r"^(.*_)?lr$", Rule(lo=0, lo_open=True, what="a learning rate")),
    (r"^(lambda_.*|w_.*|.*_weight)$", Rule(lo=0, what="a loss weight")),
    (r"^(.*_)?weight_decay$", Rule(lo=0, what="weight decay")),
    (r"^beta[12]$", Rule(lo=0, hi=1, hi_open=True, what="an Adam beta")),
    (r"^ema_beta$", Rule(lo=0, hi=1, what="an EMA decay")),
    (r"^temperature$", Rule(lo=0, lo_open=True)),
    (r"^ds_iter$", Rule(lo=1, what="iterations over which the diversity loss decays")),
    (r"^(.*_dim|.*_hidden|.*_size|topk)$", Rule(lo=1)),
    (r"^(.*_fraction|flip)$", Rule(lo=0, hi=1)),
)


def method_field_rule(name: str) -> Rule:
    """The Rule of a method config field named ``name`` (FINITE if no pattern matches)."""
    for pattern, rule in METHOD_FIELD_RULES:
        if re.match(pattern, name):
            return rule
    return FINITE


def _field_rule(owner: Any, name: str, in_model: bool) -> Rule:
    f = next((f for f in dataclasses.fields(owner) if f.name == name), None)
    if f is not None and RULE in f.metadata:
        return f.metadata[RULE]
    return method_field_rule(name) if in_model else FINITE


def check_value(owner: Any, name: str, key: str, value: Any, in_model: bool = False) -> None:
    """``ConfigError`` (one line: ``key=value: expected ...``) if ``value`` is not allowed for
    field ``name`` of dataclass ``owner``."""
    bad = _field_rule(owner, name, in_model).violation(value)
    if bad:
        shown = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        raise ConfigError(f"{key}={shown}: expected {bad}")


def validate(obj: Any, prefix: str = "", in_model: bool = False) -> None:
    """Check every field of a (nested) config dataclass against its rule; first violation raises
    ``ConfigError``."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            validate(value, f"{key}.", in_model or key == "model")
        else:
            check_value(obj, f.name, key, value, in_model)


def ema_horizon_warning(cfg: "RunConfig") -> str | None:
    """A one-line warning when the EMA horizon 1 / (1 - ema_beta) exceeds half of the steps the
    EMA runs (README "Configuration"): ``train.total_iters`` less ``model.ema_start_iters`` for a
    method whose EMA starts late (TUNIT, clovaai/tunit train/train_unsupervised.py). The evaluated
    EMA generator would then be mostly its starting state. None for methods without an EMA, for
    runs that end before their EMA starts (the live generator is scored) and for the ``smoke``
    preset, whose runs only pin code."""
    beta = getattr(cfg.model, "ema_beta", None)
    if beta is None or cfg.preset == "smoke":
        return None
    if beta >= 1:
        return f"model.ema_beta={beta} never moves the EMA generator from its initialisation"
    horizon = 1.0 / (1.0 - float(beta))
    start = int(getattr(cfg.model, "ema_start_iters", 0))
    span = cfg.train.total_iters - start
    if span <= 0 or horizon <= span / 2:
        return None
    steps = f"the {span} steps the EMA runs (train.total_iters={cfg.train.total_iters}" + (
        f" - model.ema_start_iters={start})" if start else ")")
    return (f"EMA horizon {horizon:.0f} iterations (model.ema_beta={beta}) is more than half of {steps}: "
            "the evaluated EMA generator will be mostly its starting state")


def validate_run_config(cfg: "RunConfig") -> "RunConfig":
    """Every value of ``cfg`` in its allowed range (field rules, method field rules, finite
    floats). Raises ``ConfigError`` with one line naming the key, the value and what was
    expected. Returns ``cfg``. (Dataset-dependent values such as ``eval.real_split`` are
    checked where the data is loaded, before anything is trained.)"""
    validate(cfg)
    return cfg


@dataclass
class TrainConfig:
    """The training loop, shared by every method."""

    img_size: int = ranged(256, lo=1, what="image side in pixels")
    batch_size: int = ranged(8, lo=1, what="images per batch")
    total_iters: int = ranged(100_000, lo=1, what="training iterations")
    seed: int = ranged(777, lo=0, hi=SEED_MAX)
    log_every: int = ranged(10, lo=0, what="steps; 0 = never")           # progress bar / TensorBoard scalars
    sample_every: int = ranged(5_000, lo=0, what="steps; 0 = never")     # PNG sample grids
    ckpt_every: int = ranged(10_000, lo=0, what="steps; 0 = only at the end")
    keep_ckpts: int = ranged(2, lo=0, what="0 = keep all")               # older checkpoints are deleted
    eval_every: int = ranged(0, lo=0, what="steps; 0 = only at the end")  # 0: evaluate only at the end of the run
    precision: str = ranged("fp32", choices=PRECISIONS)           # fp32 | bf16 (autocast)
    channels_last: bool = False
    # true: the plain iteration (the official order of work, unfused convolutions, per-parameter
    # optimiser loops), the reference that tests/test_train_speed.py checks the default against
    plain_step: bool = False
    num_workers: int = ranged(0, lo=0)
    device: str = ranged("auto", choices=DEVICES)  # auto (cuda if available, else cpu) | cpu | cuda
    # none | flip | crop_flip (i2ibench.train.augment); each method's presets set its official one
    augment: str = ranged("none", choices=AUGMENTATIONS)
    # how file images become squares: crop (shorter side, centre; bicubic) | squash (official loaders; bilinear)
    resize: str = ranged("crop", choices=("crop", "squash"))


@dataclass
class EvalConfig:
    """The evaluation protocol; every field is recorded with the results."""

    protocols: tuple[str, ...] = ranged(PROTOCOLS, choices=_protocol_names, nonempty=True)  # pairwise, pooled
    # Empty: the method's own modes, plus not-applicable rows for the style modes (latent,
    # reference) a style method lacks, so that tables line methods up by mode.
    modes: tuple[str, ...] = ranged((), choices=_mode_names)
    max_src_per_domain: int = ranged(0, lo=0, what="0 = all")   # validation images per source domain; 0 = all
    # draws of max_src_per_domain images per source (LANIT's evaluation: 9 rounds of 8)
    rounds: int = ranged(1, lo=1)
    outs_per_input: int = ranged(10, lo=1)   # StarGAN v2: 10 outputs per input (LPIPS over their 45 pairs)
    max_real_per_domain: int = ranged(0, lo=0, what="0 = all")  # real images per target for FID; 0 = all
    # fakes per pooled target, a seeded subset; 0 = all, -1 = TUNIT's (min + max) // 2 of the
    # real split's class sizes (official validation/validation.py)
    fakes_per_target: int = ranged(0, lo=-1, what="0 = all, -1 = TUNIT's rule")
    real_split: str = "val"                  # checked against the dataset's splits when the data is loaded
    nearest_k: int = ranged(5, lo=1)          # density & coverage
    batch_size: int = ranged(50, lo=1)
    seed: int = ranged(0, lo=0, hi=SEED_MAX)
    feature_precision: str = ranged("fp32", choices=PRECISIONS)  # fp32 | bf16 (fast mode; its FID shift is benchmarked)
    lpips: bool = True
    labels: bool = True             # score the labels a method trains with against ground truth
    # translation accuracy (domain classifier) and content preservation (content classifier, where
    # the dataset has a content label); the classifiers are trained once per dataset and cached
    classifiers: bool = True
    bootstrap: int = ranged(200, lo=0, what="resamples of the mFID/mKID intervals; 0 = none")
    style_plot_per_domain: int = ranged(100, lo=0, what="0 = none")  # images per domain in the style-code t-SNE (methods with style_codes); 0 = none
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
        if not math.isfinite(f) or f != int(f):
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
            coerced = _coerce(value, _field_types(target)[part], key)
            check_value(target, part, key, coerced, in_model=parts[0] == "model")
            setattr(target, part, coerced)
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
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not a text file (YAML or JSON expected)") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    if "\x00" in text:  # valid UTF-8 but binary (YAML would reject it with a multi-line message)
        raise ConfigError(f"config file {path} is not a text file (YAML or JSON expected)")
    try:
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
    return validate_run_config(cfg)


def load_run_config(path: str | Path) -> RunConfig:
    """Rebuild a ``RunConfig`` from a dumped ``config.yaml`` of a run directory."""
    from i2ibench.registry import get_method_class

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read run config {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    missing = [k for k in ("method", "dataset", "preset") if not isinstance(data, dict) or k not in data]
    if missing:
        raise ConfigError(f"run config {path} lacks {', '.join(missing)}; it is not an i2ibench config.yaml")
    cls = get_method_class(data["method"])
    cfg = RunConfig(method=data["method"], dataset=data["dataset"], preset=data["preset"],
                    train=TrainConfig(), model=cls.Config(), eval=EvalConfig(),
                    data_root=data.get("data_root"), vlm=data.get("vlm"))
    flat = flatten({k: data[k] for k in ("train", "model", "eval") if k in data})
    apply_overrides(cfg, flat)
    return validate_run_config(cfg)
