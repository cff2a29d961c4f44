"""Words the indexing stages add to photos (places, times, people): written and read here only.

Each stage owns one or more kinds ("place", "time", "people"); a kind's words are one line of
text per photo. Keyword search finds them (migration 0008 keeps `photo_text.words` in sync);
words marked `embedded` also go into the photo's vector, after its caption and OCR text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from capdex.store import repo
from capdex.store.models import PhotoWords, utcnow


def set_words(session: Session, photo_id: int, kind: str, text: str, *, embedded: bool = False,
              version: str | None = None) -> list[int]:
    """Make `text` the photo's words of `kind` ("" removes them). Returns the ids of vectors
    deleted because embedded words changed (the caller drops them from the vector index; the
    next embedding pass embeds the photo again)."""
    text = " ".join(text.split())
    row = session.scalar(select(PhotoWords).where(PhotoWords.photo_id == photo_id,
                                                  PhotoWords.kind == kind))
    before = (row.text, row.embedded) if row is not None else ("", False)
    if not text:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(PhotoWords(photo_id=photo_id, kind=kind, text=text, embedded=embedded,
                               version=version))
    else:
        row.text, row.embedded, row.version, row.created_at = text, embedded, version, utcnow()
    embedded_before = before[0] if before[1] else ""
    embedded_now = text if embedded else ""
    if embedded_before != embedded_now:
        session.flush()
        return repo.delete_vectors_of(session, [photo_id])
    return []


def forget_kind(session: Session, kind: str, photo_ids: Iterable[int] | None = None) -> list[int]:
    """Remove the words of `kind` (of these photos, or of all); returns dropped vector ids."""
    query = select(PhotoWords.photo_id, PhotoWords.embedded).where(PhotoWords.kind == kind)
    if photo_ids is not None:
        query = query.where(PhotoWords.photo_id.in_(list(photo_ids)))
    rows = session.execute(query).all()
    if not rows:
        return []
    gone = [photo_id for photo_id, _ in rows]
    session.execute(delete(PhotoWords).where(PhotoWords.kind == kind,
                                             PhotoWords.photo_id.in_(gone)))
    return repo.delete_vectors_of(session, [photo_id for photo_id, embedded in rows if embedded])


def words_of(session: Session, photo_ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """{photo id: {kind: words}} of these photos (photos without words are absent)."""
    out: dict[int, dict[str, str]] = {}
    ids = list(photo_ids)
    for start in range(0, len(ids), 500):
        rows = session.execute(select(PhotoWords.photo_id, PhotoWords.kind, PhotoWords.text)
                               .where(PhotoWords.photo_id.in_(ids[start : start + 500])))
        for photo_id, kind, text in rows:
            out.setdefault(photo_id, {})[kind] = text
    return out


def embedded_words(session: Session, photo_ids: Iterable[int]) -> Mapping[int, str]:
    """{photo id: the embedded words of all its kinds, in kind order} (for its vector's text)."""
    out: dict[int, list[str]] = {}
    ids = list(photo_ids)
    for start in range(0, len(ids), 500):
        rows = session.execute(select(PhotoWords.photo_id, PhotoWords.text)
                               .where(PhotoWords.photo_id.in_(ids[start : start + 500]),
                                      PhotoWords.embedded.is_(True))
                               .order_by(PhotoWords.photo_id, PhotoWords.kind))
        for photo_id, text in rows:
            out.setdefault(photo_id, []).append(text)
    return {photo_id: " ".join(parts) for photo_id, parts in out.items()}


def photos_with_word(kind: str, word: str) -> Select:
    """A select of the ids of photos whose words of `kind` include `word` (any case)."""
    padded = func.lower(" " + PhotoWords.text + " ")
    return select(PhotoWords.photo_id).where(
        PhotoWords.kind == kind, padded.contains(f" {word.lower()} ", autoescape=True))
