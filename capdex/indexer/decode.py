"""Decoding a photo once for every stage that will run on it, each stage getting its own view.

The decode size is chosen per photo: the largest `size` among the stages that will run on it
(and the thumbnail's, for new content). Stages needing fewer pixels get a view reduced from
that one decode (a whole-factor box filter, a few ms), then their own `prepare` (the tagger's
crop). Measured on 12-MP JPEGs (see `capdex.indexer.stages.ocr`): a decode costs about the
same at 1/8 and 1/2 scale (Huffman decoding dominates), so one decode at the largest size
beats two decodes at their own sizes; a photo no stage needs OCR's size for is decoded at 1/8.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from capdex.images import DecodedImage, SizeHint, decode_image, largest_hint, reduce_image
from capdex.indexer.metadata import PhotoMetadata, read_metadata

if TYPE_CHECKING:
    from PIL import Image

    from capdex.indexer.stage import Stage


@dataclass
class StageViews:
    """One decode of a photo, and each stage's view of it."""

    decoded: DecodedImage
    metadata: PhotoMetadata
    #: Stage name → what its `prepare` made of its view.
    views: dict[str, Any] = field(default_factory=dict)
    #: Stage name → why its `prepare` failed on this photo.
    failed: dict[str, str] = field(default_factory=dict)
    _reduced: dict[Any, Image.Image] = field(default_factory=dict)

    def view(self, hint: SizeHint) -> Image.Image:
        """The decode reduced as far as `hint` allows (one per size, shared)."""
        if hint not in self._reduced:
            self._reduced[hint] = reduce_image(self.decoded.image, hint)
        return self._reduced[hint]


def decode_for(path: str, data: bytes | None, stages: Sequence[Stage], *, max_pixels: int,
               extra: Iterable[SizeHint] = ()) -> StageViews | None:
    """Decode `path` (from `data`, its bytes, when given) once, at the largest size the
    `stages` (and the `extra` consumers, e.g. a thumbnail) need, and prepare each stage's view.

    None when nothing needs pixels. Raises `capdex.images.ImageLoadError` when the photo cannot
    be decoded; a stage whose `prepare` fails is in `failed`.
    """
    extra = list(extra)
    hint = largest_hint([*(s.size for s in stages), *extra])
    if hint is None:
        return None
    decoded = decode_image(path, max_pixels=max_pixels, size_hint=hint, data=data)
    result = StageViews(decoded, read_metadata(decoded.exif, decoded.size))
    for stage in stages:
        if stage.size is None:
            continue
        try:
            result.views[stage.name] = stage.prepare(result.view(stage.size))
        except Exception as exc:  # noqa: BLE001 - one strange file must never stop a run
            result.failed[stage.name] = f"could not prepare image ({type(exc).__name__}: {exc})"
    return result
