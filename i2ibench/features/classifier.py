"""Domain and content classifiers that score translations (translation accuracy, content preservation).

A classifier is trained once per (dataset, label, recipe) on the dataset's ``train`` split and
measured on its ``val`` split; both the weights and the validation accuracy are cached in
``cache_dir("classifiers")/<dataset>-<label>-<config key>/`` (``weights.pt`` + ``meta.json``,
written atomically, ``meta.json`` last). The folder is named by a hash of what makes the
weights (dataset, label, image size, architecture, recipe, a fingerprint of the training
images, the code's recipe version); the weights are named by a digest of their tensor values
(``fileio.state_dict_sha256``), e.g. ``fashion10-domain-cnn@1a2b3c4d``, as tiny-clip is.
They load with ``torch.load(..., weights_only=True)`` and are checked against that digest.

Labels:

- ``domain``: the dataset's domain labels (single-label datasets only);
- ``content``: a per-image label that translation must keep, where the dataset has one:
  Colorized MNIST's digit (``extras["digit"]``; also its two-domain task ``cmnist-gray2color``).
  Fashion two-domain tasks (``fashion-sneaker2boot``) have none: there the class *is* the
  domain, so the domain classifier (translation accuracy) is what measures them.

Architectures: ``cnn`` (three conv-BN-ReLU-maxpool blocks of 32/64/128 channels, a 4 x 4 average pool and a
linear layer; ~0.11 M parameters) for images up to 64 px; ``resnet18`` (torchvision's ResNet-18, random
init, no pretrained weights) above that, meant for GPUs. Training is deterministic on CPU for
a seed: initialisation, data order and augmentation (random shifts, horizontal flips where
the recipe allows) come from the recipe's seed, on a pinned number of threads.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from i2ibench.defaults import cache_dir
from i2ibench.errors import I2IError
from i2ibench.fileio import exclusive_lock

CACHE_SUBDIR = "classifiers"
LABEL_KINDS = ("domain", "content")
ARCHS = ("auto", "cnn", "resnet18")
SMALL_MAX_PX = 64  # "auto": cnn up to this size, resnet18 above
# Bump when the training code changes in a way the config does not show.
RECIPE_VERSION = 1


@dataclass
class ClassifierConfig:
    """The training recipe of a classifier (defaults: fashion10's domain classifier >= 0.90 val)."""

    seed: int = 0
    arch: str = "auto"
    img_size: int = 0          # 0: the dataset's default size
    epochs: int = 1
    batch_size: int = 64
    lr: float = 3e-3           # peak of a one-cycle schedule (AdamW)
    weight_decay: float = 1e-4
    max_shift: int = 0         # random translation (px) of training images (0: none; shifts cost accuracy
                               # at one epoch on centred 28 px data, measured)
    hflip: bool = False        # random horizontal flips (off: digits and some classes are not symmetric)
    max_train: int = 0         # train on at most this many images (seeded choice); 0: all
    max_steps: int = 0         # stop after this many steps (0: all epochs); tests use a few
    threads: int = 1           # pinned: CPU kernels split sums by thread count


# ---------------------------------------------------------------------- labels


def content_labels(ds) -> tuple[torch.Tensor, list[str]] | None:
    """The content label of every image of ``ds`` [N] and the label names, or None if it has none:
    cmnist's digit, or a dataset's ``content`` extra (the flipping task's Fashion-MNIST class)."""
    digit = ds.extras.get("digit")
    if digit is not None:
        return digit.long(), [str(d) for d in range(10)]
    content = ds.extras.get("content")
    if content is not None:
        return content.long(), [str(c) for c in range(int(content.max()) + 1)]
    return None


def labels_of(ds, label: str) -> tuple[torch.Tensor, list[str]]:
    """(labels [N] long, class names) of ``ds`` for ``label`` ('domain' or 'content')."""
    if label not in LABEL_KINDS:
        raise I2IError(f"unknown classifier label '{label}'. Valid: {', '.join(LABEL_KINDS)}")
    if label == "domain":
        if ds.multi_label:
            raise I2IError(f"{ds.name} is multi-label: a single-label domain classifier does not apply")
        return ds.labels.long(), list(ds.domains)
    found = content_labels(ds)
    if found is None:
        raise I2IError(f"{ds.name} has no content label (only cmnist's digit is one); content preservation "
                       f"does not apply to it")
    return found


# ---------------------------------------------------------------------- networks


class SmallCNN(nn.Module):
    """conv(3->32)-BN-ReLU-pool, conv(32->64)-..., conv(64->128)-...-global mean, linear(128->K)."""

    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        layers, c_in = [], 3
        for c_out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.head = nn.Linear(c_in * 16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def resolve_arch(arch: str, img_size: int) -> str:
    if arch not in ARCHS:
        raise I2IError(f"unknown classifier architecture '{arch}'. Valid: {', '.join(ARCHS)}")
    if arch == "auto":
        return "cnn" if img_size <= SMALL_MAX_PX else "resnet18"
    return arch


def build_net(arch: str, num_classes: int) -> nn.Module:
    if arch == "cnn":
        return SmallCNN(num_classes)
    if arch == "resnet18":
        from torchvision.models import resnet18

        return resnet18(weights=None, num_classes=num_classes)
    raise I2IError(f"unknown classifier architecture '{arch}'. Valid: {', '.join(a for a in ARCHS if a != 'auto')}")


# ---------------------------------------------------------------------- the classifier


class Classifier:
    """A trained classifier: images [N, 3, H, W] in [-1, 1] (any size; resized to ``img_size``)
    -> logits [N, K] (``logits``) or labels [N] (``predict``). ``meta`` holds its name, class
    names, validation accuracy (``val_acc``) and training record."""

    def __init__(self, net: nn.Module, meta: dict, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.meta = meta
        self.name: str = meta["name"]
        self.img_size: int = int(meta["img_size"])
        self.classes: list[str] = list(meta["classes"])
        self.val_acc: float = float(meta["val_acc"])

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise I2IError(f"classifier input must be images [N, 3, H, W], got shape {tuple(x.shape)}")
        if x.dtype == torch.uint8:
            x = x.float() / 127.5 - 1.0
        x = x.to(self.device, torch.float32).expand(-1, 3, -1, -1)
        if x.shape[-1] != self.img_size or x.shape[-2] != self.img_size:
            x = F.interpolate(x, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False,
                              antialias=True)
        return x

    @torch.no_grad()
    def logits(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Logits [N, K] (float32, CPU)."""
        out = [self.net(self._prepare(images[s:s + batch_size])).float().cpu()
               for s in range(0, len(images), batch_size)]
        return torch.cat(out) if out else torch.zeros(0, len(self.classes))

    def predict(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Predicted class [N] (long, CPU): the argmax of the logits."""
        return self.logits(images, batch_size).argmax(dim=1)


# ---------------------------------------------------------------------- cache naming


def _data_fingerprint(ds) -> str:
    """What the training images are: the files (path, size, mtime), or the pixels and labels."""
    from i2ibench.features.cache import fingerprint_files, fingerprint_tensor

    if hasattr(ds, "parent") and hasattr(ds, "parent_indices"):
        return hashlib.sha256(f"{_data_fingerprint(ds.parent)}|{fingerprint_tensor(ds.parent_indices)}".encode()
                              ).hexdigest()
    paths = getattr(ds, "paths", None)
    if paths is not None:
        return "files:" + fingerprint_files(paths)
    pixels = getattr(ds, "pixels", None)
    if pixels is not None:
        tint = getattr(ds, "tint", None)
        parts = [fingerprint_tensor(pixels), fingerprint_tensor(ds.labels)]
        if tint is not None:
            parts.append(fingerprint_tensor(tint))
        return "pixels:" + hashlib.sha256("|".join(parts).encode()).hexdigest()
    return f"dataset:{ds.name}:{len(ds)}"


def config_key(dataset: str, label: str, cfg: ClassifierConfig, img_size: int, data_fingerprint: str) -> str:
    blob = json.dumps({"dataset": dataset, "label": label, "train": asdict(cfg), "img_size": img_size,
                       "data": data_fingerprint, "recipe": RECIPE_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]


def classifier_dir(dataset: str, label: str, key: str) -> Path:
    """Cache folder of one classifier (not created)."""
    return cache_dir(CACHE_SUBDIR) / f"{_safe(dataset)}-{label}-{key}"


# ---------------------------------------------------------------------- training


def _augment(x: torch.Tensor, cfg: ClassifierConfig, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    if cfg.hflip:
        flip = torch.rand(n, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    s = cfg.max_shift
    if s > 0:
        padded = F.pad(x, (s,) * 4, value=-1.0)
        dy = torch.randint(0, 2 * s + 1, (n,), generator=gen).tolist()
        dx = torch.randint(0, 2 * s + 1, (n,), generator=gen).tolist()
        x = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    return x


@torch.no_grad()
def accuracy(clf_net: nn.Module, ds, labels: torch.Tensor, device: torch.device, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``clf_net`` on all images of ``ds``."""
    clf_net.eval()
    correct = 0
    for s in range(0, len(ds), batch_size):
        idx = torch.arange(s, min(s + batch_size, len(ds)))
        pred = clf_net(ds.images(idx).to(device)).argmax(1).cpu()
        correct += int((pred == labels[idx]).sum())
    return correct / max(1, len(ds))


def train_net(train_ds, labels: torch.Tensor, num_classes: int, arch: str, cfg: ClassifierConfig,
              device: torch.device, progress: bool = True) -> tuple[nn.Module, dict]:
    """Train a classifier network on ``train_ds`` with ``labels`` [N]; returns (net, training record)."""
    t0, cpu0 = time.time(), time.process_time()
    gen = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = build_net(arch, num_classes)
    net = net.to(device).train()
    rows = torch.arange(len(train_ds))
    if cfg.max_train and cfg.max_train < len(rows):
        rows = torch.randperm(len(rows), generator=gen)[:cfg.max_train].sort().values
    steps_per_epoch = max(1, len(rows) // cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(1, total), pct_start=0.15)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="training classifier", unit="step", dynamic_ncols=True, file=sys.stderr,
                   disable=None)  # None: drawn on a terminal only, not into a redirected log
    step, losses = 0, []
    while step < total:
        order = rows[torch.randperm(len(rows), generator=gen)]
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x = _augment(train_ds.images(idx), cfg, gen).to(device)
            loss = F.cross_entropy(net(x), labels[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
    if bar is not None:
        bar.close()
    net.eval()
    record = {"steps": step, "steps_per_epoch": steps_per_epoch, "train_images": len(rows),
              "first_loss": losses[0] if losses else None,
              "final_loss": sum(losses[-20:]) / max(1, len(losses[-20:])),
              "seconds": round(time.time() - t0, 1), "cpu_seconds": round(time.process_time() - cpu0, 1),
              "device": str(device)}
    return net, record


def _resolve(dataset: str, label: str, cfg: ClassifierConfig, data_root) -> tuple[Any, Any, int, str]:
    from i2ibench.data.catalog import create_dataset, get_spec

    spec = get_spec(dataset)
    size = cfg.img_size or spec.default_img_size
    train = create_dataset(dataset, "train", size, data_root)
    labels_of(train, label)  # fails early, before any training, when the label does not apply
    return spec, train, size, _data_fingerprint(train)


def train_classifier(dataset: str, label: str = "domain", cfg: ClassifierConfig | None = None, data_root=None,
                     device: str | torch.device = "cpu", progress: bool = True) -> Path:
    """Train the ``label`` classifier of ``dataset`` on its train split, measure it on val, cache it.

    Returns the cache folder (``weights.pt``, ``meta.json`` with ``name``, ``val_acc``,
    ``classes``, training record). Cost: fashion10 domain classifier with the default recipe,
    ~1-2 min on one CPU thread (README has the measured time). Raises ``I2IError`` (or
    ``DataError``) for an unknown dataset or label, a missing dataset, or a dataset without
    the label.
    """
    from i2ibench.data.catalog import create_dataset
    from i2ibench.fileio import state_dict_sha256, torch_save, write_json

    cfg = cfg or ClassifierConfig()
    spec, train, size, fingerprint = _resolve(dataset, label, cfg, data_root)
    key = config_key(dataset, label, cfg, size, fingerprint)
    folder = classifier_dir(dataset, label, key)
    arch = resolve_arch(cfg.arch, size)
    train_labels, classes = labels_of(train, label)
    device = torch.device(device)
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        net, record = train_net(train, train_labels, len(classes), arch, cfg, device, progress)
        val = create_dataset(dataset, "val", size, data_root)
        val_labels, _ = labels_of(val, label)
        t0 = time.time()
        val_acc = accuracy(net, val, val_labels, device)
        val_seconds = round(time.time() - t0, 1)
    finally:
        torch.set_num_threads(saved_threads)
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    digest = state_dict_sha256(state)
    weights = folder / "weights.pt"
    torch_save(state, weights)
    meta = {
        "name": f"{dataset}-{label}-{arch}@{digest[:8]}", "dataset": dataset, "label": label, "arch": arch,
        "img_size": size, "classes": classes, "num_classes": len(classes), "val_acc": round(val_acc, 6),
        "val_images": len(val), "val_seconds": val_seconds, "train_config": asdict(cfg), "config_key": key,
        "data_fingerprint": fingerprint, "recipe_version": RECIPE_VERSION, "weights": weights.name,
        "weights_sha256": digest, "parameters": sum(p.numel() for p in net.parameters()), "training": record,
        "torch": torch.__version__, "platform": platform.platform(), "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    write_json(folder / "meta.json", meta)  # written last: its presence marks a complete folder
    return folder


def read_meta(folder: Path) -> dict | None:
    """The meta of a complete cache folder, or None."""
    try:
        meta = json.loads((Path(folder) / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and (Path(folder) / meta.get("weights", "weights.pt")).is_file() else None


def load_folder(folder: Path, device: str | torch.device = "cpu") -> Classifier:
    """Load a cached classifier (``weights_only=True``) and check its weights against their digest."""
    from i2ibench.fileio import state_dict_sha256

    meta = read_meta(folder)
    if meta is None:
        raise I2IError(f"no complete classifier in {folder}")
    try:
        state = torch.load(Path(folder) / meta["weights"], map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, ...
        raise I2IError(f"classifier weights in {folder} are unreadable ({type(e).__name__}); delete the folder "
                       f"or train again with --force") from None
    if not isinstance(state, dict) or state_dict_sha256(state) != meta["weights_sha256"]:
        raise I2IError(f"classifier weights in {folder} do not match their recorded digest; delete the folder "
                       f"or train again with --force")
    net = build_net(meta["arch"], int(meta["num_classes"]))
    net.load_state_dict(state)
    return Classifier(net, meta, device)


def load_classifier(dataset: str, label: str = "domain", cfg: ClassifierConfig | None = None, data_root=None,
                    device: str | torch.device = "cpu", train: bool = True, progress: bool = True) -> Classifier:
    """The cached ``label`` classifier of ``dataset`` for recipe ``cfg``; trained first (once,
    deterministically) when missing and ``train`` is true, else ``I2IError``.

    Cost on a cache hit: a fingerprint of the training images (hashing the uint8 pixels or the
    files' metadata; ~0.1 s for fashion10) and a load of ~0.3 M parameters.
    """
    cfg = cfg or ClassifierConfig()
    _, _, size, fingerprint = _resolve(dataset, label, cfg, data_root)
    folder = classifier_dir(dataset, label, config_key(dataset, label, cfg, size, fingerprint))
    if read_meta(folder) is None:
        if not train:
            raise I2IError(f"no {label} classifier for {dataset} is cached in {folder}; run "
                           f"`i2ibench classifier train {dataset}{' --label content' if label == 'content' else ''}`")
        # Several evaluations at once train it once: the others wait, then load it.
        with exclusive_lock(folder, what=f"the {label} classifier of {dataset}", timeout_s=3600):
            if read_meta(folder) is None:
                print(f"note: the {label} classifier of {dataset} is not cached in {folder}; training it now "
                      f"(deterministic; `i2ibench classifier train` does this ahead of time)", file=sys.stderr)
                train_classifier(dataset, label, cfg, data_root, device, progress)
    return load_folder(folder, device)


def classifiers_root() -> Path:
    """The folder that holds every cached classifier (``$I2IBENCH_CACHE/classifiers``)."""
    return cache_dir(CACHE_SUBDIR)


def list_classifiers() -> list[dict]:
    """The meta of every complete classifier in the cache, with its ``folder``."""
    root = classifiers_root()
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        meta = read_meta(folder)
        if meta is not None:
            out.append({**meta, "folder": str(folder)})
    return out
