"""Child-process bodies for the campaign tests (tests/test_campaign.py)."""

import time
from pathlib import Path

import filelock

from i2ibench.pipeline.bench import work_on
from i2ibench.pipeline.campaign import load_campaign


def fake_train(run, log_path):
    """Stand in for `i2ibench run`: note who trained what, then leave the run's final checkpoint."""
    total = run.config().train.total_iters
    with open(run.out_dir.parent / "trained.txt", "a") as fh:
        fh.write(run.name + "\n")
    time.sleep(0.3)  # long enough for the other worker to look at this run while it is claimed
    ckpts = run.out_dir / "checkpoints"
    ckpts.mkdir(parents=True, exist_ok=True)
    (ckpts / f"ckpt_{total:08d}.pt").write_bytes(b"")
    return 0


def worker(spec, runs_root, start):
    start.wait(60)
    campaign = load_campaign(spec, runs_root=Path(runs_root))
    work_on(campaign, runner=fake_train, say=lambda line: None)


def hold(path, ready, release):
    with filelock.FileLock(str(path)):
        ready.set()
        release.wait(30)
