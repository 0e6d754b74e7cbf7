"""The ``Method`` interface every translation method implements, and what the engine hands it.

GANs need manual optimisation, so a method owns its update step and the engine owns the loop.
A method keeps its trainable networks in ``self.nets`` (an ``nn.ModuleDict``), their EMA copies
in ``self.nets_ema``, and one optimiser per trainable net in ``self.optims``. It updates them
only through ``self.optimize(loss, names)``, which is where the engine hooks gradient
averaging across processes in distributed runs. Frozen models (a VLM) live outside ``nets``:
they are never checkpointed, and ``frozen_models()`` names them for the records.

Two domain spaces. The dataset's *classes* are ``info.domains`` (K of them; the engine's
labels, the harness's tasks and targets are class indices). A method's own *domains* are what
its networks are indexed by (``num_domains``, N of them): the classes for stargan2, cluster
ids for tunit, text domains (words) for lanit. ``domain_of_class`` maps the first to the
second; ``labels_to_classes`` maps label rows back. Every hook below says which space its
arguments are in.

Everything the engine and the harness use is declared here with a default; nothing is found by
probing attributes.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable

import torch
from torch import nn

from i2ibench.config import RunConfig
from i2ibench.names import GROUND_TRUTH, LABELS, LATENT, REFERENCE

Images = torch.Tensor  # [n, 3, H, W] in [-1, 1]


@dataclass
class DataInfo:
    """What a method may know about its dataset when it is built.

    ``domains``: the class names (label order). ``unimodal``: indices of classes the dataset
    declares uni-modal (one appearance per content, e.g. cmnist's gray digits).
    """

    dataset: str
    domains: list[str]
    img_size: int
    multi_label: bool = False
    unimodal: tuple[int, ...] = ()

    @property
    def num_domains(self) -> int:
        return len(self.domains)

    @classmethod
    def of(cls, cfg: RunConfig, dataset: Any) -> "DataInfo":
        """What a method is told about ``dataset`` (a split of ``cfg.dataset``, or a caller's own:
        ``domains``, ``labels`` and, if it has one, ``spec`` for the uni-modal domains)."""
        labels = torch.as_tensor(dataset.labels)
        spec = getattr(dataset, "spec", None)
        return cls(dataset=cfg.dataset, domains=list(dataset.domains), img_size=cfg.train.img_size,
                   multi_label=labels.dim() == 2, unimodal=spec.unimodal if spec is not None else ())


@dataclass
class Batch:
    """One training batch, on the method's device, images in [-1, 1] ``[n, 3, S, S]``.

    ``x_src``/``y_src``: source images and their ground-truth classes (LongTensor ``[n]``, or
    multi-hot ``[n, K]`` on multi-label data). ``x_ref``, ``x_ref2``: two reference images of
    the same class ``y_ref``. A method whose ``label_kind`` is not ground truth must not read
    ``y_src``/``y_ref``, except where ``labelled`` (bool ``[n]``, set when the method declares
    a ``labelled_fraction``) marks a source whose label it may use. ``x_pair``/``has_pair``:
    for datasets with aligned pairs (cmnist), the paired image of each source in another
    class and whether it exists (bool ``[n]``); set only for methods with ``uses_pairs``.
    """

    x_src: torch.Tensor
    y_src: torch.Tensor
    x_ref: torch.Tensor
    x_ref2: torch.Tensor
    y_ref: torch.Tensor
    labelled: torch.Tensor | None = None
    x_pair: torch.Tensor | None = None
    has_pair: torch.Tensor | None = None

    def to(self, device: torch.device | str, memory_format=torch.contiguous_format) -> "Batch":
        def mv(t):
            if t is None:
                return None
            t = t.to(device, non_blocking=True)
            return t.contiguous(memory_format=memory_format) if t.dim() == 4 else t
        return Batch(**{k: mv(v) for k, v in self.__dict__.items()})


@dataclass(frozen=True)
class LabelView:
    """One set of labels the harness scores against ground truth (``protocol`` names its rows).

    ``labels(x)``: images ``[n, 3, S, S]`` -> cluster ids LongTensor ``[n]`` (label kind
    ``clusters``) or multi-hot float ``[n, N]`` over the method's domains. ``scores(x)``:
    optional per-domain scores ``[n, N]`` whose argmax is the method's top-1 domain.
    """

    protocol: str
    labels: Callable[[Images], torch.Tensor]
    scores: Callable[[Images], torch.Tensor] | None = None


class Method(ABC):
    """Base class. Subclasses set ``Config``, ``presets`` and implement the abstract methods.

    Class attributes a subclass declares: ``Config`` (a dataclass of every hyper-parameter,
    paper defaults), ``presets`` (``paper``/``cpu``/``smoke`` -> flat dotted overrides),
    ``modes`` (the translation modes it has, from ``i2ibench.names``), ``label_kind`` (what it
    trains with in place of ground truth), ``uses_pairs`` (wants aligned pairs in its batches),
    ``has_style_codes`` (``style_codes`` gives per-image codes worth plotting),
    ``batch_domains`` (two-domain methods: ``(a, b)`` = every source of a training batch is of
    class ``a`` and every reference of class ``b``; ``None``: the default sampling) and
    ``needs_source`` (``translate`` takes the inputs' domains as ``src=``, LongTensor ``[n]``
    of the method's domains: per-domain input layers, HMU; callers pass it only then).
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    modes: ClassVar[tuple[str, ...]] = (LATENT, REFERENCE)
    label_kind: ClassVar[str] = GROUND_TRUTH
    uses_pairs: ClassVar[bool] = False
    has_style_codes: ClassVar[bool] = False
    batch_domains: ClassVar[tuple[int, int] | None] = None
    needs_source: ClassVar[bool] = False

    def __init__(self, cfg: RunConfig, info: DataInfo, device: torch.device | str = "cpu"):
        self.cfg = cfg
        self.mcfg = cfg.model
        self.info = info
        self.device = torch.device(device)
        self.nets = nn.ModuleDict()
        self.nets_ema = nn.ModuleDict()
        self.optims: dict[str, torch.optim.Optimizer] = {}
        # Set by the engine in distributed runs: averages gradients of the given modules.
        self.grad_sync: Callable[[Iterable[nn.Module]], None] | None = None

    # ----------------------------------------------------------------- to implement
    @abstractmethod
    def training_step(self, batch: Batch, step: int) -> dict[str, float]:
        """One iteration (discriminator and generator updates, EMA); ``step`` is 0-based.

        Returns scalar losses by name (logged; a non-finite value stops the run).
        """

    @abstractmethod
    def translate(self, x: torch.Tensor, target: torch.Tensor | None, *, z: torch.Tensor | None = None,
                  ref: torch.Tensor | None = None) -> torch.Tensor:
        """Translate images ``x`` ``[n, 3, S, S]`` in [-1, 1] with the EMA nets; same shape and range out.

        ``target``: the method's own domains (not the dataset's classes): LongTensor ``[n]`` of
        indices, or multi-hot ``[n, N]`` where the method supports it; ``None`` only where
        ``serves`` allowed a class that ``domain_of_class`` does not map (the method then takes
        the domain from the reference). Latent-guided when ``z`` ``[n, latent_dim]`` is given,
        reference-guided when ``ref`` ``[n, 3, S, S]`` is given, deterministic when neither.
        """

    @abstractmethod
    def domain_labels(self, x: torch.Tensor) -> torch.Tensor:
        """The labels the method trains with, for images ``x`` ``[n, 3, S, S]`` in [-1, 1].

        Cluster ids LongTensor ``[n]`` (clusters) or multi-hot ``[n, N]`` over its own domains
        (clip_multi_hot). Ground-truth methods have none and raise ``TypeError``.
        """

    # ----------------------------------------------------------------- declared capabilities
    @property
    def num_domains(self) -> int:
        """N, the number of the method's own domains (default: the dataset's classes)."""
        return self.info.num_domains

    @property
    def latent_dim(self) -> int | None:
        """Length of the latent code ``z`` of latent-guided translation (``None``: no latent mode)."""
        return int(self.mcfg.latent_dim) if LATENT in self.modes else None

    @property
    def labelled_fraction(self) -> float:
        """Share of each class whose labels a semi-supervised method may use (0: none)."""
        return 0.0

    @property
    def paired_fraction(self) -> float | None:
        """For ``uses_pairs``: share of the training contents (digits) whose aligned pair the method
        may use, drawn once from the run seed (``None``: every pair the dataset has)."""
        return None

    def domain_of_class(self, k: int) -> int | None:
        """The method's domain for dataset class ``k`` (default: the same index); ``None`` if none."""
        return k

    def serves(self, src: int, trg: int, mode: str) -> bool:
        """Whether the method translates class ``src`` into class ``trg`` in ``mode``.

        Default: every ordered pair of different classes, in every mode the method has; a
        target class needs a domain (``domain_of_class``). One-sided methods, uni-modal
        targets and methods whose domains do not name every class narrow this.
        """
        return src != trg and mode in self.modes and self.domain_of_class(trg) is not None

    @property
    def latent_targets_from_references(self) -> bool:
        """Whether latent-guided evaluation takes each target from a reference image of the target
        class (``target_of_reference``) instead of ``domain_of_class`` (LANIT's official evaluation)."""
        return False

    def target_of_reference(self, ref: torch.Tensor) -> torch.Tensor:
        """The target (method domains, ``[n]`` or multi-hot ``[n, N]``) that reference images
        ``ref`` ``[n, 3, S, S]`` of a class stand for; used when ``latent_targets_from_references``."""
        raise TypeError(f"{self.name} takes latent-guided targets from domain_of_class, not from references")

    def labels_to_classes(self, per_domain: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """Label or score rows over the method's domains ``[n, N]`` -> rows over the classes ``[n, K]``.

        Default: the identity (the domains are the classes). ``fill`` is the value of a class
        no domain names (0 for labels, -inf for scores).
        """
        return per_domain

    def label_views(self) -> list[LabelView]:
        """The label sets the harness scores against ground truth (none for ground-truth methods)."""
        if self.label_kind == GROUND_TRUTH:
            return []
        return [LabelView(LABELS, self.domain_labels)]

    def style_codes(self, x: torch.Tensor) -> torch.Tensor:
        """Per-image style codes ``[n, D]`` of images ``x`` (methods with ``has_style_codes``)."""
        raise TypeError(f"{self.name} has no per-image style codes to plot")

    def evaluation_note(self) -> str:
        """A note for every translation row of an evaluation of the current weights ('' for none),
        e.g. that a generator other than the EMA one made the translations."""
        return ""

    def setting(self) -> str:
        """The variant that ran, in the field's terms (e.g. ``"S=clip, λ=0.001 (sum over pairs)"``):
        the ``setting`` column of every record, so that tables keep variants apart. Default ''."""
        return ""

    def frozen_models(self) -> dict[str, str]:
        """Frozen models the method uses, role -> name (e.g. ``{"vlm": "tiny-clip@1f953eae"}``).

        Named in every record; never in a checkpoint.
        """
        return {}

    # ----------------------------------------------------------------- helpers
    def optimize(self, loss: torch.Tensor, names: Iterable[str]) -> None:
        """zero_grad, backward, (sync gradients across processes), step for the named nets."""
        names = list(names)
        for n in names:
            self.optims[n].zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_sync is not None:
            self.grad_sync([self.nets[n] for n in names])
        for n in names:
            self.optims[n].step()

    def set_trainable(self, *names: str) -> None:
        """Let only the nets ``names`` accumulate parameter gradients (saves the others' backward work)."""
        for name, net in self.nets.items():
            net.requires_grad_(name in names)

    @staticmethod
    def loss_values(logs: dict[str, Any]) -> dict[str, float]:
        """Tensors and floats by name -> floats, with one device sync for all tensors."""
        dev = next((v.device for v in logs.values() if torch.is_tensor(v)), torch.device("cpu"))
        values = torch.stack([torch.as_tensor(v, device=dev).detach().float().reshape(()) for v in logs.values()]).tolist()
        return dict(zip(logs.keys(), values))

    @torch.no_grad()
    def update_ema(self, beta: float, names: Iterable[str] | None = None) -> None:
        for n in names if names is not None else self.nets_ema.keys():
            for p_ema, p in zip(self.nets_ema[n].parameters(), self.nets[n].parameters()):
                p_ema.lerp_(p.detach(), 1.0 - beta)
            for b_ema, b in zip(self.nets_ema[n].buffers(), self.nets[n].buffers()):
                b_ema.copy_(b)

    def make_ema(self, *names: str) -> None:
        for n in names:
            self.nets_ema[n] = copy.deepcopy(self.nets[n]).eval().requires_grad_(False)

    def to(self, device=None, memory_format=None) -> "Method":
        if device is not None:
            self.device = torch.device(device)
        for mods in (self.nets, self.nets_ema):
            mods.to(self.device)
            if memory_format is not None:
                mods.to(memory_format=memory_format)
        return self

    def train(self, mode: bool = True) -> "Method":
        self.nets.train(mode)
        return self

    def extra_state(self) -> dict[str, Any]:
        """Method state beyond nets/EMA/optimisers (queues, learned prompts, ...): tensors and plain data."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {
            "nets": self.nets.state_dict(),
            "nets_ema": self.nets_ema.state_dict(),
            "optims": {k: o.state_dict() for k, o in self.optims.items()},
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        self.nets_ema.load_state_dict(state["nets_ema"])
        for k, o in self.optims.items():
            # a checkpoint's param groups carry the fused/foreach flags of the run that wrote it;
            # keep this run's choice (train.plain_step): the math is the same either way
            flags = [{f: g.get(f) for f in ("fused", "foreach")} for g in o.param_groups]
            o.load_state_dict(state["optims"][k])
            for g, f in zip(o.param_groups, flags):
                g.update(f)
        self.load_extra_state(state.get("extra", {}))
