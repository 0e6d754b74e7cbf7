"""i2ibench.fileio: orphan temp removal, a full disk as one line, inter-process locks, output
path checks; and records written by many processes at once keep every evaluation."""

import multiprocessing as mp
import os
import time

import lock_workers
import pytest
import torch

from i2ibench import fileio
from i2ibench.errors import I2IError
from i2ibench.report import records as R
from i2ibench.train import checkpoint as C


def _dev_full(path, mode):
    """Writes to /dev/full fail with the kernel's real ENOSPC."""
    return open("/dev/full", mode)


needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")


def test_orphan_temps_removed_by_target_and_age(tmp_path):
    names = [".records.csv.abcd1234.tmp", ".ckpt_00000004.pt.x_9k2m3a.tmp", ".config.yaml.q1w2e3r4.tmp"]
    for n in names:
        (tmp_path / n).write_bytes(b"half")
    keep = ["records.csv", ".records.csv.lock", "notes.tmp", ".x.tmp"]
    for n in keep:
        (tmp_path / n).write_bytes(b"mine")
    assert fileio.remove_orphan_temps(tmp_path, ["records.csv"]) == []  # fresh: may be a live writer's
    old = time.time() - 2 * fileio.ORPHAN_AGE_S
    for n in names:
        os.utime(tmp_path / n, (old, old))
    assert fileio.remove_orphan_temps(tmp_path, ["records.csv"]) == [tmp_path / names[0]]
    assert fileio.remove_orphan_temps(tmp_path, ["ckpt_*"]) == [tmp_path / names[1]]
    assert fileio.remove_orphan_temps(tmp_path) == [tmp_path / names[2]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_checkpoint_listing_and_saving_remove_orphans(tmp_path):
    folder = C.checkpoint_dir(tmp_path)
    folder.mkdir()
    orphan = folder / ".ckpt_00000002.pt.abcdefgh.tmp"
    orphan.write_bytes(b"cut by a kill")
    fresh = folder / ".ckpt_00000003.pt.zyxwvuts.tmp"
    fresh.write_bytes(b"another process writing now")
    old = time.time() - 2 * fileio.ORPHAN_AGE_S
    os.utime(orphan, (old, old))
    assert C.list_checkpoints(tmp_path) == []
    assert not orphan.exists() and fresh.exists()
    C.save_checkpoint(tmp_path, 5, {"method": {"w": torch.ones(2)}})
    assert C.remove_orphan_checkpoint_temps(tmp_path, min_age_s=0) == [fresh]
    assert [p.name for p in folder.iterdir()] == ["ckpt_00000005.pt"]


@needs_dev_full
def test_disk_full_is_one_line_naming_the_file_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "table.txt"
    target.write_text("before\n")
    ckpt_before = C.save_checkpoint(tmp_path, 1, {"method": {"w": torch.ones(3)}})
    before = ckpt_before.read_bytes()
    monkeypatch.setattr(fileio, "_open_temp", _dev_full)
    with pytest.raises(I2IError, match=f"disk full while writing {target}") as e:
        fileio.write_text(target, "after\n" * 10000)
    assert "\n" not in str(e.value) and "left as it was" in str(e.value)
    with pytest.raises(I2IError, match="disk full while writing .*ckpt_00000002.pt") as e:
        C.save_checkpoint(tmp_path, 2, {"method": {"w": torch.ones(100_000)}})
    assert "nothing was written" in str(e.value)
    assert target.read_text() == "before\n" and ckpt_before.read_bytes() == before
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["ckpt_00000001.pt", "table.txt"]


def test_lock_waits_with_a_message_then_times_out(tmp_path):
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=lock_workers.hold_lock, args=(tmp_path / "records.csv", ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        said = []
        t0 = time.perf_counter()
        with pytest.raises(I2IError, match="still in use by another i2ibench process after 1 s"):
            with fileio.exclusive_lock(tmp_path / "records.csv", timeout_s=1.0, say=said.append):
                pass
        assert time.perf_counter() - t0 >= 0.9
        assert len(said) == 1 and said[0].startswith("waiting for another i2ibench process to release")
        with pytest.raises(I2IError, match="in use by another i2ibench process"):
            with fileio.exclusive_lock(tmp_path / "records.csv", timeout_s=0):
                pass
    finally:
        release.set()
        holder.join(30)
    with fileio.exclusive_lock(tmp_path / "records.csv", timeout_s=0) as lock_file:
        assert lock_file == tmp_path / ".records.csv.lock"


def test_eight_processes_writing_records_at_once_keep_all_eight(tmp_path):
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=lock_workers.write_evaluation, args=(tmp_path, it, start)) for it in range(1, 9)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 8
    df = R.load_records([tmp_path / "records.csv"])
    assert sorted(df[R.ITERATIONS].astype(int)) == list(range(1, 9))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".records.csv.lock", "records.csv"]


def test_output_path_checks(tmp_path):
    f = tmp_path / "a_file"
    f.write_text("x")
    with pytest.raises(I2IError, match="is a file, not a folder"):
        fileio.check_writable_dir(f)
    with pytest.raises(I2IError, match="is a file, so no folder can be made under it"):
        fileio.check_writable_dir(f / "sub" / "run")
    assert fileio.check_writable_dir(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    with pytest.raises(I2IError, match="is a folder; give a file name"):
        fileio.check_output_file(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(I2IError, match="not writable"):
            fileio.check_writable_dir(ro / "run")
    finally:
        ro.chmod(0o755)


def test_feature_cache_store_removes_idle_orphans_only(tmp_path):
    from i2ibench.features.cache import cached_features, cache_entry_path

    folder = cache_entry_path({"k": 1}, tmp_path).parent
    folder.mkdir(parents=True)
    orphan, live = folder / ".abc.pt.abcdefgh.tmp", folder / ".def.pt.hgfedcba.tmp"
    orphan.write_bytes(b"killed mid-write")
    live.write_bytes(b"another process writing now")
    old = time.time() - 2 * fileio.ORPHAN_AGE_S
    os.utime(orphan, (old, old))
    cached_features({"k": 1}, lambda: torch.ones(2, 3), cache_root=tmp_path)
    assert not orphan.exists() and live.exists()


def test_run_directory_lock_before_the_directory_exists(tmp_path):
    out_dir = tmp_path / "runs" / "m-d-smoke-s1"
    with fileio.exclusive_lock(out_dir, what=f"run directory {out_dir}", timeout_s=0) as lock_file:
        assert lock_file == tmp_path / "runs" / ".m-d-smoke-s1.lock" and not out_dir.exists()
        with pytest.raises(I2IError, match=f"run directory {out_dir} is in use by another i2ibench process"):
            with fileio.exclusive_lock(out_dir, what=f"run directory {out_dir}", timeout_s=0):
                pass


def test_atomic_dir_replaces_a_folder_whole_or_not_at_all(tmp_path):
    site = tmp_path / "site"
    with fileio.atomic_dir(site) as tmp:
        (tmp / "a.txt").write_text("one")
        assert not site.exists()  # nothing there until the folder is complete
    assert (site / "a.txt").read_text() == "one"
    with pytest.raises(RuntimeError):
        with fileio.atomic_dir(site) as tmp:
            (tmp / "b.txt").write_text("half")
            raise RuntimeError("killed mid-way")
    assert sorted(p.name for p in site.iterdir()) == ["a.txt"]  # the old folder, untouched
    with fileio.atomic_dir(site) as tmp:
        (tmp / "b.txt").write_text("two")
    assert sorted(p.name for p in site.iterdir()) == ["b.txt"]  # replaced, not merged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no temp or old folder left beside it
