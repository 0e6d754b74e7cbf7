"""Record schema, atomic writing, merging and loading."""

import json
import math

import pandas as pd
import pytest

from i2ibench.report import records as R
from i2ibench.errors import DataError

# What issue 4 requires every record to say (column names of the schema).
REQUIRED_BY_ISSUE = ["method", "dataset", "preset", "seed", "iterations", "protocol", "mode", "metric", "domain",
                     "value", "n_fake", "n_real", "features", "vlm", "code_version", "date", "source"]


def _row(**kw):
    base = {R.METHOD: "stargan2", R.DATASET: "fashion10", R.PRESET: "smoke", R.SEED: 1, R.ITERATIONS: 10,
            R.PROTOCOL: "pooled", R.MODE: "latent", R.METRIC: "mfid", R.SCOPE: R.SCOPE_OVERALL, R.DOMAIN: "",
            R.VALUE: 12.5, R.SOURCE: R.SOURCE_REPRODUCED, R.DATE: "2026-01-01T00:00:00Z"}
    base.update(kw)
    return base


def test_schema_has_every_required_column():
    for col in REQUIRED_BY_ISSUE:
        assert col in R.COLUMNS
    df = R.from_rows([_row()])
    assert list(df.columns[:len(R.COLUMNS)]) == list(R.COLUMNS)


def test_normalize_rejects_missing_required_columns():
    with pytest.raises(DataError, match="metric"):
        R.normalize(pd.DataFrame([{R.METHOD: "x", R.VALUE: 1.0}]))


def test_write_and_load_round_trip(tmp_path):
    df = R.from_rows([_row(), _row(metric="density", value=1.25), _row(metric="lpips", value=float("nan"), note="n/a")])
    path = R.write_records(tmp_path / "run", df)
    assert path == tmp_path / "run" / "records.csv"
    back = R.load_records([tmp_path])
    assert len(back) == 3
    assert back.loc[back[R.METRIC] == "density", R.VALUE].item() == 1.25
    assert math.isnan(back.loc[back[R.METRIC] == "lpips", R.VALUE].item())
    assert back.loc[back[R.METRIC] == "lpips", R.NOTE].item() == "n/a"
    assert back[R.SEED].tolist() == [1.0, 1.0, 1.0]
    # no temp files left behind
    # (the hidden lock file stays: deleting a lock file races with its next waiter)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".records.csv.lock", "records.csv"]


def test_rewrite_replaces_same_evaluation_and_keeps_other_iterations(tmp_path):
    R.write_records(tmp_path, R.from_rows([_row(iterations=10, value=50.0), _row(iterations=20, value=40.0)]))
    R.write_records(tmp_path, R.from_rows([_row(iterations=20, value=30.0)]))
    back = R.load_records([tmp_path / "records.csv"]).sort_values(R.ITERATIONS)
    assert back[R.ITERATIONS].tolist() == [10.0, 20.0]
    assert back[R.VALUE].tolist() == [50.0, 30.0]


def test_failed_write_leaves_previous_file(tmp_path, monkeypatch):
    R.write_records(tmp_path, R.from_rows([_row(value=1.0)]))
    before = (tmp_path / "records.csv").read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(OSError):
        R.write_records(tmp_path, R.from_rows([_row(value=2.0)]), merge=False)
    assert (tmp_path / "records.csv").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".records.csv.lock", "records.csv"]


def test_load_jsonl_and_folders(tmp_path):
    import json

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "records.jsonl").write_text(json.dumps(_row(method="tunit")) + "\n")
    R.write_records(tmp_path / "b" / "deep", R.from_rows([_row()]))
    df = R.load_records([tmp_path])
    assert sorted(df[R.METHOD]) == ["stargan2", "tunit"]
    assert R.load_records([tmp_path / "nothing-here"]).empty


def test_unreadable_records_file_is_a_data_error(tmp_path):
    bad = tmp_path / "records.csv"
    bad.write_text("method,value\nx,1\n")
    with pytest.raises(DataError, match="records.csv"):
        R.load_records([bad])


def test_records_of_the_old_protocol_name_read_as_pairwise(tmp_path):
    # Records written before the rename call the pairwise protocol "stargan2", a method's name too.
    row = {R.METHOD: "tunit", R.DATASET: "fashion10", R.PROTOCOL: "stargan2", R.MODE: "reference",
           R.METRIC: "mfid", R.SCOPE: R.SCOPE_OVERALL, R.VALUE: 1.0, R.SOURCE: R.SOURCE_REPRODUCED}
    pd.DataFrame([row]).to_csv(tmp_path / "records.csv", index=False)
    assert R.load_records([tmp_path])[R.PROTOCOL].tolist() == ["pairwise"]


def test_records_name_their_run_relative_to_the_working_directory(tmp_path, monkeypatch):
    # Committed records must not hold a machine's absolute paths.
    monkeypatch.chdir(tmp_path)
    row = {R.METHOD: "stargan2", R.DATASET: "fashion10", R.PROTOCOL: "pooled", R.MODE: "latent", R.METRIC: "mfid",
           R.SCOPE: R.SCOPE_OVERALL, R.VALUE: 1.0, R.SOURCE: R.SOURCE_REPRODUCED}
    R.write_records(tmp_path / "results" / "run1", R.from_rows([row]))
    assert R.load_records([tmp_path / "results" / "run1"])[R.RUN].tolist() == ["results/run1"]


def test_json_gives_counts_as_integers():
    df = R.from_rows([{R.METHOD: "m", R.DATASET: "d", R.PROTOCOL: "pooled", R.MODE: "latent", R.METRIC: "mfid",
                       R.SCOPE: R.SCOPE_OVERALL, R.VALUE: 1.5, R.SEED: 777, R.ITERATIONS: 500, R.N_FAKE: 200,
                       R.SOURCE: R.SOURCE_REPRODUCED}])
    row = json.loads(R.to_json(df))[0]
    assert row["seed"] == 777 and isinstance(row["seed"], int) and isinstance(row["iterations"], int)
    assert row["value"] == 1.5 and row["n_real"] is None
