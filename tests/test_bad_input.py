"""Bad input through the real CLI: each case ends with exit code 2, exactly one line on stderr,
no traceback, and every file that existed before byte-identical after.

Most cases run ``i2ibench`` as a subprocess, as a user would; the full-disk case runs the CLI's
``main()`` in-process because the disk is made full by redirecting the atomic writer's temp
file to ``/dev/full`` (the kernel's real ENOSPC), which only works inside the process.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXE = Path(sys.executable).with_name("i2ibench")


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (links not followed) -> its bytes."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                out[str(p.relative_to(root))] = p.read_bytes()
    return out


def _cli(args: list[str], cwd: Path) -> tuple[int, str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    return proc.returncode, proc.stdout, proc.stderr


def _assert_one_line_error(code: int, err: str, must_contain: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and must_contain in lines[0], lines[0]


@pytest.fixture
def workdir(tmp_path):
    """A working folder holding an earlier run's files and a records file, to be left untouched."""
    run = tmp_path / "runs" / "old"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("method: stargan2\n")
    (run / "checkpoints" / "ckpt_00000004.pt").write_bytes(b"weights of step 4")
    (run / "train_log.jsonl").write_text('{"step": 4}\n')
    (run / "records.csv").write_text("method,dataset,protocol,mode,metric,scope,value,source\n"
                                     "stargan2,fashion10,pooled,latent,mfid,overall,12.5,reproduced\n")
    (tmp_path / "a_file").write_text("not a folder\n")
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)) * 8)
    return tmp_path


RUN = ["run", "-m", "stargan2", "-d", "fashion10", "-p", "smoke", "--no-progress", "--out", "runs/old"]

CASES = {
    "batch_size=0": (RUN + ["--set", "train.batch_size=0"], "train.batch_size=0: expected an integer >= 1"),
    "batch_size=-2": (RUN + ["--set", "train.batch_size=-2"], "train.batch_size=-2"),
    "total_iters=0": (RUN + ["--set", "train.total_iters=0"], "train.total_iters=0"),
    "total_iters=nan": (RUN + ["--set", "train.total_iters=nan"], "train.total_iters expects an integer"),
    "lr=-1": (RUN + ["--set", "model.lr=-1"], "model.lr=-1.0: expected a number > 0"),
    "lambda=inf": (RUN + ["--set", "model.lambda_cyc=inf"], "model.lambda_cyc=inf: expected a finite number"),
    "ds_iter=0": (RUN + ["--set", "model.ds_iter=0"], "model.ds_iter=0"),
    "no-resume with a bad value": (RUN + ["--no-resume", "--set", "model.ds_iter=0"], "model.ds_iter=0"),
    "protocols": (RUN + ["--set", "eval.protocols=pooled,fancy"], "eval.protocols=pooled,fancy"),
    "modes": (RUN + ["--set", "eval.modes=sideways"], "eval.modes=sideways"),
    "real_split": (RUN + ["--set", "eval.real_split=tests"], "unknown split 'tests' for dataset fashion10"),
    "binary config": (RUN + ["--config", "binary.yaml"], "is not a text file"),
    "out is a file": (RUN[:-1] + ["a_file"], "--out a_file: a_file is a file, not a folder"),
    "out under a file": (RUN[:-1] + ["a_file/run"], "a_file is a file, so no folder can be made under it"),
    "table output a folder": (["table", "--runs", "runs", "--output", "runs"], "--output runs: is a folder"),
    "table output under a file": (["table", "--runs", "runs", "--output", "a_file/t.txt"], "a_file is a file"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_changes_nothing(workdir, case):
    args, expected = CASES[case]
    before = _snapshot(workdir)
    code, _, err = _cli(args, workdir)
    _assert_one_line_error(code, err, expected)
    assert _snapshot(workdir) == before  # nothing changed, nothing new written


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder(workdir):
    ro = workdir / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        before = _snapshot(workdir)
        code, _, err = _cli(RUN[:-1] + ["ro/run"], workdir)
        _assert_one_line_error(code, err, "not writable")
        assert _snapshot(workdir) == before
    finally:
        ro.chmod(0o755)


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)


def test_eval_of_a_run_whose_config_has_a_bad_value(workdir):
    import yaml

    from i2ibench.config import build_run_config, to_dict

    data = to_dict(build_run_config("stargan2", "fashion10", "smoke"))
    data["train"]["batch_size"] = -3  # e.g. edited by hand
    (workdir / "runs" / "old" / "config.yaml").write_text(yaml.safe_dump(data))
    before = _snapshot(workdir)
    code, _, err = _cli(["eval", "runs/old", "--no-cache"], workdir)
    _assert_one_line_error(code, err, "train.batch_size=-3: expected an integer >= 1")
    assert _snapshot(workdir) == before


def test_eval_folders_with_a_self_looping_symlink(workdir):
    for i in range(3):
        _png(workdir / "real" / "a" / f"{i}.png", i)
        _png(workdir / "fake" / f"{i}.png", 10 + i)
    (workdir / "real" / "a" / "loop").symlink_to(workdir / "real" / "a" / "loop")
    before = _snapshot(workdir)
    code, _, err = _cli(["eval", "--real", "real", "--fake", "fake", "--no-cache"], workdir)
    _assert_one_line_error(code, err, "symlink loop: real/a/loop")
    assert _snapshot(workdir) == before


def test_training_folder_with_a_self_looping_image_link(workdir):
    for split in ("train", "val"):
        for d in ("cat", "dog"):
            for i in range(2):
                _png(workdir / "data" / split / d / f"{i}.png", i * 50)
    (workdir / "data" / "train" / "cat" / "x.png").symlink_to(workdir / "data" / "train" / "cat" / "x.png")
    before = _snapshot(workdir)
    args = ["run", "-m", "stargan2", "-d", "folder:data", "-p", "smoke", "--no-progress", "--out", "runs/new"]
    code, _, err = _cli(args, workdir)
    _assert_one_line_error(code, err, "symlink loop")
    after = _snapshot(workdir)
    assert {k: after[k] for k in before} == before  # every earlier file unchanged


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_disk_full_while_writing_a_table(workdir, monkeypatch, capsys):
    from i2ibench import fileio
    from i2ibench.cli.main import main

    (workdir / "table.txt").write_text("the previous table\n")
    before = _snapshot(workdir)
    monkeypatch.chdir(workdir)
    monkeypatch.setattr(fileio, "_open_temp", lambda path, mode: open("/dev/full", mode))
    monkeypatch.setattr(sys, "argv", ["i2ibench", "table", "--runs", "runs", "--output", "table.txt"])
    with pytest.raises(SystemExit) as e:
        main()
    _, err = capsys.readouterr()
    _assert_one_line_error(e.value.code, err, "disk full while writing table.txt")
    assert "left as it was" in err
    assert _snapshot(workdir) == before
