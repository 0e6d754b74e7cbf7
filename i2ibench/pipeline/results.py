"""The README's results section, generated from the committed campaign records.

``i2ibench results --readme README.md`` rewrites the block between ``BEGIN`` and ``END`` below
from ``results/campaigns/`` (what ``bench --collect`` copied) and the campaign specs in
``benchmarks/campaigns/``; ``--check`` fails when the README's block differs from what the
records give, so the numbers in the README cannot be typed by hand or go stale.

Per campaign: how many of its runs are in, a compact table per dataset (mean ± sd (n seeds)),
and for the two-domain sweep the trade-off plot. Then the papers' claims with their verdicts
(:mod:`i2ibench.report.claims`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from i2ibench.errors import ConfigError
from i2ibench.fileio import write_text
from i2ibench.pipeline.campaign import Campaign, load_campaign
from i2ibench.report import records as R
from i2ibench.report.claims import TRADEOFF_DATASET, judge_all
from i2ibench.report.compact import build_compact
from i2ibench.report.layout import markdown_table
from i2ibench.report.tradeoff import plot_tradeoff, tradeoff_points

BEGIN = "<!-- BEGIN generated results: `i2ibench results --readme README.md` writes this block; do not edit -->"
END = "<!-- END generated results -->"
SPECS_DIR = Path("benchmarks") / "campaigns"
RESULTS_ROOT = Path("results") / "campaigns"
# The README shows the pooled protocol (a domain's fakes from every source against its reals) and
# the datasets' own evaluations; `i2ibench table --runs results/campaigns` prints every table.
README_PROTOCOLS = ("pooled", "unimodal", "colour", "lpips-io", "lpips-truth")
TRADEOFF_PNG = "tradeoff.png"


def campaign_records(campaign: Campaign) -> pd.DataFrame:
    """The collected records of ``campaign`` (empty frame when none is collected yet)."""
    return R.load_records([campaign.results_dir]) if campaign.results_dir.is_dir() else R.from_rows([])


def _collected(campaign: Campaign) -> list[str]:
    return [r.name for r in campaign.runs if (campaign.results_dir / r.name / R.RECORDS_FILE).is_file()]


def campaign_block(campaign: Campaign, records: pd.DataFrame) -> str:
    """The markdown of one campaign: what ran, its tables, and its plot where it has one."""
    done = _collected(campaign)
    seeds = sorted({r.seed for r in campaign.runs})
    lines = [f"### Campaign `{campaign.name}`", "",
             f"{campaign.description} Spec: `{campaign.spec_path.as_posix()}`; "
             f"{len(done)} of {len(campaign.runs)} runs collected in `{campaign.results_dir.as_posix()}/` "
             f"({'seeds' if len(seeds) > 1 else 'seed'} {', '.join(map(str, seeds))})."]
    missing = [r.name for r in campaign.runs if r.name not in done]
    if missing:
        lines.append(f"Not in yet: {', '.join(f'`{m}`' for m in missing)}.")
    lines.append("")
    if records.empty:
        lines += ["No runs collected yet.", ""]
        return "\n".join(lines)
    for table in build_compact(records, protocols=list(README_PROTOCOLS)):
        lines += [markdown_table(table).strip(), ""]
    plot = campaign.results_dir / TRADEOFF_PNG
    if plot.is_file():
        lines += [f"![FID against content preservation]({plot.as_posix()})", ""]
    return "\n".join(lines)


def write_tradeoff_plot(campaign: Campaign, records: pd.DataFrame) -> Path | None:
    """The trade-off PNG of a campaign that has runs on the flipping task (else None)."""
    flip = records[records[R.DATASET] == TRADEOFF_DATASET] if not records.empty else records
    if flip.empty:
        return None
    points = tradeoff_points(flip, "content_preservation")
    return plot_tradeoff(points, "content_preservation", campaign.results_dir / TRADEOFF_PNG,
                         title=f"{TRADEOFF_DATASET}: FID (inverted -> plain) against content preservation")


def claims_block(records: pd.DataFrame) -> str:
    lines = ["### The papers' claims", "",
             "Verdict rules (`i2ibench/report/claims.py`): A < B is *reproduced* when A's mean over seeds is "
             "lower and Welch's t-test gives p < 0.05, *not reproduced* when it is higher at p < 0.05, else "
             "*inconclusive*; A ≈ B when the means differ by at most 10 % of B's mean; either is *inconclusive* "
             "with one seed on a side; each half of the λ trade-off is *reproduced* when Spearman's ρ over the "
             "sweep is at least 0.8, *not reproduced* when it is at most -0.8 (one seed per λ and four λ values: "
             "no seed-to-seed test, a weaker verdict than the others).", "",
             "| claim | source | verdict | numbers |", "|---|---|---|---|"]
    for v in judge_all(records):
        lines.append(f"| {v.statement} | {v.source} | **{v.verdict}** | {v.evidence} |")
    return "\n".join(lines) + "\n"


def results_markdown(specs_dir: Path = SPECS_DIR, results_root: Path = RESULTS_ROOT, *,
                     write_plots: bool = False) -> str:
    """The generated block (with its BEGIN/END markers) from every spec in ``specs_dir``."""
    specs = sorted(specs_dir.glob("*.yaml"))
    if not specs:
        raise ConfigError(f"no campaign specs (*.yaml) in {specs_dir}")
    blocks, everything = [], []
    for spec in specs:
        campaign = load_campaign(spec, results_root=results_root)
        records = campaign_records(campaign)
        if write_plots:
            write_tradeoff_plot(campaign, records)
        blocks.append(campaign_block(campaign, records))
        everything.append(records)
    all_records = pd.concat(everything, ignore_index=True) if everything else R.from_rows([])
    return "\n".join([BEGIN, "", *blocks, claims_block(R.normalize(all_records)), END])


def replace_block(readme_text: str, block: str, readme: Path) -> str:
    """``readme_text`` with its generated block replaced; ``ConfigError`` without both markers."""
    start, end = readme_text.find(BEGIN), readme_text.find(END)
    if start < 0 or end < start:
        raise ConfigError(f"{readme} has no generated results block: add a line '{BEGIN}' and below it a "
                          f"line '{END}' where the results belong")
    return readme_text[:start] + block + readme_text[end + len(END):]


def update_readme(readme: Path, *, check: bool = False, **kwargs) -> bool:
    """Rewrite (or with ``check`` only compare) the README's block; returns whether it was current."""
    text = readme.read_text(encoding="utf-8")
    new = replace_block(text, results_markdown(write_plots=not check, **kwargs), readme)
    if new == text:
        return True
    if not check:
        write_text(readme, new)
    return False
