"""LANIT prompt data: the paper's word lists, templates, base prompts, word-to-class mapping."""

import pytest

from i2ibench.data import prompts
from i2ibench.data.catalog import get_spec
from i2ibench.errors import ConfigError

# Seed 001 (the paper's code listing) and KU-CVLAB/LANIT core/utils.py, written out by hand.
PAPER_ANIMAL_WORDS = {
    4: ["beagle", "golden retriever", "tabby cat", "bengal tiger"],
    7: ["beagle", "dandie dinmont terrier", "golden retriever", "white fox", "tabby cat", "snow leopard",
        "bengal tiger"],
    10: ["beagle", "dandie dinmont terrier", "golden retriever", "malinois", "appenzeller sennenhund",
         "white fox", "tabby cat", "snow leopard", "lion", "bengal tiger"],
    13: ["beagle", "dandie dinmont terrier", "golden retriever", "malinois", "appenzeller sennenhund",
         "white fox", "tabby cat", "snow leopard", "lion", "bengal tiger", "french bulldog", "mink", "maned wolf"],
    16: ["beagle", "dandie dinmont terrier", "golden retriever", "malinois", "appenzeller sennenhund",
         "white fox", "tabby cat", "snow leopard", "lion", "bengal tiger", "french bulldog", "mink", "maned wolf",
         "monkey", "toy poodle", "angora rabbit"],
}


@pytest.mark.parametrize("n", [4, 7, 10, 13, 16])
def test_animal_word_lists_equal_the_papers(n):
    assert list(prompts.domain_words("animal", n)) == PAPER_ANIMAL_WORDS[n]


def test_official_food_and_celeb_lists():
    assert prompts.domain_words("food", 4) == ("baby back ribs", "beignets", "dumplings", "edamame")
    assert prompts.domain_words("food", 16)[-3:] == ("oyster", "pizza", "tacos")
    assert prompts.domain_words("celeb", 10) == ("bangs", "blond hair", "black hair", "smiling", "arched eyebrows",
                                                 "heavy makeup", "mustache", "straight hair", "wearing lipstick",
                                                 "male")
    assert prompts.domain_words("celeb", 13)[10:] == ("eyeglass", "pale skin", "young")
    assert len(prompts.domain_words("celeb", 40)) == 40


@pytest.mark.parametrize("family", sorted(prompts.WORD_LISTS))
def test_word_lists_are_keyed_by_their_length_and_have_no_duplicates(family):
    for n, words in prompts.WORD_LISTS[family].items():
        assert len(words) == n
        assert len(set(words)) == n


@pytest.mark.parametrize("family", sorted(prompts.TEXT_AUG_TEMPLATES))
def test_nine_augmentation_templates_each_with_one_slot(family):
    templates = prompts.TEXT_AUG_TEMPLATES[family]
    assert len(templates) == 9 and len(set(templates)) == 9
    for t in templates:
        assert t.count("{}") == 1
    assert prompts.TEMPLATES[family].count("{}") == 1


def test_official_animal_augmentation_templates():
    t = prompts.TEXT_AUG_TEMPLATES["animal"]
    assert t[0] == "a animalface photo with {}." and t[-1] == "a high quality animalface image of {}."


def test_base_prompt_drops_the_word():
    assert prompts.base_prompt("a photo of the animalface of {}.") == "a photo of the animalface of."
    assert prompts.base_prompt("a face with {}.") == "a face with."
    assert prompts.base_prompt("a photo of a {} digit.") == "a photo of a digit."
    assert prompts.split_template("a photo of a {} digit.") == ("a photo of a", "digit.")
    with pytest.raises(ConfigError):
        prompts.split_template("no slot here")


def test_unknown_size_lists_the_available_ones():
    with pytest.raises(ConfigError, match="available N: 4, 7, 10, 13, 16"):
        prompts.domain_words("animal", 5)


@pytest.mark.parametrize("dataset", sorted(prompts.DATASET_FAMILY))
def test_default_words_are_the_dataset_classes_in_label_order(dataset):
    spec = get_spec(dataset)
    ps = prompts.prompt_set_for(dataset, spec.domains, spec.prompt_template)
    assert ps.num_domains == spec.num_domains
    assert ps.word_classes == tuple(range(spec.num_domains))  # word d names class d
    assert len(ps.templates) == 9
    single = prompts.prompt_set_for(dataset, spec.domains, spec.prompt_template, text_aug=False)
    assert single.templates == (prompts.TEMPLATES[prompts.DATASET_FAMILY[dataset]],)


def test_registered_templates_agree_with_the_dataset_specs():
    for dataset, family in prompts.DATASET_FAMILY.items():
        assert get_spec(dataset).prompt_template == prompts.TEMPLATES[family]


def test_fashion_table2_sizes_map_words_to_classes():
    spec = get_spec("fashion10")
    four = prompts.prompt_set_for("fashion10", spec.domains, num_domains=4)
    assert four.word_classes == (0, 1, 7, 8)
    assert four.text_domain_of_class(7) == 2 and four.text_domain_of_class(2) is None
    sixteen = prompts.prompt_set_for("fashion10", spec.domains, num_domains=16)
    assert sixteen.word_classes[:10] == tuple(range(10))
    assert sixteen.word_classes[10:] == (None,) * 6  # extra clothing words name no class


def test_custom_dataset_uses_its_template_and_class_names():
    ps = prompts.prompt_set_for("folder:/x", ["red_car", "truck"], "a photo of the car about {}.")
    assert ps.words == ("red car", "truck") and ps.templates == ("a photo of the car about {}.",)
    assert prompts.prompt_set_for("folder:/x", ["a", "b"]).templates == ("a photo of a {}.",)
    with pytest.raises(ConfigError, match="must be 0 or 2"):
        prompts.prompt_set_for("folder:/x", ["a", "b"], num_domains=4)
