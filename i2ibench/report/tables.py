"""Result tables: pandas pivots of records (reproduced runs and published numbers).

Pipeline: ``select`` (filters, one evaluation per run) -> ``aggregate`` (the seeds of one
configuration -> mean, std, n) -> ``compare`` (difference to a reference method on the same
dataset, protocol and mode) -> ``sections`` (one pivot per published table, then one for
reproduced runs; rows: source, method and whatever else varies; columns: dataset x metric,
or per domain with ``classwise``) -> ``render`` (text, csv, markdown, latex). This is the full
(``--wide``) view; ``report.compact`` builds the default compact tables from the same steps.

Reproduced and published numbers are never mixed in one section: the papers used other
feature extractors and protocols (their rows say which), so only rows of one section are
compared with each other. A published row is compared with the published reference method
of the same paper table (and setting); a reproduced row with reproduced runs of the
reference method with the same preset, dataset, protocol, mode, real split, feature
extractor and evaluation parameters (the newest iteration count if there are several).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import pandas as pd

from i2ibench.metrics import keys as mk
from i2ibench.metrics.registry import MetricSpec, metric_order
from i2ibench.names import CLASSIFIER, canonical_protocol
from i2ibench.registry import METRICS
from i2ibench.report import records as R
from i2ibench.report.latex import latex_escape, latex_tabular
from i2ibench.report.published import DECIMALS, TABLES

REPRODUCED_SECTION = "reproduced"
FORMATS = ("text", "csv", "markdown", "latex")

# The configuration of a row, apart from where it is shown (dataset, metric, domain).
CONFIG = [R.SOURCE, R.TABLE, R.METHOD, R.SETTING, R.PRESET, R.ITERATIONS, R.PROTOCOL, R.MODE,
          R.REAL_SPLIT, R.FEATURES, R.VLM, R.EVAL_PARAMS]
PLACE = [R.DATASET, R.METRIC, R.SCOPE, R.DOMAIN]
KEY = CONFIG + PLACE
# What must match for --compare besides the place (a method's own VLM and training length may differ).
COMPARE_KEY = [c for c in KEY if c not in (R.METHOD, R.VLM, R.ITERATIONS)]
MEAN, SD, N, DIFF = "mean", "sd", "n", "diff"

DEFAULT_DECIMALS = 3  # a metric key the registry does not know
# Accepted spellings for --metric.
METRIC_ALIASES = {"fid": ("fid", "mfid"), "mfid": ("fid", "mfid"), "d&c": ("density", "coverage")}


# --------------------------------------------------------------------------- selection

def _lower_set(values: Sequence[str] | None) -> set[str] | None:
    if not values:
        return None
    out: set[str] = set()
    for v in values:
        for part in str(v).split(","):
            if part.strip():
                out.add(part.strip().lower())
    return out or None


def _protocol_set(values: Sequence[str] | None) -> set[str] | None:
    names = _lower_set(values)
    return None if names is None else {canonical_protocol(n) for n in names}


def select(records: pd.DataFrame, *, datasets: Sequence[str] | None = None, methods: Sequence[str] | None = None,
           metrics: Sequence[str] | None = None, protocols: Sequence[str] | None = None,
           modes: Sequence[str] | None = None, tables: Sequence[str] | None = None,
           classwise: bool = False) -> pd.DataFrame:
    """Rows matching the filters (each a list of accepted values, comma lists allowed)."""
    df = R.normalize(records)
    if df.empty:
        return df
    df = df[df[R.SCOPE] != R.SCOPE_OVERALL] if classwise else df[df[R.SCOPE] == R.SCOPE_OVERALL]
    section = df[R.TABLE].where(df[R.SOURCE] == R.SOURCE_PUBLISHED, REPRODUCED_SECTION)
    metric_set = _lower_set(metrics)
    if metric_set:
        metric_set = {a for m in metric_set for a in METRIC_ALIASES.get(m, (m,))}
    for col, wanted in ((R.DATASET, _lower_set(datasets)), (R.METHOD, _lower_set(methods)),
                        (R.METRIC, metric_set), (R.PROTOCOL, _protocol_set(protocols)), (R.MODE, _lower_set(modes))):
        if wanted:
            df = df[df[col].str.lower().isin(wanted)]
    wanted_tables = _lower_set(tables)
    if wanted_tables:
        df = df[section.loc[df.index].str.lower().isin(wanted_tables)]
    return _latest_evaluation(df)


def _latest_evaluation(df: pd.DataFrame) -> pd.DataFrame:
    """Per run directory, only its newest evaluated iteration; per seed of a configuration, the newest row."""
    rep = df[R.SOURCE] == R.SOURCE_REPRODUCED
    with_run = rep & (df[R.RUN] != "")
    if with_run.any():
        newest = df[with_run].groupby(R.RUN)[R.ITERATIONS].transform("max")
        stale = pd.Series(False, index=df.index)
        stale[with_run] = df.loc[with_run, R.ITERATIONS].fillna(-1) < newest.fillna(-1)
        df = df[~stale]
    # One value per seed of a configuration (two runs with the same seed are one seed twice);
    # rows without a seed are told apart by their run.
    who = df[R.SEED].map(lambda v: f"seed {v:g}" if pd.notna(v) else "").where(df[R.SEED].notna(), df[R.RUN])
    df = df.assign(_who=who)
    df = df.assign(_k=R.row_keys(df, ["_who", *KEY])).drop(columns="_who").sort_values(R.DATE, kind="stable")
    df = df.drop_duplicates("_k", keep="last").drop(columns="_k")
    return df.sort_index()


# --------------------------------------------------------------------------- aggregation

def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration and place: mean, sd and n over seeds.

    Published rows carry their own mean (value), sd (std column) and n (n_seeds, default 1).
    A NaN value (not applicable) counts in no n; all-NaN gives mean NaN and n 0.
    """
    if df.empty:
        return pd.DataFrame(columns=KEY + [MEAN, SD, N, DECIMALS])
    df = df.copy()
    if DECIMALS not in df.columns:
        df[DECIMALS] = math.nan
    keys = df[KEY].copy()
    keys[R.ITERATIONS] = keys[R.ITERATIONS].map(lambda v: "" if pd.isna(v) else str(int(v)))
    keys = keys.astype(str)
    work = pd.concat([keys, df[[R.VALUE, R.STD, R.N_SEEDS, DECIMALS, R.SOURCE]].rename(
        columns={R.SOURCE: "_src"})], axis=1)
    out = []
    for key, g in work.groupby(KEY, sort=False, dropna=False):
        vals = g[R.VALUE].dropna()
        row = dict(zip(KEY, key))
        if (g["_src"] == R.SOURCE_PUBLISHED).all() and len(g) == 1:
            v = g.iloc[0]
            n = 0 if pd.isna(v[R.VALUE]) else (int(v[R.N_SEEDS]) if pd.notna(v[R.N_SEEDS]) else 1)
            row.update({MEAN: v[R.VALUE], SD: v[R.STD], N: n, DECIMALS: v[DECIMALS]})
        else:
            row.update({MEAN: vals.mean() if len(vals) else math.nan,
                        SD: vals.std(ddof=1) if len(vals) > 1 else math.nan,
                        N: int(len(vals)), DECIMALS: g[DECIMALS].max()})
        out.append(row)
    return pd.DataFrame(out)


def compare(agg: pd.DataFrame, method: str) -> pd.DataFrame:
    """Add ``diff`` = mean - mean of ``method`` at the same COMPARE_KEY (NaN where it has none)."""
    agg = agg.copy()
    agg[DIFF] = math.nan
    if agg.empty:
        return agg
    ref = agg[agg[R.METHOD].str.lower() == method.lower()]
    if ref.empty:
        return agg
    # Several matches (reference runs of other lengths): the newest iteration count.
    ref = ref.assign(_it=pd.to_numeric(ref[R.ITERATIONS], errors="coerce").fillna(-1))
    ref = ref.sort_values("_it", kind="stable").drop_duplicates(COMPARE_KEY, keep="last")
    ref = ref[COMPARE_KEY + [MEAN, DECIMALS]].rename(columns={MEAN: "_ref", DECIMALS: "_ref_dec"})
    merged = agg.merge(ref, on=COMPARE_KEY, how="left")
    is_ref = merged[R.METHOD].str.lower() == method.lower()
    merged[DIFF] = (merged[MEAN] - merged["_ref"]).where(~is_ref)
    merged[DECIMALS] = merged[[DECIMALS, "_ref_dec"]].max(axis=1, skipna=True).where(merged[DECIMALS].notna())
    return merged.drop(columns=["_ref", "_ref_dec"])


# --------------------------------------------------------------------------- formatting

def _spec(metric: str) -> MetricSpec | None:
    return METRICS.get(metric) if metric in METRICS else None


def metric_decimals(metric: str) -> int:
    """Decimals of a reproduced value of ``metric`` (the metric registry's)."""
    spec = _spec(metric)
    return spec.decimals if spec is not None else DEFAULT_DECIMALS


def _decimals(metric: str, published_decimals: float) -> int:
    if pd.notna(published_decimals):
        return int(published_decimals)  # published numbers keep the paper's
    return metric_decimals(metric)


def format_cell(mean: float, sd: float, n: int, decimals: int) -> str:
    """'34.11', '13.73 ± 0.06 (10)', '0.4515 (10)' (n without a std), 'n/a' (no value)."""
    if n == 0 or pd.isna(mean):
        return "n/a"
    text = f"{mean:.{decimals}f}"
    if n > 1:
        text += (f" ± {sd:.{decimals}f}" if pd.notna(sd) else "") + f" ({n})"
    return text


def format_diff(diff: float, decimals: int) -> str:
    return "" if pd.isna(diff) else f"{diff:+.{decimals}f}"


def metric_label(metric: str) -> str:
    spec = _spec(metric)
    return spec.label if spec is not None else metric


def _diff_label(metric: str, compare_to: str) -> str:
    return f"{metric_label(metric)} Δ{compare_to}"


def _metric_rank(metric: str) -> tuple[int, str]:
    order = metric_order()
    return (order.index(metric) if metric in order else len(order), metric)


# --------------------------------------------------------------------------- sections

@dataclass
class Section:
    id: str
    title: str
    frame: pd.DataFrame  # display strings; index = the varying row levels; columns = header tuples
    constants: dict[str, str] = field(default_factory=dict)  # row levels equal on every row


ROW_LEVELS = [R.SOURCE, R.METHOD, R.SETTING, R.PRESET, R.ITERATIONS, R.PROTOCOL, R.MODE, R.REAL_SPLIT,
              R.FEATURES, R.VLM, R.EVAL_PARAMS]
ALWAYS_SHOWN = (R.SOURCE, R.METHOD)


def _pivot(agg: pd.DataFrame, compare_to: str | None, classwise: bool) -> tuple[pd.DataFrame, dict[str, str]]:
    rows = ROW_LEVELS + ([R.DATASET, R.DOMAIN] if classwise else [])
    constants = {c: agg[c].iloc[0] for c in rows if c not in ALWAYS_SHOWN and agg[c].nunique() == 1}
    index_cols = [c for c in rows if c not in constants]
    col_place = [R.METRIC] if classwise else [R.DATASET, R.METRIC]
    agg = agg.copy()
    agg["_cell"] = [format_cell(m, s, int(n), _decimals(met, d))
                    for m, s, n, d, met in zip(agg[MEAN], agg[SD], agg[N], agg[DECIMALS], agg[R.METRIC])]
    has_diff = compare_to is not None and DIFF in agg.columns
    if has_diff:
        agg["_diff"] = [format_diff(x, _decimals(met, d)) for x, d, met in zip(agg[DIFF], agg[DECIMALS], agg[R.METRIC])]
    # Orders: rows and datasets as they first appear, metrics canonical.
    row_keys = list(dict.fromkeys(map(tuple, agg[index_cols].itertuples(index=False, name=None))))
    datasets = list(dict.fromkeys(agg[R.DATASET]))
    metrics = sorted(set(agg[R.METRIC]), key=_metric_rank)
    columns: list[tuple[str, ...]] = []
    places = [(m,) for m in metrics] if classwise else [(d, m) for d in datasets for m in metrics
                                                         if ((agg[R.DATASET] == d) & (agg[R.METRIC] == m)).any()]
    for p in places:
        columns.append(p[:-1] + (metric_label(p[-1]),))
        if has_diff:
            columns.append(p[:-1] + (_diff_label(p[-1], compare_to),))
    cells = {rk: {} for rk in row_keys}
    for _, r in agg.iterrows():
        rk = tuple(r[c] for c in index_cols)
        place = tuple(r[c] for c in col_place)
        cells[rk][place[:-1] + (metric_label(place[-1]),)] = r["_cell"]
        if has_diff:
            cells[rk][place[:-1] + (_diff_label(place[-1], compare_to),)] = r["_diff"]
    frame = pd.DataFrame([[cells[rk].get(c, "") for c in columns] for rk in row_keys], columns=pd.MultiIndex.from_tuples(columns) if columns else None)
    frame.index = pd.MultiIndex.from_tuples(row_keys, names=index_cols)
    if has_diff:  # a Δ column only where some row has a difference
        keep = [c for c in columns if "Δ" not in c[-1] or (frame[c] != "").any()]
        frame = frame[keep]
    return frame, constants


def sections(agg: pd.DataFrame, compare_to: str | None = None, classwise: bool = False) -> list[Section]:
    """Published tables (in ``TABLES`` order, then unknown ids) and then reproduced runs."""
    if agg.empty:
        return []
    section_of = agg[R.TABLE].where(agg[R.SOURCE] == R.SOURCE_PUBLISHED, REPRODUCED_SECTION)
    ids = [t for t in TABLES if (section_of == t).any()]
    ids += [t for t in dict.fromkeys(section_of) if t not in ids and t != REPRODUCED_SECTION]
    if (section_of == REPRODUCED_SECTION).any():
        ids.append(REPRODUCED_SECTION)
    out = []
    for sid in ids:
        part = agg[section_of == sid]
        frame, constants = _pivot(part, compare_to, classwise)
        title = TABLES.get(sid, "Reproduced runs (i2ibench protocol)" if sid == REPRODUCED_SECTION else sid)
        if classwise:
            title += ", per domain"
        out.append(Section(sid, title, frame, constants))
    return out


def build_tables(records: pd.DataFrame, *, compare_to: str | None = None, classwise: bool = False,
                 **filters: Sequence[str] | None) -> list[Section]:
    """Filters -> seeds aggregated -> optional comparison -> sections."""
    agg = aggregate(select(records, classwise=classwise, **filters))
    if compare_to:
        agg = compare(agg, compare_to)
    return sections(agg, compare_to, classwise)


# --------------------------------------------------------------------------- rendering

def _flat_rows(section: Section, sep: str) -> tuple[list[str], list[list[str]]]:
    """Headers and body rows. ``sep`` joins a column's (dataset, metric) header; with a newline
    (text format) a dataset is named once, over the first of its columns."""
    f = section.frame
    headers = list(f.index.names)
    previous: tuple = ()
    for c in f.columns:
        c = c if isinstance(c, tuple) else (c,)
        if sep == "\n" and len(c) > 1:
            group = c[:-1]
            label = c[-1][c[-1].index("Δ"):] if "Δ" in c[-1] else c[-1]  # 'mFID Δtunit' after 'mFID'
            headers.append(sep.join(("" if group == previous else " ".join(group), label)))
            previous = group
        else:
            headers.append(sep.join(str(p) for p in c))
    body = [[("" if v is None else str(v)) for v in (k if isinstance(k, tuple) else (k,))] + list(map(str, row))
            for k, row in zip(f.index, f.itertuples(index=False, name=None))]
    return headers, body


def _constants_line(section: Section) -> str:
    return "; ".join(f"{k}: {v}" for k, v in section.constants.items() if v not in ("", "nan"))


def render(secs: Iterable[Section], fmt: str = "text") -> str:
    """All sections as one string in ``fmt`` (csv: one CSV with a leading ``table`` column)."""
    from tabulate import tabulate

    secs = list(secs)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}'")
    if fmt == "csv":
        frames = []
        for s in secs:
            headers, body = _flat_rows(s, " ")
            frames.append(pd.DataFrame(body, columns=headers).assign(**{R.TABLE: s.id}))
        if not frames:
            return ""
        out = pd.concat(frames, ignore_index=True)
        out = out[[R.TABLE] + [c for c in out.columns if c != R.TABLE]].fillna("")
        buf = io.StringIO()
        out.to_csv(buf, index=False)
        return buf.getvalue()
    parts = []
    for s in secs:
        const = _constants_line(s)
        if fmt == "text":
            headers, body = _flat_rows(s, "\n")
            parts.append(f"{s.title}\n{'=' * len(s.title)}\n" + (f"{const}\n" if const else "")
                         + tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True))
        elif fmt == "markdown":
            headers, body = _flat_rows(s, " ")
            parts.append(f"### {s.title}\n\n" + (f"{const}\n\n" if const else "")
                         + tabulate(body, headers=headers, tablefmt="pipe", disable_numparse=True))
        else:
            headers, body = _flat_rows(s, " ")
            table = latex_tabular([latex_escape(h) for h in headers], [[latex_escape(c) for c in row] for row in body])
            parts.append(f"% {s.title}\n" + (f"% {const}\n" if const else "") + table)
    return "\n\n".join(parts) + ("\n" if parts else "")


# The columns of an evaluation's summary (the rest is in the records and `i2ibench table --wide`).
WEAK_CLASSIFIER = 0.8  # val accuracy below which the summary warns about classifier metrics
SUMMARY_METRICS = (mk.MFID, mk.MKID, mk.TRANSLATION_ACC, mk.CONTENT_PRESERVATION, mk.PRECISION, mk.RECALL,
                   mk.DENSITY, mk.COVERAGE, mk.LPIPS)


def _extra_label(protocol: str, metric: str) -> str:
    label = metric_label(metric)
    return label if label.lower().startswith(protocol.lower()) else f"{protocol} {label}"


def summary_text(records: pd.DataFrame) -> str:
    """The overall rows of one evaluation, one line per protocol and mode: mFID with its 95 %
    bootstrap interval, mKID, the classifier metrics, precision/recall, density/coverage, LPIPS."""
    df = R.normalize(records)
    df = df[df[R.SCOPE] == R.SCOPE_OVERALL]
    if df.empty:
        return "(no overall results)"
    head = df.iloc[0]
    lines = [f"{head[R.METHOD]} on {head[R.DATASET]} ({head[R.PRESET]}, seed {head[R.SEED]:.0f}"
             + (f", {head[R.ITERATIONS]:.0f} iterations" if pd.notna(head[R.ITERATIONS]) else "") + ")"]
    shown = [m for m in SUMMARY_METRICS if m in set(df[R.METRIC])]
    body = []
    for (p, m), g in df.groupby([R.PROTOCOL, R.MODE], sort=False):
        vals = dict(zip(g[R.METRIC], g[R.VALUE]))
        if not any(x in vals for x in shown):
            continue  # label-quality and dataset-evaluation rows have their own keys

        def cell(x: str) -> str:
            if x not in vals:
                return ""
            if pd.isna(vals[x]):
                return "n/a"
            text = f"{vals[x]:.{metric_decimals(x)}f}"
            low, high = vals.get(mk.MFID_CI_LOW), vals.get(mk.MFID_CI_HIGH)
            if x == mk.MFID and low is not None and pd.notna(low) and pd.notna(high):
                text += f" [{low:.{metric_decimals(x)}f}, {high:.{metric_decimals(x)}f}]"
            return text

        body.append([p, m] + [cell(x) for x in shown])
    from tabulate import tabulate

    headers = ["protocol", "mode"] + [metric_label(x) + (" [95% CI]" if x == mk.MFID else "") for x in shown]
    lines.append(tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True))
    other = sorted({(p, x) for p, x in zip(df[R.PROTOCOL], df[R.METRIC]) if x not in SUMMARY_METRICS
                    and x not in (mk.KID_STD, mk.MFID_CI_LOW, mk.MFID_CI_HIGH, mk.MKID_CI_LOW, mk.MKID_CI_HIGH)})
    extras = df[[(p, x) in other for p, x in zip(df[R.PROTOCOL], df[R.METRIC])]]
    if not extras.empty:
        lines.append("; ".join(_extra_label(r[R.PROTOCOL], r[R.METRIC])
                               + (f" ({r[R.DOMAIN]})" if r[R.DOMAIN] else "") + " "
                               + ("n/a" if pd.isna(r[R.VALUE]) else f"{r[R.VALUE]:.{metric_decimals(r[R.METRIC])}f}")
                               for _, r in extras.iterrows()))
    classifiers = R.normalize(records)
    classifiers = classifiers[(classifiers[R.PROTOCOL] == CLASSIFIER) & (classifiers[R.METRIC] == mk.CLASSIFIER_VAL_ACC)]
    for _, r in classifiers.iterrows():
        name = r[R.NOTE].split(":")[0]
        weak = " (weak: read its metrics with care)" if pd.notna(r[R.VALUE]) and r[R.VALUE] < WEAK_CLASSIFIER else ""
        lines.append(f"{r[R.DOMAIN]} classifier {name}: val accuracy {r[R.VALUE]:.3f}{weak}")
    return "\n".join(lines)
