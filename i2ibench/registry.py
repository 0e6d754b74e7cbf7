"""One registry type for methods, datasets and metrics (timm-style decorator registration).

    @register_method("stargan2")
    class StarGAN2(Method): ...

    create_method("stargan2", ...)     list_methods("star*")

Names are validated (lower-case, digits, ``_`` and ``-``) and unique. A wrong name raises a
one-line error listing the valid names with the closest match first. Methods from other
packages are found through the entry-point group ``i2ibench.methods``: each entry point
names a module (or object) whose import registers the method.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import re
from importlib import metadata
from typing import Any, Callable, Generic, TypeVar

from i2ibench.errors import I2IError

T = TypeVar("T")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_\-]*$")

METHOD_ENTRY_POINT_GROUP = "i2ibench.methods"
# Built-in methods: imported by name on first look-up, as entry points are, so that no
# infrastructure module imports a method.
BUILTIN_METHOD_MODULES = (
    "i2ibench.methods.stargan2",
    "i2ibench.methods.tunit",
    "i2ibench.methods.lanit",
    "i2ibench.methods.cliptravelgan",
    "i2ibench.methods.cyclegan",
    "i2ibench.methods.hmu",
)


class UnknownNameError(I2IError):
    pass


def suggest(name: str, valid: list[str]) -> str:
    """'did you mean' text for an unknown name."""
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{hint} Valid: {', '.join(sorted(valid)) or '(none)'}"


class Registry(Generic[T]):
    def __init__(self, kind: str, discover: Callable[[], None] | None = None):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._discover = discover
        self._discovered = False

    def register(self, name: str, obj: T | None = None):
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted."""
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(
                f"invalid {self.kind} name {name!r}: use lower-case letters, digits, '_' or '-', starting with a letter"
            )

        def deco(o: T) -> T:
            if name in self._entries and self._entries[name] is not o:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = o
            return o

        return deco(obj) if obj is not None else deco

    def _ensure_discovered(self) -> None:
        if not self._discovered and self._discover is not None:
            self._discovered = True
            self._discover()

    def names(self) -> list[str]:
        self._ensure_discovered()
        return sorted(self._entries)

    def in_order(self) -> list[str]:
        """Every name, in registration order."""
        self._ensure_discovered()
        return list(self._entries)

    def list(self, pattern: str = "*") -> list[str]:
        return [n for n in self.names() if fnmatch.fnmatch(n, pattern)]

    def __contains__(self, name: str) -> bool:
        self._ensure_discovered()
        return name in self._entries

    def get(self, name: str) -> T:
        self._ensure_discovered()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(f"unknown {self.kind} '{name}'.{suggest(name, list(self._entries))}") from None


def _discover_methods() -> None:
    for mod in BUILTIN_METHOD_MODULES:
        importlib.import_module(mod)
    for ep in metadata.entry_points(group=METHOD_ENTRY_POINT_GROUP):
        ep.load()


def _discover_builtin(module: str) -> Callable[[], None]:
    return lambda: importlib.import_module(module)


METHODS: Registry[Any] = Registry("method", _discover_methods)
DATASETS: Registry[Any] = Registry("dataset", _discover_builtin("i2ibench.data.catalog"))
METRICS: Registry[Any] = Registry("metric", _discover_builtin("i2ibench.metrics.registry"))


def register_method(name: str):
    """Class decorator: ``@register_method("mymethod")`` on a ``Method`` subclass."""
    def deco(cls):
        cls.name = name
        return METHODS.register(name, cls)
    return deco


def register_dataset(name: str):
    """Decorator on a function returning a ``DatasetSpec``."""
    return DATASETS.register(name)


def register_metric(name: str):
    """Register a ``MetricSpec`` (``i2ibench.metrics.registry``) under its key."""
    return METRICS.register(name)


def list_methods(pattern: str = "*") -> list[str]:
    return METHODS.list(pattern)


def list_datasets(pattern: str = "*") -> list[str]:
    return DATASETS.list(pattern)


def list_metrics(pattern: str = "*") -> list[str]:
    return METRICS.list(pattern)


def get_method_class(name: str):
    return METHODS.get(name)


def create_method(name: str, *args: Any, **kwargs: Any):
    """Instantiate a registered method: ``create_method(name, run_config, data_info, device)``.

    A ``ValueError`` from building its networks (e.g. an image size they cannot take) is a
    setting the user chose: it becomes a one-line ``ConfigError`` naming the method.
    """
    cls = METHODS.get(name)
    try:
        return cls(*args, **kwargs)
    except ValueError as e:
        from i2ibench.errors import ConfigError

        raise ConfigError(f"{name}: {e}") from None
