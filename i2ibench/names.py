"""The field's names that every layer shares: translation modes, label kinds, evaluation protocols.

Stable strings: they are written into configs and result records. Add, never rename; a renamed
protocol keeps its old name readable through ``PROTOCOL_ALIASES``.
"""

from __future__ import annotations

# --------------------------------------------------------------------------- translation modes
LATENT = "latent"                # style from a random code through the mapping network
REFERENCE = "reference"          # style from a reference image of the target domain
DETERMINISTIC = "deterministic"  # no style: one output per input (CycleGAN, CLIPTraVeLGAN, a uni-modal target)
MODES = (LATENT, REFERENCE, DETERMINISTIC)
STYLE_MODES = (LATENT, REFERENCE)  # the modes with several outputs per input (diversity)

# --------------------------------------------------------------------------- numbers and data
PRECISIONS = ("fp32", "bf16")                 # training autocast and feature extraction
AUGMENTATIONS = ("none", "flip", "crop_flip")  # training augmentation (i2ibench.train.augment)

# --------------------------------------------------------------------------- label kinds
# What a method trains with in place of (or as) the dataset's domain labels.
GROUND_TRUTH = "ground_truth"      # the dataset's labels (stargan2)
CLUSTERS = "clusters"              # cluster ids of its own (tunit's guiding network)
CLIP_MULTI_HOT = "clip_multi_hot"  # multi-hot pseudo labels from a VLM and text (lanit)
LABEL_KINDS = (GROUND_TRUTH, CLUSTERS, CLIP_MULTI_HOT)

# --------------------------------------------------------------------------- evaluation protocols
# pairwise: every ordered pair src->trg is scored on its own; mFID = mean over the K(K-1) tasks
# (StarGAN v2's official metrics/eval.py). pooled: per target, the translations from every other
# domain pooled; mFID = mean over targets (TUNIT's and LANIT's evaluation).
PAIRWISE = "pairwise"
POOLED = "pooled"
PROTOCOLS = (PAIRWISE, POOLED)
# Records and configs written before the rename called the pairwise protocol "stargan2", the
# name of a method too.
PROTOCOL_ALIASES = {"stargan2": PAIRWISE}
# Rows of the cmnist extra evaluations (i2ibench.evaluation.colour_eval).
COLOUR_PROTOCOL = "colour"         # gray -> colour: colour recall, precision, unique colours, reference accuracy
UNIMODAL_PROTOCOL = "unimodal"     # colour -> gray against the true gray digit: MSE
# Rows that score labels rather than translations.
LABELS = "labels"                  # the labels a method ends training with
LABELS_INITIAL = "labels-initial"  # LANIT: labels from the written prompts, before prompt learning
CLASSIFIER = "classifier"          # rows about the classifiers behind the classifier metrics
# Extra evaluations of two-domain tasks (i2ibench.evaluation.content), named by what they compare.
LPIPS_IO = "lpips-io"              # LPIPS between each input and its translation
LPIPS_TRUTH = "lpips-truth"        # LPIPS between each translation and the input's true translation


def canonical_protocol(name: str) -> str:
    """``name`` with an old alias replaced by the current protocol name."""
    return PROTOCOL_ALIASES.get(name, name)
