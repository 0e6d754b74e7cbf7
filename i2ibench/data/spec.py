"""What a dataset is: its domains, splits, LANIT prompt template and where its files come from.

A ``DatasetSpec`` is plain data plus the text of its errors; finding and loading the files is
``i2ibench.data.catalog``'s (which knows every loader).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from i2ibench.data.prompts import base_prompt
from i2ibench.errors import DataError

IMAGE_GLOB = "*.{jpg,jpeg,png,bmp,webp,tif,tiff}"


@dataclass
class DatasetSpec:
    """What a dataset is: its domains (index = label), splits, LANIT prompts, and its files."""

    name: str
    domains: list[str]
    multi_label: bool = False
    default_img_size: int = 256
    splits: tuple[str, ...] = ("train", "val")
    prompt_template: str | None = None   # LANIT domain prompt, "{}" = the domain word
    source: str = ""                     # where the files come from (human text)
    expected_layout: str = ""            # one line, used in error messages
    kind: str = "folder"                 # loader: fashion | cmnist | folder | twodomain | celebahq | subset
    # Accepted folder (or attribute-column) names per domain, matched case-insensitively.
    folder_names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    parent: str | None = None            # kind "subset": the dataset restricted to `domains`
    root: str | None = None              # fixed location (folder:<path>, twodomain:<path>)
    system_dirs: tuple[str, ...] = ()    # locations tried after the user's data roots
    flat_val_per_domain: int = 0         # >0: also accept <root>/<domain>/, last N per domain = val
    # Domains with one appearance per content (no style to sample), e.g. cmnist's gray digits.
    unimodal_domains: tuple[str, ...] = ()
    # Evaluations beyond the protocols that every method on this dataset gets (names registered
    # in i2ibench.evaluation.extras), e.g. colour recall on cmnist.
    evaluations: tuple[str, ...] = ()
    # Where each image's true translation into the other domain is known: "" (nowhere), "pair"
    # (an image's aligned pair is its unique translation, e.g. cmnist color -> gray) or "own"
    # (the loader knows it; ``ImageDataset.true_translation``).
    truth: str = ""
    truth_sources: tuple[str, ...] = ()  # domains whose images' true translation is known (empty: all)

    @property
    def base_prompt(self) -> str | None:
        """The LANIT base prompt: the template without the domain word."""
        return None if self.prompt_template is None else base_prompt(self.prompt_template)

    @property
    def unimodal(self) -> tuple[int, ...]:
        """Indices of the uni-modal domains."""
        return tuple(self.domains.index(d) for d in self.unimodal_domains)

    @property
    def num_domains(self) -> int:
        return len(self.domains)

    def prompts(self) -> list[str]:
        """The LANIT domain prompts, one per domain."""
        if self.prompt_template is None:
            return []
        return [self.prompt_template.format(d) for d in self.domains]

    def candidate_roots(self, data_root: str | os.PathLike | None = None) -> list[Path]:
        """Folders searched for this dataset's files, in order."""
        if self.root is not None:  # folder:/twodomain: (re-pointed by catalog.get_spec's data_root)
            return [Path(self.root).expanduser()]
        if data_root is not None:
            root = Path(data_root).expanduser()
            return [root, root / self.name]
        roots = []
        if os.environ.get("I2IBENCH_DATA"):
            roots.append(Path(os.environ["I2IBENCH_DATA"]).expanduser() / self.name)
        roots.append(Path.home() / "data" / self.name)
        roots += [Path(d) for d in self.system_dirs]
        return roots

    def missing(self, roots: list[Path], what: str = "no dataset files found") -> DataError:
        """The one-line error for files that are not where they should be."""
        where = ", ".join(str(r) for r in roots)
        return DataError(
            f"{self.name}: {what} (looked in {where}). Expected layout: {self.expected_layout}. "
            f"Domains (label order): {', '.join(self.domains) or '(from the folders)'}. "
            f"Source: {self.source}. Put the files there{'' if self.root else ', or pass --data-root DIR'}."
        )

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            raise DataError(f"unknown split '{split}' for dataset {self.name}; valid splits: {', '.join(self.splits)}")
