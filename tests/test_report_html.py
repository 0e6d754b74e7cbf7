"""`i2ibench report`: the static HTML report, its files and links, its refusals, and the page in a
real headless chromium (DevTools protocol: console errors, failed loads, images, DOM, screenshot)."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import run_cli
from i2ibench.errors import I2IError
from i2ibench.report import records as R
from i2ibench.report.html import MARKER, build_report

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"


class _Page(HTMLParser):
    """Links, image sources and table rows (data-method, the row header's text) of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.hrefs: list[str] = []
        self.rows: list[tuple[str, str]] = []
        self._row: str | None = None
        self._th = False
        self._text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.srcs.append(a.get("src", ""))
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag == "tr" and "data-method" in a:
            self._row, self._text = a["data-method"], ""
        if tag == "th" and self._row is not None:
            self._th = True

    def handle_endtag(self, tag):
        if tag == "th" and self._th:
            self.rows.append((self._row, self._text.strip()))
            self._th, self._row = False, None

    def handle_data(self, data):
        if self._th:
            self._text += data


def _page(html: str) -> _Page:
    p = _Page()
    p.feed(html)
    return p


@pytest.fixture(scope="module")
def committed_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "site"
    index = build_report([RESULTS], out, compare_to="tunit")
    return out, index


def _committed_runs() -> list[Path]:
    """Run folders of the committed results (single-seed runs and campaigns; not the regression table)."""
    return sorted(p.parent for p in RESULTS.rglob("records.csv") if "regression" not in p.parts)


def _committed_methods() -> set[str]:
    df = R.load_records(_committed_runs())
    return set(df[R.METHOD])


def test_report_files_links_and_no_absolute_paths(committed_report):
    out, index = committed_report
    html = index.read_text()
    page = _page(html)
    assert (out / MARKER).is_file()
    # Every image and every link inside the report resolves to a file in the report folder.
    assert page.srcs and all(not s.startswith(("/", "file:", "http")) for s in page.srcs)
    for src in page.srcs:
        assert (out / src).is_file(), src
    for href in page.hrefs:
        if not href.startswith("#"):
            assert not href.startswith(("/", "file:", "http")) and (out / href).is_file(), href
    # The final grids of every committed run were copied (<run>/samples/*_<last>.png).
    for run in _committed_runs():
        if (run / "samples").is_dir():
            last = max(int(re.search(r"_(\d+)\.png$", p.name).group(1)) for p in (run / "samples").glob("*.png"))
            for grid in (run / "samples").glob(f"*_{last:08d}.png"):
                assert any(s.endswith(f"{run.name}/{grid.name}") for s in page.srcs), grid
    # No path of this machine anywhere in the page.
    for path in (str(REPO), str(out), str(Path.home()), str(out.parent)):
        assert path not in html
    assert not re.search(r"(?:src|href)=\"/", html)
    # Each method of the records has a row in a table; the heatmaps are FID ones in domain order.
    assert _committed_methods() <= {m for m, _ in page.rows}
    assert (out / "heatmaps" / "fashion10_cpu_pairwise_reference_fid.png").is_file()
    # The committed runs were evaluated once each: their curves say so.
    assert html.count("single evaluation (iteration ") == len(_committed_runs())
    # The CLIPTraVeLGAN sweep (results/campaigns/twodomain-cpu) gives the trade-off plot.
    assert any(s.startswith("tradeoff/") for s in page.srcs)
    # Published numbers are there, in their own tables (34.11: LANIT on AnimalFaces-10, Table 1).
    assert "34.11" in html and "Published numbers" in html


def _two_domain_runs(root: Path) -> None:
    """Two fake two-domain runs: cliptravelgan evaluated at iterations 100 and 200, cyclegan at 100."""
    def rows(method, it, fid, truth, setting):
        base = {R.METHOD: method, R.DATASET: "fashion-inv2plain-skewed", R.PRESET: "cpu", R.SEED: 1,
                R.ITERATIONS: it, R.SOURCE: R.SOURCE_REPRODUCED, R.SETTING: setting, R.MODE: "deterministic",
                R.FEATURES: "inception-v3-compat", R.CODE_VERSION: "0.1.0+gtest"}
        return [dict(base, **{R.PROTOCOL: "pairwise", R.METRIC: "mfid", R.SCOPE: R.SCOPE_OVERALL, R.DOMAIN: "",
                              R.VALUE: fid}),
                dict(base, **{R.PROTOCOL: "pairwise", R.METRIC: "fid", R.SCOPE: R.SCOPE_TASK,
                              R.DOMAIN: "inverted->plain", R.VALUE: fid}),
                dict(base, **{R.PROTOCOL: "lpips-truth", R.METRIC: "lpips_truth", R.SCOPE: R.SCOPE_OVERALL,
                              R.DOMAIN: "", R.VALUE: truth})]

    clip = rows("cliptravelgan", 100, 300.0, 0.5, "lambda=16.256") + rows("cliptravelgan", 200, 250.0, 0.4,
                                                                           "lambda=16.256")
    R.write_records(root / "clip-run", R.from_rows(clip))
    (root / "clip-run" / "config.yaml").write_text("method: cliptravelgan\ndataset: fashion-inv2plain-skewed\n"
                                                   "preset: cpu\ntrain:\n  seed: 1\n  total_iters: 200\n")
    R.write_records(root / "cycle-run", R.from_rows(rows("cyclegan", 100, 280.0, 0.3, "lambda_cyc=10")))


def test_report_curves_and_tradeoff_from_synthetic_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _two_domain_runs(tmp_path / "runs")
    index = build_report(["runs"], tmp_path / "site", published=False)
    html = index.read_text()
    # clip-run holds two iterations: a curve; cycle-run one: said in words.
    assert (tmp_path / "site" / "curves" / "runs-clip-run.png").is_file()
    assert "runs/cycle-run</b>: single evaluation (iteration 100)" in html
    assert "runs/clip-run</b>: single evaluation" not in html
    # The trade-off: one point per run at its newest evaluation (clip-run: FID 250.00, not 300.00).
    assert (tmp_path / "site" / "tradeoff" / "tradeoff.png").is_file()
    page = _page(html)
    assert {m for m, _ in page.rows} >= {"cliptravelgan", "cyclegan"}
    assert "250.00" in html and "0.4000" in html and "300.00" not in html
    assert "LPIPS to truth" in html
    assert "Published numbers" not in html  # --no-published
    assert "iterations evaluated</dt><dd>100, 200" in html  # provenance from config.yaml and records


def test_report_refuses_a_foreign_folder_and_replaces_its_own(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _two_domain_runs(tmp_path / "runs")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code, out, err = run_cli(monkeypatch, capsys, "report", "runs", "--out", "mine")
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "no earlier i2ibench report" in err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli(monkeypatch, capsys, "report", "runs", "--out", "afile")
    assert code == 2 and "is a file" in err
    code, _, err = run_cli(monkeypatch, capsys, "report", "nope", "--out", "site")
    assert code == 2 and "nope: no such file or folder" in err and not (tmp_path / "site").exists()
    # A report replaces an earlier report in one rename, and leaves no temp folder beside it.
    code, _, err = run_cli(monkeypatch, capsys, "report", "runs", "--out", "site", "--no-published")
    assert code == 0, err
    code, _, err = run_cli(monkeypatch, capsys, "report", "runs/cycle-run", "--out", "site", "--no-published")
    assert code == 0, err
    html = (tmp_path / "site" / "index.html").read_text()
    assert "runs/cycle-run" in html and "runs/clip-run" not in html
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "mine", "runs", "site"]
    with pytest.raises(I2IError, match="no runs"):
        (tmp_path / "empty").mkdir()
        build_report(["empty"], tmp_path / "site2")
    assert not (tmp_path / "site2").exists()


def test_user_paths_in_names_are_cut_to_their_last_part():
    from i2ibench.report.html import scrub

    text = "twodomain:/home/me/data/monet2photo · pooled; VLM file:ViT-B-32=/root/w/clip.pt; folder:/srv/a/b)"
    assert scrub(text) == "twodomain:…/monet2photo · pooled; VLM file:ViT-B-32=…/clip.pt; folder:…/b)"


# --------------------------------------------------------------------------- the page in a browser

def _chromium():
    from headless import find_chromium

    binary = find_chromium()
    if binary is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium); CI installs it")
    pytest.importorskip("websockets", reason="the DevTools client needs the websockets package (pip install -e .[test])")
    return binary


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from headless import Browser

    with Browser(_chromium(), tmp_path_factory.mktemp("chromium-profile")) as b:
        yield b


def test_browser_check_catches_errors(browser, tmp_path):
    """The checks below would see a broken page: a JS error, console.error and a missing image."""
    (tmp_path / "index.html").write_text('<!DOCTYPE html><html><body><p>x</p><img src="missing.png">'
                                         '<script>console.error("boom"); notAFunction();</script></body></html>')
    page = browser.load((tmp_path / "index.html").as_uri())
    assert any("boom" in e for e in page.console_errors)
    assert any("notAFunction" in e for e in page.console_errors)
    assert any("missing.png" in e for e in page.console_errors)  # "Failed to load resource"
    assert page.failed_loads and page.broken_images == ["missing.png"]


def test_committed_report_in_headless_chromium(browser, committed_report):
    from PIL import Image, ImageStat

    out, index = committed_report
    page = browser.load(index.as_uri(), width=1600, height=2000)
    assert page.console_errors == [] and page.failed_loads == []
    assert page.images > 0 and page.broken_images == []
    # The page drew something: the screenshot is a PNG that is not one flat colour.
    shot = out.parent / "screenshot.png"
    shot.write_bytes(page.screenshot)
    image = Image.open(io.BytesIO(page.screenshot)).convert("L")
    assert image.size == (1600, 2000) and ImageStat.Stat(image).var[0] > 0
    # Every method of the committed records has a row in the rendered DOM.
    rendered = {m for m, _ in _page(page.dom).rows}
    assert _committed_methods() <= rendered
    assert "34.11" in page.dom and "fashion10 · pooled · reference" in page.dom
