"""The model object every VLM user sees, and loading an open_clip architecture with weights from a file.

``VLM`` wraps an open_clip CLIP: ``encode_image`` takes images in [-1, 1] and applies the
model's own preprocessing, ``encode_text`` takes strings, and the token-embedding path lets
LANIT learn prompts. Names (``openai/ViT-B-32``, ``tiny-clip``, ...) are resolved by
``i2ibench.vlm.clip``; ``i2ibench.vlm.tiny`` builds the offline stand-in on this class.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import warnings
import zipfile
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from i2ibench.defaults import cache_dir
from i2ibench.errors import I2IError
from i2ibench.registry import suggest


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
        # How images are resized to the model's input: "antialias" (open_clip's interpolation,
        # antialiased when shrinking) or "lanit" (official LANIT: bicubic, align_corners=True).
        self.resize = "antialias"
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
            if self.resize == "lanit":  # official LANIT cal_clip_loss: bicubic, corners aligned, no antialias
                x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic", align_corners=True)
            else:
                shrink = x.shape[-1] > self.image_size or x.shape[-2] > self.image_size
                x = F.interpolate(x, size=(self.image_size, self.image_size), mode=self.interpolation,
                                  align_corners=False, antialias=shrink)
        return (x - self.mean) / self.std

    def encode_image(self, x: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Image features [N, D] (the projected embedding) of images in [-1, 1]; L2-normalised
        unless ``normalize=False`` (CLIPTraVeLGAN's transformation vectors use the raw embedding)."""
        feats = self.model.encode_image(self.preprocess(x)).float()
        return F.normalize(feats, dim=-1) if normalize else feats

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


def check_architecture(model_name: str) -> None:
    import open_clip

    known = open_clip.list_models()
    if model_name not in known:

        close = suggest(model_name, known).split(" Valid:")[0]
        raise I2IError(f"open_clip has no architecture '{model_name}'{close}; `python -c \"import open_clip; "
                       f"print(open_clip.list_models())\"` lists them")


def tokenizer_for(model_name: str):
    import open_clip

    try:
        return open_clip.get_tokenizer(model_name)
    except Exception as e:  # HF tokenizers need files from the Hub
        raise I2IError(f"cannot load the tokenizer of open_clip '{model_name}': {first_line(e)}") from None


def first_line(e: BaseException) -> str:
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

    check_architecture(model_name)
    if not path.is_file():
        raise I2IError(f"VLM weights file {path} does not exist (file:{model_name}=PATH needs a state dict, "
                       f".safetensors, or OpenAI's ViT-B-32.pt)")
    digest = file_digest(path)
    weights = _openai_torchscript_to_state_dict(model_name, path, digest) if _is_torchscript(path) else path
    try:
        model = open_clip.create_model(model_name, pretrained=str(weights), weights_only=True)
    except Exception as e:
        raise I2IError(f"cannot load {path} into open_clip '{model_name}': {first_line(e)}") from None
    return VLM(model, tokenizer_for(model_name), name or f"file:{model_name}@{digest[:8]}", kind)


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
