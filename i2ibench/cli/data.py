"""``i2ibench datasets``: which datasets exist, whether their files are here, what is in them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from i2ibench.errors import DataError

datasets_app = typer.Typer(
    no_args_is_help=False,
    pretty_exceptions_enable=False,
)

DATA_ROOT_HELP = ("The dataset's folder (default: $I2IBENCH_DATA/<name>, ~/data/<name>, then system locations "
                  "such as the Debian packages' folders).")


def _console() -> Console:
    # Wide enough for paths when output is piped (tests, logs); no colour codes there.
    return Console(width=160, soft_wrap=False) if not Console().is_terminal else Console()


@datasets_app.callback(invoke_without_command=True)
def datasets_list(
    ctx: typer.Context,
    pattern: str = typer.Option("*", "--pattern", "-p", help="Glob pattern over dataset names."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help=DATA_ROOT_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """List every registered dataset: domains, whether its files are present here, and where.

    `i2ibench datasets show NAME` shows one dataset's domains, splits and image counts.
    Your own data needs no registration: `folder:<path>` (<path>/{train,val}/<domain>/) and
    `twodomain:<path>` (<path>/{trainA,trainB,testA,testB}/).
    """
    if ctx.invoked_subcommand is not None:
        return
    from i2ibench.data.catalog import get_spec, locate
    from i2ibench.registry import list_datasets

    table = Table(title="i2ibench datasets", show_lines=False)
    table.add_column("name", no_wrap=True)
    table.add_column("domains", justify="right")
    table.add_column("labels")
    table.add_column("present", no_wrap=True)
    table.add_column("files (found, or first place looked)", overflow="fold")
    rows = []
    for name in list_datasets(pattern):
        spec = get_spec(name)
        try:
            where, present = str(locate(spec, data_root)), True
        except DataError:
            where, present = str(spec.candidate_roots(data_root)[0]), False
        rows.append({"name": name, "domains": list(spec.domains), "multi_label": spec.multi_label,
                     "unimodal": list(spec.unimodal_domains), "present": present, "files": where})
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        table.add_row(r["name"], str(len(r["domains"])), "multi-label" if r["multi_label"] else "single",
                      "yes" if r["present"] else "no", r["files"])
    _console().print(table)


@datasets_app.command("show")
def datasets_show(
    name: str = typer.Argument(..., help="Dataset name (see `i2ibench datasets`), or folder:<path>, twodomain:<path>."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help=DATA_ROOT_HELP),
    img_size: Optional[int] = typer.Option(None, "--img-size", min=1,
                                           help="Image size the loader would produce (default: the dataset's)."),
) -> None:
    """Show a dataset: domains, image size, labels, splits and image counts per domain and split.

    Exits with status 2 and the expected folder layout and class names when the files are missing.
    """
    from i2ibench.data.catalog import create_dataset, get_spec, locate

    spec = get_spec(name)
    root = locate(spec, data_root)  # DataError (layout, class names) if absent
    size = img_size or spec.default_img_size
    splits = {s: create_dataset(name, s, size, data_root) for s in spec.splits}
    con = _console()
    con.print(f"[bold]{spec.name}[/bold]  files: {root}")
    con.print(f"source: {spec.source}")
    con.print(f"domains ({spec.num_domains}): {', '.join(spec.domains)}")
    con.print(f"image size: {size}x{size} (default {spec.default_img_size}), "
              f"labels: {'multi-label (attributes)' if spec.multi_label else 'one domain per image'}")
    con.print(f"splits: {', '.join(spec.splits)}")
    if spec.prompt_template:
        con.print(f"LANIT prompt: '{spec.prompt_template}'  base: '{spec.base_prompt}'")
    table = Table(title=f"images per {'attribute' if spec.multi_label else 'domain'}")
    table.add_column("#", justify="right")
    table.add_column("domain", no_wrap=True)
    for s in splits:
        table.add_column(s, justify="right")
    counts = {s: ds.counts() for s, ds in splits.items()}
    for k, d in enumerate(spec.domains):
        table.add_row(str(k), d, *(f"{counts[s][d]:,}" for s in splits))
    table.add_section()
    table.add_row("", "total images", *(f"{len(ds):,}" for ds in splits.values()))
    con.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets")
