"""LaTeX output: escaping and booktabs tables.

tabulate 0.10 has no raw booktabs format (its ``latex_booktabs`` escapes every cell, so a cell
cannot be bold; ``latex_raw`` draws ``\\hline``), so tables are written by pandas'
``Styler.to_latex(hrules=True)``: ``\\toprule``, the header, ``\\midrule``, the rows,
``\\bottomrule``, from cells escaped here (Styler does not escape by default).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import pandas as pd

_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
            "±": r"$\pm$", "Δ": r"$\Delta$", "→": r"$\rightarrow$", "·": r"$\cdot$", "…": r"\ldots{}"}


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (± Δ → · … as math or text commands)."""
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text))


def latex_tabular(headers: Sequence[str], rows: Iterable[Sequence[str]], align: str | None = None) -> str:
    """A booktabs ``tabular`` of already escaped cells (one header line, then the rows).

    ``align``: the column format, default 'l' for the first column and 'r' for the others."""
    headers = list(headers)
    frame = pd.DataFrame([list(r) for r in rows], columns=headers)
    fmt = align or ("l" + "r" * (len(headers) - 1))
    return frame.style.hide(axis="index").to_latex(hrules=True, column_format=fmt).rstrip("\n")
