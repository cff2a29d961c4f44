"""ImageNet labels in everyday words, and captions from made-up probability vectors (no model)."""

from __future__ import annotations

import re

import pytest

from capdex.captioners.imagenet_words import (
    NUM_CLASSES,
    compose_caption,
    describe,
    everyday_words,
    label_name,
    top_labels,
    with_article,
)

DOG_BREEDS = range(151, 269)
DOMESTIC_CATS = range(281, 286)


def probs(**by_index: float) -> list[float]:
    """A 1000-class probability vector, e.g. probs(i281=0.5, i285=0.3); the rest share the rest."""
    vector = [0.0] * NUM_CLASSES
    for key, value in by_index.items():
        vector[int(key.removeprefix("i"))] = value
    rest = (1.0 - sum(by_index.values())) / (NUM_CLASSES - len(by_index))
    return [v if v else rest for v in vector]


def says(text: str, word: str) -> bool:
    return re.search(rf"\b{re.escape(word)}\b", text) is not None


@pytest.mark.parametrize(
    ("index", "name"),
    [
        (281, "tabby cat"),  # "tabby, tabby cat": the longer synonym reads better
        (4, "hammerhead shark"),
        (284, "Siamese cat"),
        (0, "tench"),
        (967, "espresso"),
        (207, "golden retriever"),
        (620, "laptop"),  # "laptop, laptop computer": the short one is the everyday word
        (673, "computer mouse"),  # not the animal
        (726, "woodworking plane"),  # not an aircraft
        (383, "ring-tailed lemur"),  # ImageNet's "Madagascar cat" is no cat
    ],
)
def test_label_name_picks_a_readable_synonym(index: int, name: str) -> None:
    assert label_name(index) == name


def test_every_class_has_a_name() -> None:
    names = [label_name(i) for i in range(NUM_CLASSES)]
    assert all(name and "," not in name for name in names)


def test_tables_name_only_real_classes() -> None:
    from capdex.captioners.imagenet_words import _NAME_OVERRIDES, _everyday_index

    assert set(_NAME_OVERRIDES) | set(_everyday_index()) <= set(range(NUM_CLASSES))


@pytest.mark.parametrize("index", DOG_BREEDS)
def test_every_dog_breed_is_a_dog(index: int) -> None:
    assert "dog" in everyday_words(index)


@pytest.mark.parametrize(
    ("index", "word"),
    [
        (967, "coffee"),  # espresso
        (11, "bird"),  # goldfinch
        (145, "bird"),  # king penguin
        (63, "snake"),  # Indian cobra
        (0, "fish"),  # tench
        (373, "monkey"),  # macaque
        (366, "ape"),  # gorilla
        (511, "car"),  # convertible
        (665, "motorcycle"),  # moped
        (780, "boat"),  # schooner
        (404, "airplane"),  # airliner
        (657, "rocket"),  # missile
        (963, "food"),  # pizza
        (954, "fruit"),  # banana
        (985, "flower"),  # daisy
        (652, "clothing"),  # military uniform
    ],
)
def test_specific_labels_get_their_everyday_word(index: int, word: str) -> None:
    assert word in everyday_words(index)


def test_domestic_cats_are_cats_and_only_they() -> None:
    cats = {i for i in range(NUM_CLASSES) if "cat" in everyday_words(i)}
    assert cats == set(DOMESTIC_CATS)


def test_things_are_not_animals() -> None:
    assert "animal" not in everyday_words(673)  # computer mouse
    assert everyday_words(102) == ("animal",)  # echidna: no closer everyday word


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("cat", "a cat"),
        ("Egyptian cat", "an Egyptian cat"),
        ("espresso", "an espresso"),
        ("unicycle", "a unicycle"),
        ("European fire salamander", "a European fire salamander"),
        ("hourglass", "an hourglass"),
        ("coffee", "coffee"),
        ("jeans", "jeans"),
    ],
)
def test_with_article(phrase: str, expected: str) -> None:
    assert with_article(phrase) == expected


def test_confident_labels_make_the_caption() -> None:
    caption = compose_caption(
        probs(i281=0.5, i285=0.3, i282=0.1), min_confidence=0.15, max_labels=3
    )
    assert caption == "a tabby cat, possibly an Egyptian cat"  # tiger cat is under 0.15


def test_max_labels_caps_the_caption() -> None:
    vector = probs(i281=0.4, i285=0.3, i282=0.2)
    assert compose_caption(vector, min_confidence=0.1, max_labels=1) == "a tabby cat"
    assert compose_caption(vector, min_confidence=0.1, max_labels=3) == (
        "a tabby cat, possibly an Egyptian cat or a tiger cat"
    )


def test_at_least_the_top_label_even_when_unsure() -> None:
    caption = compose_caption(probs(i207=0.1, i208=0.09), min_confidence=0.5, max_labels=3)
    assert caption == "a golden retriever (a dog)"


def test_everyday_word_is_said_once() -> None:
    caption = compose_caption(probs(i207=0.5, i208=0.3), min_confidence=0.1, max_labels=3)
    assert caption == "a golden retriever (a dog), possibly a Labrador retriever"
    assert "(a cat)" not in describe([283])  # "a Persian cat" already says cat
    assert describe([153]) == "a Maltese dog"


def test_espresso_caption_says_coffee() -> None:
    caption = compose_caption(probs(i967=0.8, i968=0.1), min_confidence=0.15, max_labels=3)
    assert caption == "an espresso (coffee, a drink)"


def test_classes_with_the_same_name_are_named_once() -> None:
    vector = probs(i638=0.4, i639=0.35, i445=0.2)  # two "swimsuit" classes, then bikini
    caption = compose_caption(vector, min_confidence=0.1, max_labels=2)
    assert caption == "a swimsuit (clothing), possibly a bikini"


@pytest.mark.parametrize("index", list(DOG_BREEDS) + list(DOMESTIC_CATS))
def test_pets_are_findable_by_their_plain_word(index: int) -> None:
    caption = compose_caption(probs(**{f"i{index}": 0.9}), min_confidence=0.15, max_labels=3)
    assert says(caption, "cat" if index in DOMESTIC_CATS else "dog"), caption


def test_top_labels_are_best_first() -> None:
    chosen = top_labels(probs(i1=0.2, i2=0.5, i3=0.25), min_confidence=0.0, max_labels=3)
    assert [index for index, _ in chosen] == [2, 3, 1]
