"""``i2ibench bench``: run a campaign's runs through submitit, see where they stand, collect them.

Where each run stands is read from its directory, never from a scheduler's memory, so any
machine that sees the folder sees the same state (:func:`run_state`): *done* (evaluated at
its last iteration, or trained when evaluation is off), *running* (a worker holds its claim),
*partial* (checkpoints or a loss log, nobody on it: the next worker resumes it), *pending*.

Execution goes through submitit (a well-kept job engine, local processes or Slurm), not a
scheduler of ours:

- local: ``workers`` submitit jobs, each a loop that claims the next run that is neither done
  nor claimed (an OS file lock per run, so two workers never train one run and a killed
  worker frees its claim) and trains it in a child ``i2ibench run`` process;
- slurm: one array task per unfinished run, at most ``workers`` at a time
  (``slurm_array_parallelism``); each task claims and trains its run the same way.

A run's console output goes to ``runs/bench/<campaign>/logs/<run>.log``; submitit's own
files to ``.../jobs/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import filelock
import pandas as pd

from i2ibench.errors import ConfigError
from i2ibench.fileio import atomic_write, write_json
from i2ibench.pipeline.campaign import Campaign, CampaignRun, load_campaign
from i2ibench.report import records as R
from i2ibench.train.checkpoint import CKPT_DIRNAME, list_checkpoints
from i2ibench.train.rundir import CONFIG_FILE, LOG_FILE

DONE, RUNNING, PARTIAL, PENDING = "done", "running", "partial", "pending"
STATES = (DONE, RUNNING, PARTIAL, PENDING)
EXECUTORS = ("local", "slurm")
CLAIMS_DIRNAME = ".claims"


@dataclass(frozen=True)
class RunState:
    """Where a run stands: ``state`` in ``STATES``, ``step`` of ``total`` iterations trained,
    ``evaluated`` the iterations with records, ``updated_s`` seconds since its loss log changed."""

    state: str
    step: int
    total: int
    evaluated: tuple[int, ...] = ()
    updated_s: float | None = None


# --------------------------------------------------------------------------- state on disk

def _claim_path(campaign: Campaign, run: CampaignRun) -> Path:
    return campaign.out_dir / CLAIMS_DIRNAME / f"{run.name}.lock"


def _is_claimed(campaign: Campaign, run: CampaignRun) -> bool:
    path = _claim_path(campaign, run)
    if not path.exists():
        return False
    probe = filelock.FileLock(str(path), timeout=0)
    try:
        probe.acquire()
    except filelock.Timeout:
        return True
    probe.release()
    return False


def _last_logged_step(run_dir: Path) -> int:
    log = run_dir / LOG_FILE
    if not log.is_file():
        return 0
    step = 0
    with open(log, "rb") as fh:
        try:
            fh.seek(-4096, os.SEEK_END)
        except OSError:
            fh.seek(0)
        for line in fh.read().decode("utf-8", "replace").splitlines():
            try:
                step = max(step, int(json.loads(line).get("step", 0)))
            except (ValueError, AttributeError):
                continue  # a partial first line of the tail
    return step


def evaluated_iterations(run_dir: Path) -> tuple[int, ...]:
    """The training iterations at which the run has evaluation records."""
    path = run_dir / R.RECORDS_FILE
    if not path.is_file():
        return ()
    try:
        its = pd.read_csv(path, usecols=[R.ITERATIONS])[R.ITERATIONS]
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return ()
    return tuple(sorted({int(i) for i in pd.to_numeric(its, errors="coerce").dropna()}))


def run_state(campaign: Campaign, run: CampaignRun) -> RunState:
    """Read a run's state from its directory and its claim (see the module doc)."""
    cfg = run.config()
    total = cfg.train.total_iters
    out = run.out_dir
    ckpts = list_checkpoints(out) if (out / CKPT_DIRNAME).is_dir() else []
    step = max([s for s, _ in ckpts] + [_last_logged_step(out)])
    evaluated = evaluated_iterations(out)
    log = out / LOG_FILE
    updated = time.time() - log.stat().st_mtime if log.is_file() else None
    trained = bool(ckpts) and ckpts[-1][0] >= total
    finished = trained and (total in evaluated if cfg.eval.enabled else True)
    if finished:
        state = DONE
    elif _is_claimed(campaign, run):
        state = RUNNING
    elif step > 0 or ckpts:
        state = PARTIAL
    else:
        state = PENDING
    return RunState(state, step, total, evaluated, updated)


def campaign_states(campaign: Campaign) -> dict[str, RunState]:
    return {r.name: run_state(campaign, r) for r in campaign.runs}


def status_frame(campaign: Campaign) -> pd.DataFrame:
    """One row per run: name, state, trained step / total, evaluated iterations, log age."""
    rows = []
    for r in campaign.runs:
        s = run_state(campaign, r)
        rows.append({"run": r.name, "state": s.state, "step": s.step, "total": s.total,
                     "evaluated": ",".join(str(i) for i in s.evaluated),
                     "log_age_s": None if s.updated_s is None else round(s.updated_s)})
    return pd.DataFrame(rows, columns=["run", "state", "step", "total", "evaluated", "log_age_s"])


def status_text(campaign: Campaign, frame: pd.DataFrame | None = None) -> str:
    """The progress view: one line per run and a count per state."""
    frame = status_frame(campaign) if frame is None else frame
    width = max([len("run")] + [len(n) for n in frame["run"]])
    lines = [f"campaign {campaign.name}: {len(frame)} runs in {campaign.out_dir}"]
    for row in frame.itertuples(index=False):
        pct = 100.0 * row.step / row.total if row.total else 0.0
        age = "" if pd.isna(row.log_age_s) or row.state == DONE else f"  log {_age(row.log_age_s)} ago"
        lines.append(f"  {row.run:<{width}}  {row.state:<7}  {row.step:>7}/{row.total:<7} {pct:5.1f}%{age}")
    counts = frame["state"].value_counts()
    lines.append("  " + ", ".join(f"{int(counts.get(s, 0))} {s}" for s in STATES))
    return "\n".join(lines)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --------------------------------------------------------------------------- working

Runner = Callable[[CampaignRun, Path], int]


def _owner_path(campaign: Campaign, run: CampaignRun) -> Path:
    return campaign.out_dir / CLAIMS_DIRNAME / f"{run.name}.owner.json"


def run_subprocess(run: CampaignRun, log_path: Path, threads: int | None = None,
                   owner_file: Path | None = None) -> int:
    """Train and evaluate ``run`` in a child ``i2ibench run`` (appending its output to ``log_path``).

    ``owner_file`` gets ``{"host", "worker_pid", "run_pid"}`` while the child lives, for ``bench --stop``.
    """
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {run.command_line()}\n")
        log.flush()
        child = subprocess.Popen(run.argv(), stdout=log, stderr=subprocess.STDOUT, env=env)
        if owner_file is not None:
            write_json(owner_file, {"host": socket.gethostname(), "worker_pid": os.getpid(), "run_pid": child.pid})
        try:
            return child.wait()
        finally:
            if owner_file is not None:
                owner_file.unlink(missing_ok=True)


def stop_local(campaign: Campaign, say: Callable[[str], None] = print) -> int:
    """Stop this host's workers of ``campaign`` and the runs they train; returns how many runs.

    Each run keeps its newest checkpoint, so the next ``bench`` resumes it. Runs of other hosts
    (Slurm tasks) are named, not touched: cancel those jobs with ``scancel``.
    """
    host, stopped = socket.gethostname(), 0
    for run in campaign.runs:
        path = _owner_path(campaign, run)
        try:
            owner = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if owner.get("host") != host:
            say(f"{run.name} runs on {owner.get('host')}: cancel its job there")
            continue
        # The worker first, so it takes no next run (SIGKILL: submitit's job process handles
        # SIGTERM itself); then the run, whose checkpoints are written atomically.
        for key, sig in (("worker_pid", signal.SIGKILL), ("run_pid", signal.SIGTERM)):
            try:
                os.kill(int(owner[key]), sig)
            except (ProcessLookupError, KeyError, ValueError):
                pass
        say(f"stopped {run.name} (pid {owner.get('run_pid')})")
        stopped += 1
    return stopped


def work_on(campaign: Campaign, names: Sequence[str] | None = None, runner: Runner | None = None,
            threads: int | None = None, say: Callable[[str], None] = print) -> list[tuple[str, int]]:
    """Claim and train runs of ``campaign`` (``names``: only these) until none is left unclaimed.

    Each claim is an OS file lock held while the run trains, so concurrent workers (local
    processes, Slurm tasks on a shared file system) never train one run twice, and a killed
    worker frees its run. A run that fails (non-zero exit) is not retried by this worker; its
    log says why and the next ``bench`` resumes it. Returns ``(run name, exit code)`` of the
    runs this worker took.
    """
    runner = runner or (lambda run, log: run_subprocess(run, log, threads, _owner_path(campaign, run)))
    wanted = [r for r in campaign.runs if names is None or r.name in set(names)]
    tried: set[str] = set()
    taken: list[tuple[str, int]] = []
    claims = campaign.out_dir / CLAIMS_DIRNAME
    claims.mkdir(parents=True, exist_ok=True)
    while True:
        progressed = False
        for run in wanted:
            if run.name in tried or run_state(campaign, run).state == DONE:
                continue
            lock = filelock.FileLock(str(_claim_path(campaign, run)), timeout=0)
            try:
                lock.acquire()
            except filelock.Timeout:
                continue  # another worker has it
            try:
                if run_state(campaign, run).state == DONE:  # finished while we looked
                    continue
                tried.add(run.name)
                say(f"[{campaign.name}] start {run.name}")
                t0 = time.perf_counter()
                code = runner(run, campaign.out_dir / "logs" / f"{run.name}.log")
                say(f"[{campaign.name}] {'finished' if code == 0 else f'FAILED (exit {code})'} {run.name} "
                    f"in {time.perf_counter() - t0:.0f} s")
                taken.append((run.name, code))
                progressed = True
            finally:
                lock.release()
            break  # rescan from the top: seed-major order first
        if not progressed:
            return taken


def _local_worker(spec_path: str, runs_root: str, results_root: str, threads: int | None) -> list[tuple[str, int]]:
    campaign = load_campaign(spec_path, runs_root=Path(runs_root), results_root=Path(results_root))
    return work_on(campaign, threads=threads)


def _array_task(spec_path: str, runs_root: str, results_root: str, name: str, threads: int | None) -> list[tuple[str, int]]:
    campaign = load_campaign(spec_path, runs_root=Path(runs_root), results_root=Path(results_root))
    return work_on(campaign, names=[name], threads=threads)


@contextlib.contextmanager
def _children_without_our_stdio():
    """Local jobs outlive ``bench --detach``: they must not hold its stdout/stderr (a pipe such as
    ``bench ... | tee`` would never end). Children started in this block inherit /dev/null."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


@dataclass
class Submission:
    """What :func:`submit` started: the submitit jobs and the runs they cover."""

    jobs: list
    runs: list[str]
    executor: str


def submit(campaign: Campaign, *, executor: str = "local", workers: int = 2, threads: int | None = 1,
           timeout_min: int = 7 * 24 * 60, slurm: dict | None = None) -> Submission:
    """Hand the unfinished runs of ``campaign`` to submitit (see the module doc).

    ``threads``: torch threads per run (OMP/MKL); ``slurm``: extra ``slurm_*`` parameters of
    submitit's executor (partition, gpus_per_node, ...). Raises ``ConfigError`` for an
    unknown executor or ``workers`` < 1, before anything is written.
    """
    import submitit

    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor '{executor}': expected one of {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    todo = [r.name for r in campaign.runs if run_state(campaign, r).state != DONE]
    if not todo:
        return Submission([], [], executor)
    args = (str(campaign.spec_path), str(campaign.runs_root), str(campaign.results_root))
    folder = campaign.out_dir / "jobs" / "%j"
    if executor == "local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=timeout_min)
        with _children_without_our_stdio():
            jobs = [ex.submit(_local_worker, *args, threads) for _ in range(min(workers, len(todo)))]
    else:
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
        params = {"timeout_min": timeout_min, "cpus_per_task": threads or 1, "slurm_array_parallelism": workers,
                  "name": f"i2ibench-{campaign.name}"}
        params.update(slurm or {})
        ex.update_parameters(**params)
        jobs = ex.map_array(_array_task, *[[a] * len(todo) for a in args], todo, [threads] * len(todo))
    return Submission(list(jobs), todo, executor)


def wait(campaign: Campaign, submission: Submission, *, refresh_s: float = 60.0,
         say: Callable[[str], None] = print) -> dict[str, str]:
    """Wait for the jobs, printing the progress view when a run's state or step changes.

    Returns the final state of every run. A job that raised is reported with its error.
    """
    last = None
    while True:
        frame = status_frame(campaign)
        view = frame[["run", "state", "step"]].to_records(index=False).tolist()
        if view != last:
            say(status_text(campaign, frame))
            last = view
        if all(j.done() for j in submission.jobs):
            break
        time.sleep(refresh_s)
    for job in submission.jobs:
        exc = job.exception()
        if exc is not None:
            say(f"job {job.job_id} failed: {str(exc).strip().splitlines()[-1] if str(exc).strip() else exc!r}")
    return {n: s.state for n, s in campaign_states(campaign).items()}


# --------------------------------------------------------------------------- collecting

def final_grids(run_dir: Path, step: int) -> list[Path]:
    """The sample grids and style plots of the final step (``*_<step:08d>.png``)."""
    suffix = f"_{step:08d}.png"
    return sorted(p for p in run_dir.rglob(f"*{suffix}") if CKPT_DIRNAME not in p.parts and "tb" not in p.parts)


def collect(campaign: Campaign, *, say: Callable[[str], None] = print) -> list[Path]:
    """Copy every finished run's committed files into ``results/campaigns/<name>/<run>/``.

    Copied: ``config.yaml``, ``train_log.jsonl``, ``records.csv`` (its ``run`` column names the
    results folder, relative, so no machine path is committed) and the final step's grids.
    Never checkpoints. Each file is written atomically. Returns the run folders written.
    """
    written = []
    for run in campaign.runs:
        state = run_state(campaign, run)
        if state.state != DONE:
            continue
        dest = campaign.results_dir / run.name
        dest.mkdir(parents=True, exist_ok=True)
        for fname in (CONFIG_FILE, LOG_FILE):
            if (run.out_dir / fname).is_file():
                _copy(run.out_dir / fname, dest / fname)
        records = R.load_records([run.out_dir / R.RECORDS_FILE])
        records[R.RUN] = dest.as_posix()
        R.write_csv(dest / R.RECORDS_FILE, records)
        for grid in final_grids(run.out_dir, state.total):
            _copy(grid, dest / grid.relative_to(run.out_dir))
        written.append(dest)
    say(f"collected {len(written)} finished run(s) of {campaign.name} into {campaign.results_dir}")
    return written


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, atomic_write(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout)


def dry_run_text(campaign: Campaign) -> str:
    """What ``bench`` would do: each run's state and its ``i2ibench run`` command."""
    lines = [f"campaign {campaign.name} ({campaign.spec_path}): {len(campaign.runs)} runs"]
    for run in campaign.runs:
        s = run_state(campaign, run)
        what = "skip (done)" if s.state == DONE else ("resume" if s.state == PARTIAL else
                                                      "running elsewhere" if s.state == RUNNING else "start")
        lines.append(f"  {what:<17} {run.command_line()}")
    return "\n".join(lines)
