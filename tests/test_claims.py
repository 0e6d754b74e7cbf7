"""Verdicts on the papers' claims from synthetic records with known answers."""

from pathlib import Path

import pytest

from i2ibench.metrics import keys as mk
from i2ibench.report import claims as C
from i2ibench.report import records as R

LANIT_TUNIT = next(c for c in C.CLAIMS if c.id == "lanit-below-tunit")
ABOUT = next(c for c in C.CLAIMS if c.id == "stargan2-about-lanit")
HMU = next(c for c in C.CLAIMS if c.id == "hmu-mse-below-stargan2")


def _rows(claim, method, values, mode=None):
    return [{R.METHOD: method, R.DATASET: claim.dataset, R.PROTOCOL: claim.protocol, R.MODE: mode or claim.mode,
             R.METRIC: claim.metric, R.SCOPE: R.SCOPE_OVERALL, R.VALUE: v, R.SEED: s, R.ITERATIONS: 100,
             R.RUN: f"runs/{method}-s{s}", R.SOURCE: R.SOURCE_REPRODUCED} for s, v in enumerate(values)]


def _records(*parts):
    return R.from_rows([row for part in parts for row in part])


def test_lower_with_significant_difference_is_reproduced():
    rec = _records(_rows(LANIT_TUNIT, "lanit", [200, 202, 204]), _rows(LANIT_TUNIT, "tunit", [250, 251, 255]))
    v = C.judge(rec, LANIT_TUNIT)
    assert v.verdict == C.REPRODUCED
    assert "lanit 202.0 ± 2.0 (3 seeds)" in v.evidence and "Δ -50.0" in v.evidence


def test_the_opposite_order_is_not_reproduced_and_overlap_is_inconclusive():
    rec = _records(_rows(LANIT_TUNIT, "lanit", [250, 251, 255]), _rows(LANIT_TUNIT, "tunit", [200, 202, 204]))
    assert C.judge(rec, LANIT_TUNIT).verdict == C.NOT_REPRODUCED
    rec = _records(_rows(LANIT_TUNIT, "lanit", [200, 230, 260]), _rows(LANIT_TUNIT, "tunit", [210, 240, 262]))
    assert C.judge(rec, LANIT_TUNIT).verdict == C.INCONCLUSIVE


def test_one_seed_is_inconclusive_and_says_why():
    rec = _records(_rows(LANIT_TUNIT, "lanit", [200]), _rows(LANIT_TUNIT, "tunit", [300]))
    v = C.judge(rec, LANIT_TUNIT)
    assert v.verdict == C.INCONCLUSIVE and "too few seeds" in v.evidence and "claimed order" in v.evidence


def test_missing_method_is_no_data():
    rec = _records(_rows(LANIT_TUNIT, "lanit", [200, 201]))
    v = C.judge(rec, LANIT_TUNIT)
    assert v.verdict == C.NO_DATA and "tunit" in v.evidence


def test_about_uses_the_relative_tolerance():
    near = _records(_rows(ABOUT, "lanit", [105, 105]), _rows(ABOUT, "stargan2", [100, 100]))
    far = _records(_rows(ABOUT, "lanit", [111, 111]), _rows(ABOUT, "stargan2", [100, 100]))
    assert C.judge(near, ABOUT).verdict == C.REPRODUCED and "5.0 %" in C.judge(near, ABOUT).evidence
    assert C.judge(far, ABOUT).verdict == C.NOT_REPRODUCED
    one_seed = _records(_rows(ABOUT, "lanit", [111]), _rows(ABOUT, "stargan2", [100, 100]))
    assert C.judge(one_seed, ABOUT).verdict == C.INCONCLUSIVE and "too few seeds" in C.judge(one_seed, ABOUT).evidence


def test_mode_free_claim_compares_rows_of_different_modes():
    rec = _records(_rows(HMU, "hmu", [0.010, 0.011, 0.0105], mode="deterministic"),
                   _rows(HMU, "stargan2", [0.020, 0.021, 0.0205], mode="latent"))
    assert C.judge(rec, HMU).verdict == C.REPRODUCED


def test_only_the_newest_evaluation_of_a_run_counts():
    old = _rows(LANIT_TUNIT, "lanit", [400, 400, 400])
    for r in old:
        r[R.ITERATIONS] = 50
    rec = _records(old, _rows(LANIT_TUNIT, "lanit", [200, 202, 204]), _rows(LANIT_TUNIT, "tunit", [250, 251, 255]))
    assert C.judge(rec, LANIT_TUNIT).verdict == C.REPRODUCED


def _sweep(points):
    rows = []
    for lam, fid, keep in points:
        base = {R.METHOD: "cliptravelgan", R.DATASET: C.TRADEOFF_DATASET, R.PROTOCOL: "pairwise",
                R.MODE: "deterministic", R.SEED: 0, R.ITERATIONS: 5000, R.RUN: f"runs/l{lam}",
                R.SETTING: f"S=VLM, loss=travel, lambda={lam} (mean over pairs), d_steps=1",
                R.SOURCE: R.SOURCE_REPRODUCED}
        rows.append({**base, R.METRIC: mk.FID, R.SCOPE: R.SCOPE_TASK, R.DOMAIN: "inverted->plain", R.VALUE: fid})
        rows.append({**base, R.METRIC: mk.CONTENT_PRESERVATION, R.SCOPE: R.SCOPE_OVERALL, R.VALUE: keep})
    return R.from_rows(rows)


def test_tradeoff_as_the_paper_states_it_is_reproduced():
    rec = _sweep([(4.8, 100, 0.5), (16.3, 120, 0.6), (48.8, 150, 0.8), (162.6, 190, 0.9)])
    fid, flip = C.judge_tradeoff(rec)
    assert (fid.verdict, flip.verdict) == (C.REPRODUCED, C.REPRODUCED)
    assert "ρ = +1.00" in fid.evidence and "λ 4.8: 100.0" in fid.evidence


def test_tradeoff_against_the_paper_is_not_reproduced():
    rec = _sweep([(4.8, 100, 0.9), (16.3, 120, 0.8), (48.8, 150, 0.6), (162.6, 190, 0.5)])
    fid, flip = C.judge_tradeoff(rec)
    assert (fid.verdict, flip.verdict) == (C.REPRODUCED, C.NOT_REPRODUCED)


@pytest.mark.parametrize("n", [0, 2])
def test_tradeoff_needs_three_lambdas(n):
    rec = _sweep([(4.8, 100, 0.9), (16.3, 120, 0.8)][:n]) if n else R.from_rows([])
    assert {v.verdict for v in C.judge_tradeoff(rec)} == {C.NO_DATA}


def test_every_claim_names_a_registered_metric():
    assert {c.metric for c in C.CLAIMS} <= set(mk.ALL)
    assert len({c.id for c in C.CLAIMS}) == len(C.CLAIMS)
    verdicts = C.judge_all(R.from_rows([]))
    assert len(verdicts) == len(C.CLAIMS) + 2 and {v.verdict for v in verdicts} == {C.NO_DATA}


@pytest.mark.parametrize("claim", [LANIT_TUNIT, ABOUT], ids=lambda c: c.id)
def test_lanit_table1_claims_use_that_tables_protocol(claim):
    # A claim judged on another protocol than the paper's table would compare other numbers.
    published = R.load_records([Path(__file__).resolve().parents[1] / "results" / "published" / "lanit_table1.csv"])
    rows = published[(published[R.METHOD] == "lanit") & (published[R.METRIC] == claim.metric)]
    assert not rows.empty and set(rows[R.PROTOCOL]) == {claim.protocol}
