"""Campaign specs, run states read from disk, claiming workers, collecting, and `i2ibench bench`."""

import json
import multiprocessing as mp
import socket
import subprocess
import sys
import time
from pathlib import Path

import campaign_workers
import pandas as pd
import pytest
import yaml

from i2ibench.errors import ConfigError
from i2ibench.pipeline import bench as B
from i2ibench.pipeline.campaign import load_campaign, parse_campaign, run_name
from i2ibench.report import records as R

SPECS = Path(__file__).resolve().parents[1] / "benchmarks" / "campaigns"


def _spec(tmp_path, data, name="c.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _tiny(tmp_path, **extra):
    data = {"name": "tiny", "presets": ["smoke"], "seeds": [0, 1], "set": {"eval": {"enabled": False}},
            "runs": [{"methods": ["cyclegan", "travelgan"], "dataset": "fashion-sneaker2boot"}], **extra}
    return load_campaign(_spec(tmp_path, data), runs_root=tmp_path / "runs", results_root=tmp_path / "results")


def test_expansion_is_seed_major_with_names_and_overrides(tmp_path):
    c = _tiny(tmp_path)
    assert [r.name for r in c.runs] == [
        "cyclegan-fashion-sneaker2boot-smoke-s0", "travelgan-fashion-sneaker2boot-smoke-s0",
        "cyclegan-fashion-sneaker2boot-smoke-s1", "travelgan-fashion-sneaker2boot-smoke-s1"]
    run = c.runs[2]
    assert run.seed == 1 and run.overrides == (("eval.enabled", "false"),)
    assert run.out_dir == tmp_path / "runs" / "tiny" / run.name
    cfg = run.config()
    assert cfg.train.seed == 1 and cfg.eval.enabled is False and cfg.preset == "smoke"
    argv = run.argv()
    assert argv[argv.index("--seed") + 1] == "1" and "eval.enabled=false" in argv


def test_tagged_variant_and_entry_overrides(tmp_path):
    data = {"name": "sweep", "runs": [
        {"method": "cliptravelgan", "dataset": "fashion-inv2plain-skewed", "tag": "lambda0.01",
         "set": {"model.lambda_travel": 162.56}},
        {"method": "cliptravelgan", "dataset": "fashion-inv2plain-skewed"}]}
    c = parse_campaign(data, tmp_path / "s.yaml")
    assert [r.name for r in c.runs] == ["cliptravelgan-fashion-inv2plain-skewed-cpu-s0-lambda0.01",
                                        "cliptravelgan-fashion-inv2plain-skewed-cpu-s0"]
    assert c.runs[0].config().model.lambda_travel == pytest.approx(162.56)
    assert c.runs[1].config().model.lambda_travel == pytest.approx(16.256)  # the preset's


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "runs": [{"method": "stargan2", "dataset": "fashion10"}], "seedz": [1]}, "unknown key"),
    ({"name": "x", "runs": [{"method": "stargan2", "datasets": "fashion10"}]}, "non-empty list"),
    ({"name": "x", "runs": [{"dataset": "fashion10"}]}, "missing 'method'"),
    ({"name": "x", "runs": [{"method": "stargan2", "dataset": "fashion10", "seeds": [-1]}]}, "non-negative"),
    ({"name": "x", "runs": [{"method": "nosuch", "dataset": "fashion10"}]}, "nosuch"),
    ({"name": "x", "runs": [{"method": "stargan2", "dataset": "fashion10", "set": {"train.nosuch": 1}}]}, "nosuch"),
    ({"name": "x", "runs": [{"method": "stargan2", "dataset": "fashion10"},
                            {"methods": ["stargan2"], "dataset": "fashion10"}]}, "also made by"),
    ({"name": "a b", "runs": [{"method": "stargan2", "dataset": "fashion10"}]}, "'name'"),
    ({"name": "x", "runs": [{"method": "stargan2", "dataset": "fashion10", "set": {"train.seed": 3}}]}, "seeds"),
])
def test_bad_specs_are_refused_before_anything_is_written(tmp_path, data, message):
    with pytest.raises(ConfigError, match=message):
        load_campaign(_spec(tmp_path, data), runs_root=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_missing_spec_names_the_expected_file(tmp_path):
    with pytest.raises(ConfigError, match="expected a YAML file"):
        load_campaign(tmp_path / "nope.yaml")


@pytest.mark.parametrize("spec", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.stem)
def test_committed_specs_load(spec):
    c = load_campaign(spec)
    assert c.name == spec.stem and c.runs
    assert len({r.name for r in c.runs}) == len(c.runs)


def test_committed_campaign_sizes():
    sizes = {p.stem: load_campaign(p) for p in SPECS.glob("*.yaml")}
    for multi in ("fashion10-cpu", "cmnist-cpu"):
        methods = pd.Series([r.method for r in sizes[multi].runs]).value_counts()
        assert (methods >= 3).all() and len(methods) == 3  # >= 3 seeds for each of the three methods
    lambdas = {r.config().model.lambda_travel for r in sizes["twodomain-cpu"].runs if r.method == "cliptravelgan"}
    assert {round(x / (128 * 127), 6) for x in lambdas} >= {0.0003, 0.001, 0.003, 0.01}


def _write_log(run_dir, step):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "train_log.jsonl").write_text(f'{{"step": {step}, "D/loss": 1.0}}\n')


def _write_ckpt(run_dir, step):
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    (run_dir / "checkpoints" / f"ckpt_{step:08d}.pt").write_bytes(b"")


def _write_records(run_dir, iterations):
    rows = [{R.METHOD: "cyclegan", R.DATASET: "fashion-sneaker2boot", R.PROTOCOL: "pooled", R.MODE: "deterministic",
             R.METRIC: "mfid", R.SCOPE: R.SCOPE_OVERALL, R.VALUE: 100.0, R.ITERATIONS: iterations,
             R.SOURCE: R.SOURCE_REPRODUCED}]
    R.write_records(run_dir, pd.DataFrame(rows))


def test_states_follow_the_run_directory(tmp_path):
    c = _tiny(tmp_path, set={})  # evaluation on: done needs records at the last iteration
    run = c.runs[0]
    assert B.run_state(c, run).state == B.PENDING
    _write_log(run.out_dir, 2)
    s = B.run_state(c, run)
    assert (s.state, s.step, s.total) == (B.PARTIAL, 2, 4)
    _write_ckpt(run.out_dir, 4)
    assert B.run_state(c, run).state == B.PARTIAL  # trained, not evaluated yet
    _write_records(run.out_dir, 2)
    assert B.run_state(c, run).state == B.PARTIAL  # an evaluation of another iteration
    _write_records(run.out_dir, 4)
    s = B.run_state(c, run)
    assert s.state == B.DONE and s.evaluated == (2, 4)


def test_a_held_claim_reads_as_running(tmp_path):
    c = _tiny(tmp_path)
    run = c.runs[1]
    claim = B._claim_path(c, run)
    claim.parent.mkdir(parents=True)
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=campaign_workers.hold, args=(claim, ready, release))
    p.start()
    try:
        assert ready.wait(60)
        assert B.run_state(c, run).state == B.RUNNING
        assert "1 running" in B.status_text(c)
    finally:
        release.set()
        p.join(60)
    assert B.run_state(c, run).state == B.PENDING


def test_two_workers_train_every_run_once(tmp_path):
    spec = _spec(tmp_path, {"name": "tiny", "presets": ["smoke"], "seeds": [0, 1, 2], "set": {"eval.enabled": False},
                            "runs": [{"methods": ["cyclegan", "travelgan"], "dataset": "fashion-sneaker2boot"}]})
    c = load_campaign(spec, runs_root=tmp_path / "runs")
    _write_ckpt(c.runs[0].out_dir, 4)  # finished before: skipped
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=campaign_workers.worker, args=(spec, tmp_path / "runs", start)) for _ in range(2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    trained = (c.out_dir / "trained.txt").read_text().split()
    assert sorted(trained) == sorted(r.name for r in c.runs[1:])  # each once, the finished one never
    assert all(B.run_state(c, r).state == B.DONE for r in c.runs)


def test_a_failing_run_is_reported_and_not_retried(tmp_path):
    c = _tiny(tmp_path)
    calls = []

    def runner(run, log):
        calls.append(run.name)
        return 3 if run.name == c.runs[0].name else campaign_workers.fake_train(run, log)

    taken = B.work_on(c, runner=runner, say=lambda line: None)
    assert calls.count(c.runs[0].name) == 1 and len(calls) == len(c.runs)
    assert dict(taken)[c.runs[0].name] == 3
    assert B.run_state(c, c.runs[0]).state == B.PENDING


def test_collect_copies_records_configs_logs_and_final_grids_only(tmp_path):
    c = _tiny(tmp_path, set={})
    run = c.runs[0]
    _write_log(run.out_dir, 4)
    _write_ckpt(run.out_dir, 4)
    (run.out_dir / "config.yaml").write_text("method: cyclegan\n")
    (run.out_dir / "samples").mkdir()
    for step in (2, 4):
        (run.out_dir / "samples" / f"deterministic_{step:08d}.png").write_bytes(b"png")
    _write_records(run.out_dir, 4)
    _write_log(c.runs[1].out_dir, 2)  # unfinished: not collected
    written = B.collect(c, say=lambda line: None)
    dest = c.results_dir / run.name
    assert written == [dest]
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == ["config.yaml", "records.csv", "samples/deterministic_00000004.png", "train_log.jsonl"]
    rec = pd.read_csv(dest / "records.csv")
    assert set(rec[R.RUN]) == {dest.as_posix()}
    assert not (c.results_dir / c.runs[1].name).exists()


def test_run_name_matches_i2ibench_run_default():
    from i2ibench.config import build_run_config
    from i2ibench.train.rundir import resolve_out_dir

    cfg = build_run_config("stargan2", "fashion10", "cpu", {"train.seed": 4})
    assert resolve_out_dir(cfg, None).name == run_name("stargan2", "fashion10", "cpu", 4)


def test_bench_cli_runs_a_campaign_through_submitit(tmp_path):
    """End to end: two local submitit workers train a two-run smoke campaign; a second call skips it."""
    spec = _spec(tmp_path, {"name": "e2e", "presets": ["smoke"], "seeds": [0], "set": {"eval.enabled": False},
                            "runs": [{"methods": ["cyclegan", "travelgan"], "dataset": "fashion-sneaker2boot"}]})
    cmd = [sys.executable, "-m", "i2ibench.cli", "bench", str(spec), "--workers", "2", "--refresh", "1"]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "all runs done" in out.stdout and "2 done, 0 running" in out.stdout
    for m in ("cyclegan", "travelgan"):
        run_dir = tmp_path / "runs" / "bench" / "e2e" / f"{m}-fashion-sneaker2boot-smoke-s0"
        assert (run_dir / "checkpoints" / "ckpt_00000004.pt").is_file()
        assert "i2ibench run --method " + m in (tmp_path / "runs/bench/e2e/logs" / f"{run_dir.name}.log").read_text()
    again = subprocess.run(cmd + ["--dry-run"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.stdout.count("skip (done)") == 2


def _wait_for(predicate, seconds=900):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(1)
    return False


def test_detach_into_a_pipe_returns_and_stop_ends_the_run(tmp_path):
    """--detach returns while its run trains (its output is a pipe the workers must not hold);
    --stop ends the worker and the run, which keeps its checkpoints and resumes next time."""
    spec = _spec(tmp_path, {"name": "long", "presets": ["smoke"], "seeds": [0],
                            "set": {"eval.enabled": False, "train.total_iters": 1_000_000},
                            "runs": [{"method": "cyclegan", "dataset": "fashion-sneaker2boot"}]})
    cmd = [sys.executable, "-m", "i2ibench.cli", "bench", str(spec)]
    out = subprocess.run(cmd + ["--detach", "--workers", "1"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0 and "handed to 1 local job(s)" in out.stdout, out.stderr[-2000:]
    c = load_campaign(spec, runs_root=tmp_path / "runs" / "bench")
    run = c.runs[0]
    assert _wait_for(lambda: B.run_state(c, run).state == B.RUNNING and B.run_state(c, run).step >= 2
                     and B._owner_path(c, run).is_file())
    stopped = subprocess.run(cmd + ["--stop"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "1 run(s) stopped" in stopped.stdout, stopped.stderr[-2000:]
    assert _wait_for(lambda: B.run_state(c, run).state == B.PARTIAL)
    assert list((run.out_dir / "checkpoints").glob("ckpt_*.pt"))
    dry = subprocess.run(cmd + ["--dry-run"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "resume" in dry.stdout


class _Job:
    def __init__(self, finished_after):
        self.polls, self.finished_after, self.job_id = 0, finished_after, "1"

    def done(self):
        self.polls += 1
        return self.polls > self.finished_after

    def exception(self):
        return None


def test_wait_prints_the_view_when_a_run_moves(tmp_path):
    c = _tiny(tmp_path)
    job = _Job(finished_after=2)
    views = []
    calls = {"n": 0}

    def say(text):
        views.append(text)

    real_sleep = time.sleep
    try:
        def step(_seconds):
            calls["n"] += 1
            if calls["n"] == 1:  # the first run moves between two checks
                _write_log(c.runs[0].out_dir, 3)
        time.sleep = step
        states = B.wait(c, B.Submission([job], [r.name for r in c.runs], "local"), refresh_s=0, say=say)
    finally:
        time.sleep = real_sleep
    assert len(views) == 2  # the first view, then one after the run moved; unchanged checks print nothing
    assert "0 partial" in views[0] and "1 partial" in views[1] and "3/4" in views[1]
    assert states[c.runs[0].name] == B.PARTIAL


def test_run_seeds_gives_one_directory_per_seed(tmp_path, monkeypatch, capsys):
    from conftest import run_cli

    out = tmp_path / "cg-s{seed}"
    code, stdout, err = run_cli(monkeypatch, capsys, "run", "-m", "cyclegan", "-d", "fashion-sneaker2boot", "-p",
                                "smoke", "--seeds", "3,5", "--out", str(out), "--no-eval", "--no-progress")
    assert code == 0, err
    for s in (3, 5):
        cfg = yaml.safe_load((tmp_path / f"cg-s{s}" / "config.yaml").read_text())
        assert cfg["train"]["seed"] == s
        assert (tmp_path / f"cg-s{s}" / "checkpoints" / "ckpt_00000004.pt").is_file()


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0,1", "--out", "same"], "must contain {seed}"),
    (["--seeds", "0,0"], "distinct"),
    (["--seeds", "a"], "comma-separated"),
    (["--seeds", "1", "--seed", "2"], "not both"),
    (["--out", "x-{seed}"], "only --seeds"),
])
def test_run_seeds_bad_input(tmp_path, monkeypatch, capsys, args, message):
    from conftest import run_cli

    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, "run", "-m", "cyclegan", "-d", "fashion-sneaker2boot", "-p", "smoke",
                           *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_stop_ends_the_worker_and_its_run(tmp_path):
    c = _tiny(tmp_path)
    run = c.runs[0]
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    owner = B._owner_path(c, run)
    owner.parent.mkdir(parents=True)
    owner.write_text(json.dumps({"host": socket.gethostname(), "worker_pid": worker.pid, "run_pid": child.pid}))
    other = B._owner_path(c, c.runs[1])
    other.write_text(json.dumps({"host": "elsewhere", "worker_pid": 1, "run_pid": 1}))
    said = []
    assert B.stop_local(c, say=said.append) == 1
    assert worker.wait(30) == -9 and child.wait(30) == -15
    assert any("elsewhere" in line for line in said)
