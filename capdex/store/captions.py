"""Captions and their rules, written once: a photo has at most one machine and one human
caption; the human one speaks for it; machines never touch a human caption; a sidecar's caption
never replaces what a person typed into capdex.

Used by the index run's caption stage, sidecars, `capdex import`, and people's edits (API,
`capdex caption-set`). Functions take an open session and leave committing to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from capdex.store.models import HUMAN, MACHINE, Caption, File, utcnow

#: `captioner` of a human caption taken from an XMP sidecar (None: typed by a person).
XMP_ORIGIN = "xmp"
MAX_CAPTION_LENGTH = 2000


def effective_caption(captions: Iterable[Caption]) -> Caption | None:
    """The caption that speaks for a photo: the human one if any, else the machine one."""
    best: Caption | None = None
    for caption in captions:
        if caption.source == HUMAN:
            return caption
        if caption.source == MACHINE:
            best = caption
    return best


def with_human_caption() -> Select[int]:
    """A select of the ids of photos a human caption speaks for (the rule above, in SQL)."""
    return select(Caption.photo_id).where(Caption.source == HUMAN)


def captions_of(session: Session, photo_id: int) -> list[Caption]:
    return list(session.scalars(select(Caption).where(Caption.photo_id == photo_id)))


def set_machine_caption(session: Session, photo_id: int, text: str, captioner: str | None,
                        version: str | None) -> Caption:
    """Make `text` the photo's machine caption (replacing an older one); a human caption, if
    any, keeps speaking for the photo."""
    caption = session.scalar(select(Caption).where(Caption.photo_id == photo_id,
                                                   Caption.source == MACHINE))
    if caption is None:
        caption = Caption(photo_id=photo_id, text=text, source=MACHINE, captioner=captioner,
                          captioner_version=version)
        session.add(caption)
    else:
        caption.text, caption.captioner, caption.captioner_version = text, captioner, version
        caption.created_at = utcnow()
    session.flush()
    return caption


def stale_machine_captions(session: Session, captioner: str, version: str) -> list[int]:
    """Photos with a file whose machine caption another captioner (or version) made and that no
    human caption speaks for: what `--recaption` redoes."""
    return list(session.scalars(
        select(Caption.photo_id).distinct()
        .join(File, File.photo_id == Caption.photo_id)
        .where(Caption.source == MACHINE)
        .where(or_(Caption.captioner != captioner, Caption.captioner_version != version))
        .where(Caption.photo_id.not_in(with_human_caption()))
        .order_by(Caption.photo_id)))


def set_human_caption(session: Session, photo_id: int, text: str,
                      origin: str | None = None) -> Caption:
    """Make `text` the photo's human caption (`origin`: "xmp" for sidecars, None for people)."""
    caption = session.scalar(select(Caption).where(Caption.photo_id == photo_id,
                                                   Caption.source == HUMAN))
    if caption is None:
        caption = Caption(photo_id=photo_id, text=text, source=HUMAN, captioner=origin)
        session.add(caption)
    else:
        caption.text, caption.captioner, caption.created_at = text, origin, utcnow()
    session.flush()
    return caption


def clear_human_caption(session: Session, photo_id: int) -> bool:
    """Remove the photo's human caption (its machine caption speaks again); False if none."""
    caption = session.scalar(select(Caption).where(Caption.photo_id == photo_id,
                                                   Caption.source == HUMAN))
    if caption is None:
        return False
    session.delete(caption)
    session.flush()
    return True


def take_sidecar_caption(session: Session, photo_id: int, text: str) -> bool:
    """Apply the caption a photo's XMP sidecar holds ("" when it holds none); True when the
    photo's human caption changed.

    A caption a person typed into capdex is never replaced. A sidecar caption becomes the human
    caption (origin "xmp"); a sidecar whose caption was cleared removes the one it gave.
    """
    wanted = " ".join(text.split())[:MAX_CAPTION_LENGTH]
    human = session.scalar(select(Caption).where(Caption.photo_id == photo_id,
                                                 Caption.source == HUMAN))
    if human is not None and human.captioner != XMP_ORIGIN:
        return False
    if wanted:
        if human is not None and human.text == wanted:
            return False
        set_human_caption(session, photo_id, wanted, XMP_ORIGIN)
        return True
    if human is not None:
        return clear_human_caption(session, photo_id)
    return False
