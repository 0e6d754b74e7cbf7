"""Tables: published numbers, --compare arithmetic, seed aggregation, filters, formats."""

import io
import math
import re

import pandas as pd
import pytest

from i2ibench.report import records as R
from i2ibench.report.published import TABLES, load_published
from i2ibench.report.tables import aggregate, build_tables, compare, format_cell, render, select


# ----------------------------------------------------------------------------- published numbers

# Issue 4's list, transcribed again in its own compact form: "mFID, density/coverage" per dataset.
LANIT_T1 = {  # CelebA-HQ; AnimalFaces-10; Food-10
    "stargan2": "32.16, 1.22/0.44; 33.67, 1.54/0.91; 65.03, 1.09/0.76",
    "smoothing": "35.93, 1.25/0.43; 38.93, 0.97/0.75; 61.13, 0.96/0.68",
    "tunit": "61.29, 0.24/0.13; 47.70, 1.04/0.81; 52.20, 1.08/0.88",
    "kim_et_al": "41.33, 0.60/0.24; 36.83, 1.06/0.82; 49.34, 1.06/0.80",
    "lanit": "27.96, 0.91/0.34; 34.11, 1.46/0.89; 48.08, 1.24/0.86",
}
LANIT_T2 = {  # N: method: AnimalFaces-10 mFID, D/C; CelebA-HQ mFID, D/C
    4: {"tunit": "77.7, 0.88/0.74; 61.5, 0.24/0.12", "lanit": "71.6, 1.35/0.46; 49.3, 0.33/0.14"},
    7: {"tunit": "62.7, 1.02/0.73; 54.7, 0.33/0.16", "lanit": "49.9, 1.47/0.66; 43.2, 0.44/0.19"},
    10: {"tunit": "47.7, 1.04/0.81; 61.3, 0.24/0.13", "lanit": "34.1, 1.46/0.89; 27.9, 0.91/0.34"},
    13: {"tunit": "56.8, 0.99/0.72; 98.9, 0.08/0.03", "lanit": "30.1, 1.43/0.85; 34.8, 0.58/0.21"},
    16: {"tunit": "54.1, 1.09/0.78; 127.7, 0.04/0.02", "lanit": "35.8, 1.49/0.82; 27.9, 0.76/0.23"},
}


def _parse(text):
    out = []
    for part in text.split(";"):
        f, dc = part.split(",")
        d, c = dc.split("/")
        out.append((f.strip(), d.strip(), c.strip()))
    return out


def _published_value(pub, table, method, dataset, metric, setting=""):
    sel = pub[(pub[R.TABLE] == table) & (pub[R.METHOD] == method) & (pub[R.DATASET] == dataset)
              & (pub[R.METRIC] == metric) & (pub[R.SETTING] == setting)]
    assert len(sel) == 1, (table, method, dataset, metric, setting)
    return sel.iloc[0]


def test_published_lanit_tables_exact():
    pub = load_published()
    for method, text in LANIT_T1.items():
        for ds, (f, d, c) in zip(["celebahq", "animalfaces10", "food10"], _parse(text)):
            for metric, v in (("mfid", f), ("density", d), ("coverage", c)):
                row = _published_value(pub, "lanit-table1", method, ds, metric)
                assert row[R.VALUE] == float(v)
                assert row["decimals"] == len(v.split(".")[1])
                assert row[R.PROTOCOL] == "pooled"
    for n, per in LANIT_T2.items():
        for method, text in per.items():
            for ds, (f, d, c) in zip(["animalfaces10", "celebahq"], _parse(text)):
                for metric, v in (("mfid", f), ("density", d), ("coverage", c)):
                    assert _published_value(pub, "lanit-table2", method, ds, metric, f"N={n}")[R.VALUE] == float(v)


def test_published_stargan2_and_cliptravelgan_exact():
    pub = load_published()
    sg = {("celebahq-gender", "latent"): (13.73, 0.06, 0.4515), ("celebahq-gender", "reference"): (23.84, 0.03, 0.3880),
          ("afhq", "latent"): (16.18, 0.15, 0.4501), ("afhq", "reference"): (19.78, 0.01, 0.4315)}
    for (ds, mode), (fid, sd, lp) in sg.items():
        rows = pub[(pub[R.TABLE] == "stargan2-readme") & (pub[R.DATASET] == ds) & (pub[R.MODE] == mode)]
        f = rows[rows[R.METRIC] == "mfid"].iloc[0]
        assert (f[R.VALUE], f[R.STD], f[R.N_SEEDS]) == (fid, sd, 10)
        assert rows[rows[R.METRIC] == "lpips"].iloc[0][R.VALUE] == lp
    ct = pub[pub[R.TABLE] == "cliptravelgan-table1"]
    got = dict(zip(ct[R.SETTING], ct[R.VALUE]))
    assert got == {"lambda=0.0003, 40k updates": 5.74, "lambda=0.001, 40k updates": 6.22,
                   "lambda=0.001, 20k updates": 6.81, "lambda=0.003, 17k updates": 9.09,
                   "lambda=0.01, 17k updates": 9.08, "lambda=0.01, 40k updates": 8.90}
    mn = pub[pub[R.TABLE] == "cliptravelgan-monet"]
    assert dict(zip(mn[R.METHOD], mn[R.VALUE])) == {"cyclegan": 6.9, "travelgan": 7.7, "cliptravelgan": 7.3}


def test_every_published_row_names_its_source_and_table():
    pub = load_published()
    assert set(pub[R.SOURCE]) == {R.SOURCE_PUBLISHED}
    assert set(pub[R.TABLE]) == set(TABLES)
    assert (pub[R.CITATION] != "").all()
    assert (pub[R.PROTOCOL] != "").all() and (pub[R.MODE] != "").all()


# ----------------------------------------------------------------------------- --compare

def test_compare_lanit_vs_tunit_animalfaces10_published():
    agg = compare(aggregate(select(load_published(), tables=["lanit-table1"])), "tunit")
    row = agg[(agg[R.METHOD] == "lanit") & (agg[R.DATASET] == "animalfaces10") & (agg[R.METRIC] == "mfid")].iloc[0]
    assert row["diff"] == pytest.approx(34.11 - 47.70)
    assert f"{row['diff']:+.2f}" == "-13.59"
    tunit = agg[(agg[R.METHOD] == "tunit")]
    assert tunit["diff"].isna().all()  # the reference itself has no difference


def test_compare_published_uses_same_table_and_setting():
    agg = compare(aggregate(select(load_published(), tables=["lanit-table2"])), "tunit")
    row = agg[(agg[R.METHOD] == "lanit") & (agg[R.SETTING] == "N=13") & (agg[R.DATASET] == "celebahq")
              & (agg[R.METRIC] == "mfid")].iloc[0]
    assert row["diff"] == pytest.approx(34.8 - 98.9)


def test_compare_rendered_in_text_and_markdown():
    secs = build_tables(load_published(), compare_to="tunit", tables=["lanit-table1"])
    assert len(secs) == 1
    text = render(secs, "text")
    line = next(ln for ln in text.splitlines() if ln.split()[1:2] == ["lanit"])
    assert "34.11" in line and "-13.59" in line
    md = render(secs, "markdown")
    assert "| animalfaces10 mFID Δtunit" in md.replace("  ", " ") or "animalfaces10 mFID Δtunit" in md
    assert "-13.59" in md


def _rep(method, seed, value, *, dataset="fashion10", metric="mfid", protocol="pooled", mode="latent",
         scope=R.SCOPE_OVERALL, domain="", iterations=100, run=None, preset="smoke", date="2026-01-01"):
    return {R.METHOD: method, R.DATASET: dataset, R.PRESET: preset, R.SEED: seed, R.ITERATIONS: iterations,
            R.PROTOCOL: protocol, R.MODE: mode, R.METRIC: metric, R.SCOPE: scope, R.DOMAIN: domain,
            R.VALUE: value, R.SOURCE: R.SOURCE_REPRODUCED, R.FEATURES: "inception-v3-compat",
            R.RUN: run if run is not None else f"runs/{method}-s{seed}", R.DATE: date}


def _synthetic():
    rows = [_rep("lanit", s, v) for s, v in ((1, 30.0), (2, 32.0), (3, 34.0))]
    rows += [_rep("tunit", s, v) for s, v in ((1, 40.0), (2, 44.0))]
    rows += [_rep("lanit", s, v, mode="reference") for s, v in ((1, 50.0), (2, 52.0))]
    rows += [_rep("tunit", 1, 60.0, mode="reference")]
    rows += [_rep("stargan2", 1, 20.0, protocol="pairwise")]  # no tunit under this protocol
    return R.from_rows(rows)


def test_seed_aggregation_mean_std_n():
    agg = aggregate(select(_synthetic()))
    lanit = agg[(agg[R.METHOD] == "lanit") & (agg[R.MODE] == "latent")].iloc[0]
    assert lanit["mean"] == pytest.approx(32.0)
    assert lanit["sd"] == pytest.approx(2.0)  # sample std of 30, 32, 34
    assert lanit["n"] == 3
    assert format_cell(lanit["mean"], lanit["sd"], lanit["n"], 2) == "32.00 ± 2.00 (3)"
    text = render(build_tables(_synthetic()), "text")
    assert "32.00 ± 2.00 (3)" in text and "42.00 ± 2.83 (2)" in text


def test_compare_reproduced_same_dataset_protocol_mode():
    agg = compare(aggregate(select(_synthetic())), "tunit")
    get = lambda m, mode, proto="pooled": agg[(agg[R.METHOD] == m) & (agg[R.MODE] == mode) & (agg[R.PROTOCOL] == proto)].iloc[0]  # noqa: E731
    assert get("lanit", "latent")["diff"] == pytest.approx(32.0 - 42.0)
    assert get("lanit", "reference")["diff"] == pytest.approx(51.0 - 60.0)
    assert math.isnan(get("stargan2", "latent", "pairwise")["diff"])  # no tunit with that protocol


def test_compare_reproduced_never_against_published():
    both = pd.concat([_synthetic(), load_published()], ignore_index=True)
    agg = compare(aggregate(select(both)), "tunit")
    rep = agg[(agg[R.SOURCE] == R.SOURCE_REPRODUCED) & (agg[R.METHOD] == "lanit") & (agg[R.MODE] == "latent")].iloc[0]
    assert rep["diff"] == pytest.approx(-10.0)
    pub = agg[(agg[R.SOURCE] == R.SOURCE_PUBLISHED) & (agg[R.METHOD] == "lanit") & (agg[R.TABLE] == "lanit-table1")
              & (agg[R.DATASET] == "animalfaces10") & (agg[R.METRIC] == "mfid")].iloc[0]
    assert pub["diff"] == pytest.approx(-13.59)


def test_only_newest_iteration_of_a_run_is_shown():
    rows = [_rep("lanit", 1, 90.0, iterations=10, run="runs/a"), _rep("lanit", 1, 30.0, iterations=20, run="runs/a")]
    agg = aggregate(select(R.from_rows(rows)))
    assert agg["mean"].tolist() == [30.0] and agg["n"].tolist() == [1]


def test_not_applicable_renders_na():
    rows = [_rep("tunit", 1, float("nan"), mode="latent"), _rep("tunit", 1, 40.0, mode="reference")]
    text = render(build_tables(R.from_rows(rows)), "text")
    assert "n/a" in text and "40.00" in text


# ----------------------------------------------------------------------------- filters

def test_filters():
    df = pd.concat([_synthetic(), load_published()], ignore_index=True)
    only = select(df, methods=["lanit"], modes=["reference"])
    assert set(only[R.METHOD]) == {"lanit"} and set(only[R.MODE]) == {"reference"}
    assert set(select(df, datasets=["animalfaces10,food10"])[R.DATASET]) == {"animalfaces10", "food10"}
    assert set(select(df, metrics=["fid"])[R.METRIC]) == {"fid", "mfid"}  # fid means mFID in overall tables
    assert set(select(df, protocols=["pairwise"])[R.METHOD]) == {"stargan2"}  # the StarGAN v2 README rows
    assert select(df, protocols=["stargan2"]).equals(select(df, protocols=["pairwise"]))  # the old name still selects
    assert set(select(df, tables=["reproduced"])[R.SOURCE]) == {R.SOURCE_REPRODUCED}
    assert set(select(df, tables=["lanit-table2"])[R.TABLE]) == {"lanit-table2"}


def test_sections_published_first_then_reproduced():
    df = pd.concat([_synthetic(), load_published()], ignore_index=True)
    ids = [s.id for s in build_tables(df)]
    assert ids == list(TABLES) + ["reproduced"]


def test_classwise_shows_domains():
    rows = [_rep("lanit", 1, 30.0, metric="fid", scope=R.SCOPE_DOMAIN, domain="coat"),
            _rep("lanit", 1, 50.0, metric="fid", scope=R.SCOPE_DOMAIN, domain="bag"),
            _rep("lanit", 1, 40.0)]
    secs = build_tables(R.from_rows(rows), classwise=True)
    text = render(secs, "text")
    assert "coat" in text and "bag" in text and "30.00" in text and "50.00" in text
    assert "40.00" not in text  # the overall mean is not a class-wise row
    assert "40.00" in render(build_tables(R.from_rows(rows)), "text")


# ----------------------------------------------------------------------------- formats

def test_each_format_renders():
    secs = build_tables(pd.concat([_synthetic(), load_published()], ignore_index=True), compare_to="tunit")
    md = render(secs, "markdown")
    assert "34.11" in md and "47.70" in md and "32.00 ± 2.00 (3)" in md and "|" in md
    tex = render(secs, "latex")
    assert r"\begin{tabular}" in tex and r"\end{tabular}" in tex and "34.11" in tex
    assert r"$\pm$" in tex and r"kim\_et\_al" in tex
    csv = pd.read_csv(io.StringIO(render(secs, "csv")), dtype=str, keep_default_na=False)
    lanit = csv[(csv["table"] == "lanit-table1") & (csv["method"] == "lanit")].iloc[0]
    assert lanit["animalfaces10 mFID"] == "34.11" and lanit["animalfaces10 mFID Δtunit"] == "-13.59"
    text = render(secs, "text")
    assert TABLES["lanit-table1"] in text and "Reproduced runs" in text
    with pytest.raises(ValueError):
        render(secs, "html")


# ----------------------------------------------------------------------------- heatmaps

def test_task_matrix_and_heatmap_files(tmp_path):
    from i2ibench.report.heatmaps import task_matrix, write_heatmaps

    rows = [_rep("lanit", s, v + s, metric="fid", protocol="pairwise", scope=R.SCOPE_TASK, domain=d)
            for s in (1, 2) for d, v in (("a->b", 10.0), ("b->a", 20.0), ("a->c", 30.0), ("c->b", 40.0))]
    rows += [_rep("lanit", 1, 5.0, metric="fid", protocol="pooled", scope=R.SCOPE_DOMAIN, domain="a")]
    df = R.from_rows(rows)
    mat = task_matrix(df[(df[R.SCOPE] == R.SCOPE_TASK)], ["a", "b", "c"])
    assert mat.loc["a", "b"] == 11.5 and mat.loc["b", "a"] == 21.5 and mat.loc["c", "b"] == 41.5
    assert math.isnan(mat.loc["a", "a"]) and math.isnan(mat.loc["b", "c"])
    paths = write_heatmaps(df, tmp_path)
    assert [p.name for p in paths] == ["fashion10_smoke_pairwise_latent_fid.png", "fashion10_smoke_pooled_latent_fid.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_same_seed_in_two_runs_counts_once_newest_wins():
    rows = [_rep("lanit", 1, 50.0, run="runs/a", date="2026-01-01"), _rep("lanit", 1, 30.0, run="runs/b", date="2026-02-01"),
            _rep("lanit", 2, 40.0, run="runs/c")]
    agg = aggregate(select(R.from_rows(rows)))
    assert agg["n"].tolist() == [2] and agg["mean"].tolist() == [35.0]



# ----------------------------------------------------------------------------- compact tables

from i2ibench.report.compact import build_compact  # noqa: E402
from i2ibench.report.layout import WIDTH, render_compact  # noqa: E402

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def _max_width(text):
    return max(len(line) for line in text.splitlines())


@pytest.mark.parametrize("runs", [["results/cpu"], ["results/regression/smoke.csv"],
                                  ["results/cpu", "results/regression/smoke.csv"]])
def test_compact_text_of_committed_records_fits_120_columns(runs):
    recs = pd.concat([R.load_records([REPO / r for r in runs]), load_published()], ignore_index=True)
    for compare_to in (None, "tunit"):
        text = render_compact(build_compact(recs, compare_to=compare_to), "text")
        assert _max_width(text) <= WIDTH
        # and the full view of the same records does not (what --wide keeps)
    assert _max_width(render(build_tables(recs, compare_to="tunit"), "text")) > WIDTH
    assert "Reproduced runs" in text and TABLES["lanit-table1"] in text


def _wide_synthetic():
    """Rows built to be wide: long names, long varying settings, long VLM names and evaluation
    parameters, many methods, every metric column, a long --compare name."""
    long_method = "a-method-with-a-very-long-registered-name-that-goes-on-and-on"
    rows = []
    for i in range(8):
        for s in (1, 2, 3):
            for metric, v in (("mfid", 1234.5678 + i), ("mkid", 0.12345), ("translation_acc", 0.5),
                              ("content_preservation", 0.25), ("density", 1.25), ("coverage", 0.75),
                              ("lpips", 0.0123)):
                r = _rep(f"{long_method}-{i % 3}", s, v + s, metric=metric, mode="reference", preset="cpu",
                         run=f"runs/{i}-{s}")
                k = i // 3  # methods i % 3 each in settings k: (method, setting) differs for every i
                r[R.SETTING] = (f"S=random-weight VLM, loss=travel, lambda={k}.123456789 (mean over pairs), "
                                f"d_steps={k}, an_option_with_a_long_name=value-{k}")
                r[R.VLM] = f"open_clip:ViT-bigG-14-CLIPA-336/datacomp1b-{i}@0123456789abcdef"
                r[R.EVAL_PARAMS] = ";".join(f"parameter_number_{j}={j * k}" for j in range(12))
                r[R.CODE_VERSION] = f"0.1.0+g{i:07d}"
                rows.append(r)
    for metric in ("colour_recall", "colour_recall_set", "colour_precision", "unique_colours", "ref_colour_acc",
                   "unimodal_mse", "lpips_io", "lpips_truth"):
        for mode in ("latent", "reference", "deterministic"):
            rows.append(_rep(long_method, 1, 0.5, metric=metric, protocol=f"proto-{metric}", mode=mode, preset="cpu"))
    return R.from_rows(rows), long_method


def test_compact_text_of_wide_synthetic_records_fits_120_columns():
    recs, long_method = _wide_synthetic()
    tables = build_compact(recs, compare_to=f"{long_method}-0")
    text = render_compact(tables, "text")
    assert _max_width(text) <= WIDTH
    # Nothing is lost to the width: every row's mFID (mean of v + 1, v + 2, v + 3 = v + 2) and
    # difference to the reference is printed, and every cut label is given in full in its footnote.
    for i in range(8):
        assert f"{1236.5678 + i:.2f} ± 1.00 (3)" in text
    assert "+1.00" in text and "+2.00" in text  # methods 1 and 2 against method 0 in the same setting
    assert f"row {long_method}-0 lambda=0.123456789" in text.replace("\n    ", " ")
    extras = next(t for t in tables if "dataset evaluations" in t.title)
    assert len(extras.columns) == 24 and text.count("dataset evaluations, continued") >= 2  # 8 metrics x 3 modes
    for c in extras.columns:
        assert c.label.split()[0] in text


def test_compact_provenance_once_and_differences_as_footnotes():
    rows = [_rep("lanit", s, v) for s, v in ((1, 30.0), (2, 32.0), (3, 34.0))]
    rows += [_rep("tunit", s, v) for s, v in ((1, 40.0), (2, 44.0))]
    for r in rows:
        r[R.EVAL_PARAMS] = "max_src_per_domain=5;outs_per_input=2"
        r[R.CODE_VERSION] = "0.1.0+gaaaaaaa" if r[R.METHOD] == "lanit" else "0.1.0+gbbbbbbb"
    [t] = build_compact(R.from_rows(rows), compare_to="tunit")
    text = render_compact([t], "text")
    assert text.count("max_src_per_domain=5") == 1  # said once, under the table
    assert "iterations: 100" in text and "seeds: 1, 2, 3" not in text.split("[a]")[0].split("all rows")[0]
    lines = text.splitlines()
    lanit = next(ln for ln in lines if ln.startswith("lanit"))
    assert "32.00 ± 2.00 (3)" in lanit and "-10.00" in lanit and lanit.split()[1] == "[a]"
    assert "[a] lanit: seeds: 1, 2, 3; code: 0.1.0+gaaaaaaa" in text
    assert "[b] tunit: seeds: 1, 2; code: 0.1.0+gbbbbbbb" in text
    assert [c.label for c in t.columns] == ["mFID", "Δtunit"]


def test_compact_tags_tell_rows_of_one_method_apart():
    rows = [_rep("cliptravelgan", 1, v, mode="deterministic") for v in (10.0, 20.0)]
    rows[0][R.SETTING], rows[1][R.SETTING] = ("S=VLM, lambda=4.8768 (mean over pairs), d_steps=1",
                                              "S=VLM, lambda=48.768 (mean over pairs), d_steps=1")
    rows[1][R.RUN] = "runs/other"
    rows += [_rep("cyclegan", 1, 15.0, mode="deterministic", preset="cpu")]
    [t] = build_compact(R.from_rows(rows))
    assert t.labels == ["cliptravelgan lambda=4.8768", "cliptravelgan lambda=48.768", "cyclegan"]
    assert "preset: smoke" in t.notes[0] and "preset: cpu" in t.notes[2]
    assert "lambda" not in t.notes[0]  # the tag shows it; the common items go under the table


def test_compact_best_marks_follow_the_metric_registry():
    rows = []
    for m, fid, cov, inout in (("a", 30.0, 0.5, 0.1), ("b", 20.0, 0.7, 0.2), ("c", 20.004, 0.7, 0.3)):
        rows += [_rep(m, 1, fid), _rep(m, 1, cov, metric="coverage"), _rep(m, 1, 1.0, metric="density"),
                 _rep(m, 1, inout, metric="lpips_io", protocol="lpips-io")]
    tables = build_compact(R.from_rows(rows))
    main = tables[0]
    col = {c.metric: j for j, c in enumerate(main.columns)}
    best = {m: [main.best[i][col[k]] for k in ("mfid", "coverage", "density")] for i, m in enumerate(main.methods)}
    # lower mFID is best (20.00 twice as shown: a tie), higher coverage is best, all-equal density: none
    assert best == {"a": [False, False, False], "b": [True, True, False], "c": [True, True, False]}
    extras = tables[1]
    assert not any(any(r) for r in extras.best)  # LPIPS in-out has no better direction
    text = render_compact(tables, "text")
    assert "20.00*" in text and "30.00*" not in text and "0.100*" not in text
    assert "**20.00**" in render_compact(tables, "markdown")
    assert r"\textbf{20.00}" in render_compact(tables, "latex")


def test_compact_never_mixes_published_and_reproduced():
    both = pd.concat([_synthetic(), load_published()], ignore_index=True)
    tables = build_compact(both, compare_to="tunit")
    for t in tables:
        flat = " ".join(" ".join(r) for r in t.cells)
        if t.section == "reproduced":
            assert "34.11" not in flat and "47.70" not in flat
        else:
            assert "32.00 ± 2.00 (3)" not in flat
    t1 = next(t for t in tables if t.section == "lanit-table1" and t.dataset == "animalfaces10")
    lanit = t1.cells[t1.labels.index("lanit")]
    assert lanit[:2] == ["34.11", "-13.59"]
    assert any("Park et al." in c for c in t1.common)  # the citation, once under the table
    assert [t.section for t in tables][-1] == "reproduced" and tables[0].section == "lanit-table1"


def _check_booktabs(tex):
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex and r"\hline" not in tex
    for tabular in re.findall(r"\\begin\{tabular\}.*?\\end\{tabular\}", tex, flags=re.S):
        rows = [ln for ln in tabular.splitlines() if ln.rstrip().endswith(r"\\")]
        counts = {len(re.findall(r"(?<!\\)&", ln)) for ln in rows}
        assert len(rows) >= 2 and len(counts) == 1, counts


def test_latex_has_booktabs_rules_and_equal_columns():
    recs = pd.concat([_synthetic(), load_published(), R.load_records([REPO / "results" / "cpu"])], ignore_index=True)
    compact = render_compact(build_compact(recs, compare_to="tunit"), "latex")
    _check_booktabs(compact)
    assert compact.count(r"\begin{tabular}") == len(build_compact(recs, compare_to="tunit"))
    wide = render(build_tables(recs, compare_to="tunit"), "latex")
    _check_booktabs(wide)
    assert r"kim\_et\_al" in wide and r"$\pm$" in wide


def test_heatmap_figure_domain_order_shared_scale_and_colorbar():
    from i2ibench.report.heatmaps import colorbar_label, draw, heatmap_figures

    domains = ["t-shirt", "trouser", "pullover", "dress"]  # fashion10's first four, in its order
    rows = []
    for m, offset in (("lanit", 0.0), ("tunit", 100.0)):
        for src, trg in (("dress", "t-shirt"), ("trouser", "pullover"), ("t-shirt", "dress"), ("pullover", "trouser")):
            v = offset + 10 * domains.index(src) + domains.index(trg)
            rows.append(_rep(m, 1, v, metric="fid", protocol="pairwise", scope=R.SCOPE_TASK, domain=f"{src}->{trg}"))
        for d in ("dress", "t-shirt"):
            rows.append(_rep(m, 1, offset + domains.index(d), metric="fid", scope=R.SCOPE_DOMAIN, domain=d))
    figs = heatmap_figures(R.from_rows(rows), ("fid",))
    pair = next(f for f in figs if "pairwise" in f.name)
    assert [label for label, _ in pair.panels] == ["lanit", "tunit"]
    for _, mat in pair.panels:
        assert list(mat.index) == domains and list(mat.columns) == domains  # the spec's order, not the records'
    lanit = pair.panels[0][1]
    assert lanit.loc["t-shirt", "dress"] == 3.0 and lanit.loc["dress", "t-shirt"] == 30.0
    assert math.isnan(lanit.loc["t-shirt", "trouser"])  # no record: an empty cell
    # One scale for both panels: lanit's smallest task (t-shirt->dress, 3) to tunit's largest (dress->t-shirt, 130).
    assert pair.limits() == (3.0, 130.0)
    fig = draw(pair)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 2 and {ax.images[0].get_clim() for ax in panels} == {(3.0, 130.0)}
    assert [t.get_text() for t in panels[0].get_xticklabels()] == domains
    assert fig.axes[-1].get_ylabel() == colorbar_label("fid") == "FID (lower is better)"
    assert colorbar_label("coverage") == "coverage (higher is better)"
    pooled = next(f for f in figs if "pooled" in f.name)
    assert list(pooled.panels[0][1].columns) == ["t-shirt", "dress"] and list(pooled.panels[0][1].index) == ["lanit", "tunit"]
    import matplotlib.pyplot as plt

    plt.close(fig)
