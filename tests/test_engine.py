"""The training engine: exact resume, NaN guard, atomic checkpoints, pruning, config checks,
sample grids, the `run` command. Toy method and data (tests/engine_toys.py); stargan2 smoke
on fashion10 where that data is installed."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import engine_toys
from engine_toys import TOY, ToyDataset, ToyMethod, all_tensors, toy_config
from i2ibench.train import batches, engine
from i2ibench.train.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from i2ibench.errors import ConfigError, I2IError, TrainingError
from i2ibench.method import DataInfo
from i2ibench.train.sample_grid import grid_size, pick_sample_inputs, save_sample_grids
from i2ibench.seeding import get_rng_states, seed_everything, set_rng_states

REPO = Path(__file__).resolve().parents[1]


def run(tmp: Path, name: str, resume: bool = True, max_steps=None, evaluator=None, **overrides):
    return engine.train(toy_config(**overrides), tmp / name, resume=resume, progress=False,
                        max_steps=max_steps, train_set=ToyDataset(), evaluator=evaluator)


def assert_same_state(a, b):
    ta, tb = all_tensors(a), all_tensors(b)
    assert ta.keys() == tb.keys()
    different = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not different, f"tensors differ: {different[:5]}"


@pytest.fixture
def straight(tmp_path):
    """The uninterrupted 6-step reference run."""
    return run(tmp_path, "straight")


# --------------------------------------------------------------------------- exact resume

@pytest.mark.parametrize("crash_step", [1, 3, 4])
def test_crash_then_resume_is_bit_identical(tmp_path, straight, monkeypatch, crash_step):
    monkeypatch.setitem(engine_toys.CRASH_AT, "step", crash_step)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(tmp_path, "crashed")
    assert [s for s, _ in list_checkpoints(tmp_path / "crashed")] == [s for s in (2, 4) if s <= crash_step]
    monkeypatch.setitem(engine_toys.CRASH_AT, "step", -1)
    resumed = run(tmp_path, "crashed")
    assert_same_state(straight, resumed)
    # the final checkpoints hold the same tensors too
    a = load_checkpoint(tmp_path / "straight/checkpoints/ckpt_00000006.pt")
    b = load_checkpoint(tmp_path / "crashed/checkpoints/ckpt_00000006.pt")
    assert torch.equal(a["method"]["nets"]["generator.out.weight"], b["method"]["nets"]["generator.out.weight"])
    # the loss log has each step once, in order
    steps = [json.loads(l)["step"] for l in (tmp_path / "crashed/train_log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_pause_with_max_steps_then_resume_is_bit_identical(tmp_path, straight):
    paused = run(tmp_path, "paused", max_steps=3)
    assert [s for s, _ in list_checkpoints(tmp_path / "paused")] == [2, 3]
    key = "nets.generator.out.weight"
    assert not torch.equal(all_tensors(paused)[key], all_tensors(straight)[key])
    assert_same_state(straight, run(tmp_path, "paused"))


def test_pause_and_ctrl_c_say_where_the_run_resumes_from(tmp_path, monkeypatch, capsys):
    run(tmp_path, "paused", max_steps=3)
    out = capsys.readouterr().out
    assert "paused at step 3 of 6 (--max-steps)" in out and str(tmp_path / "paused/checkpoints/ckpt_00000003.pt") in out

    def ctrl_c(self, batch, step):
        if step == 4:  # inside the fifth step, after the checkpoint of step 4
            raise KeyboardInterrupt
        return real_step(self, batch, step)

    real_step = ToyMethod.training_step
    monkeypatch.setattr(ToyMethod, "training_step", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "paused")
    out = capsys.readouterr().out
    assert "interrupted after step 4; the newest checkpoint is " + str(tmp_path / "paused/checkpoints/ckpt_00000004.pt") in out
    assert "the same command resumes from it" in out
    assert [s for s, _ in list_checkpoints(tmp_path / "paused")][-1] == 4  # nothing written on the way out


def test_sigkill_at_any_moment_then_resume_is_bit_identical(tmp_path, straight):
    """A real process killed with SIGKILL after its first checkpoint, then resumed here."""
    script = textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        torch.set_num_threads(1)
        from engine_toys import ToyDataset, toy_config
        from i2ibench.train.engine import train
        train(toy_config(), {str(tmp_path / 'killed')!r}, progress=False, train_set=ToyDataset())
    """)
    env = {**os.environ, engine_toys.SLEEP_ENV: "0.5"}  # 4 steps (>= 2 s) remain after ckpt 2
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    first = tmp_path / "killed/checkpoints/ckpt_00000002.pt"
    deadline = time.time() + 120
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert first.exists(), proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "no checkpoint"
    time.sleep(0.6)  # somewhere inside step 3 or 4
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert list_checkpoints(tmp_path / "killed")[-1][0] < 6
    assert_same_state(straight, run(tmp_path, "killed"))


def test_sample_grids_do_not_change_training(tmp_path, straight):
    assert_same_state(straight, run(tmp_path, "sampled", **{"train.sample_every": 1}))


def test_same_seed_same_weights_other_seed_other_weights(tmp_path, straight):
    assert_same_state(straight, run(tmp_path, "again"))
    other = run(tmp_path, "other", **{"train.seed": 1})
    assert not torch.equal(all_tensors(other)["nets.generator.out.weight"],
                           all_tensors(straight)["nets.generator.out.weight"])


def test_dataloader_workers_give_the_same_run(tmp_path, straight):
    assert_same_state(straight, run(tmp_path, "workers", **{"train.num_workers": 2}))


def test_bf16_channels_last_is_used_and_resumes_exactly(tmp_path, straight):
    over = {"train.precision": "bf16", "train.channels_last": True}
    bf16 = run(tmp_path, "bf16", **over)
    w = "nets.generator.out.weight"
    assert not torch.equal(all_tensors(bf16)[w], all_tensors(straight)[w])  # autocast really ran
    assert bf16.nets["generator"].out.weight.is_contiguous(memory_format=torch.channels_last)
    run(tmp_path, "bf16_paused", max_steps=3, **over)
    assert_same_state(bf16, run(tmp_path, "bf16_paused", **over))


def test_periodic_evaluation_runs_between_steps_without_changing_training(tmp_path, straight, monkeypatch):
    calls = []

    def evaluator(method, step, note):
        torch.rand(3), np.random.rand(), random.random()  # an evaluator drawing random numbers
        calls.append(step)

    evaluated = run(tmp_path, "evals", evaluator=evaluator, **{"train.eval_every": 2})
    assert calls == [2, 4]  # step 6 is left to `run`'s final evaluation
    with pytest.raises(ConfigError, match="eval_every"):
        run(tmp_path, "no-evaluator", **{"train.eval_every": 2})
    assert_same_state(straight, evaluated)


def test_labelled_subset_is_a_fixed_fraction_of_every_domain():
    labels = torch.arange(40) % 4
    mask = batches.labelled_subset(labels, 0.2, seed=3)
    assert mask.dtype == torch.bool and mask.sum() == 8
    assert torch.bincount(labels[mask], minlength=4).tolist() == [2, 2, 2, 2]
    assert torch.equal(mask, batches.labelled_subset(labels, 0.2, seed=3))
    assert not torch.equal(mask, batches.labelled_subset(labels, 0.2, seed=4))
    assert batches.labelled_subset(labels, 0.0, seed=3) is None


def test_batches_hold_the_sampled_images_labels_and_labelled_mask():
    ds = ToyDataset(n=24, k=3)
    mask = torch.arange(24) < 5
    from i2ibench.data.samplers import TrainSampler

    sampler = TrainSampler(ds.labels, 4, seed=0)
    (step, batch), = list(batches.iterate_batches(ds, sampler, 7, 8, 0, labelled=mask))
    src, ref, ref2, y_ref = sampler.indices(7)
    assert step == 7 and torch.equal(batch.labelled, mask[src])
    assert torch.equal(batch.x_src, ds.pixels[src]) and torch.equal(batch.x_ref, ds.pixels[ref])
    assert torch.equal(batch.x_ref2, ds.pixels[ref2])
    assert torch.equal(batch.y_src, ds.labels[src]) and torch.equal(batch.y_ref, y_ref)


# --------------------------------------------------------------------------- NaN guard

def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path):
    with pytest.raises(TrainingError) as err:
        run(tmp_path, "nan", **{"model.nan_at": 3})
    good = tmp_path / "nan/checkpoints/ckpt_00000002.pt"
    assert str(err.value) == f"non-finite loss 'g_loss' at step 3; last good checkpoint: {good}"
    assert [s for s, _ in list_checkpoints(tmp_path / "nan")] == [2]
    assert load_checkpoint(good)["step"] == 2


def test_nan_weights_are_never_checkpointed_and_the_named_checkpoint_is_finite(tmp_path):
    with pytest.raises(TrainingError) as err:
        run(tmp_path, "poisoned", **{"model.poison_at": 3, "train.ckpt_every": 1})
    good = tmp_path / "poisoned/checkpoints/ckpt_00000003.pt"  # after steps 0-2; step 3 poisoned the weights
    assert str(err.value).startswith("non-finite weights at step 4") and str(err.value).endswith(f"checkpoint: {good}")
    assert [s for s, _ in list_checkpoints(tmp_path / "poisoned")] == [1, 2, 3]
    nets = load_checkpoint(good)["method"]
    assert all(bool(torch.isfinite(v).all()) for part in ("nets", "nets_ema") for v in nets[part].values()
               if v.is_floating_point())


def test_nan_before_any_checkpoint_says_so(tmp_path):
    with pytest.raises(TrainingError, match=r"at step 1; last good checkpoint: none"):
        run(tmp_path, "nan0", **{"model.nan_at": 1})
    assert list_checkpoints(tmp_path / "nan0") == []


# --------------------------------------------------------------------------- checkpoints

def test_failed_save_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    run(tmp_path, "atomic", max_steps=2)
    ckpt2 = tmp_path / "atomic/checkpoints/ckpt_00000002.pt"
    before = ckpt2.read_bytes()

    def broken_save(obj, f, *a, **k):
        f.write(b"half a checkpoint")  # a partial write (fileio.torch_save passes an open file), then the failure
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        run(tmp_path, "atomic")
    assert ckpt2.read_bytes() == before
    assert [s for s, _ in list_checkpoints(tmp_path / "atomic")] == [2]
    assert not [p for p in (tmp_path / "atomic/checkpoints").iterdir() if p.name.endswith(".tmp")]
    assert load_checkpoint(ckpt2)["step"] == 2


def test_keep_ckpts_prunes_oldest(tmp_path):
    run(tmp_path, "prune", **{"train.ckpt_every": 1, "train.keep_ckpts": 2})
    assert [s for s, _ in list_checkpoints(tmp_path / "prune")] == [5, 6]


def test_checkpoint_loads_weights_only_with_rng_and_config(tmp_path):
    run(tmp_path, "wo", max_steps=2)
    path = tmp_path / "wo/checkpoints/ckpt_00000002.pt"
    raw = torch.load(path, weights_only=True)
    assert raw["step"] == 2 and raw["world_size"] == 1
    assert raw["config"]["method"] == TOY and raw["config"]["train"]["seed"] == 777
    assert raw["rng"][0]["torch"].dtype == torch.uint8
    assert set(raw["method"]) == {"nets", "nets_ema", "optims", "extra"}


def test_load_checkpoint_rejects_non_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(I2IError, match="not an i2ibench checkpoint"):
        load_checkpoint(bad)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(I2IError, match="cannot load checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_save_checkpoint_keep_zero_keeps_all(tmp_path):
    for s in (1, 2, 3):
        save_checkpoint(tmp_path, s, {"method": {}}, keep=0)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [1, 2, 3]


# --------------------------------------------------------------------------- resume config checks

def test_a_foreign_checkpoint_is_refused_with_one_line(tmp_path, straight):
    import shutil

    foreign = tmp_path / "straight/checkpoints/ckpt_00000004.pt"
    for name, overrides in (("other-lr", {"model.lr": 0.5}), ("other-seed", {"train.seed": 9})):
        dst = tmp_path / name / "checkpoints"
        dst.mkdir(parents=True)
        shutil.copy(foreign, dst / foreign.name)
        with pytest.raises(I2IError, match="written by a run with other training settings") as err:
            run(tmp_path, name, **overrides)
        assert "\n" not in str(err.value)
    # same settings, networks that do not fit (a key missing): one line, not a traceback
    state = load_checkpoint(foreign)
    del state["method"]["nets"]["generator.out.weight"]
    save_checkpoint(tmp_path / "misfit", 4, {k: v for k, v in state.items() if k not in ("format", "step")})
    with pytest.raises(I2IError, match="does not fit"):
        run(tmp_path, "misfit")


def test_a_second_writer_of_a_run_is_refused(tmp_path, straight):
    from i2ibench.train.rundir import RunLock

    other = RunLock(tmp_path / "straight")  # as another process training the same run holds it
    other.acquire()
    try:
        with pytest.raises(I2IError, match="being trained by another i2ibench process"):
            run(tmp_path, "straight", resume=False)
    finally:
        other.release()
    assert [s for s, _ in list_checkpoints(tmp_path / "straight")] == [2, 4, 6]  # nothing deleted


def test_resume_with_other_training_config_is_refused(tmp_path):
    run(tmp_path, "cfg", max_steps=2)
    with pytest.raises(I2IError) as err:
        run(tmp_path, "cfg", **{"model.width": 5, "train.batch_size": 2})
    msg = str(err.value)
    assert "\n" not in msg
    assert "model.width: 4 -> 5" in msg and "train.batch_size: 4 -> 2" in msg and "--no-resume" in msg
    assert [s for s, _ in list_checkpoints(tmp_path / "cfg")] == [2]  # nothing touched


def test_resume_allows_bookkeeping_changes_and_longer_runs(tmp_path):
    run(tmp_path, "ext", max_steps=2)
    m = run(tmp_path, "ext", **{"train.total_iters": 7, "train.log_every": 3, "train.ckpt_every": 5})
    assert [s for s, _ in list_checkpoints(tmp_path / "ext")] == [2, 5, 7]
    assert m is not None


def test_no_resume_starts_over(tmp_path, straight):
    run(tmp_path, "over", **{"model.width": 5})
    fresh = run(tmp_path, "over", resume=False)
    assert_same_state(straight, fresh)
    assert [s for s, _ in list_checkpoints(tmp_path / "over")] == [2, 4, 6]


# --------------------------------------------------------------------------- seeding

def test_rng_states_round_trip_every_generator():
    seed_everything(3)
    state = get_rng_states()
    first = (random.random(), float(np.random.rand()), torch.rand(1).item(), np.random.randn(), random.gauss(0, 1))
    set_rng_states(state)
    again = (random.random(), float(np.random.rand()), torch.rand(1).item(), np.random.randn(), random.gauss(0, 1))
    assert first == again


# --------------------------------------------------------------------------- sample grids

def test_sample_grid_png_has_expected_size(tmp_path):
    ds = ToyDataset(n=24, k=3, size=8)
    cfg = toy_config()
    method = ToyMethod(cfg, DataInfo("toy", ds.domains, 8), "cpu")
    inputs = pick_sample_inputs(ds, cfg.model.latent_dim, seed=0)
    assert inputs.x.shape == (6, 3, 8, 8)  # two per domain (at least 4 rows) ...
    assert inputs.refs.shape == (3, 3, 8, 8)  # ... and one reference per domain
    paths = save_sample_grids(method, inputs, tmp_path, step=12)
    assert [p.name for p in paths] == ["latent_00000012.png", "reference_00000012.png"]
    h, w = grid_size(6, 4, 8)
    assert (h, w) == (6 * 8 + 7 * 2, 4 * 8 + 5 * 2)
    with Image.open(paths[0]) as im:
        assert im.size == (w, h) and im.mode == "RGB"
    with Image.open(paths[1]) as im:
        assert im.size == (w, grid_size(7, 4, 8)[0])
        # column 0 of the first row under the header is the input itself
        cell = np.asarray(im)[2 + 10:2 + 18, 2:10]
        expected = ((inputs.x[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        assert np.array_equal(cell, expected)


def test_engine_writes_grids_for_the_methods_modes(tmp_path, monkeypatch):
    monkeypatch.setattr(ToyMethod, "modes", ("reference",))
    run(tmp_path, "grids", **{"train.sample_every": 3})
    names = sorted(p.name for p in (tmp_path / "grids/samples").iterdir())
    assert names == ["reference_00000003.png", "reference_00000006.png"]


def test_logs_and_tensorboard_written(tmp_path):
    run(tmp_path, "logs", **{"train.log_every": 2})
    rows = [json.loads(l) for l in (tmp_path / "logs/train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert all({"d_loss", "g_loss", "it_per_s"} <= set(r) for r in rows)
    assert list((tmp_path / "logs/tb").glob("events.out.tfevents.*"))
    assert (tmp_path / "logs/config.yaml").read_text().startswith("method: toy-engine")


# --------------------------------------------------------------------------- CLI

def _cli():
    from typer.testing import CliRunner

    from i2ibench.cli.main import app

    return CliRunner(), app


def test_run_bad_set_key_exits_2_with_valid_keys(tmp_path):
    runner, app = _cli()
    res = runner.invoke(app, ["run", "--method", TOY, "--dataset", "toy", "--preset", "smoke",
                              "--out", str(tmp_path / "x"), "--set", "train.batch_sise=3"])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: unknown config key 'train.batch_sise'")
    assert "did you mean 'train.batch_size'" in lines[0] and "model.width" in lines[0]
    assert not (tmp_path / "x").exists()


def test_run_unknown_method_exits_2(tmp_path):
    runner, app = _cli()
    res = runner.invoke(app, ["run", "--method", "stargn2", "--dataset", "fashion10", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: unknown method 'stargn2'")


def test_run_config_file_with_bad_key_exits_2(tmp_path):
    runner, app = _cli()
    bad = tmp_path / "bad.json"
    bad.write_text('{"train": {"lr": 0.1}}')
    res = runner.invoke(app, ["run", "--method", TOY, "--dataset", "toy", "--preset", "smoke",
                              "--out", str(tmp_path / "x"), "--config", str(bad)])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: unknown config key 'train.lr'") and len(res.stderr.splitlines()) == 1


def test_run_help_lists_options():
    runner, app = _cli()
    res = runner.invoke(app, ["run", "--help"])
    assert res.exit_code == 0
    for opt in ("--method", "--dataset", "--preset", "--out", "--seed", "--no-resume", "--set", "--config",
                "--data-root", "--vlm", "--precision", "--channels-last", "--no-eval"):
        assert opt in res.output


# --------------------------------------------------------------------------- stargan2 smoke

def _fashion_available() -> bool:
    try:
        from i2ibench.data.catalog import available, get_spec

        return available(get_spec("fashion10"))
    except Exception:
        return False


stargan2_needed = pytest.mark.skipif(not _fashion_available(), reason="Fashion-MNIST files not installed")


@stargan2_needed
def test_stargan2_smoke_resume_is_bit_identical(tmp_path):
    from i2ibench.config import build_run_config

    over = {"train.total_iters": 4, "train.ckpt_every": 2, "train.sample_every": 0, "eval.enabled": False}
    cfg = build_run_config("stargan2", "fashion10", "smoke", over)
    straight = engine.train(cfg, tmp_path / "a", progress=False)
    engine.train(cfg, tmp_path / "b", progress=False, max_steps=3)
    resumed = engine.train(cfg, tmp_path / "b", progress=False)
    assert_same_state(straight, resumed)


@stargan2_needed
def test_cli_run_stargan2_smoke_leaves_a_run_directory(tmp_path):
    runner, app = _cli()
    out = tmp_path / "run"
    overrides = tmp_path / "over.yaml"
    overrides.write_text("train:\n  total_iters: 3\n  sample_every: 2\nmodel.lambda_ds: 2.0\n")
    res = runner.invoke(app, ["run", "-m", "stargan2", "-d", "fashion10", "--preset", "smoke", "--out", str(out),
                              "--no-eval", "--no-progress", "--config", str(overrides),
                              "--set", "train.total_iters=2", "--seed", "5"])
    assert res.exit_code == 0, res.output + res.stderr
    from i2ibench.config import load_run_config

    cfg = load_run_config(out / "config.yaml")  # --set beats the file, which beats the preset
    assert (cfg.train.total_iters, cfg.train.sample_every, cfg.model.lambda_ds, cfg.train.seed) == (2, 2, 2.0, 5)
    assert [s for s, _ in list_checkpoints(out)] == [2]
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["latent_00000002.png", "reference_00000002.png"]


def test_a_resumed_run_removes_the_temp_files_a_kill_left(tmp_path, straight):
    run_dir = tmp_path / "straight"
    orphans = [run_dir / "checkpoints" / ".ckpt_00000008.pt.abcd1234.tmp", run_dir / ".config.yaml.abcd1234.tmp",
               run_dir / ".train_log.jsonl.abcd1234.tmp"]
    for p in orphans:
        p.write_bytes(b"half written")
    keep = run_dir / ".records.csv.abcd1234.tmp"  # an evaluation's: not the trainer's to remove
    keep.write_bytes(b"an evaluation writing")
    run(tmp_path, "straight", **{"train.total_iters": 7})
    assert not any(p.exists() for p in orphans) and keep.exists()
