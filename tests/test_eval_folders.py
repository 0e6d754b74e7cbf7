"""`eval --real/--fake` folder reading: recursive search that says what it read, symlinked
sub-folders followed with loop protection, hidden entries skipped, images streamed in batches."""

import numpy as np
import pytest
import torch
from PIL import Image

from i2ibench.errors import DataError
from i2ibench.evaluation.folders import find_images, folder_features, iter_image_batches, score_folders


def _pngs(folder, n, size=8, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")


class _MeanFeatures:
    """Per-channel mean and std of the pixels (callers' view only); records batch shapes."""

    name = "test-mean"

    def __init__(self):
        self.batches = []

    def __call__(self, x):
        self.batches.append(tuple(x.shape))
        x = x.double()
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)


def test_symlinked_subfolders_are_followed_and_counted(tmp_path):
    _pngs(tmp_path / "outside" / "b", 7, seed=1)
    _pngs(tmp_path / "real" / "a", 13)
    (tmp_path / "real" / "b").symlink_to(tmp_path / "outside" / "b", target_is_directory=True)
    (tmp_path / "real" / ".ipynb_checkpoints").mkdir()
    _pngs(tmp_path / "real" / ".ipynb_checkpoints", 3)
    (tmp_path / "real" / "a" / "._0.png").write_bytes(b"\x00\x05\x16\x07")
    found = find_images(tmp_path / "real")
    assert len(found.paths) == 20
    assert found.linked_folders == [tmp_path / "real" / "b"]
    text = found.describe()
    assert text == (f"20 images from {tmp_path / 'real'} and 2 of its sub-folders "
                    f"(sub-folders searched; 1 symlinked folder(s) followed)")


def test_a_folder_reached_twice_is_read_once(tmp_path):
    _pngs(tmp_path / "real" / "a", 4)
    (tmp_path / "real" / "again").symlink_to(tmp_path / "real" / "a", target_is_directory=True)
    found = find_images(tmp_path / "real")
    assert len(found.paths) == 4 and len(found.repeated_folders) == 1
    assert "read once" in found.describe()


@pytest.mark.parametrize("make", ["self", "ancestor"])
def test_symlink_loops_are_one_line_errors(tmp_path, make):
    _pngs(tmp_path / "real" / "a", 2)
    if make == "self":
        (tmp_path / "real" / "a" / "loop").symlink_to(tmp_path / "real" / "a" / "loop")
    else:
        (tmp_path / "real" / "a" / "up").symlink_to(tmp_path / "real", target_is_directory=True)
    with pytest.raises(DataError, match="symlink loop") as e:
        find_images(tmp_path / "real")
    assert "\n" not in str(e.value)


def test_batches_are_bounded_by_count_pixels_and_size(tmp_path):
    _pngs(tmp_path / "f", 5, size=8)
    _pngs(tmp_path / "f" / "z", 2, size=16)  # another size: a batch of its own
    paths = find_images(tmp_path / "f").paths
    shapes = [tuple(b.shape) for _, b in iter_image_batches(paths, batch_size=2)]
    assert shapes == [(2, 3, 8, 8), (2, 3, 8, 8), (1, 3, 8, 8), (2, 3, 16, 16)]
    shapes = [tuple(b.shape) for _, b in iter_image_batches(paths, batch_size=50, max_pixels=3 * 64)]
    assert shapes == [(3, 3, 8, 8), (2, 3, 8, 8), (1, 3, 16, 16), (1, 3, 16, 16)]
    # features come back in file order whatever the batching
    feats = _MeanFeatures()
    streamed = folder_features(tmp_path / "f", feats, cache=False, batch_size=2)
    whole = _MeanFeatures()(torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB")).copy())
                                         .permute(2, 0, 1) for p in paths[:5]]))
    assert torch.allclose(streamed[:5], whole)
    assert max(s[0] for s in feats.batches) == 2


def test_score_folders_logs_what_it_read(tmp_path):
    _pngs(tmp_path / "real", 6)
    _pngs(tmp_path / "fake" / "x", 3, seed=2)
    lines = []
    got = score_folders(tmp_path / "real", tmp_path / "fake", k=3, features=_MeanFeatures(), cache=False,
                        log=lines.append)
    assert lines == [f"real: 6 images from {tmp_path / 'real'} (sub-folders searched)",
                     f"fake: 3 images from {tmp_path / 'fake'} and 1 of its sub-folders (sub-folders searched)"]
    assert (got["n_real"], got["n_fake"]) == (6, 3)
