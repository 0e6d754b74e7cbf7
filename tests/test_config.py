"""Typed configs: dotted overrides, coercion, unknown keys, files, presets, dump round-trip."""

from dataclasses import dataclass, field

import pytest

from i2ibench.config import (
    EvalConfig, TrainConfig, apply_overrides, build_run_config, dump, load_overrides_file,
    load_run_config, parse_set_args, set_key, to_dict, valid_keys,
)
from i2ibench.errors import ConfigError
from i2ibench.registry import get_method_class

from conftest import registered_methods


@dataclass
class Inner:
    lr: float = 1e-4
    flag: bool = False
    names: tuple[str, ...] = ("a",)
    maybe: int | None = None


@dataclass
class Outer:
    steps: int = 10
    inner: Inner = field(default_factory=Inner)


def test_dotted_override_coerces_types():
    cfg = apply_overrides(Outer(), {"steps": "1e3", "inner.lr": "2e-4", "inner.flag": "true",
                                    "inner.names": "x, y", "inner.maybe": "none"})
    assert cfg.steps == 1000 and isinstance(cfg.steps, int)
    assert cfg.inner.lr == pytest.approx(2e-4)
    assert cfg.inner.flag is True
    assert cfg.inner.names == ("x", "y")
    assert cfg.inner.maybe is None
    set_key(cfg, "inner.maybe", "7")
    assert cfg.inner.maybe == 7


def test_unknown_key_lists_valid_keys_and_closest():
    with pytest.raises(ConfigError) as e:
        set_key(Outer(), "inner.lrr", 1)
    msg = str(e.value)
    assert "inner.lrr" in msg and "did you mean 'inner.lr'" in msg and "inner.flag" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("key,value", [("steps", "ten"), ("steps", "1.5"), ("inner.flag", "maybe"),
                                       ("inner.lr", "fast")])
def test_bad_values_are_config_errors(key, value):
    with pytest.raises(ConfigError, match=key.split(".")[-1]):
        set_key(Outer(), key, value)


def test_section_key_is_rejected():
    with pytest.raises(ConfigError, match="section"):
        set_key(Outer(), "inner", 3)


def test_parse_set_args():
    assert parse_set_args(["a.b=1", "c = x=y"]) == {"a.b": "1", "c": "x=y"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_set_args(["novalue"])


def test_overrides_file_yaml_json_nested(tmp_path):
    y = tmp_path / "o.yaml"
    y.write_text("train:\n  batch_size: 4\nmodel.lambda_x: 2\n")
    assert load_overrides_file(y) == {"train.batch_size": 4, "model.lambda_x": 2}
    j = tmp_path / "o.json"
    j.write_text('{"eval": {"nearest_k": 3}}')
    assert load_overrides_file(j) == {"eval.nearest_k": 3}
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_overrides_file(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_overrides_file(tmp_path / "missing.yaml")


def test_valid_keys_cover_nested_fields():
    keys = valid_keys(Outer())
    assert keys == ["steps", "inner.lr", "inner.flag", "inner.names", "inner.maybe"]


@pytest.mark.parametrize("method", registered_methods())
@pytest.mark.parametrize("preset", ["paper", "cpu", "smoke"])
def test_every_method_has_every_preset(method, preset, tmp_path):
    cls = get_method_class(method)
    assert preset in cls.presets
    cfg = build_run_config(method, "fashion10", preset, {"train.seed": "5"})
    assert cfg.train.seed == 5 and cfg.preset == preset
    # every preset key is a real key: building would have raised otherwise; dump round-trips
    dump(cfg, tmp_path / "config.yaml")
    again = load_run_config(tmp_path / "config.yaml")
    assert to_dict(again) == to_dict(cfg)


@pytest.mark.parametrize("method", registered_methods())
def test_smoke_preset_is_small(method):
    cfg = build_run_config(method, "fashion10", "smoke")
    assert cfg.train.total_iters <= 20 and cfg.train.img_size <= 32


def test_defaults_are_paper_like():
    assert TrainConfig().img_size == 256 and EvalConfig().nearest_k == 5
