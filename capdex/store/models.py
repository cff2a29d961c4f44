"""Database tables. A photo is content (its hash); a file is a path pointing at a photo."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

if TYPE_CHECKING:
    import numpy as np

MACHINE = "machine"
HUMAN = "human"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Photo(Base):
    """One distinct picture, identified by the SHA-256 of its bytes."""

    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    camera_make: Mapped[str | None] = mapped_column(String(200))
    camera_model: Mapped[str | None] = mapped_column(String(200))
    lens: Mapped[str | None] = mapped_column(String(200))
    gps_latitude: Mapped[float | None] = mapped_column(Float)
    gps_longitude: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    files: Mapped[list[File]] = relationship(back_populates="photo", order_by="File.id")
    captions: Mapped[list[Caption]] = relationship(
        back_populates="photo", cascade="all, delete-orphan"
    )
    #: The text it shows (OCR), read-only here: the OCR stage writes `OcrText` rows itself.
    ocr: Mapped[OcrText | None] = relationship(viewonly=True)
    #: Faces found in it, read-only here: `capdex.store.people` writes them.
    faces: Mapped[list[Face]] = relationship(viewonly=True, order_by="Face.box_x")
    #: Where it was taken, by name, read-only here: the place stage writes `PhotoPlace` rows.
    place: Mapped[PhotoPlace | None] = relationship(viewonly=True)


class File(Base):
    """A path on disk whose bytes are a known photo. Copies are several files of one photo.

    `path` is in stored form (`capdex.paths.to_store`); `capdex.paths.to_fs` opens it. The
    sidecar columns remember the XMP sidecar as last read or written, so an unchanged sidecar is
    never parsed again; `xmp_written_at` says when capdex last wrote its caption into it.
    """

    __tablename__ = "files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    indexed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sidecar_size: Mapped[int | None] = mapped_column(BigInteger)
    sidecar_mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    xmp_written_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    photo: Mapped[Photo] = relationship(back_populates="files")


class Caption(Base):
    """Text describing a photo: at most one machine and one human caption each; human wins.

    A human caption's `captioner` says where it came from: "xmp" (a sidecar) or None (a person,
    through the API or `capdex caption-set`).
    """

    __tablename__ = "captions"
    __table_args__ = (UniqueConstraint("photo_id", "source", name="uq_captions_photo_source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # MACHINE or HUMAN
    captioner: Mapped[str | None] = mapped_column(String(100))
    captioner_version: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    photo: Mapped[Photo] = relationship(back_populates="captions")


class Vector(Base):
    """The embedding of a photo's effective caption; its id is its id in the FAISS index."""

    __tablename__ = "vectors"
    # AUTOINCREMENT: an id is never reused after a delete, so a FAISS id always means one vector.
    __table_args__ = (
        UniqueConstraint("photo_id", "embedder", name="uq_vectors_photo_embedder"),
        Index("ix_vectors_embedder", "embedder"),
        Index("ix_vectors_ocr_id", "ocr_id"),  # migration 0007
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"))
    caption_id: Mapped[int] = mapped_column(ForeignKey("captions.id", ondelete="CASCADE"))
    #: The OCR text embedded with the caption (None: the caption alone). A vector whose OCR row
    #: is replaced is dropped with it (CASCADE) and embedded again.
    ocr_id: Mapped[int | None] = mapped_column(ForeignKey("ocr_texts.id", ondelete="CASCADE"))
    embedder: Mapped[str] = mapped_column(String(300))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, normalised
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @classmethod
    def of(cls, photo_id: int, caption_id: int, embedder: str,
           values: Sequence[float] | np.ndarray, ocr_id: int | None = None) -> Vector:
        """A row for `values` (any float sequence), stored as float32 bytes with its dimension."""
        import numpy as np

        array = np.asarray(values, dtype=np.float32)
        return cls(photo_id=photo_id, caption_id=caption_id, ocr_id=ocr_id, embedder=embedder,
                   dim=len(array), vector=array.tobytes())


class PhotoLooks(Base):
    """What a photo looks like: a captioner's pooled image features (one row per photo), for
    "similar photos". Its id is its id in the looks FAISS index (`store.looks`)."""

    __tablename__ = "photo_looks"
    # AUTOINCREMENT: an id is never reused, so a FAISS id always means one row (migration 0011).
    __table_args__ = (
        UniqueConstraint("photo_id", name="uq_photo_looks_photo"),
        Index("ix_photo_looks_model", "model"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"))
    #: What made them, e.g. "tagger 2": features of another model are not comparable.
    model: Mapped[str] = mapped_column(String(300))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float16, L2-normalised
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OcrText(Base):
    """The text a photo shows, as an OCR engine read it ("" when none): one row per photo.

    The engine's name and version say whether it is current; a new version means OCR again
    (never captioning again).
    """

    __tablename__ = "ocr_texts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), unique=True)
    text: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Float)
    engine: Mapped[str] = mapped_column(String(100))
    engine_version: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PhotoWords(Base):
    """Words a stage derived for a photo ("place", "time", "people", ...): one row per kind.

    Keyword search reads them (`photo_text.words`, kept in sync by triggers, migration 0008);
    `embedded` words also go into the photo's vector, which `capdex.store.words.set_words`
    drops when they change so that it is embedded again. `version` says which engine or data
    set made them, so a new one redoes the stage.
    """

    __tablename__ = "photo_words"
    __table_args__ = (UniqueConstraint("photo_id", "kind", name="uq_photo_words_photo_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    embedded: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Person(Base):
    """A group of faces taken to be one person; `name` is None until someone names them.

    Named people's names are words search finds (`photo_words` kind "people"). `centroid` is the
    mean descriptor of its faces (float32), kept by `capdex.store.people` for grouping.
    """

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200), index=True)
    centroid: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Face(Base):
    """A face found in a photo: its box (fractions of the upright photo), detection score,
    128-d descriptor (float32; None once forgotten) and person.

    `assigned_by` says who put it with its person: MACHINE (grouping may move it) or HUMAN
    (never moved by the machine). `version` is the faces stage's version that found it.
    """

    __tablename__ = "faces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    #: The box as fractions of the upright photo's width and height (left, top, width, height).
    box_x: Mapped[float] = mapped_column(Float)
    box_y: Mapped[float] = mapped_column(Float)
    box_w: Mapped[float] = mapped_column(Float)
    box_h: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    descriptor: Mapped[bytes | None] = mapped_column(LargeBinary)
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True)
    assigned_by: Mapped[str] = mapped_column(String(16), default=MACHINE)
    version: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    person: Mapped[Person | None] = relationship(viewonly=True)


class FaceScan(Base):
    """That the faces stage of `version` looked at a photo (also when it found no face), so
    an unchanged photo is never looked at again and a new version looks again."""

    __tablename__ = "face_scans"

    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"),
                                          primary_key=True)
    version: Mapped[str] = mapped_column(String(200))
    faces: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PhotoPlace(Base):
    """Where a photo was taken, by name (the place stage, migration 0010): one row per photo
    the stage looked at; all names None when it has no GPS or is far from any town."""

    __tablename__ = "photo_places"

    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"),
                                          primary_key=True)
    city: Mapped[str | None] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str | None] = mapped_column(String(200))
    country_code: Mapped[str | None] = mapped_column(String(8))
    version: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IndexingError(Base):
    """A file that could not be indexed, and why. Retried when the file changes."""

    __tablename__ = "errors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
