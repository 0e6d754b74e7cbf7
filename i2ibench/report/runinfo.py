"""Run folders as a report sees them: where they are, their records, config and final sample grids.

A run folder is one holding ``records.csv`` or ``config.yaml`` (the layout of ``runs/<run>/``,
``results/cpu/<run>/`` and ``results/campaigns/<campaign>/<run>/``). ``find_runs`` takes run
folders, folders searched for them, or records files (a records file alone is a run without
config or grids). Each run gets a display name that is never an absolute path: its path
relative to the working directory when it is under it, else relative to the folder above the
argument it was found through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd

from i2ibench.errors import DataError, I2IError
from i2ibench.report import records as R

CONFIG_FILE = "config.yaml"
SAMPLES_DIR = "samples"
_STEP_RE = re.compile(r"^(?P<stem>.+?)_(?P<step>\d+)\.png$")
_SKIP_DIRS = {"checkpoints", SAMPLES_DIR, "tb", "tensorboard", "__pycache__"}


@dataclass
class RunInfo:
    """One run: ``name`` (relative, for display), its folder (None for a bare records file),
    ``config`` (the parsed config.yaml, {} if none), ``records`` (schema-normalised)."""

    name: str
    folder: Path | None
    config: dict
    records: pd.DataFrame
    grids: list[Path] = field(default_factory=list)

    @property
    def method(self) -> str:
        return str(self.config.get("method") or _first(self.records, R.METHOD))

    @property
    def dataset(self) -> str:
        return str(self.config.get("dataset") or _first(self.records, R.DATASET))

    def provenance(self) -> list[tuple[str, str]]:
        """(name, value) pairs: method, dataset, preset, seed, iterations (trained / evaluated),
        setting, VLM, features, real split, evaluation parameters, code version, evaluated on."""
        cfg, rec = self.config, self.records
        train = cfg.get("train") or {}
        evaluated = sorted({int(v) for v in rec[R.ITERATIONS].dropna()}) if not rec.empty else []
        seed = train.get("seed", _first(rec, R.SEED))
        pairs = [
            ("method", self.method),
            ("dataset", self.dataset),
            ("preset", str(cfg.get("preset") or _first(rec, R.PRESET))),
            ("seed", _num(seed)),
            ("iterations trained", _num(train.get("total_iters", ""))),
            ("iterations evaluated", ", ".join(map(str, evaluated))),
            ("setting", _join(rec, R.SETTING)),
            ("VLM", str(cfg.get("vlm") or "") or _join(rec, R.VLM)),
            ("features", _join(rec, R.FEATURES)),
            ("real split", _join(rec, R.REAL_SPLIT)),
            ("eval params", _join(rec, R.EVAL_PARAMS).replace(";", "; ")),
            ("code version", _join(rec, R.CODE_VERSION)),
            ("evaluated on", _join(rec, R.DATE)[:10] if not rec.empty else ""),
        ]
        return [(k, v) for k, v in pairs if v not in ("", "nan", "None")]


def _first(df: pd.DataFrame, col: str) -> str:
    vals = [v for v in df[col] if str(v) not in ("", "nan")] if not df.empty else []
    return str(vals[0]) if vals else ""


def _join(df: pd.DataFrame, col: str) -> str:
    if df.empty:
        return ""
    vals = sorted({str(v) for v in df[col] if str(v) not in ("", "nan")})
    return ", ".join(vals)


def _num(v) -> str:
    try:
        return f"{float(v):g}"
    except (TypeError, ValueError):
        return str(v or "")


def final_grids(folder: Path) -> list[Path]:
    """The sample grids of the newest step in ``folder/samples`` (``<name>_<step>.png``), then the
    newest ``style_codes_<step>.png`` in the run folder, if any."""
    out: list[Path] = []
    samples = folder / SAMPLES_DIR
    for where in (samples, folder):
        if not where.is_dir():
            continue
        found = [(int(m["step"]), p) for p in sorted(where.glob("*.png")) if (m := _STEP_RE.match(p.name))]
        if where == folder:
            found = [(s, p) for s, p in found if p.name.startswith("style_codes_")]
        if found:
            last = max(s for s, _ in found)
            out += [p for s, p in found if s == last]
    return out


def _display_name(path: Path, anchor: Path) -> str:
    """``path`` relative to the working directory if under it, else relative to ``anchor``."""
    path = path.resolve()
    for base in (Path.cwd().resolve(), anchor.resolve()):
        try:
            rel = path.relative_to(base)
            return str(rel) if str(rel) != "." else path.name
        except ValueError:
            continue
    return path.name


def _read_config(folder: Path) -> dict:
    import yaml

    path = folder / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise DataError(f"cannot read {path}: {str(e).splitlines()[0]}") from None
    return data if isinstance(data, dict) else {}


def _run_folders(root: Path) -> list[Path]:
    found = set()
    for name in (R.RECORDS_FILE, CONFIG_FILE):
        for p in root.rglob(name):
            rel = p.relative_to(root).parts[:-1]
            if any(part.startswith(".") or part in _SKIP_DIRS for part in rel):
                continue
            found.add(p.parent)
    return sorted(found)


def find_runs(paths: Iterable[str | Path]) -> list[RunInfo]:
    """The runs under ``paths`` (run folders, folders searched for them, or records files), in
    path order, each once. I2IError (one line) for a path that does not exist."""
    runs: dict[Path, RunInfo] = {}
    for arg in map(Path, paths):
        if not arg.exists():
            raise I2IError(f"{arg}: no such file or folder")
        anchor = arg.resolve().parent
        if arg.is_file():
            runs.setdefault(arg.resolve(), RunInfo(_display_name(arg, anchor), None, {}, R.load_records([arg])))
            continue
        for folder in _run_folders(arg):
            key = folder.resolve()
            if key in runs:
                continue
            name = _display_name(folder, anchor)
            records = R.load_records([folder / R.RECORDS_FILE]) if (folder / R.RECORDS_FILE).is_file() \
                else R.load_records([])
            # The run as this report names it: one spelling per run (tables keep its newest
            # evaluation) and no path of the machine that wrote the records.
            records[R.RUN] = name
            runs[key] = RunInfo(name, folder, _read_config(folder), records, final_grids(folder))
    return list(runs.values())
