"""The README's results block: generated from collected campaign records, checked in CI."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from i2ibench.errors import ConfigError
from i2ibench.metrics import keys as mk
from i2ibench.pipeline import results as RS
from i2ibench.report import records as R

ROOT = Path(__file__).resolve().parents[1]


def _campaign(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "mini.yaml").write_text(yaml.safe_dump({
        "name": "mini", "description": "Two methods.", "presets": ["smoke"], "seeds": [0, 1],
        "runs": [{"methods": ["stargan2"], "dataset": "fashion10"}]}))
    results = tmp_path / "results"
    for seed, value in ((0, 300.0), (1, 310.0)):
        run = results / "mini" / f"stargan2-fashion10-smoke-s{seed}"
        rows = [{R.METHOD: "stargan2", R.DATASET: "fashion10", R.PROTOCOL: "pooled", R.MODE: "latent",
                 R.METRIC: mk.MFID, R.SCOPE: R.SCOPE_OVERALL, R.VALUE: value, R.SEED: seed, R.ITERATIONS: 4,
                 R.PRESET: "smoke", R.SOURCE: R.SOURCE_REPRODUCED}]
        if seed == 0:  # the second seed is not collected
            R.write_records(run, pd.DataFrame(rows))
    return specs, results


def test_block_says_what_is_in_and_tabulates_it(tmp_path):
    specs, results = _campaign(tmp_path)
    block = RS.results_markdown(specs, results)
    assert block.startswith(RS.BEGIN) and block.endswith(RS.END)
    assert "1 of 2 runs collected" in block and "`stargan2-fashion10-smoke-s1`" in block
    assert "| stargan2" in block and "300.00" in block
    assert "### The papers' claims" in block and "**no data**" in block


def test_readme_is_rewritten_then_checked(tmp_path):
    specs, results = _campaign(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n\n{RS.BEGIN}\nhand-typed 1.23\n{RS.END}\n\nafter\n")
    assert RS.update_readme(readme, check=True, specs_dir=specs, results_root=results) is False
    assert "hand-typed" in readme.read_text()  # --check writes nothing
    assert RS.update_readme(readme, specs_dir=specs, results_root=results) is False
    text = readme.read_text()
    assert "hand-typed" not in text and "before" in text and "after" in text and "300.00" in text
    assert RS.update_readme(readme, check=True, specs_dir=specs, results_root=results) is True
    readme.write_text(text.replace("300.00", "299.00"))
    assert RS.update_readme(readme, check=True, specs_dir=specs, results_root=results) is False


def test_readme_without_markers_is_refused(tmp_path):
    specs, results = _campaign(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("# x\n")
    with pytest.raises(ConfigError, match="no generated results block"):
        RS.update_readme(readme, specs_dir=specs, results_root=results)
    assert readme.read_text() == "# x\n"


def test_committed_readme_results_are_generated(monkeypatch):
    """The README's numbers are what the committed campaign records give (no hand-typed results)."""
    monkeypatch.chdir(ROOT)
    assert RS.update_readme(ROOT / "README.md", check=True), "run `i2ibench results --readme README.md`"
