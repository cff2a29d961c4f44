"""Keyword search over each photo's words (caption, file names, folders, camera, the text it shows).

One small interface, `KeywordIndex`, so another database can bring its own full-text search.
The SQLite one uses the FTS5 table `photo_text` that migrations 0003 and 0005 keep in sync by
triggers; the PostgreSQL one the tsvector table of the same name that migration 0006 keeps in
sync.

The score of a photo is the share of the query's words it contains, each word weighted by its
rarity (BM25's IDF), so it lies in [0, 1] whatever the library size: 1 means every word of the
query was found. Words found in nearly every photo weigh almost nothing; words found nowhere
weigh the most (a word found in almost every photo is not searched for at all: it would match
everything and move no score by 1%). BM25 itself orders photos of equal score.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from sqlalchemy import text

if TYPE_CHECKING:
    from capdex.store.db import Database

log = logging.getLogger(__name__)

TABLE = "photo_text"
#: "ocr": the text the photo shows (migration 0005); "words": what stages added — places,
#: times, people (migration 0008, `capdex.store.words`).
COLUMNS = ("caption", "names", "folders", "camera", "ocr", "words")
#: BM25 column weights (caption words count most) — used to order photos of equal score.
BM25_WEIGHTS = (1.0, 0.75, 0.5, 0.5, 0.75, 0.75)
MAX_TERMS = 32
NEGLIGIBLE = 0.01  # share of a query's weight below which a word is not searched for
#: Words that say nothing about what is in a photo ("photos of my cat" looks for "cat").
STOPWORDS = frozenset("""
a an and any are as at be by for from has have i in into is it its me my near of on or our
out over some that the their them these this those to under was we were what where which with
you your photo photos picture pictures image images pic pics shot shots show find""".split())
_WORD = re.compile(r"[^\W_]+")


class KeywordSearchUnavailable(RuntimeError):
    """This database has no keyword search; the message says why."""


@dataclass(frozen=True, slots=True)
class KeywordMatch:
    photo_id: int
    score: float  # IDF-weighted share of the query's words found, in [0, 1]
    bm25: float  # FTS5 BM25, lower is better; orders photos of equal score
    words: tuple[str, ...] = ()  # the words searched for
    found: int = 0  # bit i set: words[i] is in this photo

    @property
    def terms(self) -> tuple[str, ...]:
        """The query words this photo contains."""
        return tuple(w for i, w in enumerate(self.words) if self.found >> i & 1)


@dataclass(frozen=True, slots=True)
class KeywordExplanation:
    snippet: str  # the best-matching text with matched words in [brackets]
    fields: tuple[str, ...]  # which of COLUMNS matched


def query_terms(query: str) -> list[str]:
    """The words of a query that keyword search looks for: lower-case, no stopwords, no repeats."""
    words = [w.lower() for w in _WORD.findall(query)]
    kept = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(kept))[:MAX_TERMS]


def _quoted(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def idf(total: int, found: int) -> float:
    """BM25's IDF, smoothed to stay positive (Lucene's form)."""
    return math.log(1.0 + (total - found + 0.5) / (found + 0.5))


class KeywordIndex(Protocol):
    """Full-text search over photos; `available` is False when the database has none."""

    available: bool
    reason: str

    def match(self, query: str, photo_ids: Collection[int] | None = None) -> list[KeywordMatch]:
        """Photos containing any query word, best first (only photos with a file have words)."""
        ...

    def explain(self, query: str, photo_ids: Collection[int]) -> dict[int, KeywordExplanation]:
        """Why each of these photos matched: a snippet and the fields that matched."""
        ...


class SqliteKeywordIndex:
    """Keyword search with SQLite FTS5 (porter stemming: "cats" finds "cat")."""

    available = True
    reason = ""

    def __init__(self, db: Database) -> None:
        self.db = db

    def match(self, query: str, photo_ids: Collection[int] | None = None) -> list[KeywordMatch]:
        terms = query_terms(query)
        if not terms:
            return []
        # Plain DB-API cursor and numpy: a common word can match most of a large library.
        with self.db.engine.connect() as conn:
            cursor = conn.connection.cursor()
            try:
                # one docsize row per document: counting it is much cheaper than the FTS table
                total = cursor.execute(f"SELECT count(*) FROM {TABLE}_docsize").fetchone()[0]
                counts = {term: cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE {TABLE} MATCH ?",
                                               (_quoted(term),)).fetchone()[0] for term in terms}
                weights = {t: idf(total, n) for t, n in counts.items()}
                whole = sum(weights.values()) or 1.0
                # A word in nearly every photo ("img" of IMG_1234.jpg) would make every photo a
                # match while moving no score by more than NEGLIGIBLE: it is not searched for.
                searched = [t for t in terms if counts[t] and weights[t] / whole >= NEGLIGIBLE]
                if not searched:
                    return []
                found = {term: np.fromiter((r[0] for r in cursor.execute(
                    f"SELECT rowid FROM {TABLE} WHERE {TABLE} MATCH ?", (_quoted(term),))),
                    dtype=np.int64) for term in searched}
                rows = cursor.execute(
                    f"SELECT rowid, bm25({TABLE}, {', '.join(map(str, BM25_WEIGHTS))}) "
                    f"FROM {TABLE} WHERE {TABLE} MATCH ?",
                    (" OR ".join(_quoted(t) for t in searched),)).fetchall()
            finally:
                cursor.close()
        if not rows:
            return []
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        bm25 = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
        if photo_ids is not None:
            keep = np.isin(ids, np.fromiter(photo_ids, dtype=np.int64))
            ids, bm25 = ids[keep], bm25[keep]
        has = np.stack([np.isin(ids, found[t]) for t in searched])  # words × photos
        scores = np.array([weights[t] for t in searched]) @ has / whole
        masks = (has.astype(np.int64) << np.arange(len(searched))[:, None]).sum(axis=0)
        order = np.lexsort((ids, bm25, -scores))
        words = tuple(searched)
        return [KeywordMatch(i, s, b, words, m) for i, s, b, m in zip(
            ids[order].tolist(), scores[order].tolist(), bm25[order].tolist(),
            masks[order].tolist(), strict=True)]

    def explain(self, query: str, photo_ids: Collection[int]) -> dict[int, KeywordExplanation]:
        terms = query_terms(query)
        ids = sorted(set(photo_ids))
        if not terms or not ids:
            return {}
        # \x02/\x03 mark matches in each column (to name the fields); the snippet uses brackets.
        marks = ", ".join(f"highlight({TABLE}, {i}, char(2), char(3))" for i in range(len(COLUMNS)))
        out: dict[int, KeywordExplanation] = {}
        with self.db.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = conn.execute(
                    text(f"SELECT rowid, snippet({TABLE}, -1, '[', ']', '…', 12), {marks} "
                         f"FROM {TABLE} WHERE {TABLE} MATCH :q "
                         f"AND rowid IN ({', '.join(str(int(i)) for i in chunk)})"),
                    {"q": " OR ".join(_quoted(t) for t in terms)},
                )
                for row in rows:
                    fields = tuple(c for c, v in zip(COLUMNS, row[2:], strict=True)
                                   if v and "\x02" in v)
                    out[row[0]] = KeywordExplanation(row[1], fields)
        return out


#: PostgreSQL's text search configuration (migration 0006 builds `document` with it).
PG_CONFIG = "english"


class PostgresKeywordIndex:
    """Keyword search with PostgreSQL full-text search (migration 0006's `photo_text.document`:
    English stemming, accents folded). Scores as `SqliteKeywordIndex`; `bm25` holds minus
    `ts_rank_cd` (lower is better, as BM25 there) to order photos of equal score."""

    available = True
    reason = ""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _query(param: str) -> str:
        return f"plainto_tsquery('{PG_CONFIG}', unaccent(:{param}))"

    def match(self, query: str, photo_ids: Collection[int] | None = None) -> list[KeywordMatch]:
        terms = query_terms(query)
        if not terms:
            return []
        with self.db.engine.connect() as conn:
            total = conn.execute(text(f"SELECT count(*) FROM {TABLE}")).scalar() or 0
            found: dict[str, set[int]] = {}
            for term in terms:
                found[term] = set(conn.execute(text(
                    f"SELECT photo_id FROM {TABLE} WHERE document @@ {self._query('t')}"),
                    {"t": term}).scalars())
            weights = {t: idf(total, len(ids)) for t, ids in found.items()}
            whole = sum(weights.values()) or 1.0
            searched = [t for t in terms if found[t] and weights[t] / whole >= NEGLIGIBLE]
            if not searched:
                return []
            params = {f"t{i}": t for i, t in enumerate(searched)}
            either = " || ".join(self._query(name) for name in params)
            rank: dict[int, float] = dict(conn.execute(text(
                f"SELECT photo_id, ts_rank_cd(document, {either}) FROM {TABLE} "
                f"WHERE document @@ ({either})"), params).all())
        allowed = None if photo_ids is None else set(photo_ids)
        matches = []
        for photo_id, value in rank.items():
            if allowed is not None and photo_id not in allowed:
                continue
            mask = sum(1 << i for i, t in enumerate(searched) if photo_id in found[t])
            score = sum(weights[t] for i, t in enumerate(searched) if mask >> i & 1) / whole
            matches.append(KeywordMatch(photo_id, score, -float(value), tuple(searched), mask))
        matches.sort(key=lambda m: (-m.score, m.bm25, m.photo_id))
        return matches

    def explain(self, query: str, photo_ids: Collection[int]) -> dict[int, KeywordExplanation]:
        terms = query_terms(query)
        ids = sorted(set(photo_ids))
        if not terms or not ids:
            return {}
        params: dict[str, object] = {f"t{i}": t for i, t in enumerate(terms)}
        either = " || ".join(self._query(name) for name in params)
        hits = ", ".join(
            f"to_tsvector('{PG_CONFIG}', unaccent(regexp_replace({c}, '[^[:alnum:]]+', ' ', 'g')))"
            f" @@ ({either})" for c in COLUMNS)
        whole = " || ' ' || ".join(COLUMNS)
        out: dict[int, KeywordExplanation] = {}
        with self.db.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                params["ids"] = ids[start : start + 500]
                rows = conn.execute(text(
                    f"SELECT photo_id, ts_headline('{PG_CONFIG}', {whole}, ({either}), "
                    "'StartSel=[, StopSel=], MaxWords=12, MinWords=4, FragmentDelimiter=…'), "
                    f"{hits} FROM {TABLE} WHERE document @@ ({either}) "
                    "AND photo_id = ANY(:ids)"), params)
                for row in rows:
                    fields = tuple(c for c, hit in zip(COLUMNS, row[2:], strict=True) if hit)
                    out[row[0]] = KeywordExplanation(row[1], fields)
        return out


class UnavailableKeywordIndex:
    """Stands in when the database has no keyword search: every call says why."""

    available = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def match(self, query: str, photo_ids: Collection[int] | None = None) -> list[KeywordMatch]:
        raise KeywordSearchUnavailable(self.reason)

    def explain(self, query: str, photo_ids: Collection[int]) -> dict[int, KeywordExplanation]:
        raise KeywordSearchUnavailable(self.reason)


def keyword_index(db: Database) -> KeywordIndex:
    """The keyword search of this database, or a stand-in that explains why there is none."""
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        with db.engine.connect() as conn:
            exists = conn.execute(text("SELECT to_regclass(:name)"), {"name": TABLE}).scalar()
        if exists is None:
            return UnavailableKeywordIndex("keyword search is not available: this PostgreSQL "
                                           "database lacks migration 0006's photo_text table")
        return PostgresKeywordIndex(db)
    if dialect != "sqlite":
        return UnavailableKeywordIndex(
            f"keyword search is not available on {dialect} databases (SQLite and PostgreSQL only)"
        )
    with db.engine.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"),
            {"name": TABLE},
        ).first()
    if not exists:
        return UnavailableKeywordIndex(
            "keyword search is not available: this SQLite has no FTS5 full-text module"
        )
    return SqliteKeywordIndex(db)
