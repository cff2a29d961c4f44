"""Turn a chat model's answer into a caption: drop the chatty openings ("This image shows…",
"Sure! Here's a description: …"), labels, quotes, markdown and sign-offs ("Let me know if…"),
and keep every content word. Used by every vision-LLM captioner (Moondream, hf-vlm, Ollama,
OpenAI-compatible, Anthropic).

Only openings are removed, never words from the middle of a caption; an answer that is nothing
but an opening is returned as it was rather than emptied.
"""

from __future__ import annotations

import re

#: Part of every LLM captioner's version: bump it when the rules change the words.
VERSION = "2"

_FLAGS = re.IGNORECASE
#: Words for "the picture itself": never content, unlike "painting" or "drawing".
_PICTURE = r"(?:image|photo|photograph|picture|pic|snapshot|shot|scene)"
_THIS = r"(?:(?:the|this|that|your)\s+(?:given\s+|provided\s+|attached\s+|above\s+)?)"
_SHOWN = r"(?:\s+(?:above|provided|shown|you\s+(?:sent|shared|provided|uploaded)))?"
_DETERMINER = (
    r"(?=(?:a|an|the|some|two|three|four|five|several|many|various|multiple|one|\d+)\b)"
)
_VERB = (
    r"(?:is\s+of|is\s+showing|is\s+depicting|appears\s+to\s+(?:show|depict|feature|capture|be)"
    r"|seems\s+to\s+(?:show|depict|be)|was\s+taken|has\s+been\s+taken"
    r"|shows|show|showcases|depicts|features"
    r"|captures|displays|presents|portrays|illustrates|contains|highlights|reveals|has|is)"
)

_OPENINGS = [
    # "Sure!", "Certainly,", "Of course."
    re.compile(
        r"^(?:sure(?:\s+thing)?|certainly|of\s+course|absolutely|okay|ok|alright|great)\b"
        r"\s*[!.,:]+\s*",
        _FLAGS,
    ),
    # "Here's a one-sentence description of the photo:", "Here is the caption:", "Here you go!"
    re.compile(r"^here\s+you\s+go\b\s*[!.:,]*\s*", _FLAGS),
    re.compile(r"^here(?:\s+is|'s|’s|\s+are)\b[^.:!\n]{0,100}?:\s*", _FLAGS),
    # "Caption:", "One-sentence description:", "**Answer:**"
    re.compile(
        r"^(?:[\w\-]+\s+){0,3}(?:caption|description|answer|summary)\s*(?:\([^)]*\)\s*)?:\s*",
        _FLAGS,
    ),
    # "In this photo, we can see …", "In the image, there is …", "In this picture:"
    re.compile(
        rf"^(?:in|within)\s+{_THIS}{_PICTURE}{_SHOWN}\s*[,:]?\s*"
        r"(?:(?:we|you|i|one)\s+(?:can\s+)?(?:see|observe|notice)\s+"
        rf"|there\s+(?:is|are)\s+{_DETERMINER}|there's\s+|it\s+(?:shows|depicts)\s+)?",
        _FLAGS,
    ),
    # "This image shows …", "The photograph depicts …", "The picture is of …"
    re.compile(
        rf"^{_THIS}?{_PICTURE}{_SHOWN}\s+{_VERB}\b\s*(?:that\s+|us\s+)?:?\s*", _FLAGS
    ),
    # "The main subject of the image is …"
    re.compile(
        rf"^(?:the\s+)?(?:main\s+)?(?:subject|focus|focal\s+point)\s+of\s+{_THIS}?{_PICTURE}"
        r"\s+(?:is|are)\s+",
        _FLAGS,
    ),
    # "This is a photo of …", "It appears to be an image of …", "A picture of …"
    re.compile(
        r"^(?:(?:this|it|that)\s+(?:is|appears\s+to\s+be|seems\s+to\s+be|looks\s+like)\s+)?"
        r"(?:a|an)\s+(?:photo|photograph|image|picture|pic|snapshot)\s+"
        r"(?:of|showing|depicting|that\s+shows|featuring)\s+",
        _FLAGS,
    ),
    # "This is a dog …", "It looks like a sunny day …" (only before a determiner)
    re.compile(
        r"^(?:this|it)\s+(?:is|appears\s+to\s+be|seems\s+to\s+be|looks\s+like)\s+" + _DETERMINER,
        _FLAGS,
    ),
    # "I can see …", "We see …", "There are two dogs …"
    re.compile(r"^(?:i|we|you)\s+(?:can\s+)?(?:see|observe|notice)\s+", _FLAGS),
    re.compile(r"^there\s+(?:is|are)\s+" + _DETERMINER, _FLAGS),
]

#: A sentence that talks to the reader rather than about the photo, and all that follows it.
_SIGN_OFF = re.compile(
    r"(?:^|(?<=[.!?])\s+)(?:let\s+me\s+know|i\s+hope\s+(?:this|that)|hope\s+this\s+helps"
    r"|feel\s+free|is\s+there\s+anything|if\s+you\s+(?:need|have|would|want|'d)"
    r"|would\s+you\s+like|do\s+you\s+(?:want|need))\b.*$",
    _FLAGS | re.DOTALL,
)
_MARKDOWN = re.compile(r"\*\*|__|^#+\s*|^[-*•]\s+|^\d+\.\s+", re.MULTILINE)
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»"}


def clean_caption(answer: str) -> str:
    """The caption inside a chat model's answer (see the module docstring)."""
    text = _MARKDOWN.sub("", answer).strip()
    text = _strip_openings(text)
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    text = " ".join(paragraphs[0].split()) if paragraphs else ""
    text = _SIGN_OFF.sub("", text).strip()
    text = _unquote(_strip_openings(text))
    text = text.rstrip(" ,;:")
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1].rstrip()
    if not text:
        # Nothing but an opening (or nothing at all): keep what was said.
        return " ".join(answer.split()).strip("\"'")
    return text


def _strip_openings(text: str) -> str:
    for _ in range(8):  # openings stack ("Sure! Here's a caption: The image shows …")
        before = text
        text = _unquote(text)
        for pattern in _OPENINGS:
            text = pattern.sub("", text, count=1).lstrip(" \t\n,;:")
        if text == before:
            break
    return text


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        return text[1:-1].strip()
    # A quoted caption followed by its full stop: "A dog on a beach."
    if len(text) >= 3 and text[-1] == "." and _QUOTES.get(text[0]) == text[-2]:
        return text[1:-2].strip()
    return text
