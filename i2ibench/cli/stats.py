"""``i2ibench stats``: reference statistics of a dataset split as files (pytorch-fid / clean-fid ``.npz``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

stats_app = typer.Typer(
    help="Reference Inception statistics as files: export a dataset split's per-domain mu/sigma to .npz.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@stats_app.command("export")
def stats_export(
    dataset: str = typer.Argument(..., help="Dataset name (fashion10, cmnist, folder:<path>, ...)."),
    out: Path = typer.Option(..., "--out", help="The .npz file to write."),
    split: str = typer.Option("val", "--split", help="Dataset split (the harness scores against val by default)."),
    img_size: Optional[int] = typer.Option(None, "--img-size", help="Image size (default: the dataset's)."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="The dataset's folder."),
    device: str = typer.Option("cpu", "--device", help="Device of the Inception network."),
    batch_size: int = typer.Option(50, "--batch-size", help="Inception batch size (50: the harness's default, "
                                   "which shares its cached features)."),
    per_domain_files: bool = typer.Option(False, "--per-domain-files",
                                          help="Also write <stem>.<k>-<domain>.npz with one domain's mu/sigma."),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Write DATASET/SPLIT's Inception statistics to OUT (.npz).

    OUT holds `mu`/`sigma` of the whole split (pytorch-fid and clean-fid read these), and
    `mu_<k>`/`sigma_<k>` per domain k with `domains` and `counts`. Features come from (and go
    to) the real-feature cache that evaluation uses.
    """
    from i2ibench.evaluation.stats_export import export_stats

    written = export_stats(dataset, out, split, img_size, data_root, device=device, batch_size=batch_size,
                           per_domain_files=per_domain_files)
    import numpy as np

    with np.load(written[0], allow_pickle=False) as f:
        domains, counts = [str(d) for d in f["domains"]], f["counts"].tolist()
    if as_json:
        typer.echo(json.dumps({"files": [str(p) for p in written], "domains": domains, "counts": counts}, indent=2))
        return
    typer.echo(f"wrote {written[0]}: {dataset}/{split}, {len(domains)} domains, {sum(counts)} images "
               f"(mu/sigma pooled; mu_<k>/sigma_<k> per domain)")
    for p in written[1:]:
        typer.echo(f"wrote {p}")


def register(app: typer.Typer) -> None:
    app.add_typer(stats_app, name="stats")
