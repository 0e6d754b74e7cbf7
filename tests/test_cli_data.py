"""`i2ibench datasets` and `i2ibench datasets show` through the real CLI entry point."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from i2ibench.cli.main import app, main
from i2ibench.data.catalog import FASHION_CLASSES, get_spec
from i2ibench.registry import list_datasets

runner = CliRunner()
needs_fashion = pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz").is_file(),
                                   reason="Debian package dataset-fashion-mnist not installed")
needs_digits = pytest.mark.skipif(not Path("/usr/share/doc/opencv-doc/examples/data/digits.png").is_file(),
                                  reason="Debian package opencv-doc not installed")


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the console script's main() as the shell would; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["i2ibench", *args])
    with pytest.raises(SystemExit) as e:
        main()
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def row(output: str, domain: str) -> list[str]:
    """The cells of the table row whose domain column is ``domain``."""
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]  # between the table's outer borders
        if len(cells) > 2 and cells[1] == domain:
            return cells
    raise AssertionError(f"no row for {domain!r} in:\n{output}")


def test_bare_datasets_lists_every_dataset(tmp_path):
    result = runner.invoke(app, ["datasets", "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in list_datasets():
        assert re.search(rf"│ {re.escape(name)}\s+│", result.output), name
    # with an empty data root nothing is present, and the place looked at is shown
    assert " yes " not in result.output and str(tmp_path) in result.output


@needs_fashion
def test_datasets_list_shows_presence_here():
    result = runner.invoke(app, ["datasets", "--pattern", "fashion10"])
    assert result.exit_code == 0, result.output
    assert re.search(r"fashion10\s+│\s+10 │ single\s+│ yes\s+│ /usr/share/datasets/fashion-mnist", result.output)
    assert "cmnist" not in result.output


@needs_fashion
def test_show_fashion10_counts():
    result = runner.invoke(app, ["datasets", "show", "fashion10", "--img-size", "64"])
    assert result.exit_code == 0, result.output
    assert "64x64" in result.output and ", ".join(FASHION_CLASSES) in result.output
    for k, d in enumerate(FASHION_CLASSES):
        assert row(result.output, d) == [str(k), d, "5,500", "500", "1,000"]
    assert row(result.output, "total images") == ["", "total images", "55,000", "5,000", "10,000"]


@needs_digits
def test_show_cmnist_counts():
    result = runner.invoke(app, ["datasets", "show", "cmnist"])
    assert result.exit_code == 0, result.output
    assert row(result.output, "gray") == ["0", "gray", "1,925", "500", "1,000"]
    assert row(result.output, "color") == ["1", "color", "1,925", "500", "1,000"]


def test_show_custom_folder(tmp_path):
    for split, n in (("train", 3), ("val", 1)):
        for d in ("day", "night"):
            (tmp_path / split / d).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (4, 4)).save(tmp_path / split / d / f"{i}.png")
    result = runner.invoke(app, ["datasets", "show", f"folder:{tmp_path}"])
    assert result.exit_code == 0, result.output
    assert row(result.output, "night") == ["1", "night", "3", "1"]


def test_show_missing_files_exits_2_with_layout_and_classes(monkeypatch, capsys, tmp_path):
    code, out, err = run_main(monkeypatch, capsys, "datasets", "show", "animalfaces10", "--data-root", str(tmp_path))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: animalfaces10:")
    assert "Traceback" not in err
    spec = get_spec("animalfaces10")
    assert spec.expected_layout in err and all(d in err for d in spec.domains) and str(tmp_path) in err


def test_show_unknown_name_exits_2_with_suggestion(monkeypatch, capsys):
    code, _, err = run_main(monkeypatch, capsys, "datasets", "show", "fashon10")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert "did you mean 'fashion10'" in err and all(n in err for n in list_datasets())


def test_show_empty_domain_exits_2(monkeypatch, capsys, tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "b").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "train" / "a" / "0.png")
    code, _, err = run_main(monkeypatch, capsys, "datasets", "show", f"folder:{tmp_path}")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"empty domain folder {tmp_path / 'train' / 'b'}" in err


def test_help_texts():
    for args in (["datasets", "--help"], ["datasets", "show", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0
    assert "whether its files are present" in runner.invoke(app, ["datasets", "--help"]).output
    assert "image counts" in runner.invoke(app, ["datasets", "show", "--help"]).output
