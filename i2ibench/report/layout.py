"""Compact tables as text (fits ``WIDTH`` columns), Markdown and LaTeX (booktabs).

Text: every line is at most ``WIDTH`` characters. Headers wrap at spaces; a table too wide
for the width is split into column blocks that each repeat the row labels; row labels longer
than ``LABEL_MAX`` are cut (the full label goes into the row's footnote); titles and the
provenance lines are wrapped. Best values carry a trailing ``*`` in text, bold in Markdown
and LaTeX. LaTeX tables use booktabs rules (``report.latex``).
"""

from __future__ import annotations

import string
import textwrap
from typing import Iterable, Sequence

from i2ibench.report.compact import CompactTable
from i2ibench.report.latex import latex_escape, latex_tabular
from i2ibench.report.provenance import shorten

WIDTH = 120
LABEL_MAX = 40
HEADER_WRAP = 10  # a header longer than this wraps at its spaces (text)
BEST_MARK = "*"
LEGEND = ("* best in its column (direction from the metric registry). mFID/FID: mean ± sd (n seeds); other "
          "columns: the mean over the same seeds, (n) where their count differs. n/a: not applicable. "
          "Published and reproduced numbers are never compared in one table.")
FORMATS = ("text", "markdown", "latex")


def marker(i: int) -> str:
    """Footnote marker of the i-th noted row: a, b, ..., z, aa, ab, ..."""
    letters = string.ascii_lowercase
    text = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        text = letters[r] + text
    return text


def _rows(t: CompactTable, label_max: int | None) -> tuple[list[str], list[str]]:
    """Row labels with their footnote markers, and the footnotes ('[a] label: note')."""
    labels, notes = [], []
    for label, note in zip(t.labels, t.notes):
        short = shorten(label, label_max) if label_max else label
        if short != label:
            note = f"row {label}" + (f"; {note}" if note else "")
        if note:
            m = f"[{marker(len(notes))}]"
            notes.append(f"{m} {short}: {note}")
            short = f"{short} {m}"
        labels.append(short)
    return labels, notes


def _wrap(text: str, width: int, indent: str = "    ") -> list[str]:
    return textwrap.wrap(text, width=width, subsequent_indent=indent, break_long_words=True,
                         break_on_hyphens=False) or [""]


def _common(t: CompactTable) -> str:
    return "all rows: " + " · ".join(t.common) if t.common else ""


def _header_text(label: str) -> str:
    return "\n".join(textwrap.wrap(label, HEADER_WRAP, break_long_words=False)) if len(label) > HEADER_WRAP else label


def _cell(text: str, best: bool, fmt: str) -> str:
    if not best or not text:
        return text
    if fmt == "markdown":
        return f"**{text}**"
    if fmt == "latex":
        return f"\\textbf{{{text}}}"
    return text + BEST_MARK


def _text_blocks(headers: list[str], labels: list[str], body: list[list[str]], width: int) -> list[str]:
    """tabulate 'simple' tables of the label column plus as many value columns as fit ``width``."""
    from tabulate import tabulate

    def render(cols: Sequence[int]) -> str:
        rows = [[lab] + [r[c] for c in cols] for lab, r in zip(labels, body)]
        return tabulate(rows, headers=["method"] + [headers[c] for c in cols], tablefmt="simple",
                        disable_numparse=True)

    blocks, current = [], []
    for c in range(len(headers)):
        trial = render(current + [c])
        if current and max(map(len, trial.splitlines())) > width:
            blocks.append(render(current))
            current = [c]
        else:
            current.append(c)
    blocks.append(render(current))
    return blocks


def text_table(t: CompactTable, width: int = WIDTH) -> str:
    """One compact table as text, every line at most ``width`` characters."""
    labels, notes = _rows(t, LABEL_MAX)
    headers = [_header_text(c.label) for c in t.columns]
    body = [[_cell(x, b, "text") for x, b in zip(row, flags)] for row, flags in zip(t.cells, t.best)]
    lines = _wrap(t.title, width)
    lines.append("-" * min(max(map(len, lines)), width))
    blocks = _text_blocks(headers, labels, body, width)
    for i, block in enumerate(blocks):
        if i:
            lines.append(f"({t.title}, continued)"[:width])
        lines += block.splitlines()
    if t.common:
        lines += _wrap(_common(t), width)
    for note in notes:
        lines += _wrap(note, width)
    return "\n".join(lines)


def markdown_table(t: CompactTable) -> str:
    from tabulate import tabulate

    labels, notes = _rows(t, None)
    body = [[lab] + [_cell(x, b, "markdown") for x, b in zip(row, flags)]
            for lab, row, flags in zip(labels, t.cells, t.best)]
    table = tabulate(body, headers=["method"] + [c.label for c in t.columns], tablefmt="pipe", disable_numparse=True)
    parts = [f"#### {t.title}", table]
    extra = ([_common(t)] if t.common else []) + notes
    if extra:
        parts.append("  \n".join(extra))
    return "\n\n".join(parts)


def latex_table(t: CompactTable) -> str:
    labels, notes = _rows(t, None)
    rows = [[latex_escape(lab)] + [_cell(latex_escape(x), b, "latex") for x, b in zip(row, flags)]
            for lab, row, flags in zip(labels, t.cells, t.best)]
    tab = latex_tabular(["method"] + [latex_escape(c.label) for c in t.columns], rows)
    comments = [f"% {t.title}"] + ([f"% {_common(t)}"] if t.common else [])
    return "\n".join(comments + [tab] + [f"% {n}" for n in notes])


def render_compact(tables: Iterable[CompactTable], fmt: str = "text", width: int = WIDTH) -> str:
    """All tables in ``fmt`` (text, markdown, latex), each section's title once before its tables,
    the legend once at the end."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}'")
    parts: list[str] = []
    section = None
    for t in tables:
        if t.section_title != section:
            section = t.section_title
            if fmt == "text":
                head = _wrap(section, width)
                parts.append("\n".join(head + ["=" * min(max(map(len, head)), width)]))
            elif fmt == "markdown":
                parts.append(f"### {section}")
            else:
                parts.append(f"% ===== {section}")
        parts.append(text_table(t, width) if fmt == "text" else markdown_table(t) if fmt == "markdown"
                     else latex_table(t))
    if not parts:
        return ""
    if fmt == "text":
        parts.append("\n".join(_wrap(LEGEND, width, indent="  ")))
    elif fmt == "markdown":
        parts.append(LEGEND.replace("* best", "**bold**: best"))
    else:
        parts.append("% " + LEGEND.replace("* best", "bold: best"))
    return "\n\n".join(parts) + "\n"
