"""Protocols and the evaluation harness, with a fake method and a fake feature extractor.

The metric primitives (FID, density & coverage, LPIPS diversity) are the real ones; only the
expensive networks around them are replaced: an identity-like translator, a fixed random
projection as "features" (counting every image it sees) and a pixel-distance "LPIPS".
"""

import math
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from i2ibench.metrics import keys as mk
from i2ibench.report import records as R
from i2ibench.errors import ConfigError
from i2ibench.metrics.fid import fid
from i2ibench.evaluation.protocols import check_protocols, generator, groups, plan_tasks, subset

from eval_fakes import S, CountingFeatures, FakeMethod, ToyData, evaluate_toy, toy_cfg  # noqa: E402


# ----------------------------------------------------------------------------- planning

@pytest.mark.parametrize("k", [2, 3, 5])
def test_task_and_group_counts(k):
    idx = [torch.arange(d * 4, d * 4 + 4) for d in range(k)]
    tasks = plan_tasks(idx)
    assert len(tasks) == k * (k - 1)
    assert len({(t.src, t.trg) for t in tasks}) == k * (k - 1) and all(t.src != t.trg for t in tasks)
    names = [f"d{i}" for i in range(k)]
    sg = groups("pairwise", tasks, names)
    pooled = groups("pooled", tasks, names)
    assert len(sg) == k * (k - 1) and all(len(g.tasks) == 1 for g in sg)
    assert len(pooled) == k
    for g in pooled:
        assert sorted(tasks[i].src for i in g.tasks) == [d for d in range(k) if d != g.trg]
        assert all(tasks[i].trg == g.trg for i in g.tasks)


def test_source_subset_is_seeded_and_shared_across_targets():
    idx = [torch.arange(0, 20), torch.arange(20, 40), torch.arange(40, 60)]
    a = plan_tasks(idx, max_src_per_domain=5, seed=3)
    b = plan_tasks(idx, max_src_per_domain=5, seed=3)
    c = plan_tasks(idx, max_src_per_domain=5, seed=4)
    assert all(torch.equal(x.inputs, y.inputs) for x, y in zip(a, b))
    assert any(not torch.equal(x.inputs, y.inputs) for x, y in zip(a, c))
    for t in a:
        assert len(t.inputs) == 5 and torch.all(t.inputs[1:] > t.inputs[:-1])  # sorted, distinct
        assert torch.equal(t.inputs, next(u.inputs for u in a if u.src == t.src))
    assert torch.equal(subset(torch.arange(4), 10, generator(0)), torch.arange(4))


def test_unknown_protocol_lists_valid_ones():
    with pytest.raises(ConfigError, match="pooled"):
        check_protocols(["poold"])


# ----------------------------------------------------------------------------- evaluation

def test_records_per_protocol_counts_and_mfid_is_mean():
    k = 3
    df = evaluate_toy(FakeMethod(), val=ToyData(k=k))
    for mode in ("latent", "reference"):
        sg = df[(df[R.PROTOCOL] == "pairwise") & (df[R.MODE] == mode)]
        pooled = df[(df[R.PROTOCOL] == "pooled") & (df[R.MODE] == mode)]
        sg_fid = sg[(sg[R.METRIC] == mk.FID) & (sg[R.SCOPE] == R.SCOPE_TASK)]
        pooled_fid = pooled[(pooled[R.METRIC] == mk.FID) & (pooled[R.SCOPE] == R.SCOPE_DOMAIN)]
        assert len(sg_fid) == k * (k - 1) and set(sg_fid[R.DOMAIN]) >= {"d0->d1", "d2->d0"}
        assert len(pooled_fid) == k and set(pooled_fid[R.DOMAIN]) == {"d0", "d1", "d2"}
        for part, groups_ in ((sg, sg_fid), (pooled, pooled_fid)):
            overall = part[(part[R.SCOPE] == R.SCOPE_OVERALL)].set_index(R.METRIC)[R.VALUE]
            assert overall[mk.MFID] == pytest.approx(groups_[R.VALUE].mean())
            for metric in (mk.DENSITY, mk.COVERAGE, mk.LPIPS):
                assert math.isfinite(overall[metric])
        # sample counts: 6 sources x 3 outputs per task; pooled target: 2 tasks
        assert set(sg_fid[R.N_FAKE]) == {18.0} and set(pooled_fid[R.N_FAKE]) == {36.0}
        assert set(pooled_fid[R.N_REAL]) == {6.0}


def test_pooled_fid_is_fid_of_union_of_task_translations():
    """Recompute one pooled target's FID from the same translations made independently."""
    val = ToyData(k=3)
    feats = CountingFeatures()
    method = FakeMethod(modes=("latent",))
    df = evaluate_toy(method, cfg=toy_cfg(modes=("latent",)), val=val, features=feats)
    from i2ibench.evaluation.protocols import latent_codes

    trg = 1
    x = torch.cat([val.images(val.indices_of(s)) for s in (0, 2)]).repeat_interleave(3, dim=0)
    z = latent_codes(len(x), 4, 0, trg)
    fake = FakeMethod().translate(x, torch.full((len(x),), trg), z=z)
    expected = fid(feats(val.images(val.indices_of(trg))), feats(fake))
    got = df[(df[R.PROTOCOL] == "pooled") & (df[R.DOMAIN] == "d1") & (df[R.METRIC] == mk.FID)][R.VALUE].item()
    assert got == pytest.approx(expected, rel=1e-9)


def test_translations_made_once_and_features_once_per_image():
    k, n, outs = 3, 6, 3
    feats = CountingFeatures()
    method = FakeMethod()
    evaluate_toy(method, val=ToyData(k=k, n=n), features=feats)
    fakes_per_mode = k * (k - 1) * n * outs
    translated = sum(b for _, b, _ in method.calls)
    assert translated == 2 * fakes_per_mode          # both protocols share the translations
    assert feats.images_seen == 2 * fakes_per_mode + k * n  # + the reals, once for both modes


def test_translations_batched_across_tasks():
    method = FakeMethod(modes=("latent",))
    # batch_size 12, 3 outputs per input: 4 inputs per call; a target's 12 inputs come from 2 sources
    val = ToyData(k=3, n=6)
    evaluate_toy(method, cfg=toy_cfg(modes=("latent",), batch_size=12), val=val)
    assert [b for _, b, _ in method.calls] == [12] * 9   # 3 targets x 12 inputs x 3 outputs / 12
    assert all(len(set(t.tolist())) == 1 for _, _, t in method.calls)  # one target per call
    # the second call into d0 holds d1's last two inputs and d2's first two: two tasks in one batch
    sources = [set(val.labels[[int((val.pixels == xi).all(dim=(1, 2, 3)).nonzero()[0]) for xi in x]].tolist())
               for x in method.inputs]
    assert sources[:3] == [{1}, {1, 2}, {2}]


def test_results_do_not_depend_on_batch_size_and_are_deterministic():
    a = evaluate_toy(FakeMethod(), cfg=toy_cfg(batch_size=3))
    b = evaluate_toy(FakeMethod(), cfg=toy_cfg(batch_size=30))
    c = evaluate_toy(FakeMethod(), cfg=toy_cfg(batch_size=3))
    key = [R.PROTOCOL, R.MODE, R.METRIC, R.SCOPE, R.DOMAIN]
    va, vb, vc = (d.set_index(key)[R.VALUE].sort_index() for d in (a, b, c))
    pd.testing.assert_series_equal(va, vb, rtol=1e-6)  # BLAS blocking may differ by batch size
    pd.testing.assert_series_equal(va, vc, rtol=0, atol=0)


def test_evaluation_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    evaluate_toy(FakeMethod())
    assert torch.equal(torch.rand(3), expected)


def test_mode_the_method_lacks_is_not_applicable():
    method = FakeMethod(modes=("reference",))
    df = evaluate_toy(method)
    latent = df[df[R.MODE] == "latent"]
    assert len(latent) > 0 and latent[R.VALUE].isna().all()
    assert latent[R.NOTE].str.contains("not applicable").all()
    assert set(latent[R.SCOPE]) == {R.SCOPE_OVERALL}
    assert set(latent[R.METRIC]) == {mk.MFID, mk.MKID, mk.KID_STD, mk.PRECISION, mk.RECALL, mk.DENSITY, mk.COVERAGE,
                                     mk.LPIPS}
    assert set(latent[R.PROTOCOL]) == {"pairwise", "pooled"}
    assert {m for m, _, _ in method.calls} == {"reference"}
    ref = df[(df[R.MODE] == "reference") & (df[R.SCOPE] == R.SCOPE_OVERALL)]
    assert ref[R.VALUE].notna().all()


def test_a_lacking_mode_has_not_applicable_rows_for_the_classifier_metrics_too(monkeypatch):
    from types import SimpleNamespace

    from i2ibench.evaluation import harness
    from i2ibench.evaluation.translate import Classifiers

    brightness = SimpleNamespace(name="toy-domain", val_acc=1.0,
                                 predict=lambda x: (x.mean(dim=(1, 2, 3)) > 0).long())  # a caller's stand-in
    monkeypatch.setattr(harness, "load_classifiers", lambda *a, **k: Classifiers(domain=brightness))
    df = evaluate_toy(FakeMethod(modes=("reference",)))
    overall = df[df[R.SCOPE] == R.SCOPE_OVERALL]
    latent, ref = overall[overall[R.MODE] == "latent"], overall[overall[R.MODE] == "reference"]
    assert mk.TRANSLATION_ACC in set(ref[R.METRIC])
    assert mk.TRANSLATION_ACC in set(latent[R.METRIC]) and latent[R.VALUE].isna().all()


def test_lpips_is_mean_pairwise_distance_of_outputs_of_one_input():
    val = ToyData(k=2, n=2)
    df = evaluate_toy(FakeMethod(modes=("latent",)), cfg=toy_cfg(modes=("latent",), outs_per_input=3), val=val)
    from i2ibench.evaluation.protocols import latent_codes

    # task d0->d1: inputs 0, 1 (3 outputs each), codes drawn for the whole target d1
    x = val.images(torch.tensor([0, 1])).repeat_interleave(3, dim=0)
    z = latent_codes(6, 4, 0, 1)
    out = FakeMethod().translate(x, torch.full((6,), 1), z=z).reshape(2, 3, 3, S, S)
    pairs = [(0, 1), (0, 2), (1, 2)]
    expected = sum((out[i, a] - out[i, b]).abs().mean() for i in range(2) for a, b in pairs) / 6
    got = df[(df[R.PROTOCOL] == "pairwise") & (df[R.DOMAIN] == "d0->d1") & (df[R.METRIC] == mk.LPIPS)][R.VALUE].item()
    assert got == pytest.approx(float(expected), rel=1e-6)


def test_lpips_on_images_too_small_for_alexnet_is_nan_with_note():
    df = evaluate_toy(FakeMethod(), val=ToyData(k=2, n=6, size=16))
    lp = df[df[R.METRIC] == mk.LPIPS]
    assert len(lp) > 0 and lp[R.VALUE].isna().all() and lp[R.NOTE].str.contains("at least 31 px").all()
    assert df[df[R.METRIC] == mk.MFID][R.VALUE].notna().all()


def test_too_few_real_images_for_density_is_nan_with_note():
    df = evaluate_toy(FakeMethod(), cfg=toy_cfg(nearest_k=6), val=ToyData(k=2, n=6))
    d = df[(df[R.METRIC] == mk.DENSITY) & (df[R.SCOPE] != R.SCOPE_OVERALL)]
    assert d[R.VALUE].isna().all() and d[R.NOTE].str.contains("k=6").all()


def test_pseudo_label_quality_rows():
    val = ToyData(k=3, n=4)
    perm = torch.tensor([2, 0, 1])  # clusters = a relabelling of the ground truth

    def clusters(x):
        idx = [next(i for i in range(len(val.labels)) if torch.equal(val.pixels[i], xi)) for xi in x]
        return perm[val.labels[idx]]

    df = evaluate_toy(FakeMethod(label_kind="clusters", labels_of=clusters), val=val)
    acc = df[df[R.METRIC] == mk.CLUSTER_ACC]
    assert len(acc) == 1 and acc[R.VALUE].item() == pytest.approx(1.0)
    assert acc[R.PROTOCOL].item() == R.PROTOCOL_LABELS and acc[R.N_REAL].item() == 12

    def multi_hot(x):  # always says "d0 and the true domain"
        idx = [next(i for i in range(len(val.labels)) if torch.equal(val.pixels[i], xi)) for xi in x]
        y = torch.nn.functional.one_hot(val.labels[idx], 3).float()
        y[:, 0] = 1
        return y

    method = FakeMethod(label_kind="clip_multi_hot", labels_of=multi_hot)
    df = evaluate_toy(method, val=val)
    got = df[df[R.PROTOCOL] == R.PROTOCOL_LABELS].set_index(R.METRIC)[R.VALUE]
    assert set(got.index) == {mk.LABEL_PRECISION, mk.LABEL_RECALL, mk.LABEL_SLACK}  # no scores: no top-1
    assert got[mk.LABEL_SLACK] == 0.0
    assert got[mk.LABEL_RECALL] == pytest.approx(1.0)
    assert got[mk.LABEL_PRECISION] == pytest.approx(12 / 20)  # 12 true + 8 extra 'd0' labels predicted

    def scores(x):  # right for every image except those of d2, which score highest for d1
        idx = [next(i for i in range(len(val.labels)) if torch.equal(val.pixels[i], xi)) for xi in x]
        lab = val.labels[idx].clone()
        lab[lab == 2] = 1
        return torch.nn.functional.one_hot(lab, 3).float()

    method.scores_of = scores
    got = evaluate_toy(method, val=val).set_index(R.METRIC)[R.VALUE]
    assert got[mk.TOP1_ACC] == pytest.approx(8 / 12)
    df = evaluate_toy(FakeMethod(), val=val)
    assert (df[R.PROTOCOL] == R.PROTOCOL_LABELS).sum() == 0  # ground-truth methods: nothing to score


def test_label_rows_map_method_domains_to_classes_and_score_initial_labels():
    # A LANIT-like method with 4 text domains over 3 classes: words 0 and 3 both name class 0,
    # word 1 names class 1, word 2 names class 2. Its final labels use word 3 for class 0; its
    # initial labels leave class-2 images slack.
    val = ToyData(k=3, n=4)
    word_of_class = {0: 3, 1: 1, 2: 2}

    def idx_of(x):
        return [next(i for i in range(len(val.labels)) if torch.equal(val.pixels[i], xi)) for xi in x]

    def final(x):
        words = torch.tensor([word_of_class[int(c)] for c in val.labels[idx_of(x)]])
        return torch.nn.functional.one_hot(words, 4).float()

    def initial(x):
        y = final(x)
        y[val.labels[idx_of(x)] == 2] = 0
        return y

    method = FakeMethod(label_kind="clip_multi_hot", labels_of=final, initial_labels_of=initial,
                        to_classes=lambda per_word, fill=0.0: torch.stack(
                            [torch.maximum(per_word[:, 0], per_word[:, 3]), per_word[:, 1], per_word[:, 2]], 1),
                        domain_of=word_of_class)
    df = evaluate_toy(method, val=val)
    got = df[df[R.MODE] == R.MODE_NONE].set_index([R.PROTOCOL, R.METRIC])[R.VALUE]
    assert got[(R.PROTOCOL_LABELS, mk.LABEL_PRECISION)] == pytest.approx(1.0)
    assert got[(R.PROTOCOL_LABELS, mk.LABEL_RECALL)] == pytest.approx(1.0)
    assert got[(R.PROTOCOL_LABELS, mk.LABEL_SLACK)] == 0.0
    assert got[(R.PROTOCOL_LABELS_INITIAL, mk.LABEL_RECALL)] == pytest.approx(8 / 12)
    assert got[(R.PROTOCOL_LABELS_INITIAL, mk.LABEL_SLACK)] == pytest.approx(4 / 12)
    # translations into class 0 asked the method for its word 3
    assert set(torch.cat([t for _, _, t in method.calls]).tolist()) == {1, 2, 3}


def test_record_columns_filled():
    df = evaluate_toy(FakeMethod(), iterations=40, out_dir=None)
    for col in (R.METHOD, R.DATASET, R.PRESET, R.PROTOCOL, R.MODE, R.METRIC, R.FEATURES, R.CODE_VERSION, R.DATE,
                R.SOURCE, R.REAL_SPLIT, R.EVAL_PARAMS):
        assert (df[col] != "").all(), col
    assert set(df[R.SEED]) == {5.0} and set(df[R.ITERATIONS]) == {40.0}
    assert set(df[R.FEATURES]) == {"toy-features"} and set(df[R.SOURCE]) == {R.SOURCE_REPRODUCED}
    assert df[R.CODE_VERSION].str.startswith("0.").all()


def test_records_written_atomically_to_run_dir(tmp_path):
    df = evaluate_toy(FakeMethod(), iterations=40, out_dir=tmp_path)
    back = R.load_records([tmp_path / "records.csv"])
    assert len(back) == len(df)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".records.csv.lock", "records.csv"]  # no temp left


def test_two_process_evaluation_equals_one_process(tmp_path):
    """Batches shared between two gloo ranks, features and LPIPS sums gathered: same records."""
    import os
    import subprocess
    import sys as _sys

    worker = Path(__file__).parent / "dist_eval_worker.py"
    cmd = [_sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(worker), str(tmp_path)]
    res = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    single = evaluate_toy(FakeMethod(), cfg=toy_cfg(batch_size=6), val=ToyData(k=3, n=5))
    key = [R.PROTOCOL, R.MODE, R.METRIC, R.SCOPE, R.DOMAIN]
    expected = single.set_index(key)[R.VALUE].sort_index()
    shares = []
    for rank in (0, 1):
        got = R.load_records([tmp_path / f"rank{rank}" / "records.csv"]).set_index(key)[R.VALUE].sort_index()
        pd.testing.assert_series_equal(got, expected, rtol=1e-6, check_names=False)
        shares.append(int((tmp_path / f"rank{rank}" / "translated.txt").read_text()))
    # 2 modes x 6 tasks x 5 inputs x 3 outputs, split between the ranks (2 inputs per batch)
    assert sum(shares) == 2 * 6 * 5 * 3 and min(shares) > 0


def test_style_code_plot_written_with_each_evaluation_of_a_method_with_style_codes(tmp_path):
    val = ToyData(k=3, n=8)
    method = FakeMethod(label_kind="clusters", labels_of=lambda x: (x.mean(dim=(1, 2, 3)) > 0).long())
    method.style_codes = lambda x: x.flatten(1)[:, :6]
    method.has_style_codes = True
    evaluate_toy(method, val=val, out_dir=tmp_path / "a", iterations=40)
    assert (tmp_path / "a" / "style_codes_00000040.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    evaluate_toy(method, cfg=toy_cfg(style_plot_per_domain=0), val=val, out_dir=tmp_path / "b", iterations=40)
    evaluate_toy(FakeMethod(), val=val, out_dir=tmp_path / "c", iterations=40)  # no style codes: no plot
    assert not list((tmp_path / "b").glob("*.png")) and not list((tmp_path / "c").glob("*.png"))


def test_a_dataset_declared_extra_evaluation_adds_rows_for_every_method():
    from types import SimpleNamespace

    from i2ibench.errors import ConfigError
    from i2ibench.evaluation.extras import register_evaluation

    seen = []

    @register_evaluation("test-extra")
    def extra(ctx):
        seen.append((ctx.method.name, len(ctx.tasks)))
        ctx.rows.add("test-extra", R.MODE_NONE, "test_metric", R.SCOPE_OVERALL, "", 0.5, None, len(ctx.val.labels))

    val = ToyData()
    val.spec = SimpleNamespace(evaluations=("test-extra",), multi_label=False)
    df = evaluate_toy(FakeMethod(), cfg=toy_cfg(classifiers=False), val=val)
    row = df[df[R.PROTOCOL] == "test-extra"]
    assert seen == [("fake", 6)] and row[R.VALUE].tolist() == [0.5] and row[R.N_REAL].tolist() == [18]
    val.spec = SimpleNamespace(evaluations=("no-such",), multi_label=False)
    with pytest.raises(ConfigError, match="unknown evaluation 'no-such'"):
        evaluate_toy(FakeMethod(), cfg=toy_cfg(classifiers=False), val=val)


def test_rounds_draw_the_sources_again_and_round_zero_is_the_single_round_plan():
    idx = [torch.arange(0, 20), torch.arange(20, 40), torch.arange(40, 60)]
    one = plan_tasks(idx, 4, seed=3)
    nine = plan_tasks(idx, 4, seed=3, rounds=9)
    assert all(len(t.inputs) == 36 for t in nine)
    assert all(torch.equal(a.inputs, b.inputs[:4]) for a, b in zip(one, nine))
    assert len({tuple(nine[0].inputs[r * 4:(r + 1) * 4].tolist()) for r in range(9)}) > 1


def test_pooled_fakes_capped_by_tunits_rule():
    from i2ibench.evaluation.protocols import fakes_cap

    assert fakes_cap(-1, [50, 80, 70]) == 65 and fakes_cap(0, [50, 80]) == 0 and fakes_cap(12, [50]) == 12
    df = evaluate_toy(FakeMethod(), cfg=toy_cfg(fakes_per_target=5))
    fid = df[(df[R.METRIC] == mk.FID) & (df[R.MODE] == "latent")]
    assert set(fid[fid[R.PROTOCOL] == "pooled"][R.N_FAKE]) == {5}  # 2 sources x 6 inputs x 3 outputs = 36, capped
    assert set(fid[fid[R.PROTOCOL] == "pairwise"][R.N_FAKE]) == {18}  # the pairwise protocol is not capped
