"""Database tables. A photo is content (its hash); a file is a path pointing at a photo."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

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
    def of(cls, photo_id: int, caption_id: int, embedder: str, values: Sequence[float],
           ocr_id: int | None = None) -> Vector:
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


class IndexingError(Base):
    """A file that could not be indexed, and why. Retried when the file changes."""

    __tablename__ = "errors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
