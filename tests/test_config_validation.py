"""Every config value is range-checked when it is set and when a run config is built or loaded:
one-line ConfigErrors that name the key, the value and what was expected."""

import dataclasses
from dataclasses import dataclass

import pytest
import yaml

from i2ibench import config as C
from i2ibench.errors import ConfigError
from conftest import registered_methods

BAD = [
    ("train.batch_size", "0", "an integer >= 1"),
    ("train.batch_size", "-2", "an integer >= 1"),
    ("train.total_iters", "0", "an integer >= 1"),
    ("train.total_iters", "nan", "expects an integer"),
    ("train.total_iters", "1e400", "expects an integer"),
    ("train.img_size", "0", "an integer >= 1"),
    ("train.seed", "-1", "an integer in [0, 4294967295]"),
    ("train.keep_ckpts", "-1", "an integer >= 0"),
    ("train.ckpt_every", "-5", "an integer >= 0"),
    ("train.precision", "fp16", "one of fp32, bf16"),
    ("train.device", "tpu", "one of auto, cpu, cuda"),
    ("eval.protocols", "pooled,bogus", "'bogus' is not"),
    ("eval.protocols", "", "at least one item"),
    ("eval.modes", "latnt", "one of latent, reference"),
    ("eval.outs_per_input", "0", "an integer >= 1"),
    ("eval.nearest_k", "0", "an integer >= 1"),
    ("eval.batch_size", "0", "an integer >= 1"),
    ("eval.max_src_per_domain", "-1", "an integer >= 0"),
    ("eval.feature_precision", "fp8", "one of fp32, bf16"),
    ("model.lr", "-1", "a number > 0 (a learning rate)"),
    ("model.lr", "0", "a number > 0 (a learning rate)"),
    ("model.f_lr", "inf", "a finite number"),
    ("model.lambda_ds", "-0.5", "a number >= 0 (a loss weight)"),
    ("model.lambda_cyc", "nan", "a finite number"),
    ("model.beta2", "1", "a number in [0, 1)"),
    ("model.ema_beta", "1.5", "a number in [0, 1]"),
    ("model.weight_decay", "-1e-4", "a number >= 0"),
    ("model.ds_iter", "0", "an integer >= 1"),
    ("model.style_dim", "0", "an integer >= 1"),
]


@pytest.mark.parametrize("key,value,expected", BAD)
def test_bad_values_are_one_line_errors(key, value, expected):
    with pytest.raises(ConfigError) as e:
        C.build_run_config("stargan2", "fashion10", "smoke", {key: value})
    msg = str(e.value)
    assert "\n" not in msg and key in msg and expected in msg


def test_tunit_loss_weights_and_temperature():
    for key, value in (("model.w_gp", "-1"), ("model.temperature", "0"), ("model.c_lr", "-1"),
                       ("model.labelled_fraction", "1.5"), ("model.augment.flip", "2")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            C.build_run_config("tunit", "fashion10", "smoke", {key: value})


@pytest.mark.parametrize("method", registered_methods())
def test_every_preset_is_valid(method):
    from i2ibench.registry import get_method_class

    for preset in get_method_class(method).presets:
        cfg = C.build_run_config(method, "fashion10", preset)
        C.validate(cfg)


def test_edge_values_are_accepted():
    cfg = C.build_run_config("stargan2", "fashion10", "smoke", {
        "train.batch_size": "1", "train.total_iters": "1", "train.ckpt_every": "0", "train.seed": "0",
        "model.lambda_ds": "0", "model.beta1": "0", "eval.protocols": "pooled", "eval.real_split": "train",
        "eval.labels": "false"})
    assert cfg.eval.labels is False and cfg.eval.protocols == ("pooled",)


def test_protocol_names_come_from_the_shared_names():
    # One source of the names (i2ibench.names): what the harness runs is what the config accepts.
    from i2ibench.names import PROTOCOL_ALIASES, PROTOCOLS

    for name in PROTOCOLS + tuple(PROTOCOL_ALIASES):  # an old name stays valid (configs of earlier runs)
        assert C.build_run_config("stargan2", "fashion10", "smoke", {"eval.protocols": name}).eval.protocols == (name,)
    with pytest.raises(ConfigError, match="'stargan3' is not"):
        C.build_run_config("stargan2", "fashion10", "smoke", {"eval.protocols": "stargan3"})


def test_loading_a_run_config_validates_it(tmp_path):
    cfg = C.build_run_config("stargan2", "fashion10", "smoke")
    C.dump(cfg, tmp_path / "config.yaml")
    assert C.load_run_config(tmp_path / "config.yaml").train.batch_size == cfg.train.batch_size
    data = yaml.safe_load((tmp_path / "config.yaml").read_text())
    data["train"]["batch_size"] = 0
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="train.batch_size=0: expected an integer >= 1"):
        C.load_run_config(tmp_path / "config.yaml")
    (tmp_path / "config.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    with pytest.raises(ConfigError, match="cannot read run config"):
        C.load_run_config(tmp_path / "config.yaml")


def test_eval_overrides_of_a_loaded_run_are_checked_when_set():
    cfg = C.build_run_config("stargan2", "fashion10", "smoke")
    with pytest.raises(ConfigError, match="eval.nearest_k=0"):
        C.apply_overrides(cfg, {"eval.nearest_k": "0"})
    assert cfg.eval.nearest_k == 5  # a refused value is not set


def test_a_field_rule_in_metadata_wins_over_the_name_rule():
    @dataclass
    class Toy:
        lr: float = C.ranged(0.1, lo=0.0, hi=1.0, what="a toy rate")   # the name rule alone says > 0
        lambda_x: float = 1.0
        note: str = "x"

    toy = Toy()
    C.set_key(toy, "lr", "0")  # allowed by the field's own rule
    with pytest.raises(ConfigError, match="a toy rate"):
        C.set_key(toy, "lr", "2")
    assert C.method_field_rule("lambda_x").lo == 0 and C.method_field_rule("note") is C.FINITE
    assert [f.name for f in dataclasses.fields(Toy)] == ["lr", "lambda_x", "note"]


def test_binary_config_file_is_one_line(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match="is not a text file") as e:
        C.load_overrides_file(path)
    assert "\n" not in str(e.value)
