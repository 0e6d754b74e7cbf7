"""Files written safely: atomic writes (temp file in the same folder, fsync, rename), removal of
the temp files a killed writer left, inter-process locks, and checks of output paths before
anything is written."""

from __future__ import annotations

import errno
import json
import os
import re
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from i2ibench.errors import I2IError

# Temp files are ".<target name>.<8 random chars>.tmp" (tempfile.mkstemp's names) beside the target.
TEMP_SUFFIX = ".tmp"
_TEMP_RE = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")
# A temp file untouched this long belongs to a writer that died: a live writer (torch.save,
# to_csv) touches it continuously and renames it within moments of its last write.
ORPHAN_AGE_S = 60.0
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _disk_full_error(exc: BaseException) -> OSError | None:
    """The ENOSPC/EDQUOT ``OSError`` behind ``exc`` (torch's zip writer wraps it in a
    RuntimeError whose ``__context__`` is the OSError), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _open_temp(path: Path, mode: str):
    """Open a temp file for writing (the one place atomic writes open files)."""
    return open(path, mode)


def _raise_if_disk_full(exc: BaseException, path: Path) -> None:
    """A full disk (ENOSPC/EDQUOT) while writing ``path`` as a one-line ``I2IError``."""
    full = _disk_full_error(exc)
    if full is not None:
        raise I2IError(f"disk full while writing {path} ({full.strerror}); "
                       f"{'it was left as it was' if path.exists() else 'nothing was written'}") from None


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success it replaces ``path`` in one rename.

    On an exception the temp file is removed and ``path`` is left as it was. A full disk
    (ENOSPC/EDQUOT, also when wrapped by torch's writer) becomes an ``I2IError`` naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_umask())
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except Exception as e:
        _raise_if_disk_full(e, path)
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """An open file (``mode`` "w" or "wb") whose content replaces ``path`` atomically on success."""
    with atomic_path(path) as tmp, _open_temp(tmp, mode) as fh:
        yield fh


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temp folder next to ``path``; on success it takes ``path``'s place.

    The new folder is complete before it is renamed into place; an existing ``path`` is first
    renamed aside and then removed, so ``path`` is never a half-written folder (between the two
    renames it is briefly absent). On an exception the temp folder is removed and ``path`` is
    left as it was.
    """
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except Exception as e:
        _raise_if_disk_full(e, path)
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as fh:
        fh.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def torch_save(obj: Any, path: str | os.PathLike) -> None:
    import torch

    # Through a Python file object, so a full disk surfaces as ENOSPC (see atomic_path).
    with atomic_write(path, "wb") as fh:
        torch.save(obj, fh)


def remove_orphan_temps(folder: str | os.PathLike, targets: Iterable[str] | None = None,
                        min_age_s: float = ORPHAN_AGE_S) -> list[Path]:
    """Delete temp files that ``atomic_path`` left in ``folder`` when a writer was killed.

    ``targets``: only temps of these file names (e.g. ``["records.csv"]``); None: every
    ``.<name>.XXXXXXXX.tmp``; a ``target`` ending in ``*`` is a prefix (``"ckpt_*"``). Only
    files not modified for ``min_age_s`` seconds go (0: all; safe only while holding the
    lock every writer of those files holds). Returns the removed paths; a missing folder is
    no error.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now = time.time()
    removed = []
    for entry in os.scandir(folder):
        m = _TEMP_RE.match(entry.name)
        if m is None or not entry.is_file(follow_symlinks=False):
            continue
        if targets is not None and not any(
                m["target"].startswith(t[:-1]) if t.endswith("*") else m["target"] == t for t in targets):
            continue
        try:
            if min_age_s > 0 and now - entry.stat(follow_symlinks=False).st_mtime < min_age_s:
                continue
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:  # its writer renamed it meanwhile, or the folder is read-only: leave it
            continue
    return removed


# --------------------------------------------------------------------------- locks

LOCK_SUFFIX = ".lock"
DEFAULT_LOCK_TIMEOUT_S = 600.0


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file guarding ``path``: ``.<name>.lock`` beside it (hidden, never listed)."""
    path = Path(path)
    return path.parent / f".{path.name}{LOCK_SUFFIX}"


@contextmanager
def exclusive_lock(path: str | os.PathLike, *, what: str = "", timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
                   say: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold an exclusive inter-process lock on ``path`` (a file or folder) for the block.

    The lock is ``lock_path(path)``, an OS advisory lock (``filelock``), released when the
    process dies, so a killed holder never leaves it stuck. If another process holds it,
    ``say`` (default: stderr) is told once who waits for what, then we wait up to
    ``timeout_s`` seconds (0: do not wait). The lock file's folder is created if missing.
    Raises ``I2IError`` when the time is up or the lock file cannot be created (read-only
    folder). Yields the lock file's path.

    A run lock: ``with exclusive_lock(out_dir, what=f"run directory {out_dir}", timeout_s=0):``
    (lock file ``.<run name>.lock`` beside the run directory, so it can be taken before the
    directory is created or changed).
    """
    from filelock import FileLock, Timeout

    target = Path(path)
    lock_file = lock_path(target)
    label = what or str(target)
    lock = FileLock(str(lock_file))
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if timeout_s <= 0:
                raise I2IError(f"{label} is in use by another i2ibench process (lock {lock_file}); "
                               f"wait for it to finish or use another folder") from None
            (say or _stderr)(f"waiting for another i2ibench process to release {label} "
                             f"(lock {lock_file}, up to {timeout_s:.0f} s)")
            try:
                lock.acquire(timeout=timeout_s)
            except Timeout:
                raise I2IError(f"{label} is still in use by another i2ibench process after {timeout_s:.0f} s "
                               f"(lock {lock_file})") from None
    except OSError as e:
        raise I2IError(f"cannot lock {label}: cannot create {lock_file} ({e.strerror})") from None
    try:
        yield lock_file
    finally:
        lock.release()


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- output folders

def _folder_problem(path: Path) -> str | None:
    """Why no file can be written in folder ``path`` (created if missing), or None."""
    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a folder"
    probe = path
    while not probe.exists():  # the nearest existing ancestor must be a writable folder
        if probe.is_symlink():
            return f"{probe} is a dangling symlink"
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return f"{probe} is a file, so no folder can be made under it"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    try:  # os.access misses read-only mounts and some ACLs: try it
        fd, tmp = tempfile.mkstemp(prefix=".i2ibench-write-check.", suffix=TEMP_SUFFIX, dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        return f"cannot write in {probe} ({e.strerror})"
    return None


def check_writable_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Check that ``path`` is, or can become, a folder we can write into; nothing is left behind.

    Raises ``I2IError`` (one line, naming ``option``) when ``path`` is an existing file, lies
    under a file, or is (or would be created in) a folder we cannot write to. Returns ``path``.
    """
    path = Path(path)
    problem = _folder_problem(path)
    if problem:
        raise I2IError(f"{option} {path}: {problem}")
    return path


def check_output_file(path: str | os.PathLike, option: str = "--output") -> Path:
    """Check that ``path`` can be written as a file: not a folder, its folder writable.

    Raises ``I2IError`` (one line, naming ``option``). Returns ``path``.
    """
    path = Path(path)
    if path.is_dir():
        raise I2IError(f"{option} {path}: is a folder; give a file name")
    problem = _folder_problem(path.parent)
    if problem:
        raise I2IError(f"{option} {path}: {problem}")
    return path


def state_dict_sha256(state) -> str:
    """SHA-256 over (name, dtype, shape, raw bytes) of every tensor, in sorted name order: names
    weights by their values (a file's digest changes with torch.save's random serialization id)."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
