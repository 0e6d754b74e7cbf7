"""Training augmentation (official StarGAN v2/LANIT crop+flip, TUNIT flip) and the label-free
sampler of methods that learn without labels."""


import pytest
import torch

from i2ibench.data.samplers import TrainSampler, UniformSampler
from i2ibench.errors import ConfigError
from i2ibench.train.augment import CROP_RATIO, CROP_SCALE, augment, crop_box, step_generator
from i2ibench.train.batches import hidden_labels, iterate_batches


def test_crop_boxes_follow_the_official_scale_and_ratio():
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        top, left, h, w = crop_box(64, 64, gen)
        assert 0 <= top and top + h <= 64 and 0 <= left and left + w <= 64
        # areas and ratios within the ranges up to the rounding of h and w to pixels
        assert CROP_SCALE[0] - 0.04 <= h * w / 64 ** 2 <= CROP_SCALE[1]
        assert CROP_RATIO[0] - 0.04 <= w / h <= CROP_RATIO[1] + 0.04


def test_flip_only_flips_and_crop_flip_also_crops_about_half():
    x = torch.rand(400, 3, 16, 16) * 2 - 1
    flipped = augment(x, "flip", torch.Generator().manual_seed(1))
    same = (flipped == x).flatten(1).all(1)
    mirror = (flipped == x.flip(-1)).flatten(1).all(1)
    assert bool((same | mirror).all()) and 150 < int(mirror.sum()) < 250
    both = augment(x, "crop_flip", torch.Generator().manual_seed(1))
    untouched = (both == x).flatten(1).all(1) | (both == x.flip(-1)).flatten(1).all(1)
    assert 140 < int((~untouched).sum()) < 260  # cropped with probability 0.5 (a full-size crop is rare)
    assert both.min() >= -1 and both.max() <= 1
    assert torch.equal(augment(x, "none", torch.Generator()), x)


def test_augmentation_is_a_function_of_seed_and_step():
    x = torch.rand(8, 3, 16, 16)
    a = augment(x, "crop_flip", step_generator(3, 7))
    assert torch.equal(a, augment(x, "crop_flip", step_generator(3, 7)))
    assert not torch.equal(a, augment(x, "crop_flip", step_generator(3, 8)))
    with pytest.raises(ConfigError, match="crop_flip"):
        augment(x, "rotate", step_generator(0, 0))


def test_uniform_sampler_knows_no_label_and_covers_every_image():
    s = UniformSampler(30, batch_size=16, seed=0)
    draws = [s.indices(step) for step in range(50)]
    seen = torch.cat([torch.cat([d.src, d.ref, d.ref2]) for d in draws])
    assert set(seen.tolist()) == set(range(30))
    assert all(bool((d.y_ref == -1).all()) for d in draws)
    assert torch.equal(s.indices(4).src, UniformSampler(30, 16, 0).indices(4).src)


def test_hidden_labels_keep_only_the_labelled_rows():
    y = torch.tensor([3, 1, 2])
    assert hidden_labels(y, None).tolist() == [-1, -1, -1]
    assert hidden_labels(y, torch.tensor([False, True, False])).tolist() == [-1, 1, -1]
    multi = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert hidden_labels(multi, torch.tensor([True, False])).tolist() == [[1.0, 0.0], [-1.0, -1.0]]


class _SpyData:
    """Multi-label images where half the images carry no attribute."""

    def __init__(self):
        self.labels = torch.zeros(20, 3)
        self.labels[:10, 0] = 1
        self.domains = ["a", "b", "c"]

    def images(self, idx):
        return torch.zeros(len(idx), 3, 8, 8)


def test_a_method_without_labels_sees_none_and_every_image_is_a_source():
    data = _SpyData()
    for _, batch in iterate_batches(data, UniformSampler(20, 8, seed=0), 0, 30, 0, hide_labels=True):
        assert bool((batch.y_src == -1).all()) and bool((batch.y_ref == -1).all())
    # the label-free sampler draws images without an attribute as sources too (the old one could not)
    src = torch.cat([UniformSampler(20, 8, seed=0).indices(s).src for s in range(30)])
    assert bool((src >= 10).any())
    assert not bool((torch.cat([TrainSampler(data.labels, 8, seed=0).indices(s).src for s in range(30)]) >= 10).any())


def test_engine_hands_a_label_free_method_no_ground_truth(tmp_path, monkeypatch):
    """A sampler spy: a method whose label kind is not ground truth, trained by the engine,
    records every label its batches carry."""
    from engine_toys import ToyDataset, ToyMethod, toy_config

    from i2ibench.train.engine import train

    seen = []
    original = ToyMethod.training_step

    def spy(self, batch, step):
        seen.append((batch.y_src.clone(), batch.y_ref.clone()))
        batch.y_src, batch.y_ref = batch.y_src.clamp(min=0), batch.y_ref.clamp(min=0)  # the toy indexes heads
        return original(self, batch, step)

    monkeypatch.setattr(ToyMethod, "training_step", spy)
    monkeypatch.setattr(ToyMethod, "label_kind", "clusters")
    train(toy_config(), tmp_path / "spy", progress=False, train_set=ToyDataset())
    assert len(seen) == 6 and all(bool((y == -1).all()) for pair in seen for y in pair)
    monkeypatch.setattr(ToyMethod, "label_kind", "ground_truth")
    seen.clear()
    train(toy_config(), tmp_path / "gt", progress=False, train_set=ToyDataset())
    assert all(bool((y >= 0).all()) for pair in seen for y in pair)  # a supervised method gets its labels
