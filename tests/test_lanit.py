"""LANIT: pseudo labels, slack domain, domain regularisation, prompt learning, the method."""

import math

import pytest
import torch
import torch.nn.functional as F

from i2ibench.methods.lanit import domain_reg_loss, flip_one_active, is_slack, pseudo_labels

# --------------------------------------------------------------------------- pseudo labels


def test_adaptive_threshold_against_the_base_prompt():
    sim = torch.tensor([[0.30, 0.20, 0.26],
                        [0.10, 0.12, 0.11],   # every domain below the base: slack
                        [0.25, 0.25, 0.24]])  # equal to the base is not above it
    base = torch.tensor([0.25, 0.20, 0.245])
    y = pseudo_labels(sim, base, "adaptive")
    assert y.dtype == torch.float32
    assert y.tolist() == [[1, 0, 1], [0, 0, 0], [1, 1, 0]]
    assert is_slack(y).tolist() == [False, True, False]


def test_adaptive_labels_shift_with_the_base_not_the_absolute_level():
    sim = torch.tensor([[0.30, 0.20]])
    assert pseudo_labels(sim, torch.tensor([0.1]), "adaptive").tolist() == [[1, 1]]
    assert pseudo_labels(sim, torch.tensor([0.35]), "adaptive").tolist() == [[0, 0]]
    assert pseudo_labels(sim + 0.5, torch.tensor([0.35]) + 0.5, "adaptive").tolist() == [[0, 0]]


def test_topk_and_fixed_threshold_ablations():
    sim = torch.tensor([[0.30, 0.20, 0.26, 0.10],
                        [0.01, 0.02, 0.03, 0.04]])
    base = torch.ones(2)  # ignored by both ablations
    assert pseudo_labels(sim, base, "topk", topk=1).tolist() == [[1, 0, 0, 0], [0, 0, 0, 1]]
    assert pseudo_labels(sim, base, "topk", topk=2).tolist() == [[1, 0, 1, 0], [0, 0, 1, 1]]
    assert pseudo_labels(sim, base, "threshold", threshold=0.25).tolist() == [[1, 0, 1, 0], [0, 0, 0, 0]]


def test_unknown_label_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="adaptive, topk, threshold"):
        pseudo_labels(torch.zeros(1, 2), torch.zeros(1), "softmax")


# --------------------------------------------------------------------------- flipping


def test_flip_switches_off_exactly_one_active_domain():
    torch.manual_seed(3)
    y = torch.tensor([[1., 1., 0., 1.], [0., 1., 1., 0.], [1., 1., 1., 1.]])
    for _ in range(20):
        flipped, idx = flip_one_active(y)
        rows = torch.arange(3)
        assert (y[rows, idx] == 1).all()          # a domain that was active
        assert (flipped[rows, idx] == 0).all()    # is now off
        diff = (flipped != y).sum(1)
        assert diff.tolist() == [1, 1, 1]         # and nothing else changed


def test_flip_of_a_single_active_domain_switches_another_on():
    torch.manual_seed(0)
    y = torch.tensor([[0., 0., 1.]] * 50)
    flipped, idx = flip_one_active(y)
    assert (idx == 2).all()
    assert (flipped[:, 2] == 0).all() and (flipped.sum(1) == 1).all()
    assert set(flipped[:, :2].argmax(1).tolist()) == {0, 1}  # a random other domain
    with pytest.raises(ValueError):
        flip_one_active(torch.tensor([[0., 0.]]))


# --------------------------------------------------------------------------- domain regularisation


def test_domain_regularisation_is_the_official_one_sided_cross_entropy():
    sim_out = torch.tensor([[0.8, 0.1], [0.2, 0.5]])
    sim_flip = torch.tensor([[0.3, 0.9], [0.2, 0.4]])
    idx = torch.tensor([0, 1])
    expected = -(math.log(0.8) + math.log(0.5)) / 2 - (math.log(0.7) + math.log(0.6)) / 2
    assert domain_reg_loss(sim_out, sim_flip, idx).item() == pytest.approx(expected, rel=1e-6)


def test_domain_regularisation_decreases_when_the_outputs_agree_with_their_labels():
    idx = torch.tensor([0, 1, 1])
    disagree = domain_reg_loss(torch.full((3, 2), 0.2), torch.full((3, 2), 0.3), idx)
    # the output scores its flipped domain higher, the counterpart lower: closer to the labels
    agree = domain_reg_loss(torch.full((3, 2), 0.4), torch.full((3, 2), 0.1), idx)
    assert agree < disagree
    # and gradient descent on the similarities moves them that way
    s_out = torch.full((3, 2), 0.2, requires_grad=True)
    s_flip = torch.full((3, 2), 0.3, requires_grad=True)
    domain_reg_loss(s_out, s_flip, idx).backward()
    rows = torch.arange(3)
    assert (s_out.grad[rows, idx] < 0).all() and (s_flip.grad[rows, idx] > 0).all()
    assert s_out.grad[rows, 1 - idx].abs().sum() == 0  # only the flipped domain is scored


# --------------------------------------------------------------------------- with a VLM
# Logic tests run on a tiny random-weight open_clip CLIP wrapped by i2ibench.vlm.clip.VLM (the real
# tokenizer and text-tower code path); never a user-facing model.

import io  # noqa: E402

from i2ibench.config import build_run_config  # noqa: E402
from i2ibench.errors import ConfigError, TrainingError  # noqa: E402
from i2ibench.method import Batch, DataInfo  # noqa: E402
from i2ibench.methods.lanit import LANIT  # noqa: E402
from i2ibench.methods.lanit_prompt_learner import PromptLearner  # noqa: E402
from i2ibench.data.prompts import TEXT_AUG_TEMPLATES, base_prompt, domain_words  # noqa: E402
from i2ibench.registry import DATASETS  # noqa: E402

FASHION = DATASETS.get("fashion10")().domains


@pytest.fixture(scope="module")
def vlm():
    import open_clip
    from open_clip.model import CLIP

    from i2ibench.vlm.model import VLM

    torch.manual_seed(0)
    model = CLIP(embed_dim=32, vision_cfg=dict(image_size=16, patch_size=4, width=32, layers=1, head_width=16),
                 text_cfg=dict(context_length=32, vocab_size=49408, width=32, heads=2, layers=1))
    return VLM(model, open_clip.tokenizer.SimpleTokenizer(context_length=32), "random-test-clip", "test")


def make(vlm, seed=0, **model):
    # 16 px: the test CLIP's input size (the smoke preset trains at 32)
    cfg = build_run_config("lanit", "fashion10", "smoke", {"train.img_size": 16, **{f"model.{k}": v for k, v in model.items()}})
    torch.manual_seed(seed)
    return LANIT(cfg, DataInfo("fashion10", list(FASHION), cfg.train.img_size), "cpu", vlm=vlm)


def batch(m, seed):
    g = torch.Generator().manual_seed(seed)
    n, s = m.cfg.train.batch_size, m.cfg.train.img_size
    img = lambda: torch.rand(n, 3, s, s, generator=g) * 2 - 1  # noqa: E731
    y = torch.zeros(n, dtype=torch.long)  # ground truth: lanit must not need it
    return Batch(img(), y, img(), img(), y)


def test_untrained_prompt_learner_gives_the_written_prompts_features(vlm):
    templates, words = TEXT_AUG_TEMPLATES["fashion"], domain_words("fashion", 10)
    learner = PromptLearner(vlm, templates, words)
    dom, base = learner(vlm)
    per_template = torch.stack([vlm.encode_text([t.format(w) for w in words]) for t in templates])
    base_written = torch.stack([vlm.encode_text([base_prompt(t)])[0] for t in templates])
    assert torch.allclose(dom, torch.nn.functional.normalize(per_template.mean(0), dim=-1), atol=1e-5)
    assert torch.allclose(base, torch.nn.functional.normalize(base_written.mean(0), dim=-1), atol=1e-5)


def test_prompt_learning_changes_only_the_context_tokens(vlm):
    learner = PromptLearner(vlm, TEXT_AUG_TEMPLATES["fashion"][:2], domain_words("fashion", 4))
    assert set(learner.state_dict()) == {"ctx.0", "ctx.1"}  # the only learned (and saved) tensors
    before = [learner.embeddings(t).detach().clone() for t in range(2)]
    opt = torch.optim.Adam(learner.parameters(), lr=1e-2)
    dom, base = learner(vlm)
    (dom[:, 0].sum() - base[1]).backward()
    opt.step()
    for t in range(2):
        after = learner.embeddings(t).detach()
        n_ctx = learner.prefix_lengths[t]
        changed = (after != before[t]).any(-1)  # [N + 1, L]
        assert changed[:, 1:1 + n_ctx].all()                  # every context token moved, in every prompt
        assert not changed[:, 0].any()                         # start token fixed
        assert not changed[:, 1 + n_ctx:].any()                # domain word, suffix, end token, padding fixed
    # the same context is shared by the domain prompts and the base prompt of a template
    e = learner.embeddings(0)
    assert torch.equal(e[0, 1:1 + learner.prefix_lengths[0]], e[-1, 1:1 + learner.prefix_lengths[0]])


def test_nets_are_sized_by_the_text_domains_and_labels_are_multi_hot(vlm):
    m = make(vlm, num_text_domains=16)
    assert m.num_domains == 16 and m.domain_words[10:] == ["skirt", "hat", "scarf", "glove", "sock", "belt"]
    x = torch.rand(5, 3, 16, 16) * 2 - 1
    assert m.nets["discriminator"].all_logits(x).shape == (5, 16)
    y = m.domain_labels(x)
    assert y.shape == (5, 16) and set(y.unique().tolist()) <= {0.0, 1.0}
    assert m.frozen_models() == {"vlm": "random-test-clip"}
    four = make(vlm, num_text_domains=4)
    assert [four.domain_of_class(k) for k in (0, 7, 8, 2)] == [0, 2, 3, None]
    # official evaluation: the target is a reference image's own pseudo label, so every class is served
    assert four.serves(0, 2, "latent") and four.serves(0, 2, "reference") and not four.serves(2, 2, "latent")
    by_word = make(vlm, num_text_domains=4, eval_latent_target="class")  # the class's word, if it has one
    assert by_word.serves(0, 7, "latent") and not by_word.serves(0, 2, "latent") and by_word.serves(0, 2, "reference")


def test_style_of_a_multi_hot_target_is_the_mean_of_its_domains_styles(vlm):
    m = make(vlm)
    z = torch.randn(3, m.mcfg.latent_dim)
    ref = torch.rand(3, 3, 16, 16) * 2 - 1
    multi = torch.tensor([[1., 0., 1., 0., 0., 0., 0., 0., 0., 1.]] * 3)
    for kw in ({"z": z}, {"ref": ref}):
        singles = torch.stack([m.style(torch.full((3,), d), **kw) for d in (0, 2, 9)])
        assert torch.allclose(m.style(multi, **kw), singles.mean(0), atol=1e-6)
    out = m.translate(torch.rand(3, 3, 16, 16) * 2 - 1, multi, z=z)
    assert out.shape == (3, 3, 16, 16) and out.abs().max() <= 1


def test_reference_guided_translation_defaults_to_the_references_own_labels(vlm):
    m = make(vlm)
    x, ref = torch.rand(4, 3, 16, 16) * 2 - 1, torch.rand(4, 3, 16, 16) * 2 - 1
    y_ref = m.reference_labels(ref)
    assert not is_slack(y_ref).any()
    assert torch.equal(m.translate(x, None, ref=ref), m.translate(x, y_ref, ref=ref))
    other = torch.full((4,), 3)
    assert torch.equal(m.translate(x, other, ref=ref), m.translate(x, None, ref=ref))  # official: ref's label
    m.mcfg.ref_label = "target"
    assert torch.equal(m.translate(x, other, ref=ref), m.translate(x, F.one_hot(other, 10).float(), ref=ref))
    assert not torch.equal(m.translate(x, other, ref=ref), m.translate(x, y_ref, ref=ref))


def _weights(m, name):
    return torch.cat([p.detach().flatten().clone() for p in m.nets[name].parameters()])


def test_training_step_is_finite_and_updates_the_nets_and_prompts_on_schedule(vlm):
    m = make(vlm, label_mode="topk", topk=2, prompt_start=1)  # top-k: never slack
    before = {k: _weights(m, k) for k in m.nets}
    logs = m.training_step(batch(m, 0), 0)  # step 1 (fixed prompts), with domain regularisation
    assert logs["label/fallback"] == 0.0 and logs["P/learning"] == 0.0 and "G/latent_dr" in logs
    assert all(math.isfinite(v) for v in logs.values())
    for k in ("generator", "mapping_network", "style_encoder", "discriminator"):
        assert not torch.equal(_weights(m, k), before[k]), k
    assert torch.equal(_weights(m, "prompt_learner"), before["prompt_learner"])
    logs = m.training_step(batch(m, 1), 1)  # step 2: prompt learning
    assert logs["P/learning"] == 1.0 and math.isfinite(logs["G/latent_dr"])
    assert not torch.equal(_weights(m, "prompt_learner"), before["prompt_learner"])
    ema = torch.cat([p.flatten() for p in m.nets_ema["prompt_learner"].parameters()])
    assert not torch.equal(ema, before["prompt_learner"])  # the EMA prompts follow
    for which in ("live", "ema"):  # and the cached text features were refreshed
        learner = m.nets["prompt_learner"] if which == "live" else m.nets_ema["prompt_learner"]
        with torch.no_grad():
            assert torch.equal(m.text_features(which)[0], learner(m.vlm)[0]), which
        assert not torch.equal(m.text_features(which)[0], m.text_features("initial")[0]), which


def test_official_step1_without_domain_regularisation(vlm):
    m = make(vlm, label_mode="topk", domain_reg=False, prompt_start=10)
    assert "G/latent_dr" not in m.training_step(batch(m, 0), 0)


def test_an_all_slack_batch_falls_back_to_best_domains_with_the_same_log_keys(vlm):
    normal = make(vlm, label_mode="topk", topk=2)
    m = make(vlm, label_mode="threshold", threshold=2.0)  # no cosine exceeds 2: every image is slack
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    y, sim = m.labels_and_sims(x)
    assert is_slack(y).all()
    _, y_fb, used = m._without_unusable(x, y, sim)
    assert used and torch.equal(y_fb, F.one_hot(sim.argmax(1), 10).float())
    logs = m.training_step(batch(m, 0), 0)
    assert logs["label/fallback"] == 1.0 and logs["label/slack_src"] == 1.0 and logs["label/slack_ref"] == 1.0
    # distributed processes all-reduce the logs: a fallback step logs exactly the usual keys
    assert logs.keys() == normal.training_step(batch(normal, 0), 0).keys()
    assert all(math.isfinite(v) for v in logs.values())


def test_slack_images_are_dropped_from_sources_and_references(vlm):
    m = make(vlm)
    x_src, x_ref = torch.arange(4.0), torch.arange(4.0) + 10
    y_org = torch.tensor([[1., 0.], [0., 0.], [0., 1.], [1., 1.]])
    y_trg = torch.tensor([[0., 0.], [1., 0.], [0., 0.], [0., 1.]])
    sim = torch.zeros(4, 2)
    xs, yo, xr, yt, fallback = m._drop_unusable(x_src, y_org, sim, x_ref, y_trg, sim)
    assert xs.tolist() == [0.0, 2.0] and xr.tolist() == [11.0, 13.0] and fallback == 0.0
    assert not is_slack(yo).any() and not is_slack(yt).any()


def test_resume_restores_the_learned_prompts(vlm):
    m = make(vlm, label_mode="topk", prompt_start=0)
    for step in range(2):
        m.training_step(batch(m, step), step)
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    fresh = make(vlm, seed=1, label_mode="topk", prompt_start=0)
    assert not torch.equal(_weights(fresh, "prompt_learner"), _weights(m, "prompt_learner"))
    fresh.load_state_dict(state)
    assert torch.equal(_weights(fresh, "prompt_learner"), _weights(m, "prompt_learner"))
    for which in ("live", "ema", "initial"):
        for a, b in zip(fresh.text_features(which), m.text_features(which)):
            assert torch.equal(a, b), which
    x = torch.rand(6, 3, 16, 16) * 2 - 1
    assert torch.equal(fresh.domain_labels(x), m.domain_labels(x))
    other = make(vlm, num_text_domains=4)
    with pytest.raises(TrainingError, match="domain words"):
        other.load_state_dict(state)


def test_scores_and_labels_map_from_words_to_dataset_classes(vlm):
    m = make(vlm)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    scores = m.domain_scores(x)
    assert torch.equal((scores > 0).float(), m.domain_labels(x))
    assert torch.equal(m.labels_to_classes(scores, float("-inf")), scores)  # words are the classes: identity
    four = make(vlm, num_text_domains=4)  # t-shirt, trouser, sneaker, bag -> classes 0, 1, 7, 8
    labels = torch.tensor([[1., 0., 1., 1.]])
    assert four.labels_to_classes(labels).tolist() == [[1, 0, 0, 0, 0, 0, 0, 1, 1, 0]]
    s = four.labels_to_classes(torch.tensor([[0.1, -0.2, 0.3, 0.0]]), float("-inf"))
    assert s[0, 7] == pytest.approx(0.3) and s[0, 2] == float("-inf")


def test_backbone_initialisation_matches_stargan2_for_the_same_seed(vlm):
    from i2ibench.registry import create_method
    cfg = build_run_config("stargan2", "fashion10", "smoke", {"train.img_size": 16})  # make()'s backbone sizes
    torch.manual_seed(0)
    sg2 = create_method("stargan2", cfg, DataInfo("fashion10", list(FASHION), cfg.train.img_size), "cpu")
    m = make(vlm, seed=0)
    for name in ("generator", "mapping_network", "style_encoder", "discriminator"):
        assert torch.equal(_weights(m, name), _weights(sg2, name)), name


def test_default_vlm_is_the_stand_in_only_for_the_offline_datasets():
    from i2ibench.methods.lanit import default_vlm
    from i2ibench.vlm.clip import STANDIN_NAME
    assert default_vlm("fashion10") == STANDIN_NAME and default_vlm("cmnist") == STANDIN_NAME
    for name in ("animalfaces10", "food10", "celebahq", "afhq", "folder:/photos"):
        assert default_vlm(name) == "openai/ViT-B-32"


# --------------------------------------------------------------------------- N words != K classes

@pytest.mark.parametrize("n_words,latent_target", [(4, "class"), (16, "reference")])
def test_lanit_with_fewer_or_more_words_than_classes_trains_samples_and_evaluates(n_words, latent_target, tmp_path):
    """LANIT's Table 2 setting on fashion10 (K = 10) with the offline stand-in VLM: N = 4 words
    name 4 classes (t-shirt, trouser, sneaker, bag), N = 16 add 6 words that name none. With
    latent targets from the class's word, classes no word names are not served; with targets
    from a reference image's pseudo label (official, the default) every class is."""
    import numpy as np
    from PIL import Image

    from i2ibench.data.catalog import available, get_spec
    from i2ibench.pipeline.run import train_and_evaluate
    from i2ibench.report import records as R
    from i2ibench.train.sample_grid import PAD

    if not available(get_spec("fashion10")):
        pytest.skip("Fashion-MNIST files not installed")
    cfg = build_run_config("lanit", "fashion10", "smoke", {"model.num_text_domains": n_words, "eval.outs_per_input": 1,
                                                           "model.eval_latent_target": latent_target})
    method, df = train_and_evaluate(cfg, tmp_path / "run", progress=False, log=None)
    assert len([k for k in range(10) if method.domain_of_class(k) is not None]) == min(n_words, 10)
    named = [k for k in range(10) if method.serves((k + 1) % 10, k, "latent")]
    assert len(named) == (4 if latent_target == "class" else 10)

    with Image.open(tmp_path / "run" / "samples" / "latent_00000004.png") as im:
        grid = np.asarray(im)
    size = cfg.train.img_size
    for k in range(10):  # column k + 1: blank (white) exactly where no word names the class
        left = PAD + (k + 1) * (size + PAD)
        cell = grid[PAD:PAD + size, left:left + size]
        assert bool((cell == 255).all()) == (k not in named), k
    assert (tmp_path / "run" / "samples" / "reference_00000004.png").is_file()

    pooled = df[(df[R.PROTOCOL] == "pooled") & (df[R.METRIC] == "fid")].set_index([R.MODE, R.DOMAIN])[R.VALUE]
    for k, name in enumerate(FASHION):
        assert np.isfinite(pooled[("reference", name)])  # the reference's own label: every class served
        assert np.isfinite(pooled[("latent", name)]) == (k in named)
    latent_mfid = df[(df[R.MODE] == "latent") & (df[R.METRIC] == "mfid") & (df[R.PROTOCOL] == "pooled")].iloc[0]
    assert np.isfinite(latent_mfid[R.VALUE])
    assert (f"{len(named)} of 10 groups" in latent_mfid[R.NOTE]) == (len(named) < 10)
    labels = df[df[R.PROTOCOL] == R.PROTOCOL_LABELS].set_index(R.METRIC)[R.VALUE]
    assert {"label_precision", "label_recall", "label_slack", "top1_acc"} <= set(labels.index)


# --------------------------------------------------------------------------- official recipe details

@pytest.mark.parametrize("prompt_grad", ["flipped", "both"])
def test_prompts_learn_only_from_the_flipped_term_as_officially(vlm, monkeypatch, prompt_grad):
    """Official step 2 (gt_update) detaches the text for the output image's term: with only that
    term in the loss, the prompts get no gradient (``flipped``); with ``both`` they do."""
    import i2ibench.methods.lanit as lanit_module

    m = make(vlm, label_mode="topk", topk=2, prompt_grad=prompt_grad)
    monkeypatch.setattr(lanit_module, "domain_reg_loss", lambda sim_out, sim_flipped, idx: sim_out.sum())
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    y = torch.zeros(4, m.num_domains)
    y[:, :2] = 1
    z = torch.randn(4, m.mcfg.latent_dim)
    m.nets.zero_grad(set_to_none=True)
    m._domain_reg(x, z, y, learn_prompts=True).backward()
    grads = [p.grad for p in m.nets["prompt_learner"].parameters() if p.requires_grad]
    got_grad = any(g is not None and bool(g.abs().sum() > 0) for g in grads)
    assert got_grad == (prompt_grad == "both")


def test_images_active_for_every_domain_are_left_out_like_slack(vlm):
    m = make(vlm)
    y = torch.tensor([[1.0] * 10, [0.0] * 10, [1.0] + [0.0] * 9])
    assert m._unusable(y).tolist() == [True, True, False]
    assert make(vlm, drop_all_active=False)._unusable(y).tolist() == [False, True, False]


def test_diversity_weight_restarts_at_step_two_as_the_official_resume_does(vlm):
    m = make(vlm, prompt_start=99_000, ds_iter=130_000)
    assert m._ds_step(98_999) == 98_999 and m._ds_step(99_000) == 0 and m._ds_step(150_000) == 51_000
    assert make(vlm, prompt_start=99_000, ds_schedule="continuous")._ds_step(120_000) == 120_000


def test_clip_input_is_resized_as_the_official_lanit_code(vlm):
    make(vlm)  # a LANIT run sets its VLM's resize rule (model.clip_resize, default official)
    assert vlm.resize == "lanit"
    x = torch.rand(2, 3, 2 * vlm.image_size, 2 * vlm.image_size) * 2 - 1
    official = F.interpolate((x + 1) / 2, size=vlm.image_size, mode="bicubic", align_corners=True)
    torch.testing.assert_close(vlm.preprocess(x) * vlm.std + vlm.mean, official)
    vlm.resize = "antialias"
    assert not torch.allclose(vlm.preprocess(x) * vlm.std + vlm.mean, official, atol=1e-3)


def test_quick_preset_shortens_by_the_rules_and_trains(vlm):
    """The main job's preset (README "Presets"): schedules scale with its length as in the cpu
    preset (prompts learned from 2/3, diversity decay over the run), and its one stated departure
    is lr 4e-4 for every backbone net (the EMA rule: test_methods_registry)."""
    quick, cpu = build_run_config("lanit", "fashion10", "quick"), build_run_config("lanit", "fashion10", "cpu")
    n, m = quick.train.total_iters, quick.model
    assert m.ds_iter == n and m.prompt_start == round(2 * n / 3)
    assert cpu.model.prompt_start == round(2 * cpu.train.total_iters / 3)
    assert (m.lr, m.f_lr) == (4e-4, 4e-4) and m.p_lr == cpu.model.p_lr
    assert quick.train.img_size == 16 and m.dim_in < cpu.model.dim_in and m.max_conv_dim < cpu.model.max_conv_dim
    torch.manual_seed(0)
    lanit = LANIT(quick, DataInfo("fashion10", list(FASHION), quick.train.img_size), "cpu", vlm=vlm)
    before = _weights(lanit, "generator")
    for step in (0, m.prompt_start):
        losses = lanit.training_step(batch(lanit, step), step)
        assert all(math.isfinite(v) for v in losses.values())
    assert losses["P/learning"] == 1.0 and not torch.equal(before, _weights(lanit, "generator"))
