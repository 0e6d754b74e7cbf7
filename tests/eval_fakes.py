"""Fakes for tests of the evaluation harness (its callers' view): a toy dataset, a counting
random-projection "feature extractor", a pixel-distance "LPIPS" and a translator."""

from types import SimpleNamespace

import torch

from i2ibench.config import EvalConfig, RunConfig, TrainConfig
from i2ibench.evaluation.harness import evaluate
from i2ibench.method import DataInfo, LabelView, Method
from i2ibench.names import LABELS, LABELS_INITIAL

S = 32  # image size of the toy data (LPIPS's AlexNet needs >= 31 px)


class ToyData:
    """K domains, n images each, distinct images, labels in order."""

    def __init__(self, k=3, n=6, split="val", seed=0, size=S):
        g = torch.Generator().manual_seed(seed)
        self.domains = [f"d{i}" for i in range(k)]
        self.labels = torch.arange(k).repeat_interleave(n)
        self.pixels = torch.rand(k * n, 3, size, size, generator=g) * 2 - 1
        self.name, self.split, self.img_size = "toy", split, size

    def images(self, idx):
        return self.pixels[torch.as_tensor(idx, dtype=torch.long)]

    def indices_of(self, d):
        return (self.labels == d).nonzero().flatten()


class CountingFeatures:
    """A fixed random projection of the pixels; counts every image passed through it."""

    name = "toy-features"

    def __init__(self, dim=4):
        self.dim = dim
        self.images_seen = 0
        self.calls = 0

    def __call__(self, x):
        self.images_seen += x.shape[0]
        self.calls += 1
        flat = x.reshape(x.shape[0], -1).double()
        proj = torch.randn(flat.shape[1], self.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        return flat @ proj


class PixelLPIPS(torch.nn.Module):
    """Stand-in perceptual distance with LPIPS's interface: mean absolute pixel difference."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # lpips_diversity reads the device from it

    def features(self, x):
        return [x]

    def distance(self, fx, fy):
        return (fx[0] - fy[0]).abs().mean(dim=(1, 2, 3))

    def forward(self, a, b):
        return self.distance(self.features(a), self.features(b))


class FakeMethod(Method):
    """Translation = a blend of the input with a target colour and the latent code / reference.

    Optional hooks for label tests: ``scores_of`` (top-1 scores), ``initial_labels_of`` (a
    second label view), ``to_classes`` (domains -> classes) and ``domain_of`` (class -> domain).
    """

    name = "fake"
    Config = SimpleNamespace

    def __init__(self, modes=("latent", "reference"), label_kind="ground_truth", labels_of=None, *,
                 scores_of=None, initial_labels_of=None, to_classes=None, domain_of=None, k=3):
        super().__init__(toy_cfg(), DataInfo("toy", [f"d{i}" for i in range(k)], S), "cpu")
        self.modes = tuple(modes)
        self.label_kind = label_kind
        self.calls = []  # (mode, batch size, targets)
        self.inputs = []
        self.labels_of = labels_of
        self.scores_of, self.initial_labels_of = scores_of, initial_labels_of
        self.to_classes, self.domain_of = to_classes, domain_of

    def training_step(self, batch, step):
        raise TypeError("FakeMethod is for evaluation tests only")

    def translate(self, x, target, *, z=None, ref=None):
        mode = "latent" if z is not None else "reference" if ref is not None else "deterministic"
        self.calls.append((mode, x.shape[0], target.clone()))
        self.inputs.append(x.clone())
        style = z.mean(1) if z is not None else ref.mean(dim=(1, 2, 3)) if ref is not None else 0.0
        shift = 0.3 * target.float() + 0.2 * style
        return torch.tanh(0.5 * x + shift[:, None, None, None])

    def domain_labels(self, x):
        return self.labels_of(x)

    def domain_of_class(self, k):
        return k if self.domain_of is None else self.domain_of[k]

    def labels_to_classes(self, per_domain, fill=0.0):
        return per_domain if self.to_classes is None else self.to_classes(per_domain, fill)

    def label_views(self):
        if self.label_kind == "ground_truth":
            return []
        views = [LabelView(LABELS, self.domain_labels, self.scores_of)]
        if self.initial_labels_of is not None:
            views.append(LabelView(LABELS_INITIAL, self.initial_labels_of))
        return views


def toy_cfg(**eval_kw):
    ev = EvalConfig(**{"max_src_per_domain": 0, "outs_per_input": 3, "max_real_per_domain": 0, "batch_size": 6,
                       "seed": 0, "lpips": True, **eval_kw})
    return RunConfig(method="fake", dataset="toy", preset="smoke", train=TrainConfig(seed=5), model=SimpleNamespace(latent_dim=4),
                     eval=ev)


def evaluate_toy(method, cfg=None, val=None, features=None, **kw):
    val = val or ToyData()
    return evaluate(method, cfg or toy_cfg(), val=val, features=features or CountingFeatures(), lpips_net=PixelLPIPS(),
                    cache=False, log=None, **kw)
