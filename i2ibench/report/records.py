"""The result record: one row per (metric, domain or task, mode, protocol) of one evaluation.

Every number i2ibench reports, reproduced or published, is a row of this schema, so that a
table is a pandas pivot of rows and every row says how its number was made. Runs write
``RUN_DIR/records.csv``; the papers' numbers live in ``results/published/*.csv`` in the same
schema (with ``source = published``).

Scopes: ``overall`` rows hold the protocol's summary (mFID, mean density, ...; ``domain`` is
empty), ``domain`` rows one target domain (the class-wise result), ``task`` rows one ordered
pair ``src->trg``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import pandas as pd

from i2ibench.errors import DataError
from i2ibench.fileio import atomic_write, exclusive_lock, remove_orphan_temps
from i2ibench.names import LABELS, LABELS_INITIAL, canonical_protocol

# ----------------------------------------------------------------------------- columns
METHOD = "method"
DATASET = "dataset"
PRESET = "preset"
SEED = "seed"               # training seed of the run
ITERATIONS = "iterations"   # training iterations of the evaluated weights
PROTOCOL = "protocol"       # pairwise | pooled | labels | labels-initial | unspecified (published, paper silent)
MODE = "mode"               # latent | reference | deterministic | - (no translation mode) | unspecified
METRIC = "metric"           # a metric key (i2ibench.metrics.keys)
SCOPE = "scope"             # overall | domain | task
DOMAIN = "domain"           # target domain name, 'src->trg', or '' for overall rows
VALUE = "value"             # NaN: not applicable / not computable (see NOTE)
STD = "std"                 # published: the paper's ± (reproduced rows: empty)
N_SEEDS = "n_seeds"         # published: seeds behind the paper's number (reproduced rows: 1)
N_FAKE = "n_fake"           # translated images scored (per row: per domain/task, or total)
N_REAL = "n_real"
REAL_SPLIT = "real_split"
FEATURES = "features"       # feature extractor name (+ precision)
VLM = "vlm"
EVAL_PARAMS = "eval_params"  # the rest of the protocol parameters, 'key=value;...'
CODE_VERSION = "code_version"
DATE = "date"
SOURCE = "source"           # reproduced | published
TABLE = "table"             # published table id (lanit-table1, ...); reproduced: ''
SETTING = "setting"         # a table's extra row key (e.g. 'N=4', 'lambda=0.001, 20k updates')
CITATION = "citation"
RUN = "run"                 # run directory of a reproduced row
NOTE = "note"

COLUMNS = (
    METHOD, DATASET, PRESET, SEED, ITERATIONS, PROTOCOL, MODE, METRIC, SCOPE, DOMAIN, VALUE,
    STD, N_SEEDS, N_FAKE, N_REAL, REAL_SPLIT, FEATURES, VLM, EVAL_PARAMS, CODE_VERSION, DATE,
    SOURCE, TABLE, SETTING, CITATION, RUN, NOTE,
)
# Columns a record must carry a value in (the others may be empty).
REQUIRED = (METHOD, DATASET, PROTOCOL, MODE, METRIC, SCOPE, VALUE, SOURCE)
NUMERIC = (SEED, ITERATIONS, VALUE, STD, N_SEEDS, N_FAKE, N_REAL)
TEXT = tuple(c for c in COLUMNS if c not in NUMERIC)

SCOPE_OVERALL, SCOPE_DOMAIN, SCOPE_TASK = "overall", "domain", "task"
SOURCE_REPRODUCED, SOURCE_PUBLISHED = "reproduced", "published"
MODE_NONE = "-"                   # metric independent of the translation mode
UNSPECIFIED = "unspecified"       # published: the paper does not say
PROTOCOL_LABELS = LABELS                  # pseudo-label quality rows (the labels the method ends with)
PROTOCOL_LABELS_INITIAL = LABELS_INITIAL  # LANIT: the written prompts' labels, before prompt learning

RECORDS_FILE = "records.csv"
# Re-evaluating the same weights replaces these rows; other iterations are kept.
IDENTITY = (ITERATIONS, PROTOCOL, MODE, METRIC, SCOPE, DOMAIN)


def task_name(src: str, trg: str) -> str:
    return f"{src}->{trg}"


def _text(v) -> str:
    return "" if v is None or (isinstance(v, float) and v != v) else str(v)


def row_keys(df: pd.DataFrame, columns) -> pd.Series:
    """One string per row joining ``columns`` (NaN as empty), for matching rows across frames."""
    cols = [df[c].tolist() for c in columns]
    return pd.Series(["|".join(_text(v) for v in vals) for vals in zip(*cols)], index=df.index, dtype=object)


def normalize(df: pd.DataFrame) -> pd.DataFrame:
    """Every schema column present, in order (extra columns kept after them), typed."""
    df = df.copy()
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(f"records lack required column(s) {', '.join(missing)}; expected columns: {', '.join(COLUMNS)}")
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = float("nan") if c in NUMERIC else ""
    for c in NUMERIC:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    for c in TEXT:
        df[c] = df[c].astype(object).where(df[c].notna(), "").astype(str)
    df[PROTOCOL] = df[PROTOCOL].map(canonical_protocol)  # records written before the pairwise rename
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[list(COLUMNS) + extra].reset_index(drop=True)


def from_rows(rows: Iterable[dict]) -> pd.DataFrame:
    rows = list(rows)
    return normalize(pd.DataFrame(rows, columns=list(COLUMNS)) if not rows else pd.DataFrame(rows))


def _read_one(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".jsonl":
            df = pd.DataFrame([json.loads(line) for line in path.read_text().splitlines() if line.strip()])
        else:
            # dtype=str: no type guessing; normalize() types the schema columns.
            df = pd.read_csv(path, dtype=str, keep_default_na=False, comment=None)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise DataError(f"cannot read records file {path}: {str(e).splitlines()[0]}") from None
    if df.empty:
        return df
    try:
        return normalize(df)
    except DataError as e:
        raise DataError(f"{path}: {e}") from None


def find_record_files(path: str | Path) -> list[Path]:
    """A records file itself, or every ``records.csv``/``records.jsonl`` below a folder."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("records.*") if p.suffix in (".csv", ".jsonl"))
    return []


def load_records(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Concatenate records files (or folders searched for ``records.csv``) into one frame."""
    frames = [_read_one(f) for p in paths for f in find_record_files(p)]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return normalize(pd.DataFrame(columns=list(REQUIRED)))
    return normalize(pd.concat(frames, ignore_index=True))


def run_label(run_dir: str | Path) -> str:
    """How a record names its run: the path relative to the working directory when the run is
    under it (records committed with a project must not hold a machine's absolute paths), else
    the absolute path."""
    path = Path(run_dir).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def write_records(run_dir: str | Path, df: pd.DataFrame, *, merge: bool = True) -> Path:
    """Write ``run_dir/records.csv`` atomically, under an exclusive inter-process lock.

    With ``merge``, rows already in the file for other evaluations (other ``IDENTITY``, e.g.
    other iterations) are kept and rows of the same evaluation are replaced. Read, merge and
    write happen while holding ``fileio.exclusive_lock(records.csv)``, so evaluations of one
    run finishing at once all keep their rows (a later one waits, saying so on stderr). Temp
    files of records writers killed earlier are removed first. Returns the file's path.
    Raises ``I2IError`` if the lock cannot be taken (read-only folder, or held > 10 min).
    """
    path = Path(run_dir) / RECORDS_FILE
    new = normalize(df)
    new[RUN] = run_label(run_dir)  # one spelling per run: tables keep its newest evaluation
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(path, what=f"records of {Path(run_dir)}"):
        # Every records writer holds this lock, so any temp of ours here is an orphan.
        remove_orphan_temps(path.parent, [RECORDS_FILE], min_age_s=0)
        if merge and path.is_file():
            old = _read_one(path)
            if not old.empty:
                old = old[~row_keys(old, IDENTITY).isin(set(row_keys(new, IDENTITY)))]
                new = normalize(pd.concat([old, new], ignore_index=True))
        write_csv(path, new)
    return path


INTEGER = (SEED, ITERATIONS, N_SEEDS, N_FAKE, N_REAL)  # counts: whole numbers where given


def to_json(df: pd.DataFrame) -> str:
    """Records as a JSON array of objects; seeds, iterations and counts as integers (null if absent)."""
    out = df.copy()
    for c in INTEGER:
        if c in out.columns:
            values = pd.to_numeric(out[c], errors="coerce")
            if (values.dropna() % 1 == 0).all():
                out[c] = values.astype("Int64")
    return out.to_json(orient="records")


def write_csv(path: str | Path, df: pd.DataFrame) -> None:
    """Write ``df`` as CSV to ``path`` atomically (``I2IError`` naming it if the disk is full)."""
    with atomic_write(path, "w") as fh:
        df.to_csv(fh, index=False, float_format="%.10g")
