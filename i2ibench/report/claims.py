"""The papers' claims that i2ibench's campaigns test, and their verdicts on records.

A claim is data (which metric, dataset, protocol, mode and methods; what relation the paper
states); :func:`judge` reads the per-seed values of the newest evaluation of every run and
gives a verdict with the numbers behind it:

- ``A < B`` (lower is better, e.g. mFID): *reproduced* when A's mean is below B's and Welch's
  t-test over seeds gives p < 0.05; *not reproduced* when A's mean is above B's at p < 0.05;
  otherwise *inconclusive* (means in either order within seed noise, or one seed: no test).
- ``A ≈ B``: *reproduced* when |mean A - mean B| is at most ``tolerance`` (10 %) of B's mean,
  else *not reproduced*; *inconclusive* with one seed on either side (the seed-to-seed spread
  of these small-n FIDs, e.g. ±23 at ~250 on cmnist, is of the same size as the tolerance).
- the CLIPTraVeLGAN trade-off (Bodyanskiy et al. 2023, §6): over the λ values of the sweep,
  FID rises with λ (lower λ, better FID) and content preservation rises with λ (lower λ, more
  semantic flipping); each half *reproduced* when Spearman's ρ >= 0.8 over the sweep,
  *not reproduced* when ρ <= -0.8, else *inconclusive*.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from i2ibench.errors import I2IError
from i2ibench.metrics import keys as mk
from i2ibench.report import records as R
from i2ibench.report.tables import select
from i2ibench.report.tradeoff import tradeoff_points

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NO_DATA = "reproduced", "not reproduced", "inconclusive", "no data"
ALPHA = 0.05
ABOUT_TOLERANCE = 0.10
RHO_THRESHOLD = 0.8
TRADEOFF_DATASET = "fashion-inv2plain-skewed"  # the flipping task of benchmarks/campaigns/twodomain-cpu.yaml


@dataclass(frozen=True)
class Claim:
    """``a`` relates to ``b`` (``relation`` "<" or "≈") in ``metric`` on one dataset, protocol and mode
    (``mode`` "": whichever mode each method's rows have, e.g. StarGAN v2's colour -> gray MSE is
    measured with a sampled code, HMU's deterministically)."""

    id: str
    source: str
    statement: str
    dataset: str
    metric: str
    protocol: str
    mode: str
    a: str
    b: str
    relation: str = "<"


@dataclass(frozen=True)
class Verdict:
    claim_id: str
    statement: str
    source: str
    verdict: str
    evidence: str


# LANIT's Table 1 claims are judged on the protocol of that table (results/published/lanit_table1.csv:
# the official code pools, per target, the translations from every other domain).
CLAIMS = (
    Claim("lanit-below-tunit", "LANIT (Park et al. 2023), Table 1", "LANIT's mFID is below TUNIT's",
          "fashion10", mk.MFID, "pooled", "reference", "lanit", "tunit", "<"),
    Claim("stargan2-about-lanit", "LANIT (Park et al. 2023), Table 1",
          "LANIT (no labels) matches StarGAN v2 (ground-truth labels) in mFID",
          "fashion10", mk.MFID, "pooled", "reference", "lanit", "stargan2", "≈"),
    Claim("hmu-mse-below-stargan2", "HMU (seed paper), §5", "HMU's uni-modal MSE (colour → gray) is below StarGAN v2's",
          "cmnist", mk.UNIMODAL_MSE, "unimodal", "", "hmu", "stargan2", "<"),
    Claim("hms-mse-below-stargan2", "HMU (seed paper), §5", "HMS's uni-modal MSE (colour → gray) is below StarGAN v2's",
          "cmnist", mk.UNIMODAL_MSE, "unimodal", "", "hms", "stargan2", "<"),
)


def seed_values(records: pd.DataFrame, claim: Claim, method: str) -> pd.Series:
    """The per-seed values of ``method`` for ``claim`` (newest evaluation of each run)."""
    df = select(records, datasets=[claim.dataset], methods=[method], metrics=[claim.metric],
                protocols=[claim.protocol], modes=[claim.mode] if claim.mode else None)
    df = df[(df[R.SOURCE] == R.SOURCE_REPRODUCED) & df[R.VALUE].notna()]
    return df[R.VALUE].astype(float).reset_index(drop=True)


def _fmt(values: pd.Series, decimals: int) -> str:
    n = len(values)
    if n == 0:
        return "no runs"
    sd = f" ± {values.std(ddof=1):.{decimals}f}" if n > 1 else ""
    return f"{values.mean():.{decimals}f}{sd} ({n} seed{'s' if n != 1 else ''})"


def _decimals(values: pd.Series) -> int:
    top = float(values.abs().max()) if len(values) else 1.0
    return 1 if top >= 10 else (3 if top >= 0.1 else 4)


def judge(records: pd.DataFrame, claim: Claim) -> Verdict:
    """The verdict of one pairwise claim (see the module doc)."""
    va, vb = seed_values(records, claim, claim.a), seed_values(records, claim, claim.b)
    where = ", ".join(x for x in (claim.dataset, claim.protocol, claim.mode) if x)
    if va.empty or vb.empty:
        return Verdict(claim.id, claim.statement, claim.source, NO_DATA,
                       f"{where}: no evaluated runs of {claim.a if va.empty else claim.b}")
    d = _decimals(pd.concat([va, vb]))
    diff = va.mean() - vb.mean()
    evidence = f"{claim.metric} ({where}): {claim.a} {_fmt(va, d)}, {claim.b} {_fmt(vb, d)}, Δ {diff:+.{d}f}"
    few = len(va) < 2 or len(vb) < 2
    if claim.relation == "≈":
        rel = abs(diff) / abs(vb.mean()) if vb.mean() else math.inf
        verdict = INCONCLUSIVE if few else REPRODUCED if rel <= ABOUT_TOLERANCE else NOT_REPRODUCED
        return Verdict(claim.id, claim.statement, claim.source, verdict,
                       f"{evidence} ({100 * rel:.1f} % of {claim.b}'s; within {100 * ABOUT_TOLERANCE:.0f} % counts"
                       f"{'; too few seeds for a verdict' if few else ''})")
    if few:
        order = "in the claimed order" if diff < 0 else "against the claim"
        return Verdict(claim.id, claim.statement, claim.source, INCONCLUSIVE,
                       f"{evidence}; means {order}, too few seeds for a test")
    p = float(stats.ttest_ind(va, vb, equal_var=False).pvalue)
    if diff < 0 and p < ALPHA:
        verdict = REPRODUCED
    elif diff > 0 and p < ALPHA:
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
    return Verdict(claim.id, claim.statement, claim.source, verdict, f"{evidence}, Welch p = {p:.3g}")


_LAMBDA = re.compile(r"lambda=([0-9.eE+-]+)")


def judge_tradeoff(records: pd.DataFrame) -> list[Verdict]:
    """The two halves of CLIPTraVeLGAN's λ trade-off over the sweep's VLM/TraVeL runs."""
    source = "CLIPTraVeLGAN (Bodyanskiy et al. 2023), §6 and Table 1"
    halves = [("tradeoff-fid", "lower λ gives lower (better) FID", mk.FID),
              ("tradeoff-flip", "lower λ gives more semantic flipping (lower content preservation)",
               mk.CONTENT_PRESERVATION)]
    try:
        points = tradeoff_points(records[records[R.DATASET] == TRADEOFF_DATASET], mk.CONTENT_PRESERVATION)
    except I2IError:
        return [Verdict(i, s, source, NO_DATA, f"no {TRADEOFF_DATASET} run has both FID and content preservation")
                for i, s, _ in halves]
    sweep = points[(points[R.METHOD] == "cliptravelgan") & points[R.SETTING].str.startswith("S=VLM, loss=travel")]
    lam = sweep[R.SETTING].map(lambda s: float(_LAMBDA.search(s).group(1)) if _LAMBDA.search(s) else np.nan)
    sweep = sweep.assign(lam=lam).dropna(subset=["lam"])
    by_lambda = sweep.groupby("lam")[[mk.FID, mk.CONTENT_PRESERVATION]].mean().sort_index()
    out = []
    for cid, statement, col in halves:
        if len(by_lambda) < 3:
            out.append(Verdict(cid, statement, source, NO_DATA, f"{len(by_lambda)} λ values evaluated; 3 or more needed"))
            continue
        rho = round(float(stats.spearmanr(by_lambda.index, by_lambda[col]).statistic), 9)  # 0.8 is 0.7999..
        verdict = REPRODUCED if rho >= RHO_THRESHOLD else NOT_REPRODUCED if rho <= -RHO_THRESHOLD else INCONCLUSIVE
        d = 1 if col == mk.FID else 3
        series = ", ".join(f"λ {lam_:g}: {v:.{d}f}" for lam_, v in by_lambda[col].items())
        out.append(Verdict(cid, statement, source, verdict, f"{col} by λ (mean form): {series}; Spearman ρ = {rho:+.2f}"))
    return out


def judge_all(records: pd.DataFrame) -> list[Verdict]:
    """Every claim in ``CLAIMS`` and the trade-off, in that order."""
    return [judge(records, c) for c in CLAIMS] + judge_tradeoff(records)
