"""tiny-clip: i2ibench's offline stand-in for CLIP, and its contrastive pre-training.

Machines without a route to a model hub cannot get real CLIP weights. tiny-clip is an
open_clip ``CLIP`` built from the custom config ``data/vlm/i2ibench-tiny-clip.json`` (ViT
32 px / patch 8 / width 128 / 4 layers; text width 128 / 3 layers / context 32; open_clip's
tokenizer; 7.8 M parameters, 6.3 M of them the token embedding), so it runs through the same
code as real models. Patch 8 and width 128 (not patch 4 / width 192) because the CPUs here
have neither AMX nor AVX-512, so fp32 is the only fast path (bf16 autocast was far slower),
and patch 4 / width 192 costs 6.5 times more per image (measured) than the recipe can afford
in ten minutes.

Pre-training data is disjoint from every benchmark split: Fashion-MNIST's official test split
(fashion10 ``heldout``) with its class names, and the cmnist ``heldout`` digits, gray or
painted in a palette colour, with colour words. Captions are LANIT's fashion/cmnist templates
(``prompts.py``) plus a few generic ones; a share of captions is the template's base prompt
(no word), which LANIT's adaptive threshold compares against. The loss is CLIP's symmetric
cross-entropy over the batch's distinct captions, with every caption that truly describes an
image counted as a positive (class-name captions repeat within a batch, so one-positive
targets would push an image away from its own class's other captions). A base prompt is a
weaker description than a specific caption: its share of an image's target is
``base_target_weight`` of a specific caption's, so an image learns to score its own class
above the template alone and the template alone above other classes. That is the ordering
LANIT's adaptive threshold relies on in CLIP; with equal weights the base prompt beat the
best class prompt for 67% of fashion10 training images (measured), leaving them slack.

Deterministic on CPU: the model init, data order, captions and augmentation come from the
config's seed, and training runs on a fixed number of threads. The weights, the config and
the zero-shot accuracies on the benchmark validation splits are cached in
``cache_dir("vlm")/tiny-clip-<config key>/``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from i2ibench.defaults import cache_dir
from i2ibench.errors import I2IError

TINY_MODEL = "i2ibench-tiny-clip"
MODEL_CONFIG_PATH = Path(__file__).parent / "configs" / f"{TINY_MODEL}.json"
# Bump when the data, captions or training code change in a way the config does not show.
RECIPE_VERSION = 1

# Generic templates added to LANIT's (every cmnist one names a digit, so that no base prompt
# is shared by the two sources).
FASHION_EXTRA_TEMPLATES = ("a photo of the {}.", "a {}.", "a picture of a {}.", "a black and white photo of a {}.",
                           "a low resolution photo of a {}.", "a photo of the clothing of {}.")
CMNIST_EXTRA_TEMPLATES = ("a {} digit.", "a photo of a {} number.", "a {} handwritten digit.",
                          "a low resolution photo of a {} digit.")
GRAY_WORD, COLORED_WORD = "gray", "colored"

# Caption targets: which images a caption describes.
SOURCE_FASHION, SOURCE_CMNIST = 0, 1
ABOUT_SOURCE, ABOUT_CLASS, ABOUT_GRAY, ABOUT_COLORED, ABOUT_COLOUR = range(5)


@dataclass
class TinyClipConfig:
    """The pre-training recipe (the architecture is the open_clip JSON config)."""

    seed: int = 0
    epochs: int = 8
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 40
    colour_copies: int = 1          # painted copies of each held-out digit per epoch (plus one gray)
    base_prompt_prob: float = 0.1   # share of captions that are a template's base prompt
    colored_word_prob: float = 0.2  # share of painted digits captioned 'colored' rather than the colour
    base_target_weight: float = 0.25  # target weight of a base prompt relative to a specific caption
    max_shift: int = 2              # random translation (px) of every training image
    max_steps: int = 0              # stop after this many steps (0: all epochs); tests use a few
    # CPU kernels split sums by thread, so the weights depend on the thread count: pinned. One
    # thread: for these small matrices a second one gains little, and on a shared machine its
    # barriers made training four times slower (measured).
    threads: int = 1


def model_config() -> dict:
    return json.loads(MODEL_CONFIG_PATH.read_text())


def register_model_config() -> None:
    """Make ``i2ibench-tiny-clip`` an open_clip architecture name (also for ``file:``)."""
    import open_clip

    if open_clip.get_model_config(TINY_MODEL) is None:
        open_clip.add_model_config(MODEL_CONFIG_PATH)


def config_key(cfg: TinyClipConfig) -> str:
    """Hash of everything that makes the weights: architecture, recipe, captions (LANIT's
    templates may change in ``prompts.py``) and the code version."""
    captions = [(c.text, c.source, c.about, c.value) for c in caption_table()]
    blob = json.dumps({"model": model_config(), "train": asdict(cfg), "captions": captions,
                       "recipe": RECIPE_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def standin_dir(cfg: TinyClipConfig) -> Path:
    """Cache folder of the stand-in pre-trained with ``cfg`` (not created)."""
    return cache_dir("vlm") / f"tiny-clip-{config_key(cfg)}"


# ---------------------------------------------------------------------- captions


@dataclass(frozen=True)
class Caption:
    text: str
    source: int
    about: int
    value: int = -1  # class or colour index


def caption_table() -> list[Caption]:
    """Every caption pre-training can draw, each once (a text never means two things)."""
    from i2ibench.data.catalog import FASHION_CLASSES
    from i2ibench.data.cmnist import PALETTE_NAMES
    from i2ibench.data.prompts import TEMPLATES, TEXT_AUG_TEMPLATES, base_prompt

    def templates(family: str, extra: tuple[str, ...]) -> list[str]:
        return list(dict.fromkeys((TEMPLATES[family],) + TEXT_AUG_TEMPLATES[family] + extra))

    table: list[Caption] = []
    for t in templates("fashion", FASHION_EXTRA_TEMPLATES):
        table += [Caption(t.format(w), SOURCE_FASHION, ABOUT_CLASS, k) for k, w in enumerate(FASHION_CLASSES)]
        table.append(Caption(base_prompt(t), SOURCE_FASHION, ABOUT_SOURCE))
    for t in templates("cmnist", CMNIST_EXTRA_TEMPLATES):
        table.append(Caption(t.format(GRAY_WORD), SOURCE_CMNIST, ABOUT_GRAY))
        table.append(Caption(t.format(COLORED_WORD), SOURCE_CMNIST, ABOUT_COLORED))
        table += [Caption(t.format(w), SOURCE_CMNIST, ABOUT_COLOUR, k) for k, w in enumerate(PALETTE_NAMES)]
        table.append(Caption(base_prompt(t), SOURCE_CMNIST, ABOUT_SOURCE))
    texts = [c.text for c in table]
    if len(set(texts)) != len(texts):
        raise ValueError("tiny-clip caption table has a text with two meanings")
    return table


def describes(captions: list[Caption], source: torch.Tensor, cls: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """[B, U] bool: image b (source, fashion class, palette colour or -1) fits caption u."""
    c_src = torch.tensor([c.source for c in captions])
    c_about = torch.tensor([c.about for c in captions])
    c_val = torch.tensor([c.value for c in captions])
    src, cls, colour = source[:, None], cls[:, None], colour[:, None]
    fits = torch.where(c_about == ABOUT_CLASS, cls == c_val,
           torch.where(c_about == ABOUT_GRAY, colour < 0,
           torch.where(c_about == ABOUT_COLORED, colour >= 0,
           torch.where(c_about == ABOUT_COLOUR, colour == c_val, torch.ones_like(cls, dtype=torch.bool)))))
    return fits & (src == c_src)


# ---------------------------------------------------------------------- data


@dataclass
class PretrainData:
    """Held-out images as 1-channel [-1, 1] tensors at the model's size, and what they show."""

    fashion: torch.Tensor        # [Nf, 1, S, S]
    fashion_class: torch.Tensor  # [Nf]
    digits: torch.Tensor         # [Nd, 1, S, S] gray digits
    sources: dict


def load_pretrain_data(size: int, fashion_root=None, cmnist_root=None) -> PretrainData:
    from i2ibench.data.catalog import create_dataset

    fashion = create_dataset("fashion10", "heldout", size, fashion_root)
    cmnist = create_dataset("cmnist", "heldout", size, cmnist_root)
    gray = (cmnist.labels == 0).nonzero().flatten()
    sources = {"fashion10/heldout": {"images": len(fashion), "root": str(fashion.root)},
               "cmnist/heldout (gray digits)": {"images": len(gray), "root": str(cmnist.root)}}
    return PretrainData(fashion.images(torch.arange(len(fashion)))[:, :1].contiguous(), fashion.labels.clone(),
                        cmnist.images(gray)[:, :1].contiguous(), sources)


def _shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` px, filling with the black background."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen).tolist()
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


class EpochPlan:
    """One epoch's shuffled samples: (source, index, class, colour) and a caption for each."""

    def __init__(self, data: PretrainData, cfg: TinyClipConfig, captions: list[Caption], gen: torch.Generator):
        nf, nd = len(data.fashion), len(data.digits)
        copies = 1 + cfg.colour_copies
        palette = torch.randint(0, 10, (nd * cfg.colour_copies,), generator=gen)
        self.source = torch.cat([torch.zeros(nf, dtype=torch.long), torch.ones(nd * copies, dtype=torch.long)])
        self.index = torch.cat([torch.arange(nf), torch.arange(nd).repeat(copies)])
        self.cls = torch.cat([data.fashion_class, torch.full((nd * copies,), -1, dtype=torch.long)])
        self.colour = torch.cat([torch.full((nf + nd,), -1, dtype=torch.long), palette])
        self.caption = self._draw_captions(cfg, captions, gen)
        order = torch.randperm(len(self.source), generator=gen)
        for name in ("source", "index", "cls", "colour", "caption"):
            setattr(self, name, getattr(self, name)[order])

    def _draw_captions(self, cfg: TinyClipConfig, captions: list[Caption], gen: torch.Generator) -> torch.Tensor:
        # For each sample: the captions that fit it, one drawn; base prompts with their own share.
        fits = describes(captions, self.source, self.cls, self.colour)
        about = torch.tensor([c.about for c in captions])
        base = about == ABOUT_SOURCE
        colored = about == ABOUT_COLORED
        u = torch.rand(len(self.source), 2, generator=gen)
        use_base = u[:, 0] < cfg.base_prompt_prob
        use_colored = (self.colour >= 0) & (u[:, 1] < cfg.colored_word_prob)
        specific = fits & ~base[None] & ~colored[None]  # class, gray or colour captions
        choice = torch.where(use_base[:, None], fits & base[None],
                             torch.where(use_colored[:, None], fits & colored[None], specific))
        return torch.multinomial(choice.float(), 1, generator=gen).squeeze(1)

    def __len__(self) -> int:
        return len(self.source)


def make_batch(data: PretrainData, plan: EpochPlan, rows: torch.Tensor, cfg: TinyClipConfig,
               gen: torch.Generator) -> torch.Tensor:
    """[-1, 1] RGB images of plan rows: fashion (random flip), gray or painted digits, shifted."""
    from i2ibench.data.cmnist import PALETTE_RGB

    src, idx, colour = plan.source[rows], plan.index[rows], plan.colour[rows]
    gray = torch.empty(len(rows), 1, *data.fashion.shape[-2:])
    is_f = src == SOURCE_FASHION
    gray[is_f] = data.fashion[idx[is_f]]
    gray[~is_f] = data.digits[idx[~is_f]]
    flip = is_f & (torch.rand(len(rows), generator=gen) < 0.5)
    gray[flip] = gray[flip].flip(-1)
    tint = torch.ones(len(rows), 3)
    painted = colour >= 0
    tint[painted] = PALETTE_RGB[colour[painted]].float() / 255.0
    x = ((gray + 1.0) * 0.5) * tint[:, :, None, None] * 2.0 - 1.0  # as cmnist paints: intensity x colour
    return _shift(x, cfg.max_shift, gen)


# ---------------------------------------------------------------------- training


def multi_positive_clip_loss(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Symmetric CLIP cross-entropy; targets over each row's/column's positives in proportion to
    ``positives`` (bool: uniform; float: per-pair weights)."""
    p = positives.float()
    i2t = -(F.log_softmax(logits, dim=1) * p / p.sum(1, keepdim=True)).sum(1).mean()
    t2i = -(F.log_softmax(logits, dim=0) * p / p.sum(0, keepdim=True)).sum(0).mean()
    return 0.5 * (i2t + t2i)


def build_model(seed: int) -> nn.Module:
    """A freshly initialised tiny-clip (initialisation seeded, global RNG left as it was)."""
    import open_clip

    from i2ibench.vlm.model import quiet_logging

    register_model_config()
    with torch.random.fork_rng(devices=[]), quiet_logging(logging.WARNING):  # 'initialized randomly'
        torch.manual_seed(seed)
        return open_clip.create_model(TINY_MODEL, pretrained=None)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        embedding = "embedding" in name or name.endswith("class_embedding")
        (decay if p.ndim >= 2 and not embedding else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def pretrain(cfg: TinyClipConfig, fashion_root=None, cmnist_root=None, progress: bool = True,
             data: PretrainData | None = None) -> tuple[nn.Module, dict]:
    """Contrastively pre-train tiny-clip; returns (open_clip model, training record)."""
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _pretrain(cfg, fashion_root, cmnist_root, progress, data)
    finally:
        torch.set_num_threads(saved_threads)


def _pretrain(cfg: TinyClipConfig, fashion_root, cmnist_root, progress: bool,
              data: PretrainData | None) -> tuple[nn.Module, dict]:
    import open_clip

    from i2ibench.vlm.model import VLM

    t0, cpu0 = time.time(), time.process_time()
    model = build_model(cfg.seed)
    tokenizer = open_clip.get_tokenizer(TINY_MODEL)
    # The same preprocessing and text path as at use.
    wrapper = VLM(model, tokenizer, "tiny-clip (training)", "stand-in")
    model.train().requires_grad_(True)
    size = wrapper.image_size
    data = data or load_pretrain_data(size, fashion_root, cmnist_root)
    captions = caption_table()
    tokens = tokenizer([c.text for c in captions])

    gen = torch.Generator().manual_seed(cfg.seed)
    n_samples = len(data.fashion) + len(data.digits) * (1 + cfg.colour_copies)
    steps_per_epoch = n_samples // cfg.batch_size
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6,
                            fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, cfg.warmup_steps))
                                              * 0.5 * (1.0 + math.cos(math.pi * min(s, total) / max(1, total))))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="pre-training tiny-clip", unit="step", dynamic_ncols=True, file=sys.stderr,
                   disable=None)  # None: drawn on a terminal only, not into a redirected log
    step, losses = 0, []
    while step < total:
        plan = EpochPlan(data, cfg, captions, gen)
        for b in range(steps_per_epoch):
            if step >= total:
                break
            rows = torch.arange(b * cfg.batch_size, (b + 1) * cfg.batch_size)
            x = make_batch(data, plan, rows, cfg, gen)
            cap = plan.caption[rows]
            uniq = torch.unique(cap)
            # Captions end well before the context length; the causal mask makes the padding after
            # the end token irrelevant to its feature, so the text tower runs on the used length only.
            tok = tokens[uniq][:, :int(tokens[uniq].argmax(dim=1).max()) + 1]
            image = wrapper.encode_image(x)
            text = wrapper.encode_text_embeddings(wrapper.token_embedding(tok), tok)
            positives = describes([captions[i] for i in uniq.tolist()], plan.source[rows], plan.cls[rows],
                                  plan.colour[rows])
            logits = model.logit_scale.exp() * image @ text.T
            is_base = torch.tensor([captions[i].about == ABOUT_SOURCE for i in uniq.tolist()])
            weights = positives.float() * torch.where(is_base, cfg.base_target_weight, 1.0)[None]
            loss = multi_positive_clip_loss(logits, weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            losses.append(float(loss.detach()))
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}", epoch=f"{step / steps_per_epoch:.1f}")
    if bar is not None:
        bar.close()
    model.eval().requires_grad_(False)
    record = {
        "steps": step, "steps_per_epoch": steps_per_epoch, "samples_per_epoch": n_samples,
        "final_loss": sum(losses[-10:]) / max(1, len(losses[-10:])), "first_loss": losses[0] if losses else None,
        "captions": len(captions), "data": data.sources, "seconds": round(time.time() - t0, 1),
        "cpu_seconds": round(time.process_time() - cpu0, 1),
    }
    return model, record


# ---------------------------------------------------------------------- zero-shot evaluation


@torch.no_grad()
def zero_shot_top1(vlm, images: torch.Tensor, targets: torch.Tensor, templates: list[str] | tuple[str, ...],
                   words: list[str] | tuple[str, ...], batch: int = 500) -> float:
    """Top-1 accuracy of classifying ``images`` by the prompt ``template.format(word)`` that
    scores highest (several templates: the mean of their text features, as LANIT's text_aug)."""
    text = torch.stack([vlm.encode_text([t.format(w) for w in words]) for t in templates]).mean(0)
    text = F.normalize(text, dim=-1)
    correct = 0
    for i in range(0, len(images), batch):
        feats = vlm.encode_image(images[i:i + batch].to(vlm.device))
        correct += int(((feats @ text.T).argmax(1).cpu() == targets[i:i + batch]).sum())
    return correct / max(1, len(images))


def zero_shot_report(vlm, fashion_root=None, cmnist_root=None, img_size: int = 32) -> dict:
    """Zero-shot accuracies on the benchmark validation splits (fashion10 val, cmnist val)."""
    from i2ibench.data.catalog import create_dataset
    from i2ibench.data.cmnist import PALETTE_NAMES
    from i2ibench.data.prompts import TEMPLATES, TEXT_AUG_TEMPLATES

    report = {}
    fashion = create_dataset("fashion10", "val", img_size, fashion_root)
    fx = fashion.images(torch.arange(len(fashion)))
    words = fashion.domains
    for label, templates in (("template", (TEMPLATES["fashion"],)), ("text_aug", TEXT_AUG_TEMPLATES["fashion"])):
        report[f"fashion10/val {label}"] = {
            "top1": round(zero_shot_top1(vlm, fx, fashion.labels, templates, words), 4), "images": len(fashion),
            "classes": len(words), "templates": list(templates)}
    cmnist = create_dataset("cmnist", "val", img_size, cmnist_root)
    cx = cmnist.images(torch.arange(len(cmnist)))
    palette = cmnist.extras["palette_index"]
    painted = (palette >= 0).nonzero().flatten()
    template = (TEMPLATES["cmnist"],)
    tasks = {
        "cmnist/val colour": (cx[painted], palette[painted], PALETTE_NAMES),
        "cmnist/val gray+colours": (cx, palette + 1, [GRAY_WORD] + PALETTE_NAMES),
        "cmnist/val gray-vs-colored": (cx, (palette >= 0).long(), [GRAY_WORD, COLORED_WORD]),
    }
    for key, (x, y, w) in tasks.items():
        report[key] = {"top1": round(zero_shot_top1(vlm, x, y, template, w), 4), "images": len(x),
                       "classes": len(w), "templates": list(template)}
    return report


# ---------------------------------------------------------------------- cache


def pretrain_and_save(cfg: TinyClipConfig, fashion_root=None, cmnist_root=None, progress: bool = True) -> Path:
    """Pre-train, evaluate and cache the stand-in; returns its folder."""
    import open_clip

    from i2ibench.fileio import state_dict_sha256, torch_save, write_json
    from i2ibench.vlm.model import VLM, file_digest

    folder = standin_dir(cfg)
    model, record = pretrain(cfg, fashion_root, cmnist_root, progress)
    weights = folder / "weights.pt"
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch_save(state, weights)
    digest = file_digest(weights)
    vlm = VLM(model, open_clip.get_tokenizer(TINY_MODEL), f"tiny-clip@{state_dict_sha256(state)[:8]}", "stand-in")
    t0 = time.time()
    report = zero_shot_report(vlm, fashion_root, cmnist_root)
    meta = {
        "name": vlm.name, "open_clip_model": TINY_MODEL, "model_config": model_config(),
        "parameters": sum(p.numel() for p in model.parameters()), "train_config": asdict(cfg),
        "recipe_version": RECIPE_VERSION, "config_key": config_key(cfg), "weights": weights.name,
        "weights_sha256": digest, "training": record, "zero_shot": report,
        "zero_shot_seconds": round(time.time() - t0, 1),
        "torch": torch.__version__, "platform": platform.platform(), "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    write_json(folder / "meta.json", meta)  # written last: its presence marks a complete folder
    return folder


def read_meta(folder: Path) -> dict | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if (folder / meta.get("weights", "weights.pt")).is_file() else None


def load_tiny_clip(cfg: TinyClipConfig | None = None, progress: bool = True):
    """The pre-trained stand-in; pre-trains it first (once, deterministically) if not cached."""
    from i2ibench.vlm.model import file_digest, load_vlm_file

    cfg = cfg or TinyClipConfig()
    folder = standin_dir(cfg)
    meta = read_meta(folder)
    if meta is None:
        print(f"note: tiny-clip weights are not cached in {folder}; pre-training them now (deterministic, a few "
              f"minutes on a laptop CPU; `i2ibench vlm pretrain` does this ahead of time)", file=sys.stderr)
        pretrain_and_save(cfg, progress=progress)
        meta = read_meta(folder)
    weights = folder / meta["weights"]
    if file_digest(weights) != meta["weights_sha256"]:
        raise I2IError(f"tiny-clip weights in {folder} do not match their recorded checksum; delete the folder "
                       f"or run `i2ibench vlm pretrain --force`")
    register_model_config()
    return load_vlm_file(TINY_MODEL, weights, name=meta["name"], kind="stand-in")
