"""Datasets stored as image files in folders, decoded lazily with PIL.

- multi-domain: ``<root>/{train,val}/<domain>/*.{jpg,jpeg,png,bmp,webp,tif,tiff}`` (``val`` may be named
  ``test``); registered datasets accept several folder names per domain (e.g. the ImageNet
  synset id). Some (AnimalFaces, Food-10) also accept a flat ``<root>/<domain>/`` and hold
  out the last N images of each domain, sorted by name, as ``val`` (as LANIT and TUNIT do).
- ``folder:<path>``: the user's own multi-domain data; domains = sorted sub-folders of train/.
- ``twodomain:<path>``: CycleGAN-style ``trainA trainB testA testB``; domains ``A`` and ``B``,
  or the two names on the two lines of ``<path>/domains.txt``.

Hidden files and folders (names starting with '.', e.g. ``.ipynb_checkpoints`` or macOS
``._x.png``, and ``__MACOSX``) are skipped everywhere (``images.is_hidden``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from i2ibench.data.base import ImageDataset
from i2ibench.data.images import IMAGE_EXTENSIONS, list_images, list_subfolders, load_image
from i2ibench.data.spec import IMAGE_GLOB, DatasetSpec
from i2ibench.errors import DataError

_EXT_TEXT = "/".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)


class FileDataset(ImageDataset):
    """Images read from files on each fetch (shorter side resized, centre crop)."""

    def __init__(self, spec, split: str, img_size: int, paths: list[Path], labels: torch.Tensor, **kwargs):
        super().__init__(spec, split, img_size, labels, **kwargs)
        if len(paths) != len(labels):
            raise ValueError("one label row per path")
        self.paths = list(paths)

    def _fetch(self, idx: torch.Tensor) -> torch.Tensor:
        return torch.stack([load_image(self.paths[i], self.img_size, self.resize_rule) for i in idx.tolist()])


def _subdirs(folder: Path) -> dict[str, Path]:
    """Visible sub-folders of ``folder`` keyed by lower-case name (``.ipynb_checkpoints``,
    ``__MACOSX`` and other hidden folders are never domains)."""
    return {p.name.lower(): p for p in list_subfolders(folder)}


def _domain_dir(spec, domain: str, subdirs: dict[str, Path]) -> Path | None:
    """The sub-folder holding ``domain`` under any of its accepted names."""
    for name in spec.folder_names.get(domain, (domain,)):
        if name.lower() in subdirs:
            return subdirs[name.lower()]
    return None


def _images_of(folder: Path) -> list[Path]:
    paths = list_images(folder)
    if not paths:
        raise DataError(f"empty domain folder {folder}: no images (.{_EXT_TEXT})")
    return paths


def _flat_root(spec, root: Path) -> Path | None:
    """``root`` or ``root/images`` if every domain has a folder directly inside it."""
    if not spec.flat_val_per_domain:
        return None
    for cand in (root, root / "images"):
        if cand.is_dir():
            subdirs = _subdirs(cand)
            if all(_domain_dir(spec, d, subdirs) for d in spec.domains):
                return cand
    return None


def locate(spec, data_root=None) -> Path:
    roots = spec.candidate_roots(data_root)
    if spec.kind == "twodomain":
        for r in roots:
            if (r / "trainA").is_dir() and (r / "trainB").is_dir():
                return r
        raise spec.missing(roots, "no trainA/ and trainB/ folders")
    for r in roots:
        if (r / "train").is_dir():
            if not spec.domains:
                raise DataError(f"{r / 'train'} has no domain sub-folders; expected {spec.expected_layout}")
            _domain_dirs(spec, r / "train")  # every domain has its folder, or a DataError naming it
            return r
        flat = _flat_root(spec, r)
        if flat is not None:
            return flat
    raise spec.missing(roots)


def _split_dir(root: Path, split: str, names: tuple[str, ...]) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise DataError(f"no {split} folder in {root}: expected {' or '.join(str(root / n) for n in names)}")


def _multi_domain_paths(spec, root: Path, split: str) -> list[list[Path]]:
    if not (root / "train").is_dir():  # flat layout: the last N per domain are val
        n_val = spec.flat_val_per_domain
        subdirs = _subdirs(root)
        per_domain = []
        for d in spec.domains:
            paths = _images_of(_domain_dir(spec, d, subdirs))
            if len(paths) <= n_val:
                raise DataError(f"{paths[0].parent} has {len(paths)} images; the flat layout needs more than "
                                f"{n_val} (the last {n_val} are the val split)")
            per_domain.append(paths[-n_val:] if split == "val" else paths[:-n_val])
        return per_domain
    split_dir = _split_dir(root, split, ("train",) if split == "train" else ("val", "test"))
    return [_images_of(folder) for folder in _domain_dirs(spec, split_dir)]


def _domain_dirs(spec, split_dir: Path) -> list[Path]:
    """The folder of each domain inside ``split_dir``, in label order."""
    subdirs = _subdirs(split_dir)
    folders = []
    for d in spec.domains:
        folder = _domain_dir(spec, d, subdirs)
        if folder is None:
            accepted = ", ".join(spec.folder_names.get(d, (d,)))
            found = ", ".join(p.name for p in subdirs.values()) or "none"
            raise DataError(f"{split_dir} has no folder for domain '{d}' (accepted names: {accepted}; found: {found})")
        folders.append(folder)
    return folders


def _twodomain_paths(root: Path, split: str) -> list[list[Path]]:
    per_domain = []
    for side in ("A", "B"):
        names = (f"train{side}",) if split == "train" else (f"test{side}", f"val{side}")
        per_domain.append(_images_of(_split_dir(root, split, names)))
    return per_domain


def load(spec, split: str, img_size: int, data_root=None) -> FileDataset:
    root = locate(spec, data_root)
    if spec.kind == "twodomain":
        per_domain = _twodomain_paths(root, split)
    else:
        per_domain = _multi_domain_paths(spec, root, split)
    paths = [p for ps in per_domain for p in ps]
    labels = torch.cat([torch.full((len(ps),), k, dtype=torch.long) for k, ps in enumerate(per_domain)])
    return FileDataset(spec, split, img_size, paths, labels, root=root)


# --------------------------------------------------------------------------- user data specs

def folder_spec(path: str):
    """Spec of ``folder:<path>``: domains are the sorted sub-folders of ``<path>/train``."""
    if not path:
        raise DataError("folder: needs a path, e.g. folder:/data/mydata (with mydata/train/<domain>/)")
    root = Path(path).expanduser()
    train = root / "train"
    domains = [p.name for p in list_subfolders(train)] if train.is_dir() else []
    return DatasetSpec(
        name=f"folder:{path}", domains=domains, prompt_template="a photo of a {}.", kind="folder",
        source=f"your own images in {root}", root=str(root),
        expected_layout=f"{root}/train/<domain>/{IMAGE_GLOB} and {root}/val/<domain>/{IMAGE_GLOB} "
                        f"(val may be named test); domains = the sorted sub-folders of train/")


def twodomain_spec(path: str):
    """Spec of ``twodomain:<path>`` (CycleGAN layout)."""
    if not path:
        raise DataError("twodomain: needs a path, e.g. twodomain:/data/monet2photo (with trainA/ trainB/ testA/ testB/)")
    root = Path(path).expanduser()
    domains = ["A", "B"]
    names_file = root / "domains.txt"
    if names_file.is_file():
        names = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
        if len(names) != 2 or len(set(names)) != 2:
            raise DataError(f"{names_file} must hold two different domain names, one per line (found {names})")
        domains = names
    return DatasetSpec(
        name=f"twodomain:{path}", domains=domains, prompt_template="a photo of a {}.", kind="twodomain",
        source=f"your own images in {root}", root=str(root),
        expected_layout=f"{root}/{{trainA,trainB,testA,testB}}/{IMAGE_GLOB} (test may be named val); "
                        f"domain names: A and B, or two lines in {root}/domains.txt")
