"""The one image decoder (i2ibench.data.images): every Pillow mode and bit depth gives the pixels
an 8-bit file of the same picture gives; hidden files and folders are never listed."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2ibench.data.images import ALPHA_BACKGROUND, list_images, list_subfolders, load_uint8, open_rgb, to_rgb
from i2ibench.errors import DataError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def _gray_pictures(n: int = 8) -> list[np.ndarray]:
    """``n`` real 28x28 uint8 pictures (Fashion-MNIST test images of different classes)."""
    from i2ibench.data.idx import find_idx, read_idx

    path = find_idx(FASHION_DIR, "t10k-images-idx3-ubyte") if FASHION_DIR.is_dir() else None
    if path is None:
        pytest.skip("Fashion-MNIST files not installed (Debian package dataset-fashion-mnist)")
    return [np.ascontiguousarray(im) for im in read_idx(path)[:n]]


def _uint16_image(values: np.ndarray, mode: str) -> Image.Image:
    """A 16-bit Pillow image of ``values`` (uint16) in byte order ``mode`` (I;16, I;16B, I;16L)."""
    dtype = ">u2" if mode == "I;16B" else "<u2"
    return Image.frombytes(mode, (values.shape[1], values.shape[0]), values.astype(dtype).tobytes())


def _png16(path, channels: list[np.ndarray]) -> None:
    """A 16-bit PNG of ``channels`` (gray, gray+alpha, RGB or RGBA; uint16), written by hand:
    Pillow cannot write 16-bit colour PNGs, but it reads them."""
    import struct
    import zlib

    arr = np.dstack(channels)
    h, w, c = arr.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _wide(p: np.ndarray) -> np.ndarray:
    return p.astype(np.uint16) * 257


# Each writer saves the 8-bit gray picture ``p`` as another kind of file; all must decode to ``p``.
WRITERS = {
    "8bit.png": lambda p, f: Image.fromarray(p, "L").save(f),
    "16bit.png": lambda p, f: Image.fromarray(p.astype(np.uint16) * 257).save(f),
    "16bit-rgb.png": lambda p, f: _png16(f, [_wide(p)] * 3),
    "16bit-rgba.png": lambda p, f: _png16(f, [_wide(p)] * 3 + [np.full(p.shape, 65535, np.uint16)]),
    "16bit-la.png": lambda p, f: _png16(f, [_wide(p), np.full(p.shape, 65535, np.uint16)]),
    "16bit-be.tif": lambda p, f: _uint16_image(p.astype(np.uint16) * 257, "I;16B").save(f),
    "16bit-le.tif": lambda p, f: _uint16_image(p.astype(np.uint16) * 257, "I;16L").save(f),
    "int32.tif": lambda p, f: Image.fromarray(p.astype(np.int32) * 257, "I").save(f),
    "float.tif": lambda p, f: Image.fromarray(p.astype(np.float32) / 255.0, "F").save(f),
    "palette.png": lambda p, f: Image.fromarray(p, "L").convert("P").save(f),
    "rgba.png": lambda p, f: Image.fromarray(np.dstack([p, p, p, np.full_like(p, 255)]), "RGBA").save(f),
    "la.png": lambda p, f: Image.fromarray(np.dstack([p, np.full_like(p, 255)]), "LA").save(f),
    "cmyk.tif": lambda p, f: Image.fromarray(p, "L").convert("RGB").convert("CMYK").save(f),
    "cmyk.jpg": lambda p, f: Image.fromarray(p, "L").convert("RGB").convert("CMYK").save(f, quality=100),
}
LOSSY = {"cmyk.jpg"}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_every_mode_decodes_to_the_8bit_pixels(tmp_path, kind):
    picture = _gray_pictures(1)[0]
    path = tmp_path / kind
    WRITERS[kind](picture, path)
    got = load_uint8(path)
    assert got.shape == (3, 28, 28) and got.dtype == torch.uint8
    want = torch.from_numpy(picture.copy()).expand(3, -1, -1)
    diff = (got.int() - want.int()).abs().max().item()
    if kind in LOSSY:  # JPEG at quality 100 still rounds a little
        assert diff <= 8
    else:
        assert diff == 0, f"{kind} ({Image.open(path).mode}) differs by up to {diff}"


def test_16bit_uses_its_full_range_not_a_clip():
    ramp = np.arange(0, 65536, 257, dtype=np.uint16).reshape(16, 16)  # 0, 257, ..., 65535
    for mode in ("I;16", "I;16B", "I;16L"):
        rgb = np.asarray(to_rgb(_uint16_image(ramp, mode)))
        assert (rgb[..., 0] == np.arange(256, dtype=np.uint8).reshape(16, 16)).all(), mode
    # values between the multiples of 257 round to the nearest 8-bit level
    odd = np.array([[128, 129, 65406, 65407]], dtype=np.uint16)
    assert np.asarray(to_rgb(_uint16_image(odd, "I;16")))[0, :, 0].tolist() == [0, 1, 254, 255]


def test_colour_modes_and_transparency():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    assert (np.asarray(to_rgb(Image.fromarray(rgb).convert("CMYK"))) == rgb).all()
    ycc = np.asarray(to_rgb(Image.fromarray(rgb).convert("YCbCr"))).astype(int)
    assert np.abs(ycc - rgb).max() <= 3  # Pillow's YCbCr round trip is off by a few levels
    # partial alpha is composited over the documented background
    alpha = rng.integers(0, 256, (12, 12), dtype=np.uint8)
    got = np.asarray(to_rgb(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"))).astype(float)
    a = alpha[..., None] / 255.0
    want = rgb * a + np.array(ALPHA_BACKGROUND) * (1 - a)
    assert np.abs(got - want).max() <= 1.0
    # a palette image with a transparent index: those pixels become the background
    pal = Image.fromarray(np.array([[0, 1], [1, 0]], dtype=np.uint8), "P")
    pal.putpalette([10, 20, 30, 200, 100, 50])
    pal.info["transparency"] = 1
    out = np.asarray(to_rgb(pal))
    assert out[0, 0].tolist() == [10, 20, 30] and out[0, 1].tolist() == list(ALPHA_BACKGROUND)
    # bilevel
    bw = Image.fromarray(np.array([[0, 255]], dtype=np.uint8), "L").convert("1")
    assert np.asarray(to_rgb(bw))[0, :, 0].tolist() == [0, 255]


def test_float_range_and_non_finite(tmp_path):
    f = Image.fromarray(np.array([[-0.5, 0.0, 0.5, 1.0, 2.0]], dtype=np.float32), "F")
    assert np.asarray(to_rgb(f))[0, :, 0].tolist() == [0, 0, 128, 255, 255]
    bad = tmp_path / "nan.tif"
    Image.fromarray(np.array([[np.nan, 0.5]], dtype=np.float32), "F").save(bad)
    with pytest.raises(DataError, match="nan.tif"):
        open_rgb(bad)


def test_hidden_files_and_folders_are_not_listed(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    (tmp_path / "._a.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")
    Image.new("RGB", (4, 4)).save(tmp_path / ".hidden.png")
    for name in (".ipynb_checkpoints", "__MACOSX", ".git", "cats"):
        (tmp_path / name).mkdir()
    assert list_images(tmp_path) == [tmp_path / "a.png"]
    assert list_subfolders(tmp_path) == [tmp_path / "cats"]


def test_looping_symlink_named_like_an_image_is_an_error(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    with pytest.raises(DataError, match="symlink loop: .*loop.png"):
        list_images(tmp_path)


def test_hidden_folders_never_become_domains(tmp_path):
    from i2ibench.data.catalog import create_dataset

    for split in ("train", "val"):
        for d in ("cat", "dog"):
            (tmp_path / split / d).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (8, 8), (i * 100, 0, 0)).save(tmp_path / split / d / f"{i}.png")
        (tmp_path / split / "cat" / "._0.png").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork
        (tmp_path / split / ".ipynb_checkpoints").mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / split / ".ipynb_checkpoints" / "x-checkpoint.png")
        (tmp_path / split / "__MACOSX").mkdir()
    for split in ("train", "val"):
        ds = create_dataset(f"folder:{tmp_path}", split, 8)
        assert list(ds.domains) == ["cat", "dog"]
        assert len(ds.labels) == 4
        assert ds.images(torch.arange(4)).shape == (4, 3, 8, 8)  # no resource fork is decoded


# --------------------------------------------------------------------------- FID through folders

class _MemoInception:
    """The real Inception extractor, computed once per distinct batch of pixels (the folders
    below hold the same pictures, so after the first folder only differing pixels cost time)."""

    def __init__(self):
        from i2ibench.features.inception import InceptionFeatures

        self.net = InceptionFeatures(device="cpu", batch_size=8)
        self.name = self.net.name
        self.memo: dict[bytes, torch.Tensor] = {}

    def __call__(self, images):
        key = images.numpy().tobytes()
        if key not in self.memo:
            self.memo[key] = self.net(images)
        return self.memo[key]


@pytest.mark.slow  # the real Inception network on CPU
def test_same_pictures_in_every_format_give_fid_zero(tmp_path):
    from i2ibench.evaluation.folders import read_folder_images, score_folders

    pictures = _gray_pictures(8)
    kinds = ["8bit.png", "16bit.png", "palette.png", "rgba.png", "cmyk.tif", "la.png"]
    folders = {}
    for kind in kinds:
        folders[kind] = tmp_path / kind.replace(".", "_")
        folders[kind].mkdir()
        for i, p in enumerate(pictures):
            WRITERS[kind](p, folders[kind] / f"{i}.{kind.split('.')[1]}")
    reference = torch.stack(read_folder_images(folders["8bit.png"])[0])
    for kind in kinds:
        assert torch.equal(torch.stack(read_folder_images(folders[kind])[0]), reference), kind
    # What Pillow's own conversion makes of the 16-bit files (the bug this decoder fixes).
    clipped = tmp_path / "clipped"
    clipped.mkdir()
    for i, p in enumerate(pictures):
        Image.fromarray(p.astype(np.uint16) * 257).convert("RGB").save(clipped / f"{i}.png")

    features = _MemoInception()
    for a in range(len(kinds)):
        for b in range(a + 1, len(kinds)):
            got = score_folders(folders[kinds[a]], folders[kinds[b]], k=3, features=features, cache=False)
            assert abs(got["fid"]) < 1e-3, (kinds[a], kinds[b], got["fid"])
            assert got["n_real"] == got["n_fake"] == 8
    wrong = score_folders(folders["8bit.png"], clipped, k=3, features=features, cache=False)
    assert wrong["fid"] > 50.0


def test_official_squash_resize_is_a_named_option(tmp_path):
    """Official loaders squash an image to a square (bilinear); i2ibench's default crops it."""
    from i2ibench.data.images import load_image

    rng = np.random.default_rng(0)
    wide = (rng.random((20, 40, 3)) * 255).astype(np.uint8)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    squashed = np.asarray(Image.fromarray(wide).resize((16, 16), Image.Resampling.BILINEAR)).astype(np.float32)
    got = ((load_image(tmp_path / "wide.png", 16, "squash") + 1) * 127.5).permute(1, 2, 0).numpy()
    assert np.abs(got - squashed).max() < 0.01
    cropped = ((load_image(tmp_path / "wide.png", 16) + 1) * 127.5).permute(1, 2, 0).numpy()
    assert np.abs(cropped - squashed).max() > 10  # the default keeps the aspect ratio (centre crop)
    from i2ibench.config import build_run_config

    for name in ("stargan2", "tunit", "lanit"):  # each paper preset loads images as its official code
        assert build_run_config(name, "fashion10", "paper").train.resize == "squash"
        assert build_run_config(name, "fashion10", "cpu").train.resize == "crop"
