"""The read path: query → embedding (cached) → semantic and keyword candidates, filtered →
fused and cut off → sorted → one page joined with metadata and explanations.

Scores lie in [0, 1] in every mode, so `min_score` means the same everywhere:
semantic = cosine similarity of query and caption measured above the query's background
(`search.calibration`); keyword = the IDF-weighted share of the query's words found in the
photo's caption, file names, folders or camera (`store.keyword`); hybrid = the two fused
(`search.fusion`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from capdex.embedder import Embedder, get_embedder
from capdex.paths import is_under
from capdex.settings import Settings
from capdex.search import filters
from capdex.search.cache import QueryCache
from capdex.search.calibration import Background, calibrate, cosine_for
from capdex.search.fusion import ranking, reciprocal_rank_fusion, score_fusion
from capdex.search.ocr_text import snippet
from capdex.search.request import DateBound, SearchRequest
from capdex.search.understand import PlaceNames, Understanding, understand
from capdex.store import looks, places, repo
from capdex.store.db import Database
from capdex.store.keyword import KeywordIndex, KeywordMatch, keyword_index
from capdex.store.models import Photo, Vector
from capdex.store.vectors import VectorIndex, open_index

if TYPE_CHECKING:
    from capdex.search.similar import Neighbour

_CHUNK = 5000  # ids per SQL IN list
#: At most this many photos are shown as weak matches when none clears the cut-off.
WEAK_MAX = 5
_NAMES_TTL = 60.0  # seconds the place names a query may say are kept


class SearchUnavailable(RuntimeError):
    """The requested kind of search cannot run on this store; the message says why."""


class SimilarNotFound(LookupError):
    """Similar photos of a photo that does not exist or has no caption vector yet; the message
    says which."""


@dataclass(frozen=True)
class SearchHit:
    id: int
    path: str
    caption: str
    score: float
    caption_source: str | None = None
    captioner: str | None = None
    taken_at: datetime | None = None
    camera: str | None = None
    #: why it matched: {"semantic": {"score"}, "keyword": {"score", "snippet", "fields", "terms"}}
    match: dict[str, object] | None = None
    #: The line of the text the photo shows (OCR) closest to the query; None: it shows none.
    ocr_snippet: str | None = None
    #: Below the relevance cut-off: shown because nothing cleared it (the closest few).
    weak: bool = False

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "taken_at": self.taken_at.isoformat() if self.taken_at else None}


@dataclass
class SearchResults:
    query: str
    total: int
    results: list[SearchHit] = field(default_factory=list)
    mode: str = "hybrid"
    notes: list[str] = field(default_factory=list)
    #: What the query was read as (`Understanding.as_dict`); None with parse=False.
    understood: dict[str, object] | None = None

    def as_dict(self) -> dict[str, object]:
        return {"query": self.query, "total": self.total, "mode": self.mode, "notes": self.notes,
                "understood": self.understood,
                "results": [hit.as_dict() for hit in self.results]}


@dataclass
class SimilarResults:
    id: int
    caption: str | None
    results: list[SearchHit] = field(default_factory=list)
    #: "looks" (image features, caption vectors second) or "caption" (caption vectors only).
    by: str = "caption"

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "caption": self.caption, "by": self.by,
                "results": [hit.as_dict() for hit in self.results]}


@dataclass
class _Candidate:
    photo_id: int
    semantic: float | None = None  # calibrated semantic score
    cosine: float | None = None  # raw cosine similarity
    keyword: KeywordMatch | None = None
    score: float = 0.0

    def order(self) -> tuple[float, float, float, int]:
        bm25 = self.keyword.bm25 if self.keyword else float("inf")
        semantic = self.semantic if self.semantic is not None else -2.0
        return (-self.score, bm25, -semantic, self.photo_id)


class SearchEngine:
    """Answers queries against one data dir; picks up index changes made by other processes."""

    def __init__(self, settings: Settings, db: Database, embedder: Embedder | None = None,
                 today: Callable[[], date] = date.today) -> None:
        self.settings = settings
        #: Today's date, for "yesterday" and "last summer" (tests set the clock).
        self.today = today
        self._place_names: tuple[object, PlaceNames] | None = None
        self.db = db
        self.embedder = embedder or get_embedder(settings)
        self.query_cache = QueryCache(settings.query_cache_size)
        self.background = Background(self.embedder)
        self._index: VectorIndex | None = None
        self._looks: VectorIndex | None = None
        self._keyword: KeywordIndex | None = None
        self._lock = threading.Lock()

    # -- the two indexes ------------------------------------------------------------------------
    @property
    def index(self) -> VectorIndex:
        """The vector index, reloaded and re-checked when an indexer has saved a newer one."""
        with self._lock:
            if self._index is None:
                # memory-mapped: searchers share a compressed index's pages and rarely write
                self._index = open_index(self.settings.index_path, self.db, self.embedder.name,
                                         lambda: self.embedder.dim, self.settings.exact_search_max,
                                         compress_above=self.settings.vector_compress_above,
                                         mmap=True)
            elif self._index.changed_on_disk():
                fresh = self._index.like()
                fresh.load()
                fresh.sync_with(self.db)
                self._index = fresh
            return self._index

    def looks_index(self, model: str, dim: int) -> VectorIndex:
        """The looks index of `model` (`store.looks`), reloaded when an indexer saved a newer
        one; built from the database when missing, damaged or of another model."""
        with self._lock:
            index = self._looks
            if index is None or index.embedder != model or index.dim != dim:
                index = open_index(
                    self.settings.data_dir / looks.INDEX_FILE, self.db, model, dim,
                    self.settings.exact_search_max,
                    compress_above=self.settings.vector_compress_above, rows=looks.ROWS)
            elif index.changed_on_disk():
                index = index.like()
                index.load()
                index.sync_with(self.db)
            self._looks = index
            return index

    @property
    def keyword(self) -> KeywordIndex:
        if self._keyword is None:
            self._keyword = keyword_index(self.db)
        return self._keyword

    def embed_query(self, query: str) -> np.ndarray:
        """The query's embedding, from the cache when it was asked recently."""
        vector = self.query_cache.get(query)
        if vector is None:
            vector = self.embedder.embed([query])[0]
            self.query_cache.put(query, vector)
        return vector

    # -- search ---------------------------------------------------------------------------------
    def search(self, query: str | SearchRequest, **options: Any) -> SearchResults:
        """Photos matching `query`, best first (or newest first with sort="date").

        `options` are those of `SearchRequest.build`; a bad one raises `SearchRequestError`.
        Places and dates the query names become filters (`capdex.search.understand`) unless
        `parse=False` or the request sets that filter itself; a place or season (words that
        are things too: "Turkey", "spring") that leaves no strong match is read as words
        again, with a note.
        """
        request = query if isinstance(query, SearchRequest) else SearchRequest.build(
            query, **options)
        if not request.parse:
            return self._search(request)
        names, today = self.place_names(), self.today()
        dates = not (request.taken_after or request.taken_before)
        understood = understand(request.q, names, today, dates=dates, place=not request.place)
        if not understood.found:
            results = self._search(request)
            results.understood = understood.as_dict()
            return results
        results = self._search(_narrowed(request, understood))
        if (understood.place or understood.season) and not _strong(results):
            # "Turkey", "Nice", "spring": words that are also things; without them as filters
            wider = understand(request.q, names, today, dates=dates, place=False, seasons=False)
            other = self._search(_narrowed(request, wider))
            if _strong(other) or not results.results:
                where = " in ".join(x for x in ("", understood.place, understood.season) if x)
                what = f" match \"{understood.text}\"" if understood.text else ""
                other.notes.append(f"no photos taken{where}{what}: searched \"{wider.text}\" "
                                   "instead")
                understood, results = wider, other
        results.understood = understood.as_dict()
        return results

    def place_names(self) -> PlaceNames:
        """The places photos were taken in, as queries may name them; read again after the
        vector index changed (the place stage re-embeds what it names) or after a minute."""
        # the index as last loaded (not loaded here: keyword searches need neither it nor a model)
        stamp = (id(self._index), int(time.monotonic() // _NAMES_TTL))
        cached = self._place_names
        if cached is None or cached[0] != stamp:
            with self.db.read() as session:
                cached = (stamp, PlaceNames(places.known_names(session)))
            self._place_names = cached
        return cached[1]

    def _search(self, request: SearchRequest) -> SearchResults:
        """One search, with the request's filters as they are."""
        mode = request.mode or self.settings.search_mode
        threshold = self.settings.min_score if request.min_score is None else request.min_score
        notes: list[str] = []
        if mode != "semantic" and not self.keyword.available:
            if mode == "keyword":
                raise SearchUnavailable(self.keyword.reason)
            notes.append(f"{self.keyword.reason}; searched by meaning only")
            mode = "semantic"

        allowed_select = filters.allowed_photos(request)
        allowed: set[int] | None = None
        if allowed_select is not None:
            with self.db.read() as session:
                allowed = set(session.scalars(allowed_select))
            if not allowed:
                return SearchResults(request.q, 0, [], mode, notes)
        if not request.q:  # the query named filters only: every photo passing them
            return self._listed(request, allowed or set(), mode, notes)

        candidates: dict[int, _Candidate] = {}
        if mode != "semantic":
            for match in self.keyword.match(request.q, allowed):
                candidates[match.photo_id] = _Candidate(match.photo_id, keyword=match)
        if mode != "keyword":
            self._add_semantic(request, mode, threshold, allowed_select, candidates)

        ranked = self._rank(mode, threshold, candidates)
        weak = not ranked and request.min_score is None and request.offset == 0
        if weak:
            ranked = self._closest(request, mode, allowed_select, candidates)
            if ranked:
                notes.append(f"no photo clears the relevance cut-off ({threshold:g}): "
                             f"the {len(ranked)} closest are shown, marked weak")
        if request.sort == "date":
            ranked = self._newest_first(ranked)
        page = ranked[request.offset : request.offset + request.k]
        hits = self._hits(page, request)
        if weak:  # `total` counts matches above the cut-off: none
            return SearchResults(request.q, 0, [replace(hit, weak=True) for hit in hits], mode,
                                 notes)
        return SearchResults(request.q, len(ranked), hits, mode, notes)

    def _listed(self, request: SearchRequest, allowed: set[int], mode: str,
                notes: list[str]) -> SearchResults:
        """All photos passing the filters, newest first, each scoring 1 (it matches them)."""
        ranked = self._newest_first([_Candidate(pid, score=1.0) for pid in sorted(allowed)])
        page = ranked[request.offset : request.offset + request.k]
        return SearchResults(request.q, len(ranked), self._hits(page, request), mode, notes)

    def _closest(self, request: SearchRequest, mode: str, allowed_select: Select | None,
                 candidates: dict[int, _Candidate]) -> list[_Candidate]:
        """The few photos scoring best under the cut-off (the weak fallback): at most
        WEAK_MAX and `k`, only those with some score."""
        wanted = min(WEAK_MAX, request.k)
        index = self.index
        if mode != "keyword" and len(index):
            vector = self.embed_query(request.q)
            background = self.background.of(vector)
            among = None
            if allowed_select is not None:
                with self.db.read() as session:
                    among = np.fromiter(session.scalars(
                        select(Vector.id).where(Vector.embedder == index.embedder,
                                                Vector.photo_id.in_(allowed_select))),
                        dtype=np.int64)
            ids: list[int] = []
            if among is None or len(among):
                _, found = index.search(vector, wanted * 2, among)
                ids = [i for i in found[0].tolist() if i >= 0]
            photo_of = self._photos_of_vectors(ids)
            for vector_id, cosine in index.scores_of(vector, np.array(list(photo_of),
                                                                        dtype=np.int64)).items():
                candidate = candidates.setdefault(photo_of[vector_id], _Candidate(
                    photo_of[vector_id]))
                if candidate.cosine is None or cosine > candidate.cosine:
                    candidate.cosine, candidate.semantic = cosine, calibrate(cosine, background)
        close = []
        for candidate in candidates.values():
            score = self._score(mode, candidate)
            if score is not None:
                candidate.score = score
                close.append(candidate)
        close.sort(key=_Candidate.order)
        return close[:wanted]

    def _semantic_floor(self, mode: str, threshold: float) -> float:
        """The least semantic score a photo without a keyword match needs to pass the cut-off."""
        if mode == "hybrid" and self.settings.search_fusion == "score":
            weight = self.settings.search_semantic_weight
            return threshold / weight if weight > 0 else float("inf")
        return threshold

    def _add_semantic(self, request: SearchRequest, mode: str, threshold: float,
                      allowed_select: Select | None, candidates: dict[int, _Candidate]) -> None:
        index = self.index
        if not len(index):
            return
        vector = self.embed_query(request.q)
        among = None
        if allowed_select is not None:
            with self.db.read() as session:
                among = np.fromiter(session.scalars(
                    select(Vector.id).where(Vector.embedder == index.embedder,
                                            Vector.photo_id.in_(allowed_select))), dtype=np.int64)
            if not len(among):
                return
        background = self.background.of(vector)
        floor = self._semantic_floor(mode, threshold)
        if floor <= 1.0:
            ids, cosines = index.within(vector, cosine_for(floor, background), among,
                                        limit=self.settings.search_max_candidates)
            photo_of = self._photos_of_vectors(ids.tolist())
            for vector_id, cosine in zip(ids.tolist(), cosines.tolist(), strict=True):
                photo_id = photo_of.get(vector_id)
                if photo_id is not None:
                    candidate = candidates.setdefault(photo_id, _Candidate(photo_id))
                    if candidate.cosine is None or cosine > candidate.cosine:
                        candidate.cosine = cosine
                        candidate.semantic = calibrate(cosine, background)
        if mode == "hybrid":  # keyword matches below the floor still need their exact score
            missing = [pid for pid, c in candidates.items() if c.semantic is None]
            vectors_of = self._vectors_of_photos(missing, index.embedder)
            cosines_by_vector = index.scores_of(vector, np.array(list(vectors_of), dtype=np.int64))
            for vector_id, cosine in cosines_by_vector.items():
                candidate = candidates[vectors_of[vector_id]]
                candidate.cosine, candidate.semantic = cosine, calibrate(cosine, background)

    def _rank(self, mode: str, threshold: float,
              candidates: dict[int, _Candidate]) -> list[_Candidate]:
        kept: list[_Candidate] = []
        if mode == "hybrid" and self.settings.search_fusion == "rrf":
            semantic = {p: c.semantic for p, c in candidates.items()
                        if c.semantic is not None and c.semantic >= threshold}
            keyword = sorted((c.keyword for c in candidates.values()
                              if c.keyword and c.keyword.score >= threshold),
                             key=lambda m: (-m.score, m.bm25, m.photo_id))
            fused = reciprocal_rank_fusion(
                [ranking(semantic), [m.photo_id for m in keyword]],
                [self.settings.search_semantic_weight, self.settings.search_keyword_weight],
                self.settings.search_rrf_k)
            for photo_id, fused_score in fused.items():
                candidates[photo_id].score = fused_score
                kept.append(candidates[photo_id])
        else:
            for candidate in candidates.values():
                score = self._score(mode, candidate)
                if score is not None and score >= threshold:
                    candidate.score = score
                    kept.append(candidate)
        kept.sort(key=_Candidate.order)
        return kept

    def _score(self, mode: str, candidate: _Candidate) -> float | None:
        keyword = candidate.keyword.score if candidate.keyword else None
        if mode == "semantic":
            return candidate.semantic
        if mode == "keyword":
            return keyword
        return score_fusion(candidate.semantic, keyword, self.settings.search_semantic_weight,
                            self.settings.search_keyword_weight)

    def _newest_first(self, ranked: list[_Candidate]) -> list[_Candidate]:
        """By date taken, newest first; undated photos last; equal dates keep relevance order."""
        taken: dict[int, datetime | None] = {}
        ids = [c.photo_id for c in ranked]
        with self.db.read() as session:
            for start in range(0, len(ids), _CHUNK):
                taken.update(session.execute(select(Photo.id, Photo.taken_at)
                                             .where(Photo.id.in_(ids[start : start + _CHUNK])))
                              .all())
        return sorted(ranked, key=lambda c: taken.get(c.photo_id) or datetime.min, reverse=True)

    # -- similar photos ---------------------------------------------------------------------------
    def similar(self, photo_id: int, k: int = 10) -> SimilarResults:
        """The photos that look most like this one, near-duplicates first, with what their
        captions say as a second signal (`capdex.search.similar`)."""
        from capdex.search.similar import find_similar

        return find_similar(self, photo_id, k)

    def similar_hits(self, found: list[Neighbour]) -> list[SearchHit]:
        """Similar photos joined with their metadata; `match` says how alike they look and
        what their captions say."""
        page = [_Candidate(n.photo_id, score=n.score) for n in found]
        matches = {n.photo_id: n.match() for n in found}
        return [replace(hit, match=matches.get(hit.id)) for hit in self._hits(page)]

    # -- joins ----------------------------------------------------------------------------------
    def _photos_of_vectors(self, vector_ids: list[int]) -> dict[int, int]:
        """vector id → photo id, for photos that still have a file."""
        return repo.photos_of_vectors(self.db, vector_ids)

    def _vectors_of_photos(self, photo_ids: list[int], embedder: str) -> dict[int, int]:
        """vector id → photo id for these photos' vectors of `embedder`."""
        return repo.vectors_of_photos(self.db, photo_ids, embedder)

    def _hits(self, page: list[_Candidate], request: SearchRequest | None = None) -> list[SearchHit]:
        if not page:
            return []
        ids = [c.photo_id for c in page]
        explained = {}
        if request is not None and any(c.keyword for c in page):
            explained = self.keyword.explain(request.q, [c.photo_id for c in page if c.keyword])
        with self.db.read() as session:
            photos = {p.id: p for p in session.scalars(
                select(Photo).where(Photo.id.in_(ids))
                .options(selectinload(Photo.files), selectinload(Photo.captions),
                         selectinload(Photo.ocr)))}
        hits = []
        for candidate in page:
            photo = photos.get(candidate.photo_id)
            caption = repo.effective_caption(photo.captions) if photo else None
            path = _shown_path(photo, request.folder if request else None) if photo else None
            if photo is None or path is None or caption is None:
                continue  # removed since the candidates were found
            match: dict[str, object] = {}
            if candidate.semantic is not None:
                match["semantic"] = {"score": round(float(candidate.semantic), 4),
                                     "cosine": _rounded(candidate.cosine)}
            if candidate.keyword is not None:
                why = explained.get(candidate.photo_id)
                match["keyword"] = {"score": round(candidate.keyword.score, 4),
                                    "terms": list(candidate.keyword.terms),
                                    "snippet": why.snippet if why else None,
                                    "fields": list(why.fields) if why else []}
            camera = " ".join(x for x in (photo.camera_make, photo.camera_model) if x) or None
            shown = (snippet(photo.ocr.text, request.q)
                     if request is not None and photo.ocr is not None else None)
            hits.append(SearchHit(photo.id, path, caption.text, round(float(candidate.score), 4),
                                  caption.source, caption.captioner, photo.taken_at, camera,
                                  match, shown))
        return hits


def _strong(results: SearchResults) -> bool:
    return any(not hit.weak for hit in results.results)


def _narrowed(request: SearchRequest, understood: Understanding) -> SearchRequest:
    """The request with the filters the query named (those it set itself win)."""
    after = request.taken_after or (DateBound(datetime.combine(understood.taken_after,
                                                               datetime.min.time()), True)
                                    if understood.taken_after else None)
    before = request.taken_before or (DateBound(datetime.combine(understood.taken_before,
                                                                 datetime.min.time()), True)
                                      if understood.taken_before else None)
    return replace(request, q=understood.text, place=request.place or understood.place,
                   taken_after=after, taken_before=before, season=understood.season)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _shown_path(photo: Photo, folder: str | None) -> str | None:
    """The file people see: the first one inside the filtered folder, else the oldest one."""
    if folder:
        for file in photo.files:
            if is_under(file.path, folder):
                return file.path
    return repo.first_path(photo)
