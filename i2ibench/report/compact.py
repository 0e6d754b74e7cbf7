"""Compact tables: one small pivot per dataset, protocol and mode, provenance said once.

The full view (``tables.build_tables``) puts every configuration field and every metric in
columns; it is hundreds of characters wide. A compact table has a row per configuration
(the method, plus a short tag when one method has several rows) and a column per headline
metric; everything else about how the rows were made is printed once under the table
(``provenance.describe``): common fields in one block, fields that differ as footnotes keyed
by row.

Tables, in order: each published paper table (per dataset, protocol and mode), then the
reproduced runs, per dataset: one table per translation protocol and mode (``pairwise``,
``pooled`` x ``latent``, ``reference``, ``deterministic``), one of pseudo-label quality
(``labels``, ``labels-initial`` rows) and one of the dataset's own evaluations (cmnist's
colour metrics and uni-modal MSE, two-domain LPIPS to the input and to the truth). Reproduced
and published numbers are never in one table.

Cells: the main metric (mFID, or FID for published single-task tables) as ``mean ± sd (n)``
over seeds; the other metrics as the mean over the same seeds (with ``(n)`` where a metric has
another seed count); ``n/a`` for not applicable; empty where a row has no such record.
``best`` marks, per column, the rows whose shown value is the best (direction from the metric
registry; only columns with two or more values, and never for unranked diagnostics).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pandas as pd

from i2ibench.metrics import keys as mk
from i2ibench.metrics.registry import metric_order
from i2ibench.names import CLASSIFIER, LABELS, LABELS_INITIAL, MODES, PROTOCOLS
from i2ibench.registry import METRICS
from i2ibench.report import records as R
from i2ibench.report.provenance import describe, shorten
from i2ibench.report.published import DECIMALS, TABLES
from i2ibench.report.tables import (
    DIFF,
    MEAN,
    REPRODUCED_SECTION,
    SD,
    N,
    aggregate,
    compare,
    format_cell,
    format_diff,
    metric_decimals,
    metric_label,
    select,
)

# Columns of a translation table, in order (only those some row has are shown).
TRANSLATION_METRICS = (mk.MFID, mk.FID, mk.MKID, mk.TRANSLATION_ACC, mk.CONTENT_PRESERVATION, mk.DENSITY,
                       mk.COVERAGE, mk.LPIPS)
MAIN_METRICS = (mk.MFID, mk.FID)  # the column with ± sd (n) and the difference to --compare
LABEL_PROTOCOLS = (LABELS, LABELS_INITIAL)
LABEL_SUFFIX = {LABELS_INITIAL: "(written prompts)"}  # LANIT's labels before prompt learning
# Fields of a row's configuration besides where it is shown (dataset, protocol, mode).
ROW_FIELDS = [R.METHOD, R.SETTING, R.PRESET, R.ITERATIONS, R.REAL_SPLIT, R.FEATURES, R.VLM, R.EVAL_PARAMS]
NOT_GIVEN = ("", R.UNSPECIFIED, R.MODE_NONE)


@dataclass
class Column:
    """One value column: ``metric`` key (or ``DIFF``), printed ``label``, whether a best is marked."""

    metric: str
    label: str
    ranked: bool


@dataclass
class CompactTable:
    """One compact table. ``cells[i][j]`` is row i's text in column j (without best marks);
    ``best[i][j]`` whether it is the column's best. ``notes[i]``: row i's footnote ('' if none)."""

    section: str            # published table id, or 'reproduced'
    section_title: str
    title: str
    dataset: str
    columns: list[Column]
    methods: list[str]
    labels: list[str]       # method + tag
    cells: list[list[str]]
    best: list[list[bool]]
    common: list[str]
    notes: list[str]
    key: dict[str, str] = field(default_factory=dict)  # protocol, mode of the table where it has one


def _text_key(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Row keys over ``columns``, iterations spelt as in ``aggregate`` ('2400', '' for none)."""
    work = frame[list(columns)].copy()
    if R.ITERATIONS in work.columns and pd.api.types.is_numeric_dtype(work[R.ITERATIONS]):
        work[R.ITERATIONS] = work[R.ITERATIONS].map(lambda v: "" if pd.isna(v) else str(int(v)))
    return R.row_keys(work.astype(str), list(columns))


def _fmt_seed(v: float) -> str:
    return f"{v:g}"


def _classifiers(full: pd.DataFrame) -> dict[str, str]:
    """run -> 'domain: name (val acc 0.911), content: ...' from the newest classifier rows of each run."""
    rows = full[(full[R.PROTOCOL] == CLASSIFIER) & (full[R.METRIC] == mk.CLASSIFIER_VAL_ACC) & (full[R.RUN] != "")]
    out: dict[str, str] = {}
    for run, g in rows.groupby(R.RUN, sort=False):
        g = g[g[R.ITERATIONS].fillna(-1) == g[R.ITERATIONS].fillna(-1).max()]
        parts = []
        for _, r in g.iterrows():
            name = r[R.NOTE].split(":")[0].strip() or "?"
            acc = "" if pd.isna(r[R.VALUE]) else f" (val acc {r[R.VALUE]:.3f})"
            parts.append(f"{r[R.DOMAIN]} {name}{acc}")
        out[str(run)] = ", ".join(dict.fromkeys(parts))
    return out


def _facts(sel: pd.DataFrame, full: pd.DataFrame) -> dict[str, dict[str, str]]:
    """Per configuration (ROW_FIELDS + dataset): its seeds, code versions and classifiers."""
    if sel.empty:
        return {}
    classifiers = _classifiers(full)
    keys = _text_key(sel, ROW_FIELDS + [R.DATASET, R.SOURCE, R.TABLE])
    out: dict[str, dict[str, str]] = {}
    for key, g in sel.groupby(keys, sort=False):
        seeds = sorted(set(g[R.SEED].dropna()))
        out[str(key)] = {
            "seeds": ", ".join(_fmt_seed(s) for s in seeds),
            "code_version": ", ".join(sorted(set(g[R.CODE_VERSION]) - {""})),
            "classifiers": "; ".join(dict.fromkeys(classifiers[r] for r in g[R.RUN] if r in classifiers)),
            "citation": ", ".join(dict.fromkeys(c for c in g[R.CITATION] if c)),
        }
    return out


def _decimals(metric: str, published_decimals: float) -> int:
    return int(published_decimals) if pd.notna(published_decimals) else metric_decimals(metric)


def _ranked(metric: str) -> bool:
    return metric in METRICS and getattr(METRICS.get(metric), "ranked", True)


def _higher_is_better(metric: str) -> bool:
    return METRICS.get(metric).higher_is_better


def _best_flags(values: list[float], decimals: list[int], metric: str) -> list[bool]:
    """Which of ``values`` (NaN = none) equal the best shown value; none when fewer than two
    different values are shown."""
    shown = [round(v, d) if pd.notna(v) else None for v, d in zip(values, decimals)]
    present = [v for v in shown if v is not None]
    if len(set(present)) < 2 or not _ranked(metric):  # one value, or all equal: nothing is best
        return [False] * len(values)
    best = max(present) if _higher_is_better(metric) else min(present)
    return [v is not None and v == best for v in shown]


def _provenance_fields(row: pd.Series, facts: dict[str, str], with_classifiers: bool) -> dict[str, str]:
    fields = {f: str(row[f]) for f in (R.SETTING, R.PRESET, R.ITERATIONS, R.VLM, R.FEATURES, R.REAL_SPLIT,
                                        R.EVAL_PARAMS)}
    fields.update({k: v for k, v in facts.items() if k != "classifiers" or with_classifiers})
    return fields


def _table(part: pd.DataFrame, facts: dict[str, dict[str, str]], columns: list[tuple[str, str, str]],
           row_fields: list[str], *, section: str, section_title: str, title: str, compare_to: str | None,
           label_of=None, key: dict[str, str] | None = None) -> CompactTable | None:
    """Pivot ``part`` (aggregated rows of one table) into a CompactTable.

    ``columns``: (protocol or '', mode or '', metric) per value column ('' matches any); rows are
    the distinct ``row_fields`` configurations, in order of appearance."""
    part = part.assign(_row=_text_key(part, row_fields),
                       _cfg=_text_key(part, ROW_FIELDS + [R.DATASET, R.SOURCE, R.TABLE]))
    row_ids = list(dict.fromkeys(part["_row"]))
    if not row_ids:
        return None
    first = {rid: part[part["_row"] == rid].iloc[0] for rid in row_ids}
    main = next((m for _, _, m in columns if m in MAIN_METRICS), None)
    has_classifier_cols = any(m in (mk.TRANSLATION_ACC, mk.CONTENT_PRESERVATION) for _, _, m in columns)
    # Seeds behind each row's main value (1 where it has none: a single value needs no count).
    main_n = {}
    for rid in row_ids:
        m = part[(part["_row"] == rid) & (part[R.METRIC] == main)] if main else part.iloc[0:0]
        main_n[rid] = int(m.iloc[0][N]) if len(m) and int(m.iloc[0][N]) > 0 else 1
    value_cols: list[Column] = []
    cells: list[list[str]] = [[] for _ in row_ids]
    best: list[list[bool]] = [[] for _ in row_ids]
    for protocol, mode, metric in columns:
        picks = []
        for rid in row_ids:
            sel = part[(part["_row"] == rid) & (part[R.METRIC] == metric)]
            if protocol:
                sel = sel[sel[R.PROTOCOL] == protocol]
            if mode:
                sel = sel[sel[R.MODE] == mode]
            picks.append(sel.iloc[0] if len(sel) else None)
        if all(p is None for p in picks):
            continue
        decs = [_decimals(metric, p[DECIMALS]) if p is not None else 0 for p in picks]
        texts = []
        for rid, p, d in zip(row_ids, picks, decs):
            if p is None:
                texts.append("")
            elif metric == main:
                texts.append(format_cell(p[MEAN], p[SD], int(p[N]), d))
            elif int(p[N]) == 0 or pd.isna(p[MEAN]):
                texts.append("n/a")
            else:
                # The seed count is said once, in the main column; here only where it differs.
                n_main = main_n.get(rid, 1)
                texts.append(f"{p[MEAN]:.{d}f}" + (f" ({int(p[N])})" if int(p[N]) != n_main else ""))
        flags = _best_flags([p[MEAN] if p is not None and int(p[N]) > 0 else float("nan") for p in picks], decs,
                            metric)
        label = metric_label(metric) + (f" ({mode})" if mode and key is None else "")
        value_cols.append(Column(metric, label, _ranked(metric)))
        for i, (t, f) in enumerate(zip(texts, flags)):
            cells[i].append(t)
            best[i].append(f)
        if metric == main and compare_to:
            diffs = [format_diff(p[DIFF], d) if p is not None and DIFF in p.index else "" for p, d in zip(picks, decs)]
            if any(diffs):
                value_cols.append(Column(DIFF, f"Δ{shorten(compare_to, 12)}", False))
                for i, t in enumerate(diffs):
                    cells[i].append(t)
                    best[i].append(False)
    if not value_cols:
        return None
    methods = [str(first[rid][R.METHOD]) for rid in row_ids]
    # What a row is before its tag: the method, or e.g. 'lanit (written prompts)' in label tables.
    bases = [label_of(first[rid], m) if label_of is not None else m for rid, m in zip(row_ids, methods)]
    prov_rows = [_provenance_fields(first[rid], facts.get(first[rid]["_cfg"], {}), has_classifier_cols)
                 for rid in row_ids]
    prov = describe(bases, prov_rows)
    labels = [b + (f" {tag}" if tag else "") for b, tag in zip(bases, prov.tags)]
    return CompactTable(section, section_title, title, str(first[row_ids[0]][R.DATASET]), value_cols, methods, labels,
                        cells, best, prov.common, prov.notes, key or {})


def _title(*parts: str) -> str:
    return " · ".join(p for p in parts if p and p not in NOT_GIVEN)


def _metric_rank(metric: str) -> int:
    order = metric_order()
    return order.index(metric) if metric in order else len(order)


def _translation_tables(part: pd.DataFrame, facts, *, section: str, section_title: str, compare_to: str | None,
                        dataset_title: str) -> list[CompactTable]:
    out = []
    protocols = [p for p in PROTOCOLS if (part[R.PROTOCOL] == p).any()]
    protocols += [p for p in dict.fromkeys(part[R.PROTOCOL]) if p not in protocols]
    modes = [m for m in MODES if (part[R.MODE] == m).any()] + [m for m in dict.fromkeys(part[R.MODE]) if m not in MODES]
    for protocol in protocols:
        for mode in modes:
            g = part[(part[R.PROTOCOL] == protocol) & (part[R.MODE] == mode)]
            if g.empty:
                continue
            present = set(g[R.METRIC])
            metrics = [m for m in TRANSLATION_METRICS if m in present]
            metrics += sorted((m for m in present if m not in TRANSLATION_METRICS), key=_metric_rank) \
                if section != REPRODUCED_SECTION else []
            t = _table(g, facts, [("", "", m) for m in metrics], ROW_FIELDS, section=section,
                       section_title=section_title, title=_title(dataset_title, protocol, mode), compare_to=compare_to,
                       key={R.PROTOCOL: protocol, R.MODE: mode})
            if t is not None:
                out.append(t)
    return out


def _label_table(part: pd.DataFrame, facts, dataset: str) -> CompactTable | None:
    metrics = sorted(set(part[R.METRIC]), key=_metric_rank)

    def label_of(row, text):
        suffix = LABEL_SUFFIX.get(row[R.PROTOCOL], "")
        return f"{text} {suffix}" if suffix else text

    return _table(part, facts, [("", "", m) for m in metrics], ROW_FIELDS + [R.PROTOCOL],
                  section=REPRODUCED_SECTION, section_title=_REPRODUCED_TITLE,
                  title=_title(dataset, "pseudo-label quality (against ground truth)"), compare_to=None,
                  label_of=label_of, key={R.PROTOCOL: "labels"})


def _extras_table(part: pd.DataFrame, facts, dataset: str) -> CompactTable | None:
    """The dataset's own evaluations: a column per (protocol, metric), split by mode only when one
    configuration has the metric in several modes."""
    part = part.assign(_row=_text_key(part, ROW_FIELDS))
    columns: list[tuple[str, str, str]] = []
    pairs = list(dict.fromkeys(zip(part[R.PROTOCOL], part[R.METRIC])))
    pairs.sort(key=lambda pm: _metric_rank(pm[1]))
    for protocol, metric in pairs:
        g = part[(part[R.PROTOCOL] == protocol) & (part[R.METRIC] == metric)]
        if g.groupby("_row")[R.MODE].nunique().max() > 1:
            columns += [(protocol, mode, metric) for mode in dict.fromkeys(g[R.MODE])]
        else:
            columns.append((protocol, "", metric))
    return _table(part.drop(columns="_row"), facts, columns, ROW_FIELDS, section=REPRODUCED_SECTION,
                  section_title=_REPRODUCED_TITLE, title=_title(dataset, "dataset evaluations"), compare_to=None)


_REPRODUCED_TITLE = "Reproduced runs (i2ibench protocol)"


def build_compact(records: pd.DataFrame, *, compare_to: str | None = None,
                  **filters: Sequence[str] | None) -> list[CompactTable]:
    """The compact tables of ``records`` (reproduced and published rows; ``filters`` as
    ``tables.select``): published tables first (``TABLES`` order), then reproduced runs by dataset."""
    full = R.normalize(records)
    sel = select(full, classwise=False, **filters)
    if sel.empty:
        return []
    agg = aggregate(sel)
    if compare_to:
        agg = compare(agg, compare_to)
    facts = _facts(sel, full)
    section_of = agg[R.TABLE].where(agg[R.SOURCE] == R.SOURCE_PUBLISHED, REPRODUCED_SECTION)
    ids = [t for t in TABLES if (section_of == t).any()]
    ids += [t for t in dict.fromkeys(section_of) if t not in ids and t != REPRODUCED_SECTION]
    out: list[CompactTable] = []
    for sid in ids:
        part = agg[section_of == sid]
        title = TABLES.get(sid, sid)
        for dataset in dict.fromkeys(part[R.DATASET]):
            out += _translation_tables(part[part[R.DATASET] == dataset], facts, section=sid, section_title=title,
                                       compare_to=compare_to, dataset_title=dataset)
    rep = agg[section_of == REPRODUCED_SECTION]
    for dataset in dict.fromkeys(rep[R.DATASET]):
        d = rep[rep[R.DATASET] == dataset]
        trans = d[d[R.PROTOCOL].isin(PROTOCOLS)]
        out += _translation_tables(trans, facts, section=REPRODUCED_SECTION, section_title=_REPRODUCED_TITLE,
                                   compare_to=compare_to, dataset_title=dataset)
        labels = d[d[R.PROTOCOL].isin(LABEL_PROTOCOLS)]
        if not labels.empty:
            t = _label_table(labels, facts, dataset)
            out += [t] if t is not None else []
        extras = d[~d[R.PROTOCOL].isin(PROTOCOLS + LABEL_PROTOCOLS)]
        if not extras.empty:
            t = _extras_table(extras, facts, dataset)
            out += [t] if t is not None else []
    return out
