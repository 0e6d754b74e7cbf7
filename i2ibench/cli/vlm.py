"""``i2ibench vlm``: the vision-language models LANIT and CLIPTraVeLGAN can use."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

vlm_app = typer.Typer(
    help="Vision-language models (CLIP): list them, pre-train the offline stand-in, score zero-shot accuracy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

FASHION_ROOT_HELP = "Folder with the Fashion-MNIST IDX files (default: the fashion10 dataset's usual places)."
CMNIST_ROOT_HELP = "Folder with digits.png or the MNIST IDX files (default: the cmnist dataset's usual places)."
HEADLINE = (("fashion10/val template", "fashion10 val"), ("cmnist/val colour", "cmnist val colour"))


def _console() -> Console:
    return Console(width=160, soft_wrap=False) if not Console().is_terminal else Console()


def _accuracy_table(report: dict, title: str) -> Table:
    table = Table(title=title)
    for col in ("task", "top-1", "images", "classes", "prompt"):
        table.add_column(col, overflow="fold")
    for task, r in report.items():
        prompt = r["templates"][0] + (f" (mean of {len(r['templates'])} templates)" if len(r["templates"]) > 1 else "")
        table.add_row(task, f"{r['top1']:.3f}", str(r["images"]), str(r["classes"]), prompt)
    return table


@vlm_app.command("list")
def vlm_list() -> None:
    """Each named VLM: kind, where its weights are, whether they are here, zero-shot accuracy.

    Also accepted wherever a VLM is named (`--vlm`): `open_clip:MODEL/PRETRAINED` (any open_clip
    model; downloaded where there is internet, else from a pre-filled Hugging Face cache with
    HF_HUB_OFFLINE=1) and `file:MODEL=PATH` (an open_clip architecture with a local weights file;
    OpenAI's ViT-B-32.pt goes with `file:ViT-B-32-quickgelu=PATH`).
    """
    from i2ibench.vlm.clip import list_vlms

    table = Table(title="i2ibench VLMs")
    for col in ("name", "kind", "present", *(h for _, h in HEADLINE), "weights"):
        table.add_column(col, overflow="fold", no_wrap=col in ("name", "present"))
    for row in list_vlms():
        accs = [row["zero_shot"].get(key, {}).get("top1") for key, _ in HEADLINE]
        table.add_row(row["name"], row["kind"], "yes" if row["present"] else "no",
                      *("-" if a is None else f"{a:.3f}" for a in accs), row["weights"])
    _console().print(table)
    typer.echo("zero-shot top-1: fashion10 val with 'a photo of a {}.'; cmnist val painted digits, 10 colours, "
               "'a photo of a {} digit.'. `i2ibench vlm eval NAME` measures it for a real model.")


@vlm_app.command("pretrain")
def vlm_pretrain(
    force: bool = typer.Option(False, "--force", help="Pre-train again even if the weights are cached."),
    fashion_root: Optional[Path] = typer.Option(None, "--fashion-root", help=FASHION_ROOT_HELP),
    cmnist_root: Optional[Path] = typer.Option(None, "--cmnist-root", help=CMNIST_ROOT_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Pre-train the offline stand-in `tiny-clip` and cache it with its zero-shot accuracies.

    Contrastive image-caption training of a small open_clip CLIP on data no benchmark uses
    (Fashion-MNIST's official test split, the cmnist held-out digits), deterministic for the
    recipe's seed. `--vlm tiny-clip` runs this automatically when the weights are missing.
    """
    from i2ibench.vlm.tiny import TinyClipConfig, pretrain_and_save, read_meta, standin_dir

    cfg = TinyClipConfig()
    folder = standin_dir(cfg)
    meta = read_meta(folder)
    if meta is not None and not force:
        typer.echo(f"tiny-clip is already pre-trained: {folder} ({meta['name']}); --force pre-trains again")
    else:
        t0 = time.time()
        folder = pretrain_and_save(cfg, fashion_root, cmnist_root, progress=progress)
        meta = read_meta(folder)
        training = meta["training"]
        typer.echo(f"pre-trained {meta['name']} in {time.time() - t0:.0f} s (training {training['seconds']:.0f} s, "
                   f"{training['steps']} steps); saved to {folder}")
    title = f"{meta['name']} zero-shot top-1 (benchmark validation splits)"
    _console().print(_accuracy_table(meta["zero_shot"], title))


@vlm_app.command("eval")
def vlm_eval(
    name: str = typer.Argument(..., help="tiny-clip, openai/ViT-B-32, open_clip:MODEL/TAG or file:MODEL=PATH."),
    fashion_root: Optional[Path] = typer.Option(None, "--fashion-root", help=FASHION_ROOT_HELP),
    cmnist_root: Optional[Path] = typer.Option(None, "--cmnist-root", help=CMNIST_ROOT_HELP),
) -> None:
    """Zero-shot accuracy of a VLM on the fashion10 and cmnist validation splits (recorded for `vlm list`)."""
    from i2ibench.fileio import write_json
    from i2ibench.vlm.clip import load_vlm, zero_shot_record_path
    from i2ibench.vlm.tiny import zero_shot_report

    vlm = load_vlm(name)
    t0 = time.time()
    report = zero_shot_report(vlm, fashion_root, cmnist_root)
    path = zero_shot_record_path(name if not name.startswith("file:") else vlm.name)
    write_json(path, {"name": vlm.name, "zero_shot": report, "seconds": round(time.time() - t0, 1)})
    _console().print(_accuracy_table(report, f"{vlm.name} zero-shot top-1 (benchmark validation splits)"))
    typer.echo(f"recorded in {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(vlm_app, name="vlm")
