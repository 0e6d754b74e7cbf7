"""Child-process bodies for the lock tests (tests/test_fileio.py). Kept apart from the test
module so that a spawned child imports only pandas and i2ibench's records, not torch."""

import time

import pandas as pd

from i2ibench import fileio
from i2ibench.report import records as R


def hold_lock(path, ready, release):
    """Take the lock on ``path``, signal ``ready``, hold it until ``release`` (at most 30 s)."""
    with fileio.exclusive_lock(path):
        ready.set()
        release.wait(30)


def write_evaluation(run_dir, iterations, start):
    """Write one evaluation's mfid row (value = iterations) into ``run_dir/records.csv``."""
    start.wait(60)
    rows = [{R.METHOD: "m", R.DATASET: "d", R.PROTOCOL: "pooled", R.MODE: "latent", R.METRIC: "mfid",
             R.SCOPE: R.SCOPE_OVERALL, R.VALUE: float(iterations), R.ITERATIONS: iterations,
             R.SOURCE: R.SOURCE_REPRODUCED}]
    # A slow reader: widen the read-merge-write window the lock must cover.
    real_read = R._read_one

    def slow_read(path):
        df = real_read(path)
        time.sleep(0.05)
        return df

    R._read_one = slow_read
    R.write_records(run_dir, pd.DataFrame(rows))
