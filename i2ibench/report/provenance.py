"""How the rows of one table were made, said once: what all rows share, what tells them apart.

A compact table shows one row per configuration. Instead of repeating the protocol
parameters, feature extractor, VLM, code version and training length in every row, the rows'
provenance is split three ways (``describe``):

- ``common``: the fields every row has with the same value, printed once under the table;
- ``tags``: a short text after the method name for rows that share a method, made of the first
  differences that tell them apart (the varying items of the ``setting``, then the preset, the
  training length, ...), at most ``TAG_MAX`` characters;
- ``notes``: per row, the fields whose values differ between rows and that its tag does not
  already show, as a footnote keyed by row.

Fields that are lists of items (``setting`` 'a=1, b=2', ``eval`` 'a=1;b=2') are compared item by
item: items every row has are common, the others go to the rows' notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Provenance fields, in the order they are printed, with their printed names.
FIELDS: dict[str, str] = {
    "citation": "source",
    "setting": "setting",
    "preset": "preset",
    "iterations": "iterations",
    "seeds": "seeds",
    "vlm": "VLM",
    "features": "features",
    "real_split": "real split",
    "eval_params": "eval",
    "classifiers": "classifiers",
    "code_version": "code",
}
# Fields made of items, with the separator they are written with.
ITEM_SEPARATORS = {"setting": ", ", "eval_params": ";"}
# Fields that can tell two rows of one method apart, in the order their differences make a tag.
TAG_FIELDS = ("setting", "preset", "iterations", "vlm", "real_split", "features", "eval_params")
TAG_MAX = 28
ELLIPSIS = "…"


@dataclass
class Provenance:
    """``common``: 'name: value' strings; ``tags`` and ``notes``: one string per row ('' when none)."""

    common: list[str]
    tags: list[str]
    notes: list[str]


def split_items(field: str, value: str) -> list[str]:
    """The items of a list-valued field ('a=1;b=2' -> ['a=1', 'b=2']); other fields: [value]."""
    sep = ITEM_SEPARATORS.get(field)
    if not value:
        return []
    if sep is None:
        return [value]
    return [part.strip() for part in value.split(sep) if part.strip()]


def shorten(text: str, limit: int = TAG_MAX) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + ELLIPSIS


def _tag_item(field: str, item: str) -> str:
    if field == "setting":
        return re.sub(r"\s*\([^)]*\)", "", item)  # 'lambda=4.8768 (mean over pairs)' -> 'lambda=4.8768'
    if field == "iterations":
        return f"{item} it"
    if field == "real_split":
        return f"real {item}"
    return item


def _row_tags(methods: list[str], rows: list[dict[str, str]]) -> tuple[list[str], list[set[tuple[str, str]]]]:
    """Per row a tag telling it from the other rows of its method, and the (field, item) pairs
    the tag shows in full (so the row's note need not repeat them).

    Fields are taken in ``TAG_FIELDS`` order, each only while some rows still share a label, so a
    tag holds the first differences that tell the rows apart, not every difference."""
    tags = [""] * len(rows)
    used: list[set[tuple[str, str]]] = [set() for _ in rows]
    by_method: dict[str, list[int]] = {}
    for i, m in enumerate(methods):
        by_method.setdefault(m, []).append(i)
    for idx in by_method.values():
        if len(idx) < 2:
            continue
        for field in TAG_FIELDS:
            if len({tags[i] for i in idx}) == len(idx):
                break
            items = {i: split_items(field, rows[i].get(field, "")) for i in idx}
            colliding = [i for i in idx if sum(tags[j] == tags[i] for j in idx) > 1]
            if len({tuple(items[i]) for i in colliding}) < 2:
                continue  # this field does not tell the colliding rows apart
            shared = set.intersection(*(set(items[i]) for i in idx))
            for i in idx:
                own = [x for x in items[i] if x not in shared]
                if own:
                    tags[i] = (tags[i] + " " if tags[i] else "") + ", ".join(_tag_item(field, x) for x in own)
                    used[i].update((field, x) for x in own)
        for i in idx:
            if len(tags[i]) > TAG_MAX:
                tags[i], used[i] = shorten(tags[i]), set()
        count: dict[str, int] = {}
        for i in idx:  # still the same label: number them
            if sum(tags[j] == tags[i] for j in idx) > 1:
                count[tags[i]] = count.get(tags[i], 0) + 1
                tags[i] = (tags[i] + " " if tags[i] else "") + f"#{count[tags[i]]}"
    return tags, used


def describe(methods: list[str], rows: list[dict[str, str]]) -> Provenance:
    """Split the provenance ``rows`` (field -> value, '' = none; one dict per table row, methods
    alongside) into what is common, the rows' tags and the rows' notes (see the module doc)."""
    tags, used = _row_tags(methods, rows)
    common: list[str] = []
    notes: list[list[str]] = [[] for _ in rows]
    for field, name in FIELDS.items():
        items = [split_items(field, r.get(field, "")) for r in rows]
        if not any(items):
            continue
        shared = [x for x in items[0] if all(x in own for own in items[1:])] if items else []
        if shared:
            common.append(f"{name}: {', '.join(shared)}")
        for note, own, shown in zip(notes, items, used):
            rest = [x for x in own if x not in shared and (field, x) not in shown]
            if rest:
                note.append(f"{name}: {', '.join(rest)}")
    return Provenance(common, tags, ["; ".join(n) for n in notes])
