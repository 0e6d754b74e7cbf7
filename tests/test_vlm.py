"""The VLM layer: loading by name, the prompt-learning path, the offline stand-in.

The ``tiny_clip`` fixture loads the pre-trained stand-in from the i2ibench cache; where it is
not cached yet, this pre-trains it once (a few minutes on two CPU cores, longer on one), and
every later run reuses it.
"""

from __future__ import annotations

import json
import socket

import pytest
import torch
import torch.nn.functional as F

from i2ibench.errors import I2IError
from i2ibench.fileio import state_dict_sha256
from i2ibench.vlm.clip import list_vlms, load_vlm
from i2ibench.vlm.model import VLM
from i2ibench.vlm.tiny import (
    ABOUT_SOURCE,
    Caption,
    TinyClipConfig,
    build_model,
    caption_table,
    describes,
    load_pretrain_data,
    multi_positive_clip_loss,
    pretrain,
    read_meta,
    standin_dir,
    zero_shot_top1,
)

PROMPTS = ["a photo of a sneaker.", "a photo of the clothing of ankle boot.", "a red digit.", ""]


@pytest.fixture(scope="session")
def tiny_clip() -> VLM:
    return load_vlm("tiny-clip")


@pytest.fixture(scope="session")
def pretrain_data():
    return load_pretrain_data(32)


def _prompt_path_equals_encode_text(vlm: VLM) -> None:
    tokens = vlm.tokenize(PROMPTS)
    direct = vlm.encode_text(PROMPTS)
    via_embeddings = vlm.encode_text_embeddings(vlm.token_embedding(tokens), tokens)
    assert direct.shape == (len(PROMPTS), vlm.embed_dim)
    torch.testing.assert_close(via_embeddings, direct, rtol=0, atol=0)
    torch.testing.assert_close(direct.norm(dim=-1), torch.ones(len(PROMPTS)))


# ---------------------------------------------------------------------- real models


def test_file_loads_open_clip_vit_b_32_weights_saved_by_the_test(tmp_path):
    import open_clip

    torch.manual_seed(1)
    reference = open_clip.create_model("ViT-B-32")  # random weights, standing in for a real file
    path = tmp_path / "vit_b_32.pt"
    torch.save(reference.state_dict(), path)

    vlm = load_vlm(f"file:ViT-B-32={path}")
    assert vlm.name.startswith("file:ViT-B-32@") and len(vlm.name.split("@")[1]) == 8
    assert (vlm.image_size, vlm.embed_dim, vlm.context_length) == (224, 512, 77)
    loaded = vlm.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in reference.state_dict().items())
    assert all(not p.requires_grad for p in vlm.parameters())

    tokens = vlm.tokenize(["a photo of a sneaker."])  # open_clip's CLIP tokenizer: [sot] ... [eot] pad
    assert tokens.shape == (1, 77) and int(tokens[0, 0]) == 49406 and int(tokens.max()) == 49407
    _prompt_path_equals_encode_text(vlm)

    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        feats = vlm.encode_image(x)
        expected = F.normalize(reference.encode_image(vlm.preprocess(x)), dim=-1)
    assert feats.shape == (2, 512)
    torch.testing.assert_close(feats, expected)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore:`torch.jit.trace_method` is deprecated")
def test_openai_torchscript_archive_loads_through_the_file_path(tmp_path, monkeypatch):
    """OpenAI's *.pt are TorchScript archives: read with TorchScript's reader, QuickGELU enforced."""
    import open_clip

    from i2ibench.vlm.tiny import model_config

    monkeypatch.setenv("I2IBENCH_CACHE", str(tmp_path / "cache"))
    for suffix, quick in (("", False), ("-quickgelu", True)):
        cfg_path = tmp_path / f"jittiny{suffix}.json"
        cfg_path.write_text(json.dumps(dict(model_config(), quick_gelu=quick)))
        open_clip.add_model_config(cfg_path)
    model = open_clip.create_model("jittiny-quickgelu")
    traced = torch.jit.trace_module(model, {"encode_image": torch.zeros(1, 3, 32, 32)})
    archive = tmp_path / "openai_style.pt"
    traced.save(str(archive))

    vlm = load_vlm(f"file:jittiny-quickgelu={archive}")
    assert all(torch.equal(vlm.model.state_dict()[k], v) for k, v in model.state_dict().items())
    with pytest.raises(I2IError, match=r"QuickGELU: use file:jittiny-quickgelu="):
        load_vlm(f"file:jittiny={archive}")


def test_missing_real_weights_is_one_line_error_without_network_attempts(tmp_path, monkeypatch):
    from huggingface_hub import constants

    import i2ibench.vlm.clip as vlm_mod

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(vlm_mod, "hub_reachable", lambda timeout=0: False)  # as on a machine with no route
    attempts = []

    def no_network(*args, **kwargs):
        attempts.append(args)
        raise OSError("network used")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(I2IError) as err:
        load_vlm("openai/ViT-B-32")
    message = str(err.value)
    assert "\n" not in message
    assert "file:ViT-B-32-quickgelu=" in message and "HF_HUB_OFFLINE=1" in message
    assert "timm/vit_base_patch32_clip_224.openai" in message
    assert attempts == []  # served from the (empty) cache only: no retries against an absent network
    assert constants.HF_HUB_OFFLINE is False  # the offline switch is restored


@pytest.mark.parametrize("name, pattern", [
    ("clip", r"unknown VLM 'clip' \(did you mean 'tiny-clip'\?\)"),
    ("open_clip:ViT-B-32", r"open_clip:MODEL/PRETRAINED"),
    ("open_clip:ViT-B-32/no-such-tag", r"no pretrained tag 'no-such-tag' for ViT-B-32; tags: openai"),
    ("open_clip:ViT-Nope/openai", r"no architecture 'ViT-Nope'"),
    ("file:ViT-B-32", r"file:MODEL=PATH"),
    ("file:ViT-B-32=/no/such/weights.pt", r"/no/such/weights.pt does not exist"),
])
def test_bad_vlm_names_are_one_line_errors(name, pattern):
    with pytest.raises(I2IError, match=pattern) as err:
        load_vlm(name)
    assert "\n" not in str(err.value)


def test_file_with_wrong_architecture_is_an_error(tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save(build_model(0).state_dict(), path)
    with pytest.raises(I2IError, match=r"cannot load .*tiny.pt into open_clip 'RN50'"):
        load_vlm(f"file:RN50={path}")


# ---------------------------------------------------------------------- the stand-in


def test_standin_prompt_path_equals_encode_text(tiny_clip):
    _prompt_path_equals_encode_text(tiny_clip)


@pytest.mark.parametrize("size, channels", [(32, 3), (28, 1), (64, 3)])
def test_encode_image_is_differentiable_and_frozen(tiny_clip, size, channels):
    x = (torch.rand(3, channels, size, size) * 2 - 1).requires_grad_(True)
    feats = tiny_clip.encode_image(x)
    assert feats.shape == (3, tiny_clip.embed_dim)
    torch.testing.assert_close(feats.norm(dim=-1), torch.ones(3))
    (feats[:, 0].sum() - feats[:, 1].sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in tiny_clip.parameters())
    tiny_clip.train()
    assert not tiny_clip.model.training  # stays frozen in eval mode inside a training owner
    tiny_clip.eval()


def test_standin_zero_shot_top1_on_fashion10_validation(tiny_clip):
    from i2ibench.data.catalog import create_dataset

    val = create_dataset("fashion10", "val", 32)
    top1 = zero_shot_top1(tiny_clip, val.images(torch.arange(len(val))), val.labels, ("a photo of a {}.",),
                          val.domains)
    assert top1 >= 0.70
    meta = read_meta(standin_dir(TinyClipConfig()))
    assert meta["name"] == tiny_clip.name and tiny_clip.name.startswith("tiny-clip@")
    state = torch.load(standin_dir(TinyClipConfig()) / meta["weights"], weights_only=True)
    assert tiny_clip.name == f"tiny-clip@{state_dict_sha256(state)[:8]}"  # named by its values, not its file
    assert meta["zero_shot"]["fashion10/val template"]["top1"] == round(top1, 4)  # the recorded figure
    assert meta["zero_shot"]["cmnist/val colour"]["top1"] >= 0.9


def test_standin_scores_own_class_above_the_base_prompt_above_other_classes(tiny_clip):
    # LANIT's adaptive threshold needs CLIP's ordering: image vs "a photo of a <its class>." >
    # image vs the template alone "a photo of a." > image vs other classes. Pre-trained with base
    # prompts as full positives, the stand-in left 67% of fashion10 images slack (no class
    # above the base); with down-weighted base targets it leaves well under 10%.
    from i2ibench.data.catalog import create_dataset
    from i2ibench.data.prompts import base_prompt

    val = create_dataset("fashion10", "val", 32)
    idx = torch.arange(0, len(val), 5)  # 1,000 images, every class
    with torch.no_grad():
        img = tiny_clip.encode_image(val.images(idx))
        text = tiny_clip.encode_text([f"a photo of a {c}." for c in val.domains])
        base = tiny_clip.encode_text([base_prompt("a photo of a {}.")])
    above = (img @ text.T) > (img @ base.T)  # the adaptive-threshold labels
    own = above[torch.arange(len(idx)), val.labels[idx]]
    slack = (~above.any(1)).float().mean()
    assert slack < 0.10
    assert own.float().mean() > 0.75                                   # recall of the true class
    assert above.float().sum(1).mean() < 2.0                           # not every class active


def test_state_digest_names_values_not_files(tmp_path):
    a = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(2)}
    torch.save(a, tmp_path / "1.pt")
    torch.save(a, tmp_path / "2.pt")
    b = torch.load(tmp_path / "2.pt", weights_only=True)
    assert state_dict_sha256(a) == state_dict_sha256(b)
    assert state_dict_sha256(a) != state_dict_sha256({**a, "b": torch.tensor([0.0, 1e-7])})
    assert state_dict_sha256(a) != state_dict_sha256({**a, "w": a["w"].reshape(3, 2)})


def test_pretraining_is_deterministic_and_trains(pretrain_data):
    cfg = TinyClipConfig(max_steps=2, batch_size=16)
    first, record = pretrain(cfg, data=pretrain_data, progress=False)
    second, _ = pretrain(cfg, data=pretrain_data, progress=False)
    other_seed, _ = pretrain(TinyClipConfig(max_steps=2, batch_size=16, seed=1), data=pretrain_data, progress=False)
    init = build_model(cfg.seed).state_dict()
    a, b, c = first.state_dict(), second.state_dict(), other_seed.state_dict()
    assert record["steps"] == 2
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["visual.conv1.weight"], init["visual.conv1.weight"])  # it did train
    assert not torch.equal(a["visual.conv1.weight"], c["visual.conv1.weight"])


def test_pretraining_bar_is_not_written_into_a_redirected_log(pretrain_data, capsys):
    # capsys's stderr is no terminal (scripts/main.sh's log): no \r-updates there.
    pretrain(TinyClipConfig(max_steps=1, batch_size=16), data=pretrain_data, progress=True)
    assert "pre-training tiny-clip" not in capsys.readouterr().err


def test_captions_describe_the_right_images():
    table = caption_table()
    text = {c.text: i for i, c in enumerate(table)}
    caps = [table[text[t]] for t in ("a photo of a sneaker.", "a photo of a.", "a photo of a red digit.",
                                     "a photo of a colored digit.", "a photo of a gray digit.", "a photo of a digit.")]
    source = torch.tensor([0, 0, 1, 1])  # a sneaker, a bag, a red digit, a gray digit
    cls = torch.tensor([7, 8, -1, -1])
    colour = torch.tensor([-1, -1, 0, -1])
    fits = describes(caps, source, cls, colour)
    expected = torch.tensor([[1, 1, 0, 0, 0, 0],
                             [0, 1, 0, 0, 0, 0],
                             [0, 0, 1, 1, 0, 1],
                             [0, 0, 0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(fits, expected)
    assert sum(c.about == ABOUT_SOURCE for c in table) == 30  # a base prompt per template
    assert describes([Caption("x", 0, ABOUT_SOURCE)], source, cls, colour).flatten().tolist() == [1, 1, 0, 0]


def test_multi_positive_loss_with_one_positive_each_is_clip_loss():
    logits = torch.randn(5, 5)
    clip = 0.5 * (F.cross_entropy(logits, torch.arange(5)) + F.cross_entropy(logits.T, torch.arange(5)))
    torch.testing.assert_close(multi_positive_clip_loss(logits, torch.eye(5, dtype=torch.bool)), clip)


# ---------------------------------------------------------------------- listing and CLI


def test_list_and_cli(tiny_clip):
    from typer.testing import CliRunner

    from i2ibench.cli.main import app

    rows = {r["name"]: r for r in list_vlms()}
    assert rows["tiny-clip"]["present"] is True
    assert rows["tiny-clip"]["zero_shot"]["fashion10/val template"]["top1"] >= 0.7
    assert rows["openai/ViT-B-32"]["kind"].startswith("open_clip ViT-B-32")
    runner = CliRunner()
    listed = runner.invoke(app, ["vlm", "list"])
    assert listed.exit_code == 0, listed.output
    assert "tiny-clip" in listed.output and "openai/ViT-B-32" in listed.output
    again = runner.invoke(app, ["vlm", "pretrain", "--no-progress"])  # cached: reports, does not retrain
    assert again.exit_code == 0, again.output
    assert "already pre-trained" in again.output and tiny_clip.name in again.output


def test_vlm_eval_of_the_standin_weights_as_a_file_reproduces_its_recorded_accuracies(tiny_clip, tmp_path,
                                                                                     monkeypatch):
    from typer.testing import CliRunner

    from i2ibench.cli.main import app

    folder = standin_dir(TinyClipConfig())
    meta = read_meta(folder)
    monkeypatch.setenv("I2IBENCH_CACHE", str(tmp_path))  # the record goes to a scratch cache
    result = CliRunner().invoke(app, ["vlm", "eval", f"file:i2ibench-tiny-clip={folder / meta['weights']}"])
    assert result.exit_code == 0, result.output
    from i2ibench.vlm.model import file_digest

    name = f"file:i2ibench-tiny-clip@{file_digest(folder / meta['weights'])[:8]}"  # a file: model is named by its file
    rows = {r["name"]: r for r in list_vlms()}
    assert rows[name]["zero_shot"] == meta["zero_shot"]
