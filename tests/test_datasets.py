"""Dataset specs and loaders: real Fashion-MNIST and OpenCV digits, small folders written here,
and every bad input (one-line DataError / UnknownNameError)."""

from __future__ import annotations

import dataclasses
import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from i2ibench.data.cmnist import PALETTE, PALETTE_NAMES, PALETTE_RGB, PAIRED_SHARE, palette_assignment, train_roles
from i2ibench.data.catalog import (ANIMALFACES_SYNSETS, FASHION_CLASSES, DatasetSpec, available, create_dataset, get_spec,
                                   locate)
from i2ibench.errors import DataError
from i2ibench.registry import UnknownNameError, list_datasets

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DIGITS_PNG = Path("/usr/share/doc/opencv-doc/examples/data/digits.png")
needs_fashion = pytest.mark.skipif(not (FASHION_DIR / "train-labels-idx1-ubyte.gz").is_file(),
                                   reason="Debian package dataset-fashion-mnist not installed")
needs_digits = pytest.mark.skipif(not DIGITS_PNG.is_file(), reason="Debian package opencv-doc not installed")


def write_image(path: Path, rgb=(200, 30, 30), size=(8, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path)
    return path


def one_line_error(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and msg
    return msg


def read_idx_gz(path: Path) -> np.ndarray:
    """Independent IDX reader for checking the loader."""
    raw = gzip.open(path, "rb").read()
    ndim = raw[3]
    dims = struct.unpack(">" + "i" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


# --------------------------------------------------------------------------- registry-wide

@pytest.mark.parametrize("name", list_datasets())
def test_every_spec_is_complete(name):
    spec = get_spec(name)
    assert isinstance(spec, DatasetSpec) and spec.name == name
    assert spec.num_domains >= 2 and len(set(spec.domains)) == spec.num_domains
    assert "{}" in spec.prompt_template and spec.base_prompt == spec.prompt_template.replace(" {}", "")
    assert spec.expected_layout and "\n" not in spec.expected_layout and spec.source
    assert {"train", "val"} <= set(spec.splits) and spec.default_img_size > 0


@pytest.mark.parametrize("name", list_datasets())
def test_every_spec_missing_files_say_layout_and_domains(name, tmp_path):
    spec = get_spec(name)
    assert not available(spec, tmp_path)
    with pytest.raises(DataError) as e:
        create_dataset(name, "val", data_root=tmp_path)
    msg = one_line_error(e)
    assert str(tmp_path) in msg and spec.expected_layout in msg
    assert all(d in msg for d in spec.domains)


def test_import_registers_without_loading_data():
    loaders = ["i2ibench.data.fashion", "i2ibench.data.cmnist", "i2ibench.data.folder", "i2ibench.data.celeba"]
    code = (f"LOADERS = {loaders!r}; import sys, i2ibench.data.catalog as d; from i2ibench.registry import list_datasets; "
            "n = list_datasets(); print(len(n), sorted(m for m in sys.modules if m in LOADERS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 1)
    assert int(out[0]) >= 8
    assert out[1].strip() == "[]"  # no loader (and no file) touched at import


def test_required_datasets_registered():
    assert {"fashion10", "cmnist", "animalfaces10", "afhq", "food10", "celebahq",
            "fashion-sneaker2boot", "cmnist-gray2color"} <= set(list_datasets())


def test_lanit_prompts():
    assert get_spec("animalfaces10").prompt_template == "a photo of the animalface of {}."
    assert get_spec("animalfaces10").base_prompt == "a photo of the animalface of."
    assert get_spec("food10").prompts()[0] == "a photo of the food of baby back ribs."
    assert get_spec("celebahq").base_prompt == "a face with."
    assert get_spec("animalfaces10").domains == list(ANIMALFACES_SYNSETS)


# --------------------------------------------------------------------------- fashion10

@needs_fashion
def test_fashion10_splits_counts_and_labels():
    train_labels = read_idx_gz(FASHION_DIR / "train-labels-idx1-ubyte.gz")
    test_labels = read_idx_gz(FASHION_DIR / "t10k-labels-idx1-ubyte.gz")
    train, val, held = (create_dataset("fashion10", s) for s in ("train", "val", "heldout"))
    assert train.domains == FASHION_CLASSES
    assert train.counts() == {c: 5500 for c in FASHION_CLASSES}
    assert val.counts() == {c: 500 for c in FASHION_CLASSES}
    assert held.counts() == {c: 1000 for c in FASHION_CLASSES}
    for ds, labels in ((train, train_labels), (val, train_labels), (held, test_labels)):
        assert torch.equal(ds.labels, torch.from_numpy(labels[ds.extras["source_index"].numpy()].astype(np.int64)))
    # val = the last 500 of each class in the official training order; train = everything else
    for c in range(10):
        pos = np.flatnonzero(train_labels == c)
        assert set(val.extras["source_index"][val.labels == c].tolist()) == set(pos[-500:].tolist())
    assert not set(train.extras["source_index"].tolist()) & set(val.extras["source_index"].tolist())


@needs_fashion
def test_fashion10_pixels():
    images = read_idx_gz(FASHION_DIR / "train-images-idx3-ubyte.gz")
    native = create_dataset("fashion10", "val", img_size=28)
    idx = [0, 7, 4999]
    x = native.images(idx)
    src = torch.from_numpy(images[native.extras["source_index"][idx].numpy()].astype(np.float32))
    assert x.shape == (3, 3, 28, 28)
    assert torch.allclose(x, (src / 127.5 - 1).unsqueeze(1).expand(-1, 3, -1, -1), atol=1e-6)
    big = create_dataset("fashion10", "val", img_size=64)
    y = big.images(idx)
    assert y.shape == (3, 3, 64, 64) and y.min() >= -1 and y.max() <= 1
    assert y.min() == -1 and y.max() > 0.9
    # upsampling keeps the picture: mean brightness within 1% of the native image's
    assert torch.allclose(y.mean((1, 2, 3)), x.mean((1, 2, 3)), atol=0.02)
    # vectorised fetch equals item-by-item fetch
    single = torch.stack([big[i][0] for i in idx])
    assert torch.equal(single, y) and big[7][1] == big.labels[7]


@needs_fashion
def test_fashion_sneaker2boot_subset():
    ds = create_dataset("fashion-sneaker2boot", "val", img_size=28)
    full = create_dataset("fashion10", "val", img_size=28)
    assert ds.domains == ["sneaker", "ankle boot"] and ds.counts() == {"sneaker": 500, "ankle boot": 500}
    parent = ds.extras["parent_index"]
    assert torch.equal(full.labels[parent], torch.where(ds.labels == 0, 7, 9))
    assert torch.equal(ds.images([3, 600]), full.images(parent[[3, 600]]))


# --------------------------------------------------------------------------- cmnist

@needs_digits
def test_cmnist_counts_and_extras():
    sheet = np.asarray(Image.open(DIGITS_PNG).convert("L"))
    for split, per_domain, cols in (("val", 500, range(70, 80)), ("heldout", 1000, range(80, 100)),
                                    ("train", 1925, range(0, 70))):
        ds = create_dataset("cmnist", split, img_size=20)
        assert ds.counts() == {"gray": per_domain, "color": per_domain}
        pal, digit, pair = ds.extras["palette_index"], ds.extras["digit"], ds.extras["pair_index"]
        gray = ds.labels == 0
        assert (pal[gray] == -1).all() and ((pal[~gray] >= 0) & (pal[~gray] < 10)).all()
        has = pair >= 0
        assert torch.equal(pair[pair[has]], has.nonzero().flatten()) and (ds.labels[pair[has]] != ds.labels[has]).all()
        assert torch.equal(digit[pair[has]], digit[has])
        if split != "train":  # every digit in both forms
            assert has.all()
            assert torch.bincount(digit[gray], minlength=10).tolist() == [per_domain // 10] * 10
        # the gray image is the digits.png cell itself
        sid = ds.extras["source_index"][5].item()
        r, c = divmod(sid, 100)
        assert c in cols and digit[5].item() == r // 5
        cell = torch.from_numpy(sheet[r * 20:(r + 1) * 20, c * 20:(c + 1) * 20].astype(np.float32)) / 127.5 - 1
        assert torch.allclose(ds.images([5])[0], cell.expand(3, -1, -1), atol=1e-6)
    # train: 10 % of the 3,500 digits in both domains, the rest in disjoint halves
    src = ds.extras["source_index"]
    assert int(has.sum()) == 2 * 350 and int(PAIRED_SHARE * 3500) == 350
    only_gray = set(src[gray & ~has].tolist())
    only_colour = set(src[~gray & ~has].tolist())
    assert len(only_gray) == len(only_colour) == 1575 and not only_gray & only_colour
    assert set(src[gray & has].tolist()) == set(src[~gray & has].tolist())
    assert len(only_gray | only_colour | set(src[has].tolist())) == 3500
    paired, g_only, c_only = train_roles(3500)
    assert (len(paired), len(g_only), len(c_only)) == (350, 1575, 1575)
    # colour of a digit: fixed function of its index, every colour used
    all_pal = palette_assignment(5000)
    assert np.bincount(all_pal, minlength=10).tolist() == [500] * 10
    assert torch.equal(ds.extras["palette_index"][~gray], torch.from_numpy(all_pal[ds.extras["source_index"][~gray].numpy()]))


@needs_digits
def test_cmnist_painted_pixels_are_stroke_times_palette_colour():
    ds = create_dataset("cmnist", "val", img_size=20)
    color_idx = (ds.labels == 1).nonzero().flatten()[:40]
    painted = (ds.images(color_idx) + 1) / 2
    gray = (ds.images(ds.extras["pair_index"][color_idx]) + 1) / 2
    rgb = PALETTE_RGB.float()[ds.extras["palette_index"][color_idx]] / 255
    assert torch.allclose(painted, gray[:, :1] * rgb[:, :, None, None], atol=1e-6)
    # same stroke mask in both domains (every palette colour has a full channel)
    assert torch.equal(painted.amax(1) > 0, gray[:, 0] > 0)
    assert len(set(PALETTE_NAMES)) == 10 and len({rgb for _, rgb in PALETTE}) == 10
    assert (PALETTE_RGB.amax(1) == 255).all()
    assert all(name != "white" for name in PALETTE_NAMES)  # white paint would equal the gray domain
    assert len(set(ds.extras["palette_index"][color_idx].tolist())) > 5


def write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + struct.pack(">" + "i" * arr.ndim, *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_cmnist_from_mnist_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (24, 28, 28)))
    write_idx(raw / "train-labels-idx1-ubyte.gz", np.arange(24) % 10)
    write_idx(raw / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (6, 28, 28)))
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.arange(6) % 10)
    assert locate(get_spec("cmnist"), tmp_path) == raw
    train, val, held = (create_dataset("cmnist", s, img_size=28, data_root=tmp_path) for s in ("train", "val", "heldout"))
    # train: 22 digits, 2 in both domains, 10 gray only, 10 colour only; val / heldout: each twice
    assert (len(train), len(val), len(held)) == (24, 4, 12)
    assert int((train.pairs >= 0).sum()) == 4
    assert val.extras["digit"][:2].tolist() == [2, 3]  # training digits 22 and 23
    assert held.extras["source_index"][:6].tolist() == list(range(24, 30))


@needs_digits
def test_cmnist_gray2color_task_keeps_pairs():
    task = create_dataset("cmnist-gray2color", "val", img_size=20)
    full = create_dataset("cmnist", "val", img_size=20)
    assert task.domains == ["gray", "color"] and len(task) == len(full)
    assert torch.equal(task.extras["pair_index"], full.extras["pair_index"])
    assert torch.equal(task.images([0, 700]), full.images([0, 700]))


def fake_torchvision_download(tmp_path, monkeypatch, fail: bool):
    """Stand-in for torchvision's FashionMNIST (the network): fails, or writes tiny IDX files."""
    import torchvision.datasets

    calls = []

    class FakeFashionMNIST:
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            if fail:
                raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")
            raw = Path(root) / "FashionMNIST" / "raw"
            raw.mkdir(parents=True, exist_ok=True)
            prefix = "train" if train else "t10k"
            n = 5020 if train else 10
            write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", np.zeros((n, 28, 28), dtype=np.uint8))
            write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashionMNIST)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("I2IBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("I2IBENCH_DATA", raising=False)
    return calls


@pytest.mark.parametrize("fail", [True, False])
def test_fashion10_download_fallback(tmp_path, monkeypatch, fail):
    from i2ibench.data import fashion as data_fashion

    calls = fake_torchvision_download(tmp_path, monkeypatch, fail)
    spec = dataclasses.replace(get_spec("fashion10"), system_dirs=())  # as on a machine without the Debian files
    assert not available(spec)
    assert calls == []  # looking never downloads
    if fail:
        with pytest.raises(DataError) as e:
            data_fashion.load(spec, "train", 28)
        msg = one_line_error(e)
        assert "download failed" in msg and "apt-get install dataset-fashion-mnist" in msg and spec.expected_layout in msg
    else:
        ds = data_fashion.load(spec, "train", 28)
        assert ds.counts() == {c: 2 for c in FASHION_CLASSES}  # 502 per class, the last 500 are val
        assert ds.root == tmp_path / "cache" / "fashion-mnist" / "FashionMNIST" / "raw" and available(spec)
    assert [c[1:] for c in calls] == ([(True, True)] if fail else [(True, True), (False, True)])


# --------------------------------------------------------------------------- image folders

def make_multi_domain(root: Path, folders: list[str], splits=("train", "val"), per=(3, 2)) -> None:
    for split, n in zip(splits, per):
        for k, f in enumerate(folders):
            for i in range(n):
                write_image(root / split / f / f"{i:03d}.png", rgb=(10 * k, 100, 200))


def test_animalfaces10_folder_names_synset_or_readable(tmp_path):
    domains = list(ANIMALFACES_SYNSETS)
    # half the classes by synset id, half by readable name (any case), val named "test"
    folders = [ANIMALFACES_SYNSETS[d] if k % 2 else d.replace(" ", "_").upper() for k, d in enumerate(domains)]
    make_multi_domain(tmp_path, folders, splits=("train", "test"))
    ds = create_dataset("animalfaces10", "train", img_size=16, data_root=tmp_path)
    assert ds.counts() == {d: 3 for d in domains} and ds.root == tmp_path
    x, y = ds[3 * 4]
    assert x.shape == (3, 16, 16) and int(y) == 4
    expected = torch.tensor([40, 100, 200]) / 127.5 - 1
    assert torch.allclose(x[:, 8, 8], expected, atol=1e-6)
    val = create_dataset("animalfaces10", "val", img_size=16, data_root=tmp_path)
    assert val.counts() == {d: 2 for d in domains}
    assert locate(get_spec("animalfaces10"), tmp_path) == tmp_path


def test_flat_layout_holds_out_last_images(tmp_path):
    spec = get_spec("food10")
    for k, d in enumerate(spec.domains):
        for i in range(52):
            write_image(tmp_path / "images" / d.replace(" ", "_") / f"{i:03d}.jpg", size=(2, 2))
    train = create_dataset("food10", "train", img_size=4, data_root=tmp_path)
    val = create_dataset("food10", "val", img_size=4, data_root=tmp_path)
    assert train.counts() == {d: 2 for d in spec.domains} and val.counts() == {d: 50 for d in spec.domains}
    assert [p.name for p in val.paths[:2]] == ["002.jpg", "003.jpg"]


def test_resize_shorter_side_then_centre_crop(tmp_path):
    img = Image.new("RGB", (60, 10), (0, 0, 0))
    img.paste((255, 255, 255), (15, 0, 45, 10))  # white middle, black sides
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "b").mkdir(parents=True)
    img.save(tmp_path / "train" / "a" / "wide.png")
    write_image(tmp_path / "train" / "b" / "x.png")
    ds = create_dataset(f"folder:{tmp_path}", "train", img_size=5)
    assert ds.domains == ["a", "b"]
    # 60x10 -> 30x5, centre 5x5 = original columns 24-34: all white (squashing would keep black edges)
    assert torch.allclose(ds.images([0]), torch.ones(1, 3, 5, 5), atol=1e-6)


def test_custom_folder_dataset(tmp_path):
    make_multi_domain(tmp_path, ["zebra", "horse", "donkey"])
    ds = create_dataset(f"folder:{tmp_path}", "val", img_size=8)
    assert ds.domains == ["donkey", "horse", "zebra"] and ds.counts() == {"donkey": 2, "horse": 2, "zebra": 2}
    assert ds.images(range(6)).shape == (6, 3, 8, 8)
    assert available(get_spec(f"folder:{tmp_path}"))


def test_twodomain_dataset(tmp_path):
    for sub, n in (("trainA", 3), ("trainB", 4), ("testA", 1), ("testB", 2)):
        for i in range(n):
            write_image(tmp_path / sub / f"{i}.jpg", rgb=(255, 0, 0) if sub.endswith("A") else (0, 0, 255))
    ds = create_dataset(f"twodomain:{tmp_path}", "train", img_size=8)
    assert ds.domains == ["A", "B"] and ds.counts() == {"A": 3, "B": 4}
    x = ds.images([0, 6])
    assert x[0, 0].mean() > 0.9 and x[1, 2].mean() > 0.9
    (tmp_path / "domains.txt").write_text("monet\nphoto\n")
    val = create_dataset(f"twodomain:{tmp_path}", "val", img_size=8)
    assert val.domains == ["monet", "photo"] and val.counts() == {"monet": 1, "photo": 2}
    assert val.spec.prompts() == ["a photo of a monet.", "a photo of a photo."]


def write_celeba(root: Path, n: int = 16, skip_image: int | None = None) -> list[str]:
    names = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Bangs", "Black_Hair", "Blond_Hair", "Heavy_Makeup",
             "Male", "Mustache", "Smiling", "Straight_Hair", "Wearing_Lipstick"]
    lines = [str(n), " ".join(names)]
    for i in range(n):
        vals = ["1" if (i >> (j % 4)) & 1 else "-1" for j in range(len(names))]
        lines.append(f"{i}.jpg  " + " ".join(vals))
        if i != skip_image:
            write_image(root / "CelebA-HQ-img" / f"{i}.jpg", size=(4, 4))
    (root / "CelebAMask-HQ-attribute-anno.txt").write_text("\n".join(lines) + "\n")
    return names


def test_celebahq_attributes_multi_hot(tmp_path):
    names = write_celeba(tmp_path)
    spec = get_spec("celebahq")
    train = create_dataset("celebahq", "train", img_size=8, data_root=tmp_path)
    val = create_dataset("celebahq", "val", img_size=8, data_root=tmp_path)
    assert len(train) == 15 and len(val) == 1 and train.multi_label
    assert train.labels.dtype == torch.float32 and train.labels.shape == (15, 10)
    for k, d in enumerate(spec.domains):
        j = names.index(spec.folder_names[d][0])
        expected = torch.tensor([float((i >> (j % 4)) & 1) for i in range(15)])
        assert torch.equal(train.labels[:, k], expected), d
    assert train.counts()["bangs"] == int(train.labels[:, 0].sum())
    assert val.paths[0].name == "15.jpg" and val.images([0]).shape == (1, 3, 8, 8)


# --------------------------------------------------------------------------- bad input

def test_unknown_name_suggests_closest():
    with pytest.raises(UnknownNameError) as e:
        get_spec("fashon10")
    msg = one_line_error(e)
    assert "did you mean 'fashion10'" in msg and "animalfaces10" in msg and "folder:<path>" in msg


def test_wrong_split_lists_valid_ones():
    with pytest.raises(DataError) as e:
        create_dataset("fashion10", "test")
    assert "train, val, heldout" in one_line_error(e)


def test_bad_image_size():
    with pytest.raises(DataError, match="positive integer"):
        create_dataset("cmnist", "val", img_size=0)


def test_missing_folder_says_where_layout_and_classes(tmp_path):
    with pytest.raises(DataError) as e:
        create_dataset("afhq", "train", data_root=tmp_path / "nothere")
    msg = one_line_error(e)
    assert str(tmp_path / "nothere") in msg and "<root>/train/<class>/" in msg
    assert "cat, dog, wild" in msg


def test_missing_domain_folder_named(tmp_path):
    make_multi_domain(tmp_path, ["cat", "dog"])
    with pytest.raises(DataError) as e:
        create_dataset("afhq", "train", data_root=tmp_path)
    msg = one_line_error(e)
    assert "'wild'" in msg and "found: cat, dog" in msg


def test_missing_val_folder(tmp_path):
    make_multi_domain(tmp_path, ["a", "b"], splits=("train",), per=(2,))
    with pytest.raises(DataError) as e:
        create_dataset(f"folder:{tmp_path}", "val")
    assert str(tmp_path / "val") in one_line_error(e)


def test_empty_domain_folder_named(tmp_path):
    make_multi_domain(tmp_path, ["cat", "dog", "wild"])
    for p in (tmp_path / "val" / "dog").iterdir():
        p.unlink()
    (tmp_path / "val" / "dog" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError) as e:
        create_dataset("afhq", "val", data_root=tmp_path)
    msg = one_line_error(e)
    assert "empty domain folder" in msg and str(tmp_path / "val" / "dog") in msg


def test_custom_folder_without_domains(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(DataError) as e:
        create_dataset(f"folder:{tmp_path}", "train")
    assert "no domain sub-folders" in one_line_error(e)


def test_unreadable_image_named(tmp_path):
    make_multi_domain(tmp_path, ["a", "b"])
    bad = tmp_path / "train" / "b" / "002.png"
    bad.write_bytes(b"this is not an image")
    ds = create_dataset(f"folder:{tmp_path}", "train", img_size=8)
    ds.images([0, 1])  # good files still load
    with pytest.raises(DataError) as e:
        ds.images([0, 5])
    assert str(bad) in one_line_error(e)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_named_even_if_pil_told_to_pad(tmp_path, monkeypatch, fmt):
    make_multi_domain(tmp_path, ["a", "b"])
    bad = tmp_path / "train" / "a" / f"big.{fmt.lower()}"
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(bad, format=fmt)
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    # another library may have switched PIL to padding truncated files: we must still refuse
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    ds = create_dataset(f"folder:{tmp_path}", "train", img_size=8)
    k = [p.name for p in ds.paths].index(bad.name)
    with pytest.raises(DataError) as e:
        ds[k]
    assert str(bad) in one_line_error(e)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for whoever set it


def test_truncated_idx_file_named(tmp_path):
    raw = tmp_path
    arr = np.zeros((30, 28, 28), dtype=np.uint8)
    write_idx(raw / "train-images-idx3-ubyte.gz", arr)
    write_idx(raw / "train-labels-idx1-ubyte.gz", np.arange(30) % 10)
    write_idx(raw / "t10k-images-idx3-ubyte.gz", arr[:10])
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.arange(10))
    full = gzip.open(raw / "t10k-images-idx3-ubyte.gz").read()
    with gzip.open(raw / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(full[:-100])
    with pytest.raises(DataError) as e:
        create_dataset("fashion10", "heldout", data_root=raw)
    msg = one_line_error(e)
    assert "t10k-images-idx3-ubyte.gz" in msg and "truncated" in msg


def test_incomplete_fashion_files_named(tmp_path):
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(30) % 10)
    with pytest.raises(DataError) as e:
        create_dataset("fashion10", "train", data_root=tmp_path)
    assert "missing train-images-idx3-ubyte" in one_line_error(e)


def test_celebahq_listed_image_missing(tmp_path):
    write_celeba(tmp_path, skip_image=3)
    with pytest.raises(DataError) as e:
        create_dataset("celebahq", "train", data_root=tmp_path)
    assert "3.jpg" in one_line_error(e)


def test_celebahq_malformed_annotation(tmp_path):
    write_celeba(tmp_path)
    anno = tmp_path / "CelebAMask-HQ-attribute-anno.txt"
    lines = anno.read_text().splitlines()
    lines[5] = "3.jpg 1 1"
    anno.write_text("\n".join(lines))
    with pytest.raises(DataError) as e:
        create_dataset("celebahq", "train", data_root=tmp_path)
    assert "line 6" in one_line_error(e)


def test_twodomain_bad_names_file(tmp_path):
    (tmp_path / "domains.txt").write_text("only-one\n")
    with pytest.raises(DataError) as e:
        get_spec(f"twodomain:{tmp_path}")
    assert "domains.txt" in one_line_error(e)
