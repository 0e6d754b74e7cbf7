"""Vision-language models (CLIP) for LANIT and CLIPTraVeLGAN, by name.

Names ``load_vlm`` accepts:

- ``openai/ViT-B-32``: open_clip ``ViT-B-32`` with OpenAI's weights (what LANIT used);
- ``open_clip:MODEL/PRETRAINED``: any open_clip model and pretrained tag;
- ``file:MODEL=PATH``: an open_clip architecture with weights from a local file (a state
  dict, ``.safetensors``, or OpenAI's original TorchScript ``ViT-B-32.pt``);
- ``tiny-clip``: i2ibench's offline stand-in (``vlm_tiny``), pre-trained on first use.

open_clip downloads real weights from the Hugging Face Hub where there is a route to it and
otherwise finds them only in a pre-filled cache. A real model that cannot be had is a
one-line ``I2IError`` saying how to supply its weights; a random-weight CLIP is never
returned. Every loaded ``VLM`` has a ``name`` that result rows record.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
import warnings
import zipfile
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn

from i2ibench.defaults import cache_dir
from i2ibench.errors import I2IError

STANDIN_NAME = "tiny-clip"
OPENAI_VIT_B_32 = "openai/ViT-B-32"
# Fixed names; open_clip:... and file:... are patterns (see module doc).
ALIASES: dict[str, tuple[str, str]] = {OPENAI_VIT_B_32: ("ViT-B-32", "openai")}
NETWORK_PROBE_SECONDS = 3.0


class VLM(nn.Module):
    """A frozen CLIP: image and text encoders, tokenizer, and the text tower's insides.

    ``encode_image`` takes images in [-1, 1] of any size and 1 or 3 channels, and resizes and
    normalises them as the model expects, differentiably (LANIT backpropagates through it into
    the generator). ``encode_text_embeddings`` runs the text transformer on given token
    embeddings (prompt learning); on ``token_embedding(tokens)`` it equals ``encode_text``.
    """

    def __init__(self, model: nn.Module, tokenizer, name: str, kind: str):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.kind = kind
        pre = getattr(model.visual, "preprocess_cfg", {}) or {}
        size = model.visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.interpolation = pre.get("interpolation", "bicubic")
        if self.interpolation not in ("bicubic", "bilinear"):
            self.interpolation = "bicubic"
        from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

        mean, std = pre.get("mean", OPENAI_DATASET_MEAN), pre.get("std", OPENAI_DATASET_STD)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.embed_dim = _embed_dim(model)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VLM":
        # Frozen: the backbone stays in eval mode whatever the owner's mode.
        super().train(mode)
        self.model.eval()
        return self

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def context_length(self) -> int:
        return int(self.tokenizer.context_length)

    # ------------------------------------------------------------------ images

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images [N, C, H, W] -> the model's input (square resize, CLIP mean/std)."""
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"encode_image expects images [N, 1 or 3, H, W], got {tuple(x.shape)}")
        x = (x.float() + 1.0) * 0.5
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (self.image_size, self.image_size):
            shrink = x.shape[-1] > self.image_size or x.shape[-2] > self.image_size
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode=self.interpolation,
                              align_corners=False, antialias=shrink)
        return (x - self.mean) / self.std

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised image features [N, D] of images in [-1, 1]."""
        return F.normalize(self.model.encode_image(self.preprocess(x)).float(), dim=-1)

    # ------------------------------------------------------------------ text

    def tokenize(self, texts: str | list[str]) -> torch.Tensor:
        """Token ids [M, context_length] (start token, text, end token, zero padding)."""
        if isinstance(texts, str):
            texts = [texts]
        return self.tokenizer(list(texts)).to(self.device)

    def encode_text(self, texts: str | list[str]) -> torch.Tensor:
        """L2-normalised text features [M, D]."""
        return F.normalize(self.model.encode_text(self.tokenize(texts)).float(), dim=-1)

    def _text_tower(self) -> nn.Module:
        # open_clip's CLIP keeps the text transformer's parts on the model itself;
        # CustomTextCLIP keeps them in a TextTransformer at .text.
        tower = getattr(self.model, "text", self.model)
        needed = ("token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection")
        if not all(hasattr(tower, a) for a in needed) or getattr(tower, "cls_emb", None) is not None \
                or getattr(tower, "use_pad_mask", False):
            raise I2IError(f"VLM '{self.name}': prompt learning needs an open_clip text transformer "
                           f"(token embedding + causal transformer); this model's text tower is "
                           f"{type(tower).__name__}")
        return tower

    def token_embedding(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token embeddings [M, L, width] of token ids [M, L]."""
        return self._text_tower().token_embedding(tokens)

    def encode_text_embeddings(self, embeddings: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """L2-normalised text features [M, D] from token embeddings [M, L, width].

        ``tokens`` [M, L] says where each prompt ends (features are read at the end token).
        """
        tower = self._text_tower()
        cast = tower.transformer.get_cast_dtype()
        length = embeddings.shape[1]
        x = embeddings.to(cast) + tower.positional_embedding[:length].to(cast)
        mask = tower.attn_mask
        if mask is not None:
            mask = mask[:length, :length]
        x = tower.ln_final(tower.transformer(x, attn_mask=mask))
        x = _pool_text(x, tokens, tower)
        proj = tower.text_projection
        if proj is not None:
            x = proj(x) if isinstance(proj, nn.Linear) else x @ proj
        return F.normalize(x.float(), dim=-1)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, embed_dim={self.embed_dim}, image_size={self.image_size}"


def _embed_dim(model: nn.Module) -> int:
    proj = getattr(getattr(model, "text", model), "text_projection", None)
    if isinstance(proj, nn.Linear):
        return int(proj.out_features)
    if isinstance(proj, torch.Tensor):
        return int(proj.shape[1])
    return int(model.visual.output_dim)


def _pool_text(x: torch.Tensor, tokens: torch.Tensor, tower: nn.Module) -> torch.Tensor:
    pool = getattr(tower, "text_pool_type", None) or getattr(tower, "pool_type", "argmax")
    rows = torch.arange(x.shape[0], device=x.device)
    if pool == "argmax":  # the end token has the largest id
        return x[rows, tokens.argmax(dim=-1)]
    if pool == "eos":
        eos = getattr(tower, "text_eos_id", None) or getattr(tower, "eos_id")
        return x[rows, (tokens == eos).int().argmax(dim=-1)]
    if pool == "first":
        return x[:, 0]
    if pool == "last":
        return x[:, -1]
    return x


# ---------------------------------------------------------------------- names


def list_vlm_forms() -> list[str]:
    return [STANDIN_NAME, OPENAI_VIT_B_32, "open_clip:MODEL/PRETRAINED", "file:MODEL=PATH"]


def load_vlm(name: str, device: torch.device | str = "cpu") -> VLM:
    """The frozen VLM called ``name`` (see the module doc for the accepted names)."""
    name = (name or "").strip()
    if name == STANDIN_NAME:
        from i2ibench.vlm.tiny import load_tiny_clip

        vlm = load_tiny_clip()
    elif name in ALIASES:
        model_name, tag = ALIASES[name]
        vlm = _load_open_clip(model_name, tag, display=name)
    elif name.startswith("open_clip:"):
        model_name, sep, tag = name[len("open_clip:"):].partition("/")
        if not sep or not model_name or not tag:
            raise I2IError(f"VLM name '{name}' must look like open_clip:MODEL/PRETRAINED, "
                           f"e.g. open_clip:ViT-B-32/openai")
        vlm = _load_open_clip(model_name, tag, display=name)
    elif name.startswith("file:"):
        model_name, sep, path = name[len("file:"):].partition("=")
        if not sep or not model_name or not path:
            raise I2IError(f"VLM name '{name}' must look like file:MODEL=PATH, "
                           f"e.g. file:ViT-B-32-quickgelu=/data/ViT-B-32.pt")
        from i2ibench.vlm.tiny import register_model_config

        register_model_config()  # so that file:i2ibench-tiny-clip=PATH works too
        vlm = load_vlm_file(model_name, Path(path).expanduser())
    else:
        from i2ibench.registry import suggest

        raise I2IError(f"unknown VLM '{name}'{suggest(name, list_vlm_forms())}")
    return vlm.to(device)


def _check_architecture(model_name: str) -> None:
    import open_clip

    known = open_clip.list_models()
    if model_name not in known:
        from i2ibench.registry import suggest

        close = suggest(model_name, known).split(" Valid:")[0]
        raise I2IError(f"open_clip has no architecture '{model_name}'{close}; `python -c \"import open_clip; "
                       f"print(open_clip.list_models())\"` lists them")


def _tokenizer(model_name: str):
    import open_clip

    try:
        return open_clip.get_tokenizer(model_name)
    except Exception as e:  # HF tokenizers need files from the Hub
        raise I2IError(f"cannot load the tokenizer of open_clip '{model_name}': {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def file_digest(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def load_vlm_file(model_name: str, path: Path, name: str | None = None, kind: str = "file") -> VLM:
    """open_clip architecture ``model_name`` with the weights in ``path`` (weights-only load)."""
    import open_clip

    _check_architecture(model_name)
    if not path.is_file():
        raise I2IError(f"VLM weights file {path} does not exist (file:{model_name}=PATH needs a state dict, "
                       f".safetensors, or OpenAI's ViT-B-32.pt)")
    digest = file_digest(path)
    weights = _openai_torchscript_to_state_dict(model_name, path, digest) if _is_torchscript(path) else path
    try:
        model = open_clip.create_model(model_name, pretrained=str(weights), weights_only=True)
    except Exception as e:
        raise I2IError(f"cannot load {path} into open_clip '{model_name}': {_first_line(e)}") from None
    return VLM(model, _tokenizer(model_name), name or f"file:{model_name}@{digest[:8]}", kind)


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.split("/", 1)[-1].startswith("code/") for n in z.namelist())


def _openai_torchscript_to_state_dict(model_name: str, path: Path, digest: str) -> Path:
    """OpenAI's released ``*.pt`` files are TorchScript archives, which ``torch.load`` refuses
    with ``weights_only=True``. Their tensors are read once with ``torch.jit.load`` (TorchScript's
    own reader, which rebuilds TorchScript types only, never arbitrary Python objects) and
    cached as a plain state dict."""
    import open_clip

    if not open_clip.get_model_config(model_name).get("quick_gelu", False):
        raise I2IError(f"{path} is a TorchScript archive (OpenAI's release format), trained with QuickGELU: use "
                       f"file:{model_name}-quickgelu={path}")
    target = cache_dir("vlm", "converted") / f"{digest[:16]}.pt"
    if not target.is_file():
        from i2ibench.fileio import torch_save

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; still the reader of these
            archive = torch.jit.load(str(path), map_location="cpu")
        # Not weights: OpenAI's scalar buffers, and the causal mask open_clip rebuilds itself.
        state = {k: v.detach().clone() for k, v in archive.state_dict().items()
                 if k not in ("input_resolution", "context_length", "vocab_size") and not k.endswith("attn_mask")}
        torch_save(state, target)
    return target


# ---------------------------------------------------------------------- open_clip hub models


def _hub_files(pretrained_cfg: dict) -> tuple[str, list[str]]:
    """(repo id, candidate file names) of a pretrained tag's Hub location."""
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    # 'org/model/' (open_clip's default file names) or 'org/model/file.bin'
    repo, filename = os.path.split(pretrained_cfg.get("hf_hub", ""))
    if not filename:
        return repo, [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME]
    stem = filename.rsplit(".", 1)[0]
    return repo, [f"{stem}.safetensors", filename]


def cached_weights(model_name: str, tag: str) -> Path | None:
    """Where the Hugging Face cache holds a pretrained tag's weights, or None."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if not cfg:
        return None
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, names = _hub_files(cfg)
        for fn in names:
            found = try_to_load_from_cache(repo, fn)
            if isinstance(found, str):
                return Path(found)
    return None


def hub_reachable(timeout: float = NETWORK_PROBE_SECONDS) -> bool:
    """Whether a TCP connection to the Hugging Face endpoint opens within ``timeout`` seconds.

    Run in a thread because name resolution itself can hang for far longer."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return bool(result and result[0])


@contextlib.contextmanager
def _hub_offline(offline: bool) -> Iterator[None]:
    """Make huggingface_hub serve only from its cache (no retries against an absent network)."""
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = saved or offline
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def _supply_hint(model_name: str, tag: str, cfg: dict) -> str:
    import open_clip

    arch = model_name
    if cfg.get("quick_gelu") and not model_name.endswith("-quickgelu") \
            and open_clip.get_model_config(f"{model_name}-quickgelu") is not None:
        arch = f"{model_name}-quickgelu"  # these weights were trained with QuickGELU
    repo, names = _hub_files(cfg) if cfg.get("hf_hub") else ("", [])
    if not repo:
        return f"supply the weights as --vlm file:{arch}=/path/to/weights, or pre-fill open_clip's cache"
    prefill = (f"pre-fill the Hugging Face cache where there is internet (huggingface-cli download {repo} "
               f"{names[-1]}), copy it to this machine's HF_HOME and set HF_HUB_OFFLINE=1")
    return f"supply the weights as --vlm file:{arch}=/path/to/weights, or {prefill}"


@contextlib.contextmanager
def quiet_logging(level: int = logging.ERROR) -> Iterator[None]:
    """Silence open_clip's root-logger messages up to ``level`` (a failed download is an ERROR
    there, a deliberately untrained model a WARNING); our own error says it once."""
    saved = logging.root.manager.disable
    logging.disable(level)
    try:
        yield
    finally:
        logging.disable(saved)


def _load_open_clip(model_name: str, tag: str, display: str) -> VLM:
    import open_clip
    from huggingface_hub import constants

    _check_architecture(model_name)
    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        raise I2IError(f"open_clip has no pretrained tag '{tag}' for {model_name}; "
                       f"tags: {', '.join(tags) or '(none)'}")
    cached = cached_weights(model_name, tag) is not None
    reachable = cached or constants.HF_HUB_OFFLINE or hub_reachable()
    try:
        with _hub_offline(not reachable), quiet_logging():
            model = open_clip.create_model(model_name, pretrained=tag, weights_only=True,
                                           force_quick_gelu=bool(cfg.get("quick_gelu", False)))
    except Exception as e:
        if cached:
            where = _first_line(e)
        elif constants.HF_HUB_OFFLINE:
            where = "HF_HUB_OFFLINE is set and the weights are not in the local Hugging Face cache"
        elif not reachable:
            where = "the Hugging Face Hub is unreachable and the weights are not in the local cache"
        else:
            where = _first_line(e)
        raise I2IError(f"cannot load VLM '{display}' ({where}): {_supply_hint(model_name, tag, cfg)}") from None
    return VLM(model, _tokenizer(model_name), display, "open_clip")


# ---------------------------------------------------------------------- listing


def zero_shot_record_path(name: str) -> Path:
    """Where ``i2ibench vlm eval`` stores a real VLM's zero-shot accuracies."""
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return cache_dir("vlm", "zero_shot") / f"{slug}.json"


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def list_vlms() -> list[dict]:
    """Each named VLM: name, kind, weights location, whether present, zero-shot accuracies."""
    from i2ibench.vlm.tiny import TinyClipConfig, standin_dir

    tiny_dir = standin_dir(TinyClipConfig())
    tiny_meta = _read_json(tiny_dir / "meta.json") or {}
    rows = [{
        "name": STANDIN_NAME, "weights": str(tiny_dir),
        "kind": "stand-in pre-trained by i2ibench" + (f" ({tiny_meta['name']})" if tiny_meta else ""),
        "present": bool(tiny_meta) and (tiny_dir / "weights.pt").is_file(),
        "zero_shot": tiny_meta.get("zero_shot", {}),
    }]
    for alias, (model_name, tag) in ALIASES.items():
        found = cached_weights(model_name, tag)
        import open_clip

        repo = os.path.split(open_clip.get_pretrained_cfg(model_name, tag).get("hf_hub", ""))[0]
        record = _read_json(zero_shot_record_path(alias)) or {}
        rows.append({
            "name": alias, "kind": f"open_clip {model_name} / {tag}",
            "weights": str(found) if found else f"Hugging Face cache: {repo}",
            "present": found is not None, "zero_shot": record.get("zero_shot", {}),
        })
    listed = {r["name"] for r in rows}
    for path in sorted(cache_dir("vlm", "zero_shot").glob("*.json")):  # other models scored by `vlm eval`
        record = _read_json(path) or {}
        if record.get("name") and record["name"] not in listed and not record["name"].startswith("tiny-clip"):
            rows.append({"name": record["name"], "kind": "evaluated earlier", "weights": "-", "present": False,
                         "zero_shot": record.get("zero_shot", {})})
    return rows
