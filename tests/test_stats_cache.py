"""Feature cache: reuse, invalidation by input fingerprint, recovery from damaged entries."""

import json
import os

import pytest
import torch

from i2ibench.errors import I2IError
from i2ibench.features.cache import cache_entry_path, cached_features, fingerprint_files, fingerprint_tensor

KEY = {"dataset": "fashion10", "split": "val", "domain": "sneaker", "extractor": "inception-v3-compat",
       "img_size": 32, "inputs": "abc"}


class Counter:
    def __init__(self, value=None):
        self.calls = 0
        self.value = torch.randn(6, 4, dtype=torch.float64) if value is None else value

    def __call__(self):
        self.calls += 1
        return self.value


def test_second_call_is_served_from_disk(tmp_path):
    compute = Counter()
    first = cached_features(KEY, compute, cache_root=tmp_path)
    second = cached_features(dict(reversed(list(KEY.items()))), compute, cache_root=tmp_path)  # key order is irrelevant
    assert compute.calls == 1
    assert torch.equal(first, compute.value) and torch.equal(second, compute.value)
    assert second.dtype == torch.float64


def test_key_is_stored_beside_the_features(tmp_path):
    cached_features(KEY, Counter(), cache_root=tmp_path)
    path = cache_entry_path(KEY, tmp_path)
    assert path.parent == tmp_path / "features" and path.is_file()
    assert json.loads(path.with_suffix(".json").read_text()) == KEY


def test_changed_input_fingerprint_recomputes(tmp_path):
    compute = Counter()
    cached_features(KEY, compute, cache_root=tmp_path)
    other = Counter()
    got = cached_features({**KEY, "inputs": "abd"}, other, cache_root=tmp_path)
    assert other.calls == 1 and torch.equal(got, other.value)
    assert torch.equal(cached_features(KEY, compute, cache_root=tmp_path), compute.value)
    assert compute.calls == 1  # the first entry is still there


@pytest.mark.parametrize("damage", ["truncate", "garbage", "tampered-features", "foreign-key"])
def test_damaged_entry_is_recomputed_and_rewritten(tmp_path, damage):
    compute = Counter()
    cached_features(KEY, compute, cache_root=tmp_path)
    path = cache_entry_path(KEY, tmp_path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(b"\x00" * 64)
    else:
        entry = torch.load(path, weights_only=True)
        if damage == "tampered-features":
            entry["tensors"]["features"][0, 0] += 1.0
        else:
            entry["key"] = json.dumps({"dataset": "other"})
        torch.save(entry, path)
    with pytest.warns(UserWarning, match="recomputing"):
        got = cached_features(KEY, compute, cache_root=tmp_path)
    assert compute.calls == 2 and torch.equal(got, compute.value)
    cached_features(KEY, compute, cache_root=tmp_path)
    assert compute.calls == 2  # the rewritten entry is good


@pytest.mark.parametrize("tampered", [False, True])
def test_an_entry_in_the_earlier_features_layout_is_still_read(tmp_path, tampered):
    # Real features cached before every kind of entry shared one layout: read, not recomputed
    # (an evaluation cache of ~2,000 Inception passes is not thrown away), and checked the same way.
    from i2ibench.features.cache import fingerprint_tensor

    compute = Counter()
    cached_features(KEY, compute, cache_root=tmp_path)
    path = cache_entry_path(KEY, tmp_path)
    entry = torch.load(path, weights_only=True)
    feats = entry["tensors"]["features"]
    legacy = {"format": 1, "key": entry["key"], "features": feats.clone(), "features_sha256": fingerprint_tensor(feats)}
    if tampered:
        legacy["features"][0, 0] += 1.0
    torch.save(legacy, path)
    if tampered:
        with pytest.warns(UserWarning, match="recomputing"):
            got = cached_features(KEY, compute, cache_root=tmp_path)
        assert compute.calls == 2
    else:
        got = cached_features(KEY, compute, cache_root=tmp_path)
        assert compute.calls == 1
    assert torch.equal(got, compute.value)


def test_default_location_is_the_i2ibench_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("I2IBENCH_CACHE", str(tmp_path / "c"))
    cached_features(KEY, Counter())
    assert cache_entry_path(KEY).is_relative_to(tmp_path / "c" / "features")
    assert cache_entry_path(KEY).is_file()


def test_keys_and_results_must_be_plain_data(tmp_path):
    with pytest.raises(I2IError, match="plain JSON"):
        cached_features({"x": object()}, Counter(), cache_root=tmp_path)
    with pytest.raises(I2IError, match="non-empty dict"):
        cached_features({}, Counter(), cache_root=tmp_path)
    with pytest.raises(I2IError, match="expected a tensor"):
        cached_features(KEY, lambda: [1, 2], cache_root=tmp_path)


def test_tensor_fingerprint_sees_values_dtype_and_shape():
    t = torch.arange(6, dtype=torch.float32)
    assert fingerprint_tensor(t) == fingerprint_tensor(t.clone())
    changed = t.clone()
    changed[3] = 3.5
    assert len({fingerprint_tensor(x) for x in (t, changed, t.double(), t.view(2, 3))}) == 4


def test_file_fingerprint_follows_path_size_and_mtime(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"1234")
    b.write_bytes(b"5678")
    base = fingerprint_files([a, b])
    assert fingerprint_files([str(a), str(b)]) == base
    assert fingerprint_files([b, a]) != base  # order matters: features are per file, in order
    assert fingerprint_files([a]) != base
    stat = a.stat()
    os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # touched
    assert fingerprint_files([a, b]) != base
    os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fingerprint_files([a, b]) == base
    a.write_bytes(b"12345")
    os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime, other size
    assert fingerprint_files([a, b]) != base
    with pytest.raises(I2IError, match="cannot fingerprint"):
        fingerprint_files([tmp_path / "missing.png"])
