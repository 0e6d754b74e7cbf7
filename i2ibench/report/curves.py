"""FID against training iteration, from the records of one run evaluated at several iterations
(periodic evaluation, ``train.eval_every``, or re-evaluations of older checkpoints).

A run's records keep every evaluated iteration (``records.write_records`` replaces only rows of
the same iteration), so the curve is the overall mFID row of each iteration, one line per
protocol and mode.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from i2ibench.fileio import atomic_path
from i2ibench.metrics import keys as mk
from i2ibench.names import PROTOCOLS
from i2ibench.report import records as R


def fid_curve(records: pd.DataFrame) -> pd.DataFrame:
    """Columns ``iterations``, ``protocol``, ``mode``, ``mfid``: the overall mFID of every evaluated
    iteration of one run's ``records`` (sorted by iteration; rows without a value dropped)."""
    df = R.normalize(records)
    df = df[(df[R.SOURCE] == R.SOURCE_REPRODUCED) & (df[R.SCOPE] == R.SCOPE_OVERALL) & (df[R.METRIC] == mk.MFID)
            & df[R.PROTOCOL].isin(PROTOCOLS) & df[R.VALUE].notna() & df[R.ITERATIONS].notna()]
    out = df[[R.ITERATIONS, R.PROTOCOL, R.MODE, R.VALUE]].rename(columns={R.VALUE: mk.MFID})
    out = out.groupby([R.ITERATIONS, R.PROTOCOL, R.MODE], as_index=False)[mk.MFID].mean()
    return out.sort_values([R.PROTOCOL, R.MODE, R.ITERATIONS], kind="stable").reset_index(drop=True)


def evaluated_iterations(records: pd.DataFrame) -> list[int]:
    """The iterations at which the run has mFID records, ascending."""
    return sorted({int(v) for v in fid_curve(records)[R.ITERATIONS]})


def plot_fid_curve(curve: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """mFID (y) against iteration (x), one line per protocol and mode; PNG written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for (protocol, mode), g in curve.groupby([R.PROTOCOL, R.MODE], sort=False):
        ax.plot(g[R.ITERATIONS], g[mk.MFID], marker="o", label=f"{protocol}, {mode}")
    ax.set_xlabel("training iteration")
    ax.set_ylabel("mFID (lower is better)")
    ax.set_title(title or "mFID against iteration", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path
