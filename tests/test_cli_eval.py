"""`i2ibench table`, `i2ibench regress` and `i2ibench eval` through the real CLI entry point."""

import shutil

import pytest

from i2ibench.report import records as R
from conftest import run_cli
from i2ibench.pipeline.regress import regression_dir


@pytest.fixture
def fresh_clone_cwd(tmp_path, monkeypatch):
    """A working directory with no runs/ (as on a fresh clone)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_table_compare_tunit_on_fresh_clone(fresh_clone_cwd, monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "table", "--compare", "tunit")
    assert code == 0, err
    # Compact by default: every line fits 120 columns; LANIT's AnimalFaces-10 row with its Δ to TUNIT.
    assert max(map(len, out.splitlines())) <= 120
    t1 = out.split("animalfaces10 · pooled")[1]
    assert next(ln for ln in t1.splitlines() if ln.startswith("lanit")).split()[1:3] == ["34.11", "-13.59"]
    assert t1.split("food10 · pooled")[0].count("source: Park et al.") == 1  # provenance once per table
    code, out, err = run_cli(monkeypatch, capsys, "table", "--compare", "tunit", "--wide")
    assert code == 0, err
    assert max(map(len, out.splitlines())) > 120  # the full view, unchanged
    assert "LANIT (Park et al., CVPR 2023) Table 1" in out
    lanit_t1 = out.split("LANIT Table 2")[0]
    line = next(ln for ln in lanit_t1.splitlines() if ln.split()[:2] == ["published", "lanit"])
    cells = line.split()
    # AnimalFaces-10 mFID and its difference to TUNIT: the 7th and 8th value cells
    assert "34.11" in cells and cells[cells.index("34.11") + 1] == "-13.59"
    for title in ("LANIT Table 2", "StarGAN v2", "CLIPTraVeLGAN (Bodyanskiy", "Monet"):
        assert title in out


def test_table_shows_reproduced_runs_and_formats(fresh_clone_cwd, monkeypatch, capsys):
    rows = [{R.METHOD: m, R.DATASET: "fashion10", R.PRESET: "smoke", R.SEED: s, R.ITERATIONS: 4,
             R.PROTOCOL: "pooled", R.MODE: "latent", R.METRIC: "mfid", R.SCOPE: R.SCOPE_OVERALL, R.DOMAIN: "",
             R.VALUE: v, R.SOURCE: R.SOURCE_REPRODUCED, R.RUN: f"runs/{m}-{s}"}
            for m, s, v in (("lanit", 1, 100.0), ("lanit", 2, 110.0), ("tunit", 1, 130.0))]
    for i, r in enumerate(rows):
        R.write_records(fresh_clone_cwd / "runs" / f"run{i}", R.from_rows([r]))
    code, out, _ = run_cli(monkeypatch, capsys, "table", "--table", "reproduced", "--compare", "tunit")
    assert code == 0
    assert "Reproduced runs" in out and "105.00 ± 7.07 (2)" in out and "-25.00" in out
    assert "LANIT (Park" not in out
    code, out, _ = run_cli(monkeypatch, capsys, "table", "-f", "latex", "-t", "lanit-table1")
    assert code == 0 and r"\begin{tabular}" in out and "34.11" in out
    code, out, _ = run_cli(monkeypatch, capsys, "table", "-f", "markdown", "-d", "animalfaces10", "-m", "lanit,tunit",
                           "--metric", "mfid", "-t", "lanit-table1")
    assert code == 0 and "| lanit" in out and "| tunit" in out and "47.70" in out and "1.46" not in out
    code, out, _ = run_cli(monkeypatch, capsys, "table", "-f", "markdown", "-d", "animalfaces10", "-m", "lanit,tunit",
                           "--metric", "mfid", "-t", "lanit-table1", "--wide")
    assert code == 0 and "| published | lanit" in out.replace("  ", " ") and "47.70" in out
    target = fresh_clone_cwd / "t.csv"
    code, _, _ = run_cli(monkeypatch, capsys, "table", "-f", "csv", "-o", str(target))
    assert code == 0 and "34.11" in target.read_text()


def test_table_bad_input_exits_2_with_one_line(fresh_clone_cwd, monkeypatch, capsys):
    for args, expect in ((("--method", "lanlt"), "did you mean 'lanit'"), (("--format", "html"), "unknown format"),
                         (("--table", "lanit-table9"), "lanit-table1"), (("--runs", "nope/"), "no such file")):
        code, out, err = run_cli(monkeypatch, capsys, "table", *args)
        assert code == 2, args
        assert err.startswith("error: ") and expect in err and len(err.strip().splitlines()) == 1


def test_eval_bad_input_exits_2(fresh_clone_cwd, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "eval")
    assert code == 2 and "run directory" in err
    code, _, err = run_cli(monkeypatch, capsys, "eval", "--real", str(fresh_clone_cwd))
    assert code == 2 and "--fake" in err
    code, _, err = run_cli(monkeypatch, capsys, "eval", "no-such-run")
    assert code == 2 and "no-such-run" in err
    (fresh_clone_cwd / "empty_run").mkdir()
    code, _, err = run_cli(monkeypatch, capsys, "eval", "empty_run")
    assert code == 2 and "config.yaml" in err


def test_regress_exit_codes(tmp_path, monkeypatch, capsys):
    shutil.copy(regression_dir() / "tolerances.yaml", tmp_path / "tolerances.yaml")
    row = {R.METHOD: "stargan2", R.DATASET: "fashion10", R.PRESET: "smoke", R.SEED: 777, R.ITERATIONS: 4,
           R.PROTOCOL: "pooled", R.MODE: "latent", R.METRIC: "mfid", R.SCOPE: R.SCOPE_OVERALL, R.DOMAIN: "",
           R.VALUE: 200.0, R.SOURCE: R.SOURCE_REPRODUCED}
    R.write_csv(tmp_path / "smoke.csv", R.from_rows([row]))
    produced = {"value": 200.0}

    def fake_train_and_evaluate(spec, run_dir):
        return R.from_rows([{**row, R.VALUE: produced["value"]}])

    monkeypatch.setattr("i2ibench.pipeline.regress.train_and_evaluate", fake_train_and_evaluate)
    code, out, _ = run_cli(monkeypatch, capsys, "regress", "--table", str(tmp_path / "smoke.csv"))
    assert code == 0 and "PASSED" in out
    produced["value"] = 260.0
    code, out, _ = run_cli(monkeypatch, capsys, "regress", "--table", str(tmp_path / "smoke.csv"))
    assert code == 1 and "REGRESSION stargan2" in out and "old 200 new 260" in out
    code, out, _ = run_cli(monkeypatch, capsys, "regress", "--table", str(tmp_path / "smoke.csv"), "--update")
    assert code == 0
    code, out, _ = run_cli(monkeypatch, capsys, "regress", "--table", str(tmp_path / "smoke.csv"))
    assert code == 0
    code, _, err = run_cli(monkeypatch, capsys, "regress", "--table", str(tmp_path / "missing.csv"))
    assert code == 2 and "regress --update" in err


# ----------------------------------------------------------------------------- eval

def _write_pngs(folder, seed, n=8, size=32):
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")


class _ProjectionFeatures:
    """Cheap stand-in for Inception in tests of the callers: a fixed random projection."""

    name = "test-projection"

    def __init__(self, *args, **kwargs):
        self.images_seen = 0

    def __call__(self, x):
        import torch

        self.images_seen += x.shape[0]
        x = x.float() if x.dtype != torch.uint8 else x.float() / 127.5 - 1
        flat = x.reshape(x.shape[0], -1).double()
        g = torch.Generator().manual_seed(0)
        return flat @ torch.randn(flat.shape[1], 6, generator=g, dtype=torch.float64)


def test_score_folders_matches_metrics_on_same_features(tmp_path):
    import torch

    from i2ibench.evaluation.folders import read_folder_images, score_folders
    from i2ibench.metrics.fid import fid
    from i2ibench.metrics.prdc import density_coverage

    _write_pngs(tmp_path / "real", 0, n=10)
    _write_pngs(tmp_path / "fake", 1, n=7)
    feats = _ProjectionFeatures()
    got = score_folders(tmp_path / "real", tmp_path / "fake", k=3, features=feats, cache=False)
    real = feats(torch.stack(read_folder_images(tmp_path / "real")[0]))
    fake = feats(torch.stack(read_folder_images(tmp_path / "fake")[0]))
    assert got["fid"] == pytest.approx(fid(real, fake), rel=1e-9)
    d, c = density_coverage(real, fake, k=3)
    assert (got["density"], got["coverage"]) == (pytest.approx(d), pytest.approx(c))
    assert (got["n_real"], got["n_fake"]) == (10, 7)


@pytest.mark.slow  # the real Inception network on CPU
def test_eval_two_folders_with_real_inception(tmp_path, monkeypatch, capsys):
    _write_pngs(tmp_path / "real", 0)
    _write_pngs(tmp_path / "fake", 1)
    code, out, err = run_cli(monkeypatch, capsys, "eval", "--real", str(tmp_path / "real"), "--fake",
                             str(tmp_path / "fake"), "--k", "3", "--no-cache")
    assert code == 0, err
    lines = dict(line.split(": ") for line in out.strip().splitlines())
    assert list(lines) == ["fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "n_real", "n_fake"]
    assert float(lines["fid"]) > 1.0 and 0.0 <= float(lines["coverage"]) <= 1.0
    assert lines["n_real"] == "8" and lines["n_fake"] == "8"
    # where the images came from goes to stderr, stdout stays the scores
    assert f"real: 8 images from {tmp_path / 'real'} (sub-folders searched)" in err
    assert f"fake: 8 images from {tmp_path / 'fake'} (sub-folders searched)" in err


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """A stargan2 run trained for the smoke preset's few steps on real fashion10."""
    from i2ibench.config import build_run_config
    from i2ibench.data.catalog import available, get_spec
    from i2ibench.train.engine import train

    if not available(get_spec("fashion10")):
        pytest.skip("Fashion-MNIST files not installed (Debian package dataset-fashion-mnist)")
    run_dir = tmp_path_factory.mktemp("runs") / "sg2"
    cfg = build_run_config("stargan2", "fashion10", "smoke",
                           {"eval.max_src_per_domain": 1, "eval.outs_per_input": 2, "eval.max_real_per_domain": 6,
                            "eval.modes": "latent"})
    train(cfg, run_dir, resume=False, progress=False)
    return run_dir


def test_eval_run_dir_and_checkpoint(smoke_run, monkeypatch, capsys):
    from i2ibench.train.checkpoint import latest_checkpoint

    monkeypatch.setattr("i2ibench.evaluation.harness.InceptionFeatures", _ProjectionFeatures)
    code, out, err = run_cli(monkeypatch, capsys, "eval", str(smoke_run), "--no-cache", "--set", "eval.nearest_k=3")
    assert code == 0, err
    df = R.load_records([smoke_run / "records.csv"])
    overall = df[df[R.SCOPE] == R.SCOPE_OVERALL]
    assert set(overall[R.PROTOCOL]) == {"pairwise", "pooled"}
    mfid = overall[overall[R.METRIC] == "mfid"]
    assert len(mfid) == 2 and mfid[R.VALUE].notna().all()
    assert set(df[R.ITERATIONS]) == {4.0} and set(df[R.METHOD]) == {"stargan2"}
    assert set(df[R.FEATURES]) == {"test-projection"}
    # 10 targets x 9 sources x 1 input x 2 outputs, per protocol
    assert set(df[(df[R.PROTOCOL] == "pooled") & (df[R.METRIC] == "fid")][R.N_FAKE]) == {18.0}
    assert "mFID" in out
    # a checkpoint file names its run directory
    code, _, err = run_cli(monkeypatch, capsys, "eval", str(latest_checkpoint(smoke_run)), "--no-cache")
    assert code == 0, err
    code, _, err = run_cli(monkeypatch, capsys, "eval", str(smoke_run), "--set", "train.seed=3")
    assert code == 2 and "eval." in err
    # table finds the run's records
    code, out, _ = run_cli(monkeypatch, capsys, "table", "--runs", str(smoke_run.parent), "-t", "reproduced")
    assert code == 0 and "stargan2" in out and "fashion10" in out


def test_json_output_of_methods_datasets_and_table(fresh_clone_cwd, monkeypatch, capsys):
    import json

    from i2ibench.registry import list_datasets, list_methods

    code, out, _ = run_cli(monkeypatch, capsys, "methods", "--json")
    assert code == 0 and [m["name"] for m in json.loads(out)] == list_methods()
    code, out, _ = run_cli(monkeypatch, capsys, "datasets", "--json")
    rows = json.loads(out)
    assert code == 0 and [d["name"] for d in rows] == list_datasets()
    assert next(d for d in rows if d["name"] == "cmnist")["unimodal"] == ["gray"]
    code, out, _ = run_cli(monkeypatch, capsys, "table", "--json", "--table", "lanit-table1", "--metric", "mfid")
    rows = json.loads(out)
    assert code == 0 and rows and {r["table"] for r in rows} == {"lanit-table1"} and {r["metric"] for r in rows} == {"mfid"}
