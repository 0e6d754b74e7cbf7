"""A run directory loses nothing to bad input: `i2ibench run` checks every input before it
writes or deletes anything, and a run whose data moved can be pointed at the new place."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from i2ibench.data.catalog import available, get_spec
from i2ibench.report import records as R

needs_fashion = pytest.mark.skipif(not available(get_spec("fashion10")), reason="Fashion-MNIST files not installed")


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a digest of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A stargan2 smoke run on fashion10 (trained, not evaluated)."""
    import _pytest.monkeypatch

    if not available(get_spec("fashion10")):
        pytest.skip("Fashion-MNIST files not installed")
    run_dir = tmp_path_factory.mktemp("runs") / "sg2"
    mp = _pytest.monkeypatch.MonkeyPatch()
    try:
        from i2ibench.cli.main import main

        mp.setattr("sys.argv", ["i2ibench", "run", "-m", "stargan2", "-d", "fashion10", "-p", "smoke",
                                "--out", str(run_dir), "--no-eval", "--no-progress"])
        with pytest.raises(SystemExit) as done:
            main()
        assert done.value.code in (0, None)
    finally:
        mp.undo()
    return run_dir


@needs_fashion
@pytest.mark.parametrize("bad", [["--set", "model.ds_iter=0"], ["--data-root", "/nonexistent/fashion"],
                                 ["--set", "eval.protocols=stargan3"]])
def test_no_resume_with_bad_input_changes_no_file(trained, tmp_path, monkeypatch, capsys, bad):
    before = snapshot(trained)
    code, out, err = run_cli(monkeypatch, capsys, "run", "-m", "stargan2", "-d", "fashion10", "-p", "smoke",
                             "--out", str(trained), "--no-resume", "--no-progress", *bad)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert snapshot(trained) == before


@needs_fashion
def test_a_failed_resume_does_not_rewrite_the_config(trained, monkeypatch, capsys):
    before = snapshot(trained)
    code, _, err = run_cli(monkeypatch, capsys, "run", "-m", "stargan2", "-d", "fashion10", "-p", "smoke",
                           "--out", str(trained), "--data-root", "/nonexistent/fashion", "--no-progress")
    assert code == 2 and "fashion10" in err
    assert snapshot(trained) == before


def _folder_dataset(root: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 3)):
        for d, colour in (("cats", 60), ("dogs", 190)):
            folder = root / split / d
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(rng.normal(colour, 30, size=(32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")


@pytest.fixture
def classifier_cache(tmp_path, monkeypatch):
    """Classifiers trained here go to a temporary cache (their datasets are temporary folders),
    while the Inception and LPIPS weights stay in the shared one."""
    from i2ibench.features import classifier

    root = tmp_path / "classifier-cache"

    def temporary_cache_dir(*parts: str) -> Path:
        path = root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    monkeypatch.setattr(classifier, "cache_dir", temporary_cache_dir)
    return root


def test_a_run_whose_folder_dataset_moved_is_evaluated_at_the_new_place(tmp_path, monkeypatch, capsys,
                                                                         classifier_cache):
    old, new = tmp_path / "data-old", tmp_path / "data-new"
    _folder_dataset(old)
    run_dir = tmp_path / "run"
    code, _, err = run_cli(monkeypatch, capsys, "run", "-m", "stargan2", "-d", f"folder:{old}", "-p", "smoke",
                           "--out", str(run_dir), "--no-eval", "--no-progress", "--set", "train.total_iters=2")
    assert code == 0, err
    shutil.move(old, new)
    code, _, err = run_cli(monkeypatch, capsys, "eval", str(run_dir), "--no-cache")
    assert code == 2 and str(old) in err  # the old place, said in one line
    code, _, err = run_cli(monkeypatch, capsys, "eval", str(run_dir), "--no-cache", "--data-root", str(new))
    assert code == 0, err
    df = R.load_records([run_dir])
    assert set(df[R.DATASET]) == {f"folder:{old}"} and df[df[R.METRIC] == "mfid"][R.VALUE].notna().all()
    trained = [p for p in (classifier_cache / "classifiers").iterdir() if not p.name.startswith(".")]  # not lock files
    assert len(trained) == 1  # its domain classifier, in the temporary cache, not the user's
    code, _, err = run_cli(monkeypatch, capsys, "run", "-m", "stargan2", "-d", f"folder:{old}", "-p", "smoke",
                           "--out", str(run_dir), "--no-eval", "--no-progress", "--set", "train.total_iters=3",
                           "--data-root", str(new))
    assert code == 0, err  # resumed from step 2 at the new place
    assert (run_dir / "checkpoints" / "ckpt_00000003.pt").is_file()


def test_a_run_from_before_plain_step_existed_resumes():
    """A config dumped before ``train.plain_step`` existed differs from today's only in that key,
    which changes the order of work, not the updates: resuming is allowed."""
    from i2ibench.config import build_run_config, to_dict
    from i2ibench.train.rundir import config_differences

    new = to_dict(build_run_config("stargan2", "fashion10", "cpu"))
    old = {**new, "train": {k: v for k, v in new["train"].items() if k != "plain_step"}}
    assert config_differences(old, new) == []
    other = {**new, "train": {**old["train"], "lr": 0.5}}
    assert any(d.startswith("train.lr") for d in config_differences(other, new))
