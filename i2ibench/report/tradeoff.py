"""The CLIPTraVeLGAN paper's trade-off (§5-7): FID of the A -> B task against a semantic-robustness
metric, one point per run (method + setting: λ, encoder, loss), as a table and a PNG.

x is the pairwise FID of one task (``task``, e.g. ``inverted->plain``; default: the task every
point has). y is ``content_preservation`` (content classifier; 1 - the flip rate), ``lpips_truth`` or ``lpips_io``, from that
task's row where the records have one, else from the overall row. Usage, on finished runs::

    python -m i2ibench.report.tradeoff runs/ --y lpips_truth --out tradeoff.png
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Iterable

import pandas as pd

from i2ibench.errors import I2IError
from i2ibench.fileio import atomic_path
from i2ibench.metrics import keys as mk
from i2ibench.names import PAIRWISE
from i2ibench.report import records as R
from i2ibench.report.tables import metric_label

POINT = [R.METHOD, R.SETTING, R.RUN]


def tradeoff_points(records: pd.DataFrame, y: str = mk.CONTENT_PRESERVATION, task: str | None = None) -> pd.DataFrame:
    """One row per run: ``method, setting, run, fid, <y>`` (reproduced records only).

    I2IError when no run has both the task's pairwise FID and ``y``.
    """
    df = R.normalize(records)
    df = df[df[R.SOURCE] == R.SOURCE_REPRODUCED]
    fid = df[(df[R.PROTOCOL] == PAIRWISE) & (df[R.METRIC] == mk.FID) & (df[R.SCOPE] == R.SCOPE_TASK)
             & df[R.VALUE].notna()]
    if task is None and not fid.empty:
        counts = fid.groupby(R.DOMAIN)[R.RUN].nunique()
        task = str(counts.idxmax())
    fid = fid[fid[R.DOMAIN] == task]
    ys = df[(df[R.METRIC] == y) & df[R.VALUE].notna()]
    per_task = ys[(ys[R.SCOPE] == R.SCOPE_TASK) & (ys[R.DOMAIN] == task)]
    overall = ys[ys[R.SCOPE] == R.SCOPE_OVERALL]
    ys = pd.concat([per_task, overall[~overall[R.RUN].isin(per_task[R.RUN])]])
    out = (fid[POINT + [R.VALUE]].rename(columns={R.VALUE: mk.FID})
           .merge(ys[POINT + [R.VALUE]].rename(columns={R.VALUE: y}), on=POINT))
    if out.empty:
        raise I2IError(f"no run has both the pairwise FID of task '{task}' and '{y}'")
    return out.drop_duplicates(POINT).reset_index(drop=True)


def _short_setting(setting: str) -> str:
    # The parts that tell the sweep's points apart; the full setting is in the records and tables.
    setting = re.sub(r"\s*\([^)]*\)", "", setting)  # "(mean over pairs)"
    keep = [p.strip() for p in setting.split(",") if p.strip().split("=")[0] in ("S", "lambda", "loss")]
    return ", ".join(keep) if keep else setting


def plot_tradeoff(points: pd.DataFrame, y: str, path: str | Path, title: str = "") -> Path:
    """Scatter FID (x) against ``y``, one marker per run and a legend ``method: setting``; PNG written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), layout="constrained")
    markers = "osD^vP*Xh<>p"
    for i, (_, p) in enumerate(points.iterrows()):
        ax.scatter(p[mk.FID], p[y], marker=markers[i % len(markers)], s=60,
                   label=f"{p[R.METHOD]}: {_short_setting(str(p[R.SETTING]))}")
    ax.set_xlabel("FID of the A -> B task (pairwise; lower is better)")
    ax.set_ylabel(f"{metric_label(y)} (higher is better)" if y == mk.CONTENT_PRESERVATION else metric_label(y))
    ax.set_title(title or f"FID against {metric_label(y)}", fontsize=9, wrap=True)
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2, fontsize=7.5, frameon=False)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run folders (searched for records.csv) or records files")
    ap.add_argument("--y", default=mk.CONTENT_PRESERVATION, choices=[mk.CONTENT_PRESERVATION, mk.LPIPS_TRUTH, mk.LPIPS_IO])
    ap.add_argument("--task", default=None, help="the A->B task name, e.g. inverted->plain")
    ap.add_argument("--out", default="tradeoff.png")
    args = ap.parse_args(list(argv) if argv is not None else None)
    points = tradeoff_points(R.load_records(args.runs), args.y, args.task)
    print(points.to_string(index=False))
    print(f"wrote {plot_tradeoff(points, args.y, args.out)}")


if __name__ == "__main__":
    main()
