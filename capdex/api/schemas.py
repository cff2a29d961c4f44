"""Request and response models of the JSON API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, WithJsonSchema

#: A moment stored in UTC; SQLite hands it back without its offset, so it is put back.
UtcDateTime = Annotated[datetime, AfterValidator(
    lambda value: value if value.tzinfo else value.replace(tzinfo=UTC))]
#: When a photo was taken, as the camera's clock said: local time, usually without an offset,
#: so it is not an RFC 3339 "date-time" and the schema does not claim that format.
LocalDateTime = Annotated[datetime, WithJsonSchema({
    "type": "string", "description": "ISO 8601 local date and time (offset only if known)",
    "examples": ["2023-07-14T18:03:00"]})]


class SemanticMatch(BaseModel):
    score: float = Field(description="Closeness in meaning, from 0 (like an unrelated caption) "
                         "to 1 (the same meaning).")
    cosine: float | None = Field(default=None, description="Raw cosine of query and caption.")


class KeywordMatchOut(BaseModel):
    score: float = Field(description="IDF-weighted share of the query's words found (0-1).")
    terms: list[str] = Field(description="The query words found.")
    snippet: str | None = Field(description="Matching text, matched words in [brackets].")
    fields: list[str] = Field(description="Where they were found: caption, names, folders, camera, "
                              "ocr (the text the photo shows).")


class LooksMatch(BaseModel):
    score: float = Field(description="How alike the two photos look: cosine of their image "
                         "features, about 1 for the same picture, under 0.5 for other scenes.")
    near_duplicate: bool = Field(description="The same picture (re-encoded, resized, lightly "
                                 "edited): listed first.")


class CaptionMatch(BaseModel):
    score: float = Field(description="Cosine of the two photos' caption vectors.")


class MatchOut(BaseModel):
    semantic: SemanticMatch | None = None
    keyword: KeywordMatchOut | None = None
    looks: LooksMatch | None = Field(default=None, description="Similar photos: how alike they "
                                     "look.")
    caption: CaptionMatch | None = Field(default=None, description="Similar photos: how alike "
                                         "their captions are.")


class SearchHitOut(BaseModel):
    id: int
    path: str
    caption: str
    score: float = Field(description="Relevance in [0, 1] for the mode used.")
    caption_source: str | None = None
    captioner: str | None = None
    taken_at: LocalDateTime | None = None
    camera: str | None = None
    match: MatchOut | None = Field(default=None, description="Why this photo matched.")
    ocr_snippet: str | None = Field(default=None, description="The line of text the photo shows "
                                    "(OCR) that best matches the query; null when it shows none.")
    weak: bool = Field(default=False, description="Below the relevance cut-off: shown because "
                       "no photo cleared it (the closest few).")


class UnderstoodOut(BaseModel):
    text: str = Field(description="The words searched by meaning (\"\": filters only).")
    place: str | None = Field(default=None, description="A city, region or country read from "
                              "the query, used as a filter.")
    taken_after: str | None = Field(default=None, description="First day (ISO date) read from "
                                    "the query.")
    taken_before: str | None = Field(default=None, description="Last day (ISO date) read from "
                                     "the query.")
    season: str | None = Field(default=None, description="A season read from the query, in the "
                               "hemisphere each photo was taken in.")


class SearchOut(BaseModel):
    query: str
    total: int = Field(description="Matches above the score cut-off, across all pages.")
    mode: str = Field(default="hybrid", description="The mode used (hybrid, semantic, keyword).")
    notes: list[str] = Field(default_factory=list, description="Anything that limited the search.")
    understood: UnderstoodOut | None = Field(default=None, description="Places and dates read "
                                             "out of the query as filters; null with parse=false.")
    results: list[SearchHitOut]


class SimilarOut(BaseModel):
    id: int
    caption: str | None = Field(description="The photo's caption.")
    by: str = Field(default="caption", description='"looks": by what the photos look like '
                    "(image features), near-duplicates first, captions second; \"caption\": by "
                    "caption vectors only (the photo has no image features: another captioner "
                    "made its caption).")
    results: list[SearchHitOut] = Field(description="Best first.")


class CaptionOut(BaseModel):
    text: str
    source: str
    captioner: str | None
    captioner_version: str | None
    created_at: UtcDateTime


class FaceOut(BaseModel):
    id: int
    box: list[float] = Field(description="left, top, width, height as fractions of the photo.")
    score: float = Field(description="The detector's score (higher: surer).")
    person_id: int | None
    person_name: str | None = None
    assigned_by: str = Field(description="machine or human (a human's choice never moves).")


class PlaceOut(BaseModel):
    city: str | None
    region: str | None
    country: str | None


class PhotoOut(BaseModel):
    id: int
    path: str | None = Field(description="The first known file of this photo.")
    paths: list[str]
    caption: str | None
    caption_source: str | None
    captions: list[CaptionOut]
    content_hash: str
    size: int
    width: int | None
    height: int | None
    taken_at: LocalDateTime | None
    camera_make: str | None
    camera_model: str | None
    lens: str | None = None
    latitude: float | None = Field(default=None, description="GPS latitude, decimal degrees.")
    longitude: float | None = Field(default=None, description="GPS longitude, decimal degrees.")
    ocr_text: str | None = Field(default=None, description="The text the photo shows, in reading "
                                 "order, as OCR read it; \"\" when none; null when not read.")
    ocr_confidence: float | None = Field(default=None, description="Mean OCR confidence (0–1).")
    ocr_engine: str | None = Field(default=None, description="OCR engine name and version.")
    faces: list[FaceOut] = Field(default_factory=list, description="Faces found (issue 14).")
    place: PlaceOut | None = Field(default=None, description="Where it was taken, by name (from "
                                   "its GPS, offline); null when unknown.")


class CaptionIn(BaseModel):
    caption: str = Field(min_length=1, max_length=2000,
                         description="A person's caption; it outranks and outlives machine ones.")


class StatusOut(BaseModel):
    photos: int
    files: int
    vectors: int
    captions: int
    captioned_by: dict[str, int] = Field(default_factory=dict, description=(
        "Captions of present photos by what wrote them: a captioner's name, or \"human\"."))
    errors: int
    captioner: str = Field(description="The default captioner (for photos indexed next).")
    embedder: str
    data_dir: str
    database: str


class Health(BaseModel):
    status: str = "ok"
