"""The papers' numbers, as published: ``results/published/*.csv`` in the record schema.

Each row is one number of one paper table with ``source = published``, the ``table`` it comes
from (ids in ``TABLES``), its ``citation``, and the protocol as far as the paper (and, where
the paper is silent, its official code) says: ``protocol``/``mode`` are ``unspecified`` where
nothing says. Values are kept as printed: the number of decimals is read from the file
(``decimals`` column) so a table shows 47.70 as 47.70, not 47.7.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from i2ibench.errors import DataError
from i2ibench.report import records as R

DECIMALS = "decimals"

# Published table id -> section title, in the order tables are shown.
TABLES: dict[str, str] = {
    "lanit-table1": "LANIT (Park et al., CVPR 2023) Table 1: mFID and density / coverage (published)",
    "lanit-table2": "LANIT Table 2: TUNIT vs LANIT by number of domains N (published)",
    "stargan2-readme": "StarGAN v2 (Choi et al., CVPR 2020) README: FID and LPIPS, mean of 10 seeds (published)",
    "cliptravelgan-table1": "CLIPTraVeLGAN (Bodyanskiy et al., 2023) Table 1: GTA -> Cityscapes FID by lambda and updates (published)",
    "cliptravelgan-monet": "CLIPTraVeLGAN Section 5: Monet -> photo FID (published)",
}


def results_dir() -> Path:
    """The repository's ``results/`` folder (next to the package), else ``./results``."""
    repo = Path(__file__).resolve().parents[2] / "results"
    return repo if repo.is_dir() else Path("results")


def published_dir() -> Path:
    return results_dir() / "published"


def decimals_of(text: str) -> float:
    """Digits after the decimal point of a number as printed ('47.70' -> 2); NaN if none given."""
    text = str(text).strip()
    if not text:
        return float("nan")
    return float(len(text.split(".", 1)[1])) if "." in text else 0.0


def load_published(folder: str | Path | None = None) -> pd.DataFrame:
    """Every published number under ``folder`` (default ``results/published``), with ``decimals``."""
    folder = Path(folder) if folder is not None else published_dir()
    frames = []
    for path in sorted(folder.glob("*.csv")):
        try:
            raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, ValueError, pd.errors.ParserError) as e:
            raise DataError(f"cannot read published table {path}: {str(e).splitlines()[0]}") from None
        if raw.empty:
            continue
        if R.VALUE not in raw.columns:
            raise DataError(f"{path}: no '{R.VALUE}' column")
        raw[DECIMALS] = [decimals_of(v) for v in raw[R.VALUE]]
        try:
            df = R.normalize(raw)
        except DataError as e:
            raise DataError(f"{path}: {e}") from None
        bad = df[df[R.SOURCE] != R.SOURCE_PUBLISHED]
        if len(bad):
            raise DataError(f"{path}: every row must have source={R.SOURCE_PUBLISHED}")
        frames.append(df)
    if not frames:
        return R.normalize(pd.DataFrame(columns=list(R.REQUIRED) + [DECIMALS]))
    return R.normalize(pd.concat(frames, ignore_index=True))
