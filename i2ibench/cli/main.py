"""The ``i2ibench`` command line. Sub-areas add their commands through ``register(app)``."""

from __future__ import annotations

import importlib
import json
import sys

import typer

from i2ibench import __version__
from i2ibench.errors import I2IError

app = typer.Typer(
    help="i2ibench: train and score multi-domain image-to-image translation methods under one protocol.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module defines register(app) and owns its commands.
COMMAND_MODULES = ("i2ibench.cli.data", "i2ibench.cli.train", "i2ibench.cli.evaluate", "i2ibench.cli.vlm",
                   "i2ibench.cli.classifier", "i2ibench.cli.stats", "i2ibench.cli.report", "i2ibench.cli.bench")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"i2ibench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """i2ibench: train and score multi-domain image-to-image translation methods under one protocol."""


@app.command("methods")
def methods_cmd(pattern: str = typer.Argument("*", help="Glob pattern over method names."),
                as_json: bool = typer.Option(False, "--json", help="Print the list as JSON.")) -> None:
    """List the registered methods (built-in and from the `i2ibench.methods` entry-point group)."""
    from i2ibench.registry import get_method_class, list_methods

    rows = []
    for name in list_methods(pattern):
        cls = get_method_class(name)
        doc = cls.__doc__ or sys.modules[cls.__module__].__doc__ or ""
        rows.append({"name": name, "modes": list(cls.modes), "labels": cls.label_kind, "presets": sorted(cls.presets),
                     "summary": doc.strip().splitlines()[0] if doc.strip() else ""})
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        typer.echo(f"{r['name']:16s} modes={','.join(r['modes']):18s} labels={r['labels']:16s} {r['summary']}")


for _mod in COMMAND_MODULES:
    importlib.import_module(_mod).register(app)


def main() -> None:
    try:
        app()
    except I2IError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
