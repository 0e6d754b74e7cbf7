"""Registries: validated names, decorator registration, pattern listing, helpful errors,
entry-point discovery."""

from importlib import metadata

import pytest

from i2ibench import registry
from i2ibench.registry import Registry, UnknownNameError


def test_register_and_get_and_list():
    reg = Registry("thing")

    @reg.register("alpha")
    def alpha():
        return 1

    reg.register("beta-2", object())
    assert reg.get("alpha") is alpha
    assert reg.list() == ["alpha", "beta-2"]
    assert reg.list("b*") == ["beta-2"]
    assert "alpha" in reg and "gamma" not in reg


@pytest.mark.parametrize("bad", ["", "Upper", "1abc", "has space", "dot.name", None])
def test_invalid_names_rejected(bad):
    with pytest.raises(ValueError, match="invalid thing name"):
        Registry("thing").register(bad, object())


def test_duplicate_rejected():
    reg = Registry("thing")
    reg.register("a", object())
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", object())


def test_unknown_name_suggests_closest_and_lists_valid():
    reg = Registry("method")
    for n in ("stargan2", "tunit", "lanit"):
        reg.register(n, object())
    with pytest.raises(UnknownNameError) as e:
        reg.get("stargan")
    msg = str(e.value)
    assert "did you mean 'stargan2'" in msg
    assert "lanit, stargan2, tunit" in msg


def test_entry_point_discovery(monkeypatch):
    """A third-party package's entry point in group i2ibench.methods is loaded on first look-up."""
    loaded = []

    class FakeEP:
        name = "thirdparty"

        def load(self):
            loaded.append(True)
            registry.METHODS.register("thirdparty-method", type("ThirdParty", (), {}))

    real = metadata.entry_points

    def fake_entry_points(**kw):
        if kw.get("group") == registry.METHOD_ENTRY_POINT_GROUP:
            return [FakeEP()]
        return real(**kw)

    monkeypatch.setattr(registry.metadata, "entry_points", fake_entry_points)
    reg = Registry("method", registry._discover_methods)
    monkeypatch.setattr(registry, "METHODS", registry.METHODS)
    assert "thirdparty-method" not in registry.METHODS._entries
    reg.names()  # triggers discovery
    assert loaded == [True]
    assert "thirdparty-method" in registry.METHODS._entries
    registry.METHODS._entries.pop("thirdparty-method")


def test_builtin_registries_are_populated():
    assert {"fashion10", "cmnist", "animalfaces10", "afhq", "food10", "celebahq"} <= set(registry.list_datasets())
    assert {"fid", "density", "coverage", "lpips"} <= set(registry.list_metrics())
    assert {"stargan2", "tunit", "lanit"} <= set(registry.list_methods())
