"""CI regression of metric tables: re-run the committed smoke runs, compare within tolerances.

``results/regression/smoke.csv`` holds the overall records of small deterministic runs (each
method on fashion10 at the ``smoke`` preset, fixed seeds, a small but real evaluation);
``results/regression/tolerances.yaml`` states, per metric, how far a re-computed value may
move: it passes when ``|new - old| <= abs + rel * |old|``. ``regress`` trains each run listed
in the table into a temporary folder, evaluates it, and compares row by row (method,
dataset, preset, seed, protocol, mode, metric, scope, domain). A value outside its
tolerance, or a committed row that is no longer produced, is a regression; rows the table
does not have yet are listed as new. ``update`` rewrites the table (atomically) with the
re-computed records.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import yaml

from i2ibench.config import build_run_config
from i2ibench.errors import ConfigError, DataError, I2IError
from i2ibench.pipeline.run import train_and_evaluate as run_pipeline
from i2ibench.registry import list_methods
from i2ibench.report import records as R
from i2ibench.report.published import results_dir

TABLE_FILE = "smoke.csv"
TOLERANCE_FILE = "tolerances.yaml"
DEFAULT_DATASET = "fashion10"
DEFAULT_PRESET = "smoke"
MATCH = [R.METHOD, R.DATASET, R.PRESET, R.SEED, R.PROTOCOL, R.MODE, R.METRIC, R.SCOPE, R.DOMAIN]
RUN_KEY = [R.METHOD, R.DATASET, R.PRESET, R.SEED]

Runner = Callable[["RunSpec", Path], pd.DataFrame]
Log = Callable[[str], None]


def regression_dir() -> Path:
    return results_dir() / "regression"


# --------------------------------------------------------------------------- tolerances

@dataclass(frozen=True)
class Tolerance:
    abs: float = 0.0
    rel: float = 0.0

    def allows(self, old: float, new: float) -> bool:
        if math.isnan(old) or math.isnan(new):
            return math.isnan(old) and math.isnan(new)  # n/a must stay n/a, a number must stay a number
        return abs(new - old) <= self.abs + self.rel * abs(old)

    def text(self, old: float) -> str:
        return f"±{self.abs + self.rel * abs(old):.4g} (abs {self.abs:g} + rel {self.rel:g})"


@dataclass
class Tolerances:
    per_metric: dict[str, Tolerance]
    default: Tolerance

    def of(self, metric: str) -> Tolerance:
        return self.per_metric.get(metric, self.default)


def _tolerance(value: Any, where: str) -> Tolerance:
    if not isinstance(value, dict) or not set(value) <= {"abs", "rel"}:
        raise ConfigError(f"{where}: a tolerance is a mapping with keys abs and/or rel, got {value!r}")
    try:
        return Tolerance(float(value.get("abs", 0.0)), float(value.get("rel", 0.0)))
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: abs and rel must be numbers, got {value!r}") from None


def load_tolerances(path: str | Path) -> Tolerances:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"tolerance file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise DataError(f"cannot parse {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict) or "metrics" not in data:
        raise DataError(f"{path} must hold 'metrics:' (metric -> {{abs, rel}}) and optionally 'default:'")
    metrics = {str(k): _tolerance(v, f"{path}: metrics.{k}") for k, v in (data["metrics"] or {}).items()}
    default = _tolerance(data.get("default", {"abs": 0.0, "rel": 0.0}), f"{path}: default")
    return Tolerances(metrics, default)


# --------------------------------------------------------------------------- comparison

@dataclass
class Difference:
    key: dict[str, Any]
    old: float
    new: float
    tolerance: Tolerance | None
    status: str  # ok | regression | missing | new

    def label(self) -> str:
        k = self.key
        where = f" [{k[R.DOMAIN]}]" if k.get(R.DOMAIN) else ""
        seed = k.get(R.SEED)
        seed_text = f" seed {int(float(seed))}" if seed not in (None, "", "nan") and pd.notna(seed) else ""
        return (f"{k[R.METHOD]}/{k[R.DATASET]}/{k[R.PRESET]}{seed_text} {k[R.PROTOCOL]}/{k[R.MODE]} "
                f"{k[R.METRIC]}{where}")


@dataclass
class Comparison:
    rows: list[Difference] = field(default_factory=list)

    @property
    def regressions(self) -> list[Difference]:
        return [d for d in self.rows if d.status in ("regression", "missing")]

    @property
    def passed(self) -> bool:
        return not self.regressions


def _fmt(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.6g}"


def compare_records(old: pd.DataFrame, new: pd.DataFrame, tolerances: Tolerances) -> Comparison:
    """Row-by-row comparison of committed (``old``) and re-computed (``new``) records."""
    old, new = R.normalize(old), R.normalize(new)
    ok, nk = R.row_keys(old, MATCH), R.row_keys(new, MATCH)
    new_by_key = dict(zip(nk, new[R.VALUE].tolist()))
    out = Comparison()
    for key, (_, row) in zip(ok, old.iterrows()):
        desc = {c: row[c] for c in MATCH}
        o = float(row[R.VALUE])
        if key not in new_by_key:
            out.rows.append(Difference(desc, o, math.nan, None, "missing"))
            continue
        n = float(new_by_key[key])
        tol = tolerances.of(str(row[R.METRIC]))
        out.rows.append(Difference(desc, o, n, tol, "ok" if tol.allows(o, n) else "regression"))
    old_keys = set(ok)
    for key, (_, row) in zip(nk, new.iterrows()):
        if key not in old_keys:
            out.rows.append(Difference({c: row[c] for c in MATCH}, math.nan, float(row[R.VALUE]), None, "new"))
    return out


def format_comparison(cmp: Comparison, verbose: bool = False) -> str:
    """A readable diff: every regression (and, verbose, every row), then a one-line verdict."""
    lines = []
    for d in cmp.rows:
        if d.status == "regression":
            lines.append(f"REGRESSION {d.label()}: old {_fmt(d.old)} new {_fmt(d.new)} "
                         f"(change {d.new - d.old:+.4g}, tolerance {d.tolerance.text(d.old)})")
        elif d.status == "missing":
            lines.append(f"MISSING    {d.label()}: old {_fmt(d.old)}, not produced any more")
        elif d.status == "new":
            lines.append(f"NEW        {d.label()}: {_fmt(d.new)} (not in the committed table; --update adds it)")
        elif verbose:
            lines.append(f"ok         {d.label()}: old {_fmt(d.old)} new {_fmt(d.new)}")
    n_bad = len(cmp.regressions)
    n_ok = sum(d.status == "ok" for d in cmp.rows)
    lines.append(f"{'FAILED' if n_bad else 'PASSED'}: {n_ok} within tolerance, {n_bad} regression(s), "
                 f"{sum(d.status == 'new' for d in cmp.rows)} new")
    return "\n".join(lines)


# --------------------------------------------------------------------------- re-running

@dataclass(frozen=True)
class RunSpec:
    method: str
    dataset: str = DEFAULT_DATASET
    preset: str = DEFAULT_PRESET
    seed: int | None = None  # None: the preset's seed

    def name(self) -> str:
        return f"{self.method}-{self.dataset}-{self.preset}" + (f"-s{self.seed}" if self.seed is not None else "")


def runs_in_table(table: pd.DataFrame) -> list[RunSpec]:
    table = R.normalize(table)
    seen = dict.fromkeys(zip(*(table[c].tolist() for c in RUN_KEY)))
    return [RunSpec(m, d, p, None if pd.isna(s) else int(s)) for m, d, p, s in seen]


def train_and_evaluate(spec: RunSpec, workdir: Path) -> pd.DataFrame:
    """Train ``spec`` from scratch into ``workdir`` and evaluate it (the records, overall rows)."""
    overrides = {"train.seed": spec.seed} if spec.seed is not None else {}
    cfg = build_run_config(spec.method, spec.dataset, spec.preset, overrides)
    _, df = run_pipeline(cfg, workdir, resume=False, progress=False, log=None)
    df = df[df[R.SCOPE] == R.SCOPE_OVERALL].copy()
    df[R.RUN] = ""  # a temporary folder: meaningless in the committed table
    return df


def regress(table_path: str | Path | None = None, *, update: bool = False, methods: list[str] | None = None,
            workdir: str | Path | None = None, runner: Runner | None = None,
            log: Log = print, verbose: bool = False, dataset: str | None = None) -> int:
    """Re-run the table's runs and compare; 0 = passed (or updated), 1 = regression.

    ``dataset``: the dataset of runs added for methods not in the table yet (default fashion10).
    ``runner(spec, run_dir) -> records`` defaults to ``train_and_evaluate``.
    """
    runner = runner if runner is not None else train_and_evaluate
    table_path = Path(table_path) if table_path is not None else regression_dir() / TABLE_FILE
    tol_path = table_path.parent / TOLERANCE_FILE
    tolerances = load_tolerances(tol_path)
    old = R.load_records([table_path]) if table_path.is_file() else None
    if old is None and not update:
        raise I2IError(f"no regression table at {table_path}; create it with `i2ibench regress --update`")
    if old is not None and not old.empty:
        specs = runs_in_table(old)
    else:
        specs = [RunSpec(m) for m in list_methods()]
    if methods:
        wanted = {m.lower() for m in methods}
        unknown = wanted - {s.method for s in specs}
        if unknown and not update:
            raise I2IError(f"method(s) not in the regression table: {', '.join(sorted(unknown))}; "
                           f"in it: {', '.join(sorted({s.method for s in specs}))}")
        specs = [s for s in specs if s.method in wanted] + [RunSpec(m, dataset or DEFAULT_DATASET)
                                                            for m in sorted(unknown)]
    if not specs:
        raise I2IError("nothing to run: no methods registered and no regression table")

    frames = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="i2ibench-regress-") as tmp:
        root = Path(workdir) if workdir is not None else Path(tmp)
        for spec in specs:
            t0 = time.perf_counter()
            log(f"[regress] {spec.name()} ...")
            df = runner(spec, root / spec.name())
            frames.append(df)
            log(f"[regress] {spec.name()}: {len(df)} records in {time.perf_counter() - t0:.1f} s")
    new = R.normalize(pd.concat(frames, ignore_index=True)) if frames else R.normalize(pd.DataFrame(columns=list(R.REQUIRED)))
    log(f"[regress] all runs: {time.perf_counter() - t_all:.1f} s")

    if old is not None:
        compared_old = old
        if methods:  # compare only what was re-run
            compared_old = old[old[R.METHOD].str.lower().isin({s.method for s in specs})]
        cmp = compare_records(compared_old, new, tolerances)
        log(format_comparison(cmp, verbose=verbose))
    else:
        cmp = None
    if update:
        merged = new
        if old is not None and methods:  # keep the rows of runs not re-run
            keep = old[~old[R.METHOD].str.lower().isin({s.method for s in specs})]
            merged = R.normalize(pd.concat([keep, new], ignore_index=True))
        R.write_csv(table_path, merged)
        log(f"[regress] wrote {len(merged)} records to {table_path}")
        return 0
    return 0 if cmp is None or cmp.passed else 1
