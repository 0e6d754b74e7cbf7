"""The registered datasets, ``get_spec``, ``locate`` and ``create_dataset``.

Every dataset is a ``DatasetSpec`` returned by a small function registered with
``@register_dataset("name")``. Importing this module registers them all and touches no file;
loaders (``fashion``, ``cmnist``, ``folder``, ``celeba`` in this package) are imported when
a dataset is created or located. Two name prefixes build specs for the user's own data:
``folder:<path>`` (``<path>/{train,val}/<domain>/``) and ``twodomain:<path>``
(``<path>/{trainA,trainB,testA,testB}/``).

Data roots: ``data_root`` if given (the dataset's own folder; ``data_root/<name>`` is also
tried), else ``$I2IBENCH_DATA/<name>``, ``~/data/<name>`` and the spec's system locations
(e.g. the Debian packages' folders).
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from types import ModuleType

from i2ibench.config import RunConfig
from i2ibench.data.base import ImageDataset
from i2ibench.data.images import RESIZE_RULES
from i2ibench.data.spec import IMAGE_GLOB, DatasetSpec
from i2ibench.errors import DataError
from i2ibench.names import LPIPS_IO, LPIPS_TRUTH
from i2ibench.registry import DATASETS, UnknownNameError, register_dataset

__all__ = ["DatasetSpec", "ImageDataset", "create_dataset", "get_spec", "locate", "available",
           "register_dataset", "FASHION_CLASSES", "ANIMALFACES_SYNSETS", "IMAGE_GLOB"]

CUSTOM_PREFIXES = ("folder:", "twodomain:")


def _loader(kind: str) -> ModuleType:
    """The loader module of a spec kind: ``locate(spec, data_root) -> Path`` and
    ``load(spec, split, img_size, data_root) -> ImageDataset``. Imported on first use, so that
    listing datasets touches no loader and no file."""
    if kind == "fashion":
        from i2ibench.data import fashion as loader
    elif kind == "cmnist":
        from i2ibench.data import cmnist as loader
    elif kind in ("folder", "twodomain"):
        from i2ibench.data import folder as loader
    elif kind == "celebahq":
        from i2ibench.data import celeba as loader
    elif kind == "fashion-flip":
        from i2ibench.data import fashion_flip as loader
    else:
        raise DataError(f"unknown dataset kind '{kind}'")
    return loader


def locate(spec: DatasetSpec, data_root: str | os.PathLike | None = None) -> Path:
    """Where ``spec``'s files are; DataError (where to put what, layout, class names) if absent."""
    if spec.kind == "subset":
        return locate(get_spec(spec.parent), data_root)
    return _loader(spec.kind).locate(spec, data_root)


def available(spec: DatasetSpec, data_root: str | os.PathLike | None = None) -> bool:
    """Whether ``spec``'s files are where ``locate`` looks."""
    try:
        locate(spec, data_root)
        return True
    except DataError:
        return False


# --------------------------------------------------------------------------- look-up

def get_spec(name: str, data_root: str | os.PathLike | None = None) -> DatasetSpec:
    """The spec of a registered dataset, or of ``folder:<path>`` / ``twodomain:<path>``.

    ``data_root`` re-points a ``folder:``/``twodomain:`` dataset whose files moved: the spec
    keeps its name (records and caches still say which dataset it is) and reads the new place.
    """
    if name.startswith(CUSTOM_PREFIXES):
        prefix, _, path = name.partition(":")
        path = str(data_root) if data_root is not None else path
        folder = _loader("folder")
        spec = folder.folder_spec(path) if prefix == "folder" else folder.twodomain_spec(path)
        spec.name = name
        return spec
    try:
        make = DATASETS.get(name)
    except UnknownNameError as e:
        raise UnknownNameError(f"{e}. Own data: folder:<path> or twodomain:<path>.") from None
    return make()


def create_dataset(name: str, split: str = "train", img_size: int | None = None,
                   data_root: str | os.PathLike | None = None, resize: str = "crop") -> ImageDataset:
    """One split of a dataset, images resized to ``img_size`` (default: the spec's).

    ``data_root``: where the files are (a registered dataset's own folder, or the new place of
    a ``folder:``/``twodomain:`` dataset that moved). ``resize``: how file images become squares
    (``data.images.load_image``: ``crop`` or the official loaders' ``squash``).
    """
    if resize not in RESIZE_RULES:
        raise DataError(f"unknown resize rule '{resize}'; valid: {', '.join(RESIZE_RULES)}")
    spec = get_spec(name, data_root)
    spec.check_split(split)
    size = spec.default_img_size if img_size is None else img_size
    if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 1:
        raise DataError(f"image size must be a positive integer, got {size!r}")
    size = int(size)
    if spec.kind == "subset":
        parent = create_dataset(spec.parent, split, size, data_root, resize)
        return parent.restrict(spec.domains, spec)
    ds = _loader(spec.kind).load(spec, split, size, data_root)
    ds.resize_rule = resize
    return ds


def run_dataset(cfg: RunConfig, split: str) -> ImageDataset:
    """A split of a run's dataset as its config says: image size, data root, resize rule."""
    return create_dataset(cfg.dataset, split, cfg.train.img_size, cfg.data_root, cfg.train.resize)


# --------------------------------------------------------------------------- registered data

FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat",
                   "sandal", "shirt", "sneaker", "bag", "ankle boot"]

# LANIT's ten AnimalFaces classes, in its order, with the ImageNet synset folder names that
# FUNIT's AnimalFaces and TUNIT use (TUNIT's att_to_use [11, 43, 56, 74, 89, 128, 130, 138,
# 140, 141] indexes the 149 sorted synset folders of FUNIT's class lists).
ANIMALFACES_SYNSETS = {
    "beagle": "n02088364",
    "dandie dinmont terrier": "n02096437",
    "golden retriever": "n02099601",
    "malinois": "n02105162",
    "appenzeller sennenhund": "n02107908",
    "white fox": "n02120079",
    "tabby cat": "n02123045",
    "snow leopard": "n02128757",
    "lion": "n02129165",
    "bengal tiger": "n02129604",
}
FOOD10_CLASSES = ["baby back ribs", "beef carpaccio", "beignets", "bibimbap", "caesar salad",
                  "clam chowder", "dumplings", "edamame", "spaghetti bolognese", "strawberry shortcake"]
CELEBAHQ_ATTRIBUTES = {  # LANIT's ten attributes -> CelebA attribute column
    "bangs": "Bangs", "blond hair": "Blond_Hair", "black hair": "Black_Hair", "smiling": "Smiling",
    "arched eyebrows": "Arched_Eyebrows", "heavy makeup": "Heavy_Makeup", "mustache": "Mustache",
    "straight hair": "Straight_Hair", "wearing lipstick": "Wearing_Lipstick", "male": "Male",
}


def folder_aliases(domain: str, *extra: str) -> tuple[str, ...]:
    """Folder names accepted for a domain: underscored (documented first), as written, extras."""
    names = [domain.replace(" ", "_"), domain, domain.replace(" ", "-"), *extra]
    return tuple(dict.fromkeys(names))


def folder_layout(domains: list[str], synsets: dict[str, str] | None = None, flat_val: int = 0) -> str:
    """The one-line layout text of a multi-domain folder dataset, with its class folder names."""
    classes = ", ".join(d.replace(" ", "_") + (f" or {synsets[d]}" if synsets else "") for d in domains)
    flat = (f"; or flat <root>/<class>/ with the last {flat_val} images (by name) of each class held out as val"
            if flat_val else "")
    return (f"<root>/train/<class>/{IMAGE_GLOB} and <root>/val/<class>/{IMAGE_GLOB} "
            f"(val may be named test){flat}; class folders in label order: {classes}")


def _multi_domain(name: str, domains: list[str], template: str, source: str, *,
                  synsets: dict[str, str] | None = None, flat_val: int = 0, size: int = 256) -> DatasetSpec:
    folders = {d: folder_aliases(d, *([synsets[d]] if synsets else [])) for d in domains}
    return DatasetSpec(name=name, domains=list(domains), default_img_size=size, prompt_template=template,
                       source=source, expected_layout=folder_layout(domains, synsets, flat_val), kind="folder",
                       folder_names=folders, flat_val_per_domain=flat_val)


@register_dataset("fashion10")
def fashion10() -> DatasetSpec:
    return DatasetSpec(
        name="fashion10", domains=list(FASHION_CLASSES), default_img_size=32,
        splits=("train", "val", "heldout"), prompt_template="a photo of a {}.", kind="fashion",
        source="Fashion-MNIST (Zalando, MIT licence): Debian package dataset-fashion-mnist, or "
               "torchvision.datasets.FashionMNIST(download=True) where there is internet",
        expected_layout="<root>/{train-images-idx3-ubyte,train-labels-idx1-ubyte,t10k-images-idx3-ubyte,"
                        "t10k-labels-idx1-ubyte}[.gz] (also <root>/FashionMNIST/raw/); splits: train = official "
                        "train minus the last 500 images of each class, val = those 500, heldout = official test",
        system_dirs=("/usr/share/datasets/fashion-mnist",),
    )


@register_dataset("cmnist")
def cmnist() -> DatasetSpec:
    return DatasetSpec(
        name="cmnist", domains=["gray", "color"], default_img_size=32,
        splits=("train", "val", "heldout"), prompt_template="a photo of a {} digit.", kind="cmnist",
        source="digits from MNIST idx files under the data root if present, else OpenCV's digits.png "
               "(Debian package opencv-doc)",
        expected_layout="<root>/digits.png (2000x1000, 50 rows x 100 columns of 20x20 digits, five rows per "
                        "digit 0-9) or MNIST's {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in <root> or "
                        "<root>/MNIST/raw/",
        system_dirs=("/usr/share/doc/opencv-doc/examples/data",),
        unimodal_domains=("gray",),
        evaluations=("cmnist-colour", "cmnist-unimodal-mse"),
    )


@register_dataset("animalfaces10")
def animalfaces10() -> DatasetSpec:
    return _multi_domain(
        "animalfaces10", list(ANIMALFACES_SYNSETS), "a photo of the animalface of {}.",
        "AnimalFaces (FUNIT, github.com/NVlabs/FUNIT: animal face crops from ImageNet), the ten classes LANIT "
        "and TUNIT use", synsets=ANIMALFACES_SYNSETS, flat_val=50)


@register_dataset("afhq")
def afhq() -> DatasetSpec:
    return _multi_domain("afhq", ["cat", "dog", "wild"], "a photo of the animalface of {}.",
                         "AFHQ (StarGAN v2, github.com/clovaai/stargan-v2, download script: afhq-dataset)")


@register_dataset("food10")
def food10() -> DatasetSpec:
    return _multi_domain("food10", FOOD10_CLASSES, "a photo of the food of {}.",
                         "Food-101 (Bossard et al. 2014; its images/<class>/ folders), the ten classes LANIT uses",
                         flat_val=50)


@register_dataset("celebahq")
def celebahq() -> DatasetSpec:
    return DatasetSpec(
        name="celebahq", domains=list(CELEBAHQ_ATTRIBUTES), multi_label=True, prompt_template="a face with {}.",
        kind="celebahq", folder_names={d: (c,) for d, c in CELEBAHQ_ATTRIBUTES.items()},
        source="CelebAMask-HQ (github.com/switchablenorms/CelebAMask-HQ): CelebA-HQ-img/ and "
               "CelebAMask-HQ-attribute-anno.txt",
        expected_layout="<root>/CelebA-HQ-img/<n>.jpg (or <root>/images/) and <root>/CelebAMask-HQ-attribute-anno.txt "
                        "(line 1: image count, line 2: attribute names, then '<file> <+1/-1 per attribute>'); "
                        "val = the last 1/15 of the listed images (2,000 of 30,000), train = the rest; "
                        "attribute columns used: " + ", ".join(CELEBAHQ_ATTRIBUTES.values()),
    )


@register_dataset("fashion-sneaker2boot")
def fashion_sneaker2boot() -> DatasetSpec:
    parent = fashion10()
    return DatasetSpec(
        name="fashion-sneaker2boot", domains=["sneaker", "ankle boot"], default_img_size=parent.default_img_size,
        splits=parent.splits, prompt_template=parent.prompt_template, kind="subset", parent="fashion10",
        source="fashion10 restricted to sneaker and ankle boot; " + parent.source,
        expected_layout=parent.expected_layout, evaluations=(LPIPS_IO,))


@register_dataset("cmnist-gray2color")
def cmnist_gray2color() -> DatasetSpec:
    parent = cmnist()
    return DatasetSpec(
        name="cmnist-gray2color", domains=["gray", "color"], default_img_size=parent.default_img_size,
        unimodal_domains=parent.unimodal_domains, evaluations=parent.evaluations + (LPIPS_IO,),
        splits=parent.splits, prompt_template=parent.prompt_template, kind="subset", parent="cmnist",
        source="cmnist as a two-domain task (gray -> color); " + parent.source,
        expected_layout=parent.expected_layout)


@register_dataset("cmnist-color2gray")
def cmnist_color2gray() -> DatasetSpec:
    """The reverse task: A = colour, B = gray. A colour digit's true translation is its gray pair."""
    parent = cmnist()
    return DatasetSpec(
        name="cmnist-color2gray", domains=["color", "gray"], default_img_size=parent.default_img_size,
        unimodal_domains=parent.unimodal_domains,
        splits=parent.splits, prompt_template=parent.prompt_template, kind="subset", parent="cmnist",
        source="cmnist as a two-domain task (color -> gray); " + parent.source,
        expected_layout=parent.expected_layout, evaluations=(LPIPS_IO, LPIPS_TRUTH), truth="pair",
        truth_sources=("color",))  # gray -> color has ten right answers: no single truth


@register_dataset("fashion-inv2plain-skewed")
def fashion_inv2plain_skewed() -> DatasetSpec:
    """A semantic-flipping task with known answers (``i2ibench.data.fashion_flip``)."""
    parent = fashion10()
    return DatasetSpec(
        name="fashion-inv2plain-skewed", domains=["inverted", "plain"], default_img_size=parent.default_img_size,
        splits=("train", "val"), prompt_template=parent.prompt_template, kind="fashion-flip",
        source="Fashion-MNIST t-shirt/trouser/sneaker/bag: A inverted, balanced; B plain, 62.5 % t-shirts; "
               + parent.source,
        expected_layout=parent.expected_layout, system_dirs=parent.system_dirs,
        evaluations=(LPIPS_IO, LPIPS_TRUTH), truth="own")
