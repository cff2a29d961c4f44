"""ImageNet-1k classes in everyday words, and short captions built from a class probability vector.

ImageNet names are WordNet synsets: precise ("Egyptian cat", "Weimaraner", "espresso") but often
not the word a person searches for ("cat", "dog", "coffee"). Each class gets a readable name
(`label_name`) and, where the name is specific, the everyday words for its category
(`everyday_words`), from the explicit index tables below. Pure Python apart from reading the class
descriptions shipped with timm, so the caption logic is testable without a model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache

NUM_CLASSES = 1000


def _r(first: int, last: int) -> tuple[int, ...]:
    """ImageNet indices `first`..`last`, both included (as WordNet ranges are usually quoted)."""
    return tuple(range(first, last + 1))


# Readable names where ImageNet's first synonym is misleading, ambiguous or odd in a sentence.
_NAME_OVERRIDES: dict[int, str] = {
    7: "rooster",  # "cock"
    87: "African grey parrot",
    134: "crane",  # the bird; 517 is the machine
    195: "Boston terrier",  # "Boston bull"
    263: "Pembroke Welsh corgi",
    264: "Cardigan Welsh corgi",
    296: "polar bear",  # "ice bear"
    339: "sorrel horse",  # "sorrel"
    341: "pig",  # "hog, pig, grunter, ..."
    383: "ring-tailed lemur",  # "Madagascar cat": not a cat
    387: "red panda",  # "lesser panda"
    397: "pufferfish",  # "puffer"
    408: "amphibious vehicle",  # "amphibian"
    412: "trash can",  # "ashcan"
    428: "wheelbarrow",  # "barrow"
    436: "station wagon",  # "beach wagon"
    437: "lighthouse",  # "beacon"
    444: "tandem bicycle",  # "bicycle-built-for-two"
    456: "archery bow",
    458: "memorial plaque",  # "brass"
    468: "taxi",  # "cab, hack, taxi"
    487: "mobile phone",  # "cellular telephone"
    509: "candy store",  # "confectionery"
    517: "construction crane",
    553: "filing cabinet",  # "file"
    606: "clothes iron",  # "iron"
    608: "jeans",  # "jean"
    610: "T-shirt",  # "jersey"
    612: "rickshaw",  # "jinrikisha"
    628: "ocean liner",  # "liner"
    630: "loafer",
    634: "sawmill",  # "lumbermill"
    638: "swimsuit",  # "maillot"
    639: "swimsuit",  # "maillot, tank suit"
    664: "computer monitor",  # "monitor"
    673: "computer mouse",  # "mouse": not the animal
    680: "baby bottle teat",  # "nipple"
    697: "pajamas",
    714: "guitar pick",  # "pick"
    726: "woodworking plane",  # "plane": not an aircraft
    738: "flowerpot",  # "pot"
    751: "race car",  # "racer"
    769: "ruler",  # "rule"
    776: "saxophone",  # "sax"
    778: "weighing scale",  # "scale"
    800: "slot machine",  # "slot"
    836: "sunglasses",  # "sunglass"
    840: "mop",  # "swab"
    844: "light switch",  # "switch"
    853: "thatched roof",  # "thatch"
    897: "washing machine",  # "washer"
    913: "shipwreck",  # "wreck"
    916: "website",  # "web site"
    934: "hot dog",  # "hotdog"
    948: "Granny Smith apple",
    981: "baseball player",  # "ballplayer"
    982: "bridegroom",  # "groom"
    989: "rose hip",  # "hip"
    990: "horse chestnut",  # "buckeye"
    998: "ear of corn",  # "ear"
    999: "toilet paper",  # "toilet tissue"
}

# Where a later synonym is the first one plus a word ("tabby, tabby cat") the longer one usually
# reads better; these are the exceptions where the extra word adds nothing or misleads.
_KEEP_FIRST_SYNONYM = frozenset({105, 235, 497, 620, 632, 743, 851, 963})  # koala, German
# shepherd, church, laptop, loudspeaker, prison, television, pizza

_DOGS = _r(151, 268)
_DOMESTIC_CATS = _r(281, 285)
_BIRDS = _r(7, 24) + _r(80, 100) + _r(127, 146)
_CARS = (407, 436, 468, 511, 581, 609, 627, 656, 661, 751)
_TRUCKS = (555, 569, 717, 864, 867)
_BOATS = (472, 484, 554, 576, 625, 780, 814, 871, 914)
_SHIPS = (403, 510, 628, 724, 833, 913)
_OTHER_VEHICLES = (408, 561, 573, 575, 586, 595, 603, 612, 690, 757, 802, 803, 847, 856, 866)
_DISHES = (924, 925, 926, 927, 930, 931, 932, 933, 934, 935, 959) + _r(961, 965)
_VEGETABLES = _r(936, 946) + (987, 998)
_FRUIT = _r(948, 957) + (989,)
_MUSHROOMS = (947,) + _r(991, 997)
_CLOTHING = (
    399, 400, 411, 443, 445, 459, 474, 501, 529, 552, 568, 578, 601, 608, 610, 614, 617, 638,
    639, 652, 655, 658, 689, 697, 735, 775, 806, 824, 834, 841, 842, 869, 887,
)  # fmt: skip
_HATS = (433, 439, 452, 667, 793, 808)
_SHOES = (502, 514, 630, 774)
_BUILDINGS = (
    410, 425, 437, 442, 449, 483, 497, 498, 500, 538, 580, 624, 634, 663, 668, 698, 727, 743,
    832, 853, 858, 884, 900, 915,
)  # fmt: skip
_SHOPS = (415, 424, 454, 467, 509, 582, 788, 860, 865)
_MONUMENTS = (649, 682, 863, 873)
_INSTRUMENTS = (
    401, 402, 420, 432, 486, 494, 513, 541, 546, 558, 566, 577, 579, 593, 594, 641, 642, 683,
    684, 687, 699, 776, 822, 875, 881, 889,
)  # fmt: skip
_FURNITURE = (453, 492, 493, 495, 526, 532, 553, 648, 703, 894)

# (ImageNet indices, everyday words), most specific first. A class may appear in several rows;
# its words are collected in table order. Words are nouns; `with_article` adds "a"/"an".
_EVERYDAY_TABLE: tuple[tuple[tuple[int, ...], tuple[str, ...]], ...] = (
    # Animals
    ((0, 1, 5, 6) + _r(389, 397), ("fish",)),
    (_r(2, 4), ("shark", "fish")),
    ((7, 8), ("chicken",)),
    ((97, 98), ("duck",)),
    (_r(87, 90), ("parrot",)),
    (_BIRDS, ("bird",)),
    (_r(25, 29), ("salamander",)),
    (_r(30, 32), ("frog",)),
    (_r(33, 37), ("turtle",)),
    (_r(38, 48), ("lizard",)),
    ((51,), ("dinosaur",)),
    (_r(52, 68), ("snake",)),
    ((69,), ("fossil",)),
    (_r(70, 77), ("spider",)),
    ((78, 79, 126), ("bug",)),
    ((101,), ("elephant",)),
    ((109,), ("coral",)),
    ((110, 111), ("worm",)),
    (_r(118, 121), ("crab",)),
    ((147, 148), ("whale",)),
    ((150,), ("seal",)),
    (_DOGS, ("dog",)),
    (_r(269, 271), ("wolf",)),
    (_r(272, 275), ("wild dog",)),
    (_r(277, 280), ("fox",)),
    (_DOMESTIC_CATS, ("cat",)),
    (_r(286, 293), ("wild cat",)),
    (_r(294, 297), ("bear",)),
    (_r(300, 307), ("beetle",)),
    (_r(321, 326), ("butterfly",)),
    (_r(300, 320), ("insect",)),
    (_r(330, 332), ("rabbit",)),
    ((333, 336, 337, 338), ("rodent",)),
    ((335,), ("squirrel",)),
    ((339,), ("horse",)),
    ((342, 343), ("pig",)),
    ((345,), ("cow",)),
    ((347,), ("buffalo",)),
    ((348, 349), ("sheep",)),
    ((350,), ("goat",)),
    (_r(351, 353), ("antelope",)),
    (_r(365, 369), ("ape",)),
    (_r(370, 382), ("monkey",)),
    ((383, 384), ("lemur",)),
    ((387, 388), ("panda",)),
    # Vehicles
    (_CARS, ("car",)),
    (_TRUCKS, ("truck",)),
    ((675, 734), ("van",)),
    ((654, 779, 874), ("bus",)),
    ((665, 670), ("motorcycle",)),
    ((444, 671), ("bicycle",)),
    ((466, 547, 565, 705, 820), ("train",)),
    ((829,), ("tram",)),
    (_BOATS, ("boat",)),
    (_SHIPS, ("ship",)),
    ((404, 895, 908), ("airplane",)),
    ((405,), ("aircraft",)),
    ((812,), ("spacecraft",)),
    ((657, 744), ("rocket",)),
    ((450, 537), ("sled",)),
    (_OTHER_VEHICLES, ("vehicle",)),
    # Food and drink
    ((925,), ("soup",)),
    ((927, 928, 929, 960), ("dessert",)),
    ((930, 931), ("bread",)),
    ((933,), ("hamburger",)),
    ((959,), ("pasta",)),
    (_DISHES, ("food",)),
    ((948,), ("apple",)),
    (_FRUIT, ("fruit",)),
    (_VEGETABLES, ("vegetable",)),
    (_MUSHROOMS, ("mushroom",)),
    ((988, 990), ("nut",)),
    ((966,), ("wine", "drink")),
    ((967,), ("coffee", "drink")),
    ((969,), ("drink",)),
    # Plants, places and people
    (_r(984, 986), ("flower",)),
    ((738,), ("plant",)),
    ((970, 980), ("mountain",)),
    ((975,), ("lake",)),
    ((976,), ("coast",)),
    ((977, 978), ("beach",)),
    ((972, 974, 979), ("landscape",)),
    (_r(981, 983), ("person",)),
    (_BUILDINGS, ("building",)),
    (_SHOPS, ("shop",)),
    (_MONUMENTS, ("monument",)),
    ((888,), ("bridge",)),
    # Things
    (_INSTRUMENTS, ("musical instrument",)),
    ((487, 528, 707), ("phone",)),
    ((590, 620, 681), ("computer",)),
    ((851,), ("TV",)),
    ((916,), ("screenshot",)),
    ((429, 430, 890), ("ball",)),
    ((857,), ("chair",)),
    ((520, 564), ("bed",)),
    ((831,), ("sofa",)),
    (_FURNITURE, ("furniture",)),
    (_HATS, ("hat",)),
    ((715,), ("helmet",)),
    (_SHOES, ("shoe",)),
    (_CLOTHING, ("clothing",)),
    ((414, 748), ("bag",)),
    ((413, 763, 764), ("gun",)),
    ((826,), ("watch",)),
    ((850,), ("toy",)),
    ((917, 921), ("book",)),
)

_ANIMALS = _r(0, 397)

# Words read without an article: mass nouns and plurals.
_NO_ARTICLE = frozenset({
    "bread", "broccoli", "carbonara", "cauliflower", "chain mail", "chocolate sauce", "clothing",
    "coffee", "consomme", "corn", "dough", "eggnog", "food", "fruit", "furniture", "guacamole",
    "hay", "ice cream", "jeans", "mashed potato", "pajamas", "pasta", "rapeseed", "red wine",
    "soup", "sunglasses", "binoculars", "parallel bars", "swimming trunks",
    "toilet paper", "velvet", "wine", "wool",
})  # fmt: skip
# Vowel letters that sound like a consonant ("a unicycle", "a European"), and the reverse.
_CONSONANT_SOUND = re.compile(r"^(uni|use|usu|eu|one\b|u-)", re.IGNORECASE)
_SILENT_H = re.compile(r"^(hour|honest|honou?r|heir)", re.IGNORECASE)


@cache
def _descriptions() -> tuple[str, ...]:
    from timm.data import ImageNetInfo  # imports torch; only needed once captions are made

    info = ImageNetInfo()
    return tuple(info.index_to_description(i) for i in range(NUM_CLASSES))


@cache
def _everyday_index() -> dict[int, tuple[str, ...]]:
    words: dict[int, list[str]] = {}
    for indices, category_words in _EVERYDAY_TABLE:
        for index in indices:
            for word in category_words:
                if word not in words.setdefault(index, []):
                    words[index].append(word)
    for index in _ANIMALS:
        words.setdefault(index, ["animal"])
    return {index: tuple(ws) for index, ws in words.items()}


def label_name(index: int) -> str:
    """A readable name for ImageNet class `index`: "tabby, tabby cat" -> "tabby cat"."""
    if index in _NAME_OVERRIDES:
        return _NAME_OVERRIDES[index]
    first, *others = _descriptions()[index].split(", ")
    if index not in _KEEP_FIRST_SYNONYM:
        for other in others:
            if other.startswith(first + " ") and len(other.split()) == len(first.split()) + 1:
                return other
    return first


def everyday_words(index: int) -> tuple[str, ...]:
    """The plain words for class `index`'s category, most specific first ("cat", "dog", ...)."""
    return _everyday_index().get(index, ())


def with_article(phrase: str) -> str:
    """The phrase with "a"/"an" if it takes one: "an Egyptian cat", but just "coffee"."""
    if phrase in _NO_ARTICLE:
        return phrase
    vowel = phrase[:1].lower() in "aeiou" and not _CONSONANT_SOUND.match(phrase)
    vowel = vowel or bool(_SILENT_H.match(phrase))
    return f"{'an' if vowel else 'a'} {phrase}"


def _mentions(text: str, word: str) -> bool:
    """Whether `text` already says `word` (as whole words, singular or plural)."""
    return re.search(rf"\b{re.escape(word)}(e?s)?\b", text, re.IGNORECASE) is not None


def top_labels(
    probabilities: Sequence[float], *, min_confidence: float, max_labels: int
) -> list[tuple[int, float]]:
    """The (index, probability) pairs worth naming: up to `max_labels` at or above
    `min_confidence`, best first, always at least the most likely one; one per readable name."""
    ranked = sorted(range(len(probabilities)), key=lambda i: probabilities[i], reverse=True)
    chosen: list[tuple[int, float]] = []
    names: set[str] = set()
    for index in ranked:
        probability = float(probabilities[index])
        if len(chosen) >= max(1, max_labels) or (chosen and probability < min_confidence):
            break
        name = label_name(index)
        if name not in names:  # e.g. the two "swimsuit" classes
            names.add(name)
            chosen.append((index, probability))
    return chosen


def describe(indices: Iterable[int]) -> str:
    """A caption naming classes `indices` (best first) with their everyday words.

    [281, 285] -> "a tabby cat, possibly an Egyptian cat";
    [967, 968] -> "an espresso (coffee, a drink), possibly a cup".
    Everyday words the caption already says are not repeated.
    """
    phrases: list[str] = []
    text = ""
    for index in indices:
        name = label_name(index)
        text += " " + name
        extra = [w for w in everyday_words(index) if not _mentions(text, w)]
        text += " " + " ".join(extra)
        phrase = with_article(name)
        if extra:
            phrase += " (" + ", ".join(with_article(w) for w in extra) + ")"
        phrases.append(phrase)
    if not phrases:
        return ""
    first, *rest = phrases
    if not rest:
        return first
    alternatives = rest[0] if len(rest) == 1 else ", ".join(rest[:-1]) + " or " + rest[-1]
    return f"{first}, possibly {alternatives}"


def compose_caption(
    probabilities: Sequence[float], *, min_confidence: float, max_labels: int
) -> str:
    """The caption for one image's class probabilities (see `top_labels` and `describe`)."""
    chosen = top_labels(probabilities, min_confidence=min_confidence, max_labels=max_labels)
    return describe(index for index, _ in chosen)
