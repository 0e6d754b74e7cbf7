"""Eight `i2ibench eval` processes of one run at once (one per checkpoint) all keep their
records in RUN_DIR/records.csv, and the tables still show only the run's newest evaluation."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from i2ibench.report import records as R

EXE = Path(sys.executable).with_name("i2ibench")
N_EVALS = 8


@pytest.mark.slow  # trains 8 steps, then 8 processes with the real Inception network
def test_eight_concurrent_evaluations_all_land_in_records(tmp_path):
    from i2ibench.config import build_run_config
    from i2ibench.data.catalog import available, get_spec
    from i2ibench.report.tables import select
    from i2ibench.train.checkpoint import list_checkpoints
    from i2ibench.train.engine import train

    if not available(get_spec("fashion-sneaker2boot")):
        pytest.skip("Fashion-MNIST files not installed (Debian package dataset-fashion-mnist)")
    run_dir = tmp_path / "run"
    cfg = build_run_config("stargan2", "fashion-sneaker2boot", "smoke", {
        "train.total_iters": N_EVALS, "train.ckpt_every": 1, "train.keep_ckpts": 0, "train.sample_every": 0,
        "eval.enabled": False})
    train(cfg, run_dir, resume=False, progress=False)
    ckpts = list_checkpoints(run_dir)
    assert [s for s, _ in ckpts] == list(range(1, N_EVALS + 1))

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    small = ["--set", "eval.protocols=pooled", "--set", "eval.modes=latent", "--set", "eval.max_src_per_domain=2",
             "--set", "eval.outs_per_input=1", "--set", "eval.max_real_per_domain=3", "--set", "eval.lpips=false",
             "--set", "eval.style_plot_per_domain=0", "--set", "eval.nearest_k=2"]
    procs = [subprocess.Popen([str(EXE), "eval", str(path), "--no-cache", "--device", "cpu", *small],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _, path in ckpts]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err
        assert "records written" in out + err

    df = R.load_records([run_dir / "records.csv"])
    assert sorted(set(df[R.ITERATIONS].astype(int))) == list(range(1, N_EVALS + 1))
    per_eval = df.groupby(R.ITERATIONS).size()
    assert per_eval.nunique() == 1 and per_eval.iloc[0] > 0  # every evaluation complete, none doubled
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    # tables keep the run's newest evaluation only
    shown = select(df, metrics=["mfid"])
    assert len(shown) == 1 and int(shown[R.ITERATIONS].iloc[0]) == N_EVALS
