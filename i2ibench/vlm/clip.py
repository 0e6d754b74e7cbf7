"""Vision-language models (CLIP) for LANIT and CLIPTraVeLGAN, by name.

Names ``load_vlm`` accepts:

- ``openai/ViT-B-32``: open_clip ``ViT-B-32`` with OpenAI's weights (what LANIT used);
- ``open_clip:MODEL/PRETRAINED``: any open_clip model and pretrained tag;
- ``file:MODEL=PATH``: an open_clip architecture with weights from a local file (a state
  dict, ``.safetensors``, or OpenAI's original TorchScript ``ViT-B-32.pt``);
- ``tiny-clip``: i2ibench's offline stand-in (``i2ibench.vlm.tiny``), pre-trained on first use.

open_clip downloads real weights from the Hugging Face Hub where there is a route to it and
otherwise finds them only in a pre-filled cache. A real model that cannot be had is a
one-line ``I2IError`` saying how to supply its weights; a random-weight CLIP is never
returned. Every loaded ``VLM`` has a ``name`` that result rows record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import torch

from i2ibench.defaults import cache_dir
from i2ibench.errors import I2IError
from i2ibench.vlm.model import VLM, check_architecture, first_line, load_vlm_file, quiet_logging, tokenizer_for

STANDIN_NAME = "tiny-clip"
OPENAI_VIT_B_32 = "openai/ViT-B-32"
# Fixed names; open_clip:... and file:... are patterns (see module doc).
ALIASES: dict[str, tuple[str, str]] = {OPENAI_VIT_B_32: ("ViT-B-32", "openai")}
NETWORK_PROBE_SECONDS = 3.0


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


def architecture_of(name: str) -> str:
    """The open_clip architecture behind a VLM name (``tiny-clip`` -> ``i2ibench-tiny-clip``,
    ``openai/ViT-B-32`` -> ``ViT-B-32``, ``open_clip:M/T`` and ``file:M=P`` -> ``M``); I2IError otherwise."""
    name = (name or "").strip()
    if name == STANDIN_NAME:
        from i2ibench.vlm.tiny import TINY_MODEL, register_model_config

        register_model_config()
        return TINY_MODEL
    if name in ALIASES:
        return ALIASES[name][0]
    for prefix, sep in (("open_clip:", "/"), ("file:", "=")):
        if name.startswith(prefix):
            model_name = name[len(prefix):].partition(sep)[0]
            if model_name:
                return model_name
    from i2ibench.registry import suggest

    raise I2IError(f"unknown VLM '{name}'{suggest(name, list_vlm_forms())}")


def random_weight_vlm(name: str, seed: int, device: torch.device | str = "cpu") -> VLM:
    """``name``'s architecture with random weights (open_clip's initialisation under ``seed``),
    for the CLIPTraVeLGAN paper's ablation (§5, Fig. 6). Its name says so: ``random-weights:ARCH@seed=N``,
    so a record can never pass it off as the pretrained model. Touches no weights file."""
    import open_clip

    arch = architecture_of(name)
    check_architecture(arch)
    with torch.random.fork_rng(devices=[]), quiet_logging(logging.WARNING):
        torch.manual_seed(int(seed))
        model = open_clip.create_model(arch, pretrained=None)
    return VLM(model, tokenizer_for(arch), f"random-weights:{arch}@seed={int(seed)}", "random").to(device)


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


def _load_open_clip(model_name: str, tag: str, display: str) -> VLM:
    import open_clip
    from huggingface_hub import constants

    check_architecture(model_name)
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
            where = first_line(e)
        elif constants.HF_HUB_OFFLINE:
            where = "HF_HUB_OFFLINE is set and the weights are not in the local Hugging Face cache"
        elif not reachable:
            where = "the Hugging Face Hub is unreachable and the weights are not in the local cache"
        else:
            where = first_line(e)
        raise I2IError(f"cannot load VLM '{display}' ({where}): {_supply_hint(model_name, tag, cfg)}") from None
    return VLM(model, tokenizer_for(model_name), display, "open_clip")


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
