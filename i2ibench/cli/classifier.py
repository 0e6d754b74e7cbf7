"""``i2ibench classifier``: the domain and content classifiers behind translation accuracy and
content preservation (train once per dataset, cached, named by a digest of their weights)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

classifier_app = typer.Typer(
    help="Classifiers that score translations: train one per dataset (cached), list the cached ones.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _console() -> Console:
    return Console(width=120, soft_wrap=False) if not Console().is_terminal else Console()


@classifier_app.command("train")
def classifier_train(
    dataset: str = typer.Argument(..., help="Dataset name (fashion10, cmnist, folder:<path>, ...)."),
    label: str = typer.Option("domain", "--label", help="domain (translation accuracy) or content (cmnist's digit)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ... (ResNet-18 for > 64 px wants a GPU)."),
    arch: str = typer.Option("auto", "--arch", help="auto (cnn up to 64 px, resnet18 above), cnn or resnet18."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs (default: the recipe's)."),
    img_size: Optional[int] = typer.Option(None, "--img-size", min=1,
                                           help="Image size the classifier scores, the run's train.img_size "
                                                "(default: the dataset's; evaluation uses the run's size)."),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation, data order and augmentation."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="The dataset's folder."),
    force: bool = typer.Option(False, "--force", help="Train again even if this classifier is cached."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the classifier's record as JSON."),
) -> None:
    """Train a classifier on DATASET's train split, measure it on val, and cache it.

    Deterministic on CPU for a seed. Evaluation loads it from the cache (and trains it there
    when it is missing); this command does it ahead of time and prints its validation accuracy.
    """
    from dataclasses import replace

    from i2ibench.data.catalog import get_spec
    from i2ibench.features.classifier import (
        ClassifierConfig,
        _resolve,
        classifier_dir,
        config_key,
        read_meta,
        train_classifier,
    )

    # The dataset's default size is recipe size 0, as the evaluation looks it up (harness.load_classifiers).
    size = 0 if img_size is None or img_size == get_spec(dataset).default_img_size else img_size
    cfg = ClassifierConfig(arch=arch, seed=seed, img_size=size)
    if epochs is not None:
        cfg = replace(cfg, epochs=epochs)
    _, _, size, fingerprint = _resolve(dataset, label, cfg, data_root)
    folder = classifier_dir(dataset, label, config_key(dataset, label, cfg, size, fingerprint))
    meta = read_meta(folder)
    t0 = time.time()
    if meta is None or force:
        folder = train_classifier(dataset, label, cfg, data_root, device, progress)
        meta = read_meta(folder)
        status = f"trained in {time.time() - t0:.0f} s (training {meta['training']['seconds']:.0f} s)"
    else:
        status = "already cached (--force trains again)"
    if as_json:
        typer.echo(json.dumps({**meta, "folder": str(folder)}, indent=2))
        return
    typer.echo(f"{meta['name']}: validation accuracy {meta['val_acc']:.4f} on {meta['val_images']} {dataset} val "
               f"images; {status}; {folder}")


@classifier_app.command("list")
def classifier_list(as_json: bool = typer.Option(False, "--json", help="Print the list as JSON.")) -> None:
    """The cached classifiers: name, dataset, label, architecture, validation accuracy, training time."""
    from i2ibench.features.classifier import list_classifiers

    rows = list_classifiers()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    # The folder of each is under the cache root printed below (`--json` gives each one): a
    # column of absolute paths would push the table past any terminal's width.
    table = Table(title="i2ibench classifiers (cached)")
    for col in ("name (dataset-label-arch@digest)", "label", "arch", "img", "val acc", "train s"):
        table.add_column(col, overflow="fold", no_wrap=not col.startswith("name"))
    for r in rows:
        table.add_row(r["name"], r["label"], r["arch"], str(r["img_size"]), f"{r['val_acc']:.4f}",
                      f"{r['training']['seconds']:.0f}")
    _console().print(table)
    if not rows:
        typer.echo("none cached; `i2ibench classifier train DATASET` trains one")
    else:
        from i2ibench.features.classifier import classifiers_root

        typer.echo(f"folders under {classifiers_root()} (`--json` lists each)")


def register(app: typer.Typer) -> None:
    app.add_typer(classifier_app, name="classifier")
