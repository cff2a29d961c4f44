"""Chat answers become captions: openings, labels, quotes and sign-offs go; content words stay."""

from __future__ import annotations

import re

import pytest

from capdex.captioners.chat_cleanup import clean_caption

#: Answers in the style vision LLMs really give (LLaVA, Qwen2-VL, SmolVLM, GPT-4o, Claude,
#: Moondream), with the caption each should become.
ANSWERS = [
    ("This image shows a dog on a beach.", "a dog on a beach"),
    ("In this photo, we can see two people walking under an umbrella…",
     "two people walking under an umbrella…"),
    ("The image depicts a red double-decker bus parked on a cobbled street.",
     "a red double-decker bus parked on a cobbled street"),
    ("Sure! Here's a description: A golden retriever catching a frisbee in a park.",
     "A golden retriever catching a frisbee in a park"),
    ("A cat sleeping on a windowsill. Let me know if you need anything else!",
     "A cat sleeping on a windowsill"),
    ("Certainly! Here is a one-sentence description of the photo:\n\n"
     "A lighthouse stands on rocky cliffs at sunset.\n\nI hope this helps!",
     "A lighthouse stands on rocky cliffs at sunset"),
    ('"A snowy mountain range under a clear blue sky."',
     "A snowy mountain range under a clear blue sky"),
    ("Caption: Children playing soccer on a grassy field",
     "Children playing soccer on a grassy field"),
    ("**Description:** A bowl of ramen with a soft-boiled egg and scallions.",
     "A bowl of ramen with a soft-boiled egg and scallions"),
    ("The photograph captures a busy night market with colorful lanterns.",
     "a busy night market with colorful lanterns"),
    ("In the image, there is a woman riding a bicycle along a canal.",
     "a woman riding a bicycle along a canal"),
    ("This is a photo of an old stone bridge over a river.", "an old stone bridge over a river"),
    ("The picture is of a wedding cake decorated with white roses.",
     "a wedding cake decorated with white roses"),
    ("I can see a laptop, a coffee mug and a notebook on a wooden desk.",
     "a laptop, a coffee mug and a notebook on a wooden desk"),
    ("There are three sailboats on a calm lake surrounded by pine trees.",
     "three sailboats on a calm lake surrounded by pine trees"),
    ("The image appears to show a crowded subway platform during rush hour.",
     "a crowded subway platform during rush hour"),
    ("It appears to be a photograph of a vintage car at a car show.",
     "a vintage car at a car show"),
    ("The main subject of the image is a tabby cat lying in the sun.",
     "a tabby cat lying in the sun"),
    ("This photo was taken in Paris at night, with the Eiffel Tower lit up.",
     "in Paris at night, with the Eiffel Tower lit up"),
    ("Image shows: a plate of sushi on a black slate board",
     "a plate of sushi on a black slate board"),
    ("Okay, here's a caption for your photo: “Two kids building a sandcastle on the beach.”",
     "Two kids building a sandcastle on the beach"),
    ("The image shows that a man is fixing a bicycle tire in a garage.",
     "a man is fixing a bicycle tire in a garage"),
    ("This image showcases a modern kitchen with marble countertops. "
     "Is there anything else you would like to know?",
     "a modern kitchen with marble countertops"),
    ("In this picture, a toddler is blowing out candles on a birthday cake.",
     "a toddler is blowing out candles on a birthday cake"),
    ("The scene features a herd of elephants crossing a dusty road.",
     "a herd of elephants crossing a dusty road"),
    ("Answer: A black and white photo of a jazz band playing on stage.",
     "A black and white photo of a jazz band playing on stage"),
    ("The photo depicts a woman in a red coat walking a dog in the snow. "
     "In the background, there are snow-covered trees.",
     "a woman in a red coat walking a dog in the snow. "
     "In the background, there are snow-covered trees"),
    ("This image shows, in the foreground, a field of sunflowers.",
     "in the foreground, a field of sunflowers"),
    ("Sure thing! The image shows a group of friends having a picnic in a park.",
     "a group of friends having a picnic in a park"),
    ("It looks like a rainy afternoon in a city street with people holding umbrellas.",
     "a rainy afternoon in a city street with people holding umbrellas"),
]

#: Captions that are already captions: only a final full stop may go.
PLAIN = [
    "A dog on a beach.",
    "Two people walking in the rain",
    "The Eiffel Tower at night",
    "Picture frames hanging on a brick wall",
    "A shot of espresso on a marble counter",
    "Scene from a wedding reception with dancing guests",
    "There is snow on the ground and a red barn",
    "An illustration of a dragon flying over a castle",
    "The frame of a bicycle leaning against a fence",
    "This painting depicts a ship in a storm",
]

_STOP = {
    "a", "an", "the", "of", "on", "in", "at", "with", "and", "is", "are", "by", "along", "over",
    "during", "for", "under", "up", "out", "there",
}


#: The only words the clean-up may remove: talk about the picture and to the reader.
CHATTER = set(
    """image photo photograph picture scene shows show showcases depicts captures features
    appears looks was taken main subject this that it your s sure thing certainly okay here
    description caption answer one-sentence for let me know if you need anything else hope
    helps would like to be can we i see""".split()
)


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z][a-z\-]*", text.lower()) if w not in _STOP}


@pytest.mark.parametrize(("answer", "caption"), ANSWERS)
def test_chatty_answers_become_captions(answer: str, caption: str) -> None:
    assert clean_caption(answer) == caption


@pytest.mark.parametrize(("answer", "caption"), ANSWERS)
def test_content_words_survive(answer: str, caption: str) -> None:
    """What the clean-up drops is chatter; every word about the photo is still there."""
    cleaned = content_words(clean_caption(answer))
    assert content_words(caption) <= cleaned
    assert content_words(answer) - cleaned <= CHATTER


@pytest.mark.parametrize("caption", PLAIN)
def test_plain_captions_pass_through(caption: str) -> None:
    assert clean_caption(caption) == caption.removesuffix(".")


@pytest.mark.parametrize("answer", ["This image shows", "", "   ", "Sure!"])
def test_an_answer_that_is_only_chatter_is_kept_rather_than_emptied(answer: str) -> None:
    assert clean_caption(answer) == answer.strip()
