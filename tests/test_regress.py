"""CI regression: comparison within tolerances, readable diff, exit codes, --update."""

import shutil

import pandas as pd
import pytest

from i2ibench.report import records as R
from i2ibench.errors import DataError, I2IError
from i2ibench.pipeline.regress import (RunSpec, Tolerance, compare_records, format_comparison, load_tolerances, regress,
                              regression_dir, runs_in_table)


def _row(method, metric, value, mode="latent", protocol="pooled", seed=777):
    return {R.METHOD: method, R.DATASET: "fashion10", R.PRESET: "smoke", R.SEED: seed, R.ITERATIONS: 4,
            R.PROTOCOL: protocol, R.MODE: mode, R.METRIC: metric, R.SCOPE: R.SCOPE_OVERALL, R.DOMAIN: "",
            R.VALUE: value, R.SOURCE: R.SOURCE_REPRODUCED}


def _table():
    return R.from_rows([_row("stargan2", "mfid", 250.0), _row("stargan2", "density", 0.40),
                        _row("stargan2", "coverage", 0.30), _row("tunit", "mfid", 300.0),
                        _row("tunit", "mfid", float("nan"), mode="latent", protocol="stargan2"),
                        _row("tunit", "cluster_acc", 0.25, mode="-", protocol="labels")])


@pytest.fixture
def regdir(tmp_path):
    """A regression folder with the committed tolerances and a synthetic table."""
    shutil.copy(regression_dir() / "tolerances.yaml", tmp_path / "tolerances.yaml")
    R.write_csv(tmp_path / "smoke.csv", _table())
    return tmp_path


def _runner_from(table, changes=None):
    """A fake runner: returns the table's rows of the run, with ``changes`` {(method, metric): value}."""
    calls = []

    def run(spec, run_dir):
        calls.append(spec)
        df = table[(table[R.METHOD] == spec.method) & (table[R.SEED] == spec.seed)].copy()
        for (m, metric), v in (changes or {}).items():
            df.loc[(df[R.METHOD] == m) & (df[R.METRIC] == metric), R.VALUE] = v
        return df

    run.calls = calls
    return run


def test_committed_tolerances_file_is_valid_and_covers_core_metrics():
    tol = load_tolerances(regression_dir() / "tolerances.yaml")
    for metric in ("mfid", "fid", "density", "coverage", "lpips", "cluster_acc"):
        assert metric in tol.per_metric
    assert tol.of("mfid").abs > 0 and tol.of("unknown-metric") == tol.default


def test_tolerance_rule():
    t = Tolerance(abs=1.0, rel=0.02)
    assert t.allows(100.0, 103.0)       # 3 <= 1 + 2
    assert not t.allows(100.0, 103.5)
    assert t.allows(float("nan"), float("nan"))
    assert not t.allows(float("nan"), 1.0) and not t.allows(1.0, float("nan"))


def test_identical_records_pass(regdir):
    table = R.load_records([regdir / "smoke.csv"])
    runner = _runner_from(table)
    logs = []
    assert regress(regdir / "smoke.csv", runner=runner, log=logs.append) == 0
    assert {s.method for s in runner.calls} == {"stargan2", "tunit"}
    assert "PASSED" in logs[-1]


def test_metric_beyond_tolerance_fails_with_readable_diff(regdir):
    table = R.load_records([regdir / "smoke.csv"])
    logs = []
    code = regress(regdir / "smoke.csv", runner=_runner_from(table, {("stargan2", "mfid"): 270.0}), log=logs.append)
    assert code == 1
    out = "\n".join(logs)
    line = next(ln for ln in out.splitlines() if ln.startswith("REGRESSION"))
    assert "stargan2" in line and "mfid" in line and "old 250" in line and "new 270" in line
    assert "FAILED" in out


def test_metric_within_tolerance_passes(regdir):
    table = R.load_records([regdir / "smoke.csv"])
    # mfid tolerance: 1 + 0.02 * 250 = 6
    assert regress(regdir / "smoke.csv", runner=_runner_from(table, {("stargan2", "mfid"): 255.0}), log=lambda s: None) == 0
    assert regress(regdir / "smoke.csv", runner=_runner_from(table, {("stargan2", "density"): 0.50}), log=lambda s: None) == 1


def test_missing_row_fails_new_row_does_not():
    old = _table()
    new = old[old[R.METRIC] != "coverage"]
    tol = load_tolerances(regression_dir() / "tolerances.yaml")
    cmp = compare_records(old, new, tol)
    assert not cmp.passed and [d.status for d in cmp.regressions] == ["missing"]
    extra = pd.concat([old, R.from_rows([_row("stargan2", "lpips", 0.1)])], ignore_index=True)
    cmp = compare_records(old, extra, tol)
    assert cmp.passed and "NEW" in format_comparison(cmp)


def test_na_becoming_a_number_fails():
    old = _table()
    new = old.copy()
    new.loc[new[R.VALUE].isna(), R.VALUE] = 12.0
    cmp = compare_records(old, new, load_tolerances(regression_dir() / "tolerances.yaml"))
    assert not cmp.passed


def test_update_rewrites_table(regdir):
    table = R.load_records([regdir / "smoke.csv"])
    code = regress(regdir / "smoke.csv", update=True, runner=_runner_from(table, {("tunit", "mfid"): 310.0}),
                   log=lambda s: None)
    assert code == 0
    new = R.load_records([regdir / "smoke.csv"])
    assert new.loc[(new[R.METHOD] == "tunit") & (new[R.PROTOCOL] == "pooled"), R.VALUE].item() == 310.0
    assert sorted(p.name for p in regdir.iterdir()) == ["smoke.csv", "tolerances.yaml"]
    # after the update the same numbers pass
    assert regress(regdir / "smoke.csv", runner=_runner_from(new), log=lambda s: None) == 0


def test_update_of_one_method_keeps_the_others(regdir):
    table = R.load_records([regdir / "smoke.csv"])
    runner = _runner_from(table, {("tunit", "mfid"): 310.0})
    regress(regdir / "smoke.csv", update=True, methods=["tunit"], runner=runner, log=lambda s: None)
    assert [s.method for s in runner.calls] == ["tunit"]
    new = R.load_records([regdir / "smoke.csv"])
    assert len(new) == len(table)
    assert new.loc[(new[R.METHOD] == "stargan2") & (new[R.METRIC] == "mfid"), R.VALUE].item() == 250.0


def test_runs_in_table():
    assert runs_in_table(_table()) == [RunSpec("stargan2", "fashion10", "smoke", 777), RunSpec("tunit", "fashion10", "smoke", 777)]


def test_no_table_is_an_error_without_update(regdir):
    (regdir / "smoke.csv").unlink()
    with pytest.raises(I2IError, match="regress --update"):
        regress(regdir / "smoke.csv", runner=_runner_from(_table()), log=lambda s: None)


def test_bad_tolerance_file(regdir):
    (regdir / "tolerances.yaml").write_text("metrics:\n  mfid: 3\n")
    with pytest.raises(I2IError, match="abs and/or rel"):
        regress(regdir / "smoke.csv", runner=_runner_from(_table()), log=lambda s: None)
    (regdir / "tolerances.yaml").unlink()
    with pytest.raises(DataError, match="tolerance file not found"):
        regress(regdir / "smoke.csv", runner=_runner_from(_table()), log=lambda s: None)


def test_update_adds_a_new_method_on_the_given_dataset(regdir):
    table = R.load_records([regdir / "smoke.csv"])
    calls = []

    def runner(spec, run_dir):
        calls.append(spec)
        row = _row(spec.method, "mfid", 123.0)
        row[R.DATASET] = spec.dataset
        return R.from_rows([row])

    assert regress(regdir / "smoke.csv", update=True, methods=["hmu"], runner=runner, dataset="cmnist",
                   log=lambda s: None) == 0
    assert calls == [RunSpec("hmu", "cmnist", "smoke")]
    new = R.load_records([regdir / "smoke.csv"])
    assert len(new) == len(table) + 1 and new.loc[new[R.METHOD] == "hmu", R.DATASET].item() == "cmnist"
    # later runs of the table re-run it on cmnist
    assert RunSpec("hmu", "cmnist", "smoke", 777) in runs_in_table(new)
