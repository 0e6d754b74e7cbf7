"""LANIT's prompt data: templates and candidate domain words per dataset.

A domain prompt is a template with the domain word in its ``{}``: "a photo of the animalface
of {}." + "beagle". The base prompt is the template with the word left out ("a photo of the
animalface of."). LANIT's released scripts all pass ``--text_aug``: every prompt is then
written with nine templates (``TEXT_AUG_TEMPLATES``, from the official ``template.py``) and
the text feature is the mean over the nine; the base prompt likewise.

Candidate word lists (``WORD_LISTS``) are keyed by the number of candidate domains N, so the
paper's Table 2 (N = 4, 7, 10, 13, 16) is a config value. Animals, food and CelebA attributes
are the official ``core/utils.py`` lists, spelling included ('eyeglass', 'cubby', 'big Nose').
The fashion10 and cmnist lists are i2ibench's: N = 4, 7, 10 from Fashion-MNIST's classes,
N = 13, 16 adding clothing words that match no class.

The offline stand-in VLM (``vlm_tiny``) is pre-trained on captions written with the fashion
and cmnist templates below: editing them changes its recipe (bump its ``RECIPE_VERSION``).
"""

from __future__ import annotations

from dataclasses import dataclass

from i2ibench.errors import ConfigError

# --------------------------------------------------------------------------- templates

# Single template (no text augmentation): official core/utils.py get_prompt_and_att.
TEMPLATES: dict[str, str] = {
    "animal": "a photo of the animalface of {}.",
    "food": "a photo of the food of {}.",
    "celeb": "a face with {}.",
    "fashion": "a photo of a {}.",
    "cmnist": "a photo of a {} digit.",
}

# The nine templates of the text augmentation. animal, food, celeb: official template.py
# (its base lists are not used by the code: the base is each template with an empty word).
# fashion, cmnist: i2ibench's, written in the same pattern.
TEXT_AUG_TEMPLATES: dict[str, tuple[str, ...]] = {
    "celeb": (
        "a face photo with {}.",
        "a face photo of the {}.",
        "the face photo of the {}.",
        "a good face photo of the {}.",
        "high quality face photo of {}.",
        "a face image of {}.",
        "the face image of {}.",
        "high quality face image of {}.",
        "a high quality face image of {}.",
    ),
    "animal": (
        "a animalface photo with {}.",
        "a animalface photo of the {}.",
        "the animalface photo of the {}.",
        "a good animalface photo of the {}.",
        "high quality animalface photo of {}.",
        "a animalface image of {}.",
        "the animalface image of {}.",
        "high quality animalface image of {}.",
        "a high quality animalface image of {}.",
    ),
    "food": (
        "a food photo with {}.",
        "a food photo of the {}.",
        "the food photo of the {}.",
        "a good food photo of the {}.",
        "high quality food photo of {}.",
        "a food image of {}.",
        "the food image of {}.",
        "high quality food image of {}.",
        "a high quality food image of {}.",
    ),
    "fashion": (
        "a clothing photo with {}.",
        "a clothing photo of the {}.",
        "the clothing photo of the {}.",
        "a good clothing photo of the {}.",
        "high quality clothing photo of {}.",
        "a clothing image of {}.",
        "the clothing image of {}.",
        "high quality clothing image of {}.",
        "a high quality clothing image of {}.",
    ),
    "cmnist": (
        "a digit photo with {} ink.",
        "a photo of the {} digit.",
        "the photo of the {} digit.",
        "a good photo of the {} digit.",
        "high quality photo of a {} digit.",
        "a image of a {} digit.",
        "the image of the {} digit.",
        "high quality image of a {} digit.",
        "a high quality image of a {} digit.",
    ),
}

# --------------------------------------------------------------------------- word lists

_ANIMAL_10 = ("beagle", "dandie dinmont terrier", "golden retriever", "malinois", "appenzeller sennenhund",
              "white fox", "tabby cat", "snow leopard", "lion", "bengal tiger")
_FOOD_10 = ("baby back ribs", "beef carpaccio", "beignets", "bibimbap", "caesar salad",
            "clam chowder", "dumplings", "edamame", "spaghetti bolognese", "strawberry shortcake")
_CELEB_10 = ("bangs", "blond hair", "black hair", "smiling", "arched eyebrows", "heavy makeup", "mustache",
             "straight hair", "wearing lipstick", "male")
_CELEB_40 = ("5 o clock shadow", "arched eyebrows", "attractive face", "bags under eyes", "bald", "bangs",
             "big lips", "big Nose", "black hair", "blond hair", "blurry", "brown hair", "bushy eyebrows", "cubby",
             "double chin", "eyeglasses", "goatee", "gray hair", "heavy makeup", "high cheekbones", "male",
             "mouth slightly open", "mustache", "narrow eyes", "no beard", "oval face", "pale skin", "pointy nose",
             "receding hairline", "rosy cheeks", "sideburns", "smiling", "straight hair", "wavy hair",
             "wearing earrings", "wearing hat", "wearing lipstick", "wearing necklace", "wearing necktie", "young")
_FASHION_10 = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
_PALETTE = ("red", "orange", "yellow", "lime", "green", "cyan", "blue", "purple", "magenta", "pink")

WORD_LISTS: dict[str, dict[int, tuple[str, ...]]] = {
    "animal": {
        4: ("beagle", "golden retriever", "tabby cat", "bengal tiger"),
        7: ("beagle", "dandie dinmont terrier", "golden retriever", "white fox", "tabby cat", "snow leopard",
            "bengal tiger"),
        10: _ANIMAL_10,
        13: _ANIMAL_10 + ("french bulldog", "mink", "maned wolf"),
        16: _ANIMAL_10 + ("french bulldog", "mink", "maned wolf", "monkey", "toy poodle", "angora rabbit"),
    },
    "food": {
        4: ("baby back ribs", "beignets", "dumplings", "edamame"),
        7: ("baby back ribs", "beef carpaccio", "beignets", "clam chowder", "dumplings", "edamame",
            "strawberry shortcake"),
        10: _FOOD_10,
        13: _FOOD_10 + ("apple pie", "chicken wings", "ice cream"),
        16: _FOOD_10 + ("apple pie", "chicken wings", "ice cream", "oyster", "pizza", "tacos"),
    },
    "celeb": {
        2: ("male", "female"),
        4: ("blond hair", "bangs", "smiling", "wearing lipstick"),
        7: ("blond hair", "black hair", "smiling", "wearing lipstick", "arched eyebrows", "bangs", "mustache"),
        10: _CELEB_10,
        13: _CELEB_10 + ("eyeglass", "pale skin", "young"),
        16: _CELEB_10 + ("eyeglass", "pale skin", "young", "wavy hair", "bald", "goatee"),
        40: _CELEB_40,
    },
    "fashion": {
        4: ("t-shirt", "trouser", "sneaker", "bag"),
        7: ("t-shirt", "trouser", "pullover", "dress", "sandal", "sneaker", "bag"),
        10: _FASHION_10,
        13: _FASHION_10 + ("skirt", "hat", "scarf"),
        16: _FASHION_10 + ("skirt", "hat", "scarf", "glove", "sock", "belt"),
    },
    # Colorized MNIST: its two domains, or gray plus the ten palette colours.
    "cmnist": {
        2: ("gray", "colored"),
        11: ("gray",) + _PALETTE,
    },
}

# Words that name a dataset class under another spelling (word -> class name).
WORD_CLASS_ALIASES: dict[str, dict[str, str]] = {
    "cmnist": {"colored": "color", **{c: "color" for c in _PALETTE}},
}

# Which prompt family a registered dataset uses. Datasets not listed (afhq, folder:<path>,
# ...) use their spec's template and class names (``custom_prompt_set``).
DATASET_FAMILY: dict[str, str] = {
    "animalfaces10": "animal",
    "food10": "food",
    "celebahq": "celeb",
    "fashion10": "fashion",
    "cmnist": "cmnist",
}


# --------------------------------------------------------------------------- prompt sets

def split_template(template: str) -> tuple[str, str]:
    """``'a photo of the {}.'`` -> ``('a photo of the', '.')`` (prefix, suffix, stripped)."""
    if template.count("{}") != 1:
        raise ConfigError(f"a prompt template needs exactly one '{{}}' for the domain word, got {template!r}")
    prefix, suffix = template.split("{}")
    return prefix.strip(), suffix.strip()


def base_prompt(template: str) -> str:
    """The template with the domain word left out: 'a photo of the animalface of.'."""
    prefix, suffix = split_template(template)
    if not suffix:
        return prefix
    glue = "" if suffix[0] in ".,;:!?" else " "
    return f"{prefix}{glue}{suffix}"


@dataclass(frozen=True)
class PromptSet:
    """The prompts LANIT scores images with: templates x candidate domain words."""

    family: str                    # 'animal', 'fashion', ... or 'custom'
    templates: tuple[str, ...]     # one template, or the nine of the text augmentation
    words: tuple[str, ...]         # the N candidate domain words, in domain-index order
    word_classes: tuple[int | None, ...]  # dataset class index each word names (None: no class)

    @property
    def num_domains(self) -> int:
        return len(self.words)

    def prompts(self, template_index: int = 0) -> list[str]:
        return [self.templates[template_index].format(w) for w in self.words]

    def base_prompts(self) -> list[str]:
        return [base_prompt(t) for t in self.templates]

    def text_domain_of_class(self, class_index: int) -> int | None:
        """The text domain whose word names dataset class ``class_index`` (first match), else None."""
        for d, c in enumerate(self.word_classes):
            if c == class_index:
                return d
        return None


def available_sizes(family: str) -> list[int]:
    return sorted(WORD_LISTS.get(family, {}))


def domain_words(family: str, num_domains: int) -> tuple[str, ...]:
    """The candidate word list of ``family`` with ``num_domains`` words."""
    if family not in WORD_LISTS:
        raise ConfigError(f"no word lists for prompt family '{family}'; known: {', '.join(sorted(WORD_LISTS))}")
    lists = WORD_LISTS[family]
    if num_domains not in lists:
        sizes = ", ".join(str(n) for n in available_sizes(family))
        raise ConfigError(f"no {family} word list with {num_domains} domains; available N: {sizes}")
    return lists[num_domains]


def match_classes(words: tuple[str, ...], classes: list[str], family: str = "") -> tuple[int | None, ...]:
    """Dataset class index named by each word (case-insensitive, through the family's aliases)."""
    lower = {c.lower(): i for i, c in enumerate(classes)}
    aliases = WORD_CLASS_ALIASES.get(family, {})
    out: list[int | None] = []
    for w in words:
        name = aliases.get(w, w).lower()
        out.append(lower.get(name))
    return tuple(out)


def custom_prompt_set(template: str | None, classes: list[str]) -> PromptSet:
    """A dataset without a family: its own template (default 'a photo of a {}.') and class names."""
    template = template or "a photo of a {}."
    split_template(template)
    words = tuple(c.replace("_", " ") for c in classes)
    return PromptSet("custom", (template,), words, tuple(range(len(words))))


def prompt_set_for(dataset: str, classes: list[str], template: str | None = None, num_domains: int = 0,
                   text_aug: bool = True) -> PromptSet:
    """LANIT's prompts for a dataset.

    ``classes``: the dataset's ground-truth domain names (to map words to classes);
    ``template``: the spec's template, used for datasets without a family;
    ``num_domains``: N candidate domains (0 = as many as the dataset has classes);
    ``text_aug``: the nine-template augmentation (where the family has one).
    """
    family = DATASET_FAMILY.get(dataset)
    if family is None:
        ps = custom_prompt_set(template, classes)
        if num_domains not in (0, ps.num_domains):
            raise ConfigError(f"dataset {dataset} has no candidate word lists: its {ps.num_domains} class names are "
                              f"the domain words, so num_text_domains must be 0 or {ps.num_domains}")
        return ps
    n = num_domains or len(classes)
    words = domain_words(family, n)
    templates = TEXT_AUG_TEMPLATES[family] if text_aug else (TEMPLATES[family],)
    return PromptSet(family, tuple(templates), words, match_classes(words, classes, family))
