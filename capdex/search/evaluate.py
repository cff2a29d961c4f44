"""Search quality: run a set of queries with known answers and score each search mode.

A query file is a JSON list of `{"q": "what a user types", "rel": ["file name", ...]}`. A photo
is relevant when the file name of its shown path is in `rel`. Queries with an empty `rel` are
"no-answer" queries (nothing in the library fits): they measure the relevance cut-off, as the
mean number of results returned for them. Relevant names that are not indexed are ignored, and
a query none of whose relevant photos is indexed is skipped (and counted), so one query file
serves libraries that hold only some of its photos.

Only results above the relevance cut-off count: the closest photos a search shows marked weak
(when none clears it) are scored apart, as `weak_found` — the share of queries with answers that
found nothing above the cut-off but had a relevant photo among the weak ones. `parse=False`
measures the same queries without reading places and dates out of them (before/after).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from capdex.search.request import MODES
from capdex.store.models import File

if TYPE_CHECKING:
    from capdex.search.engine import SearchEngine

DEPTH = 10  # every metric looks at the first 10 results


class EvalFileError(ValueError):
    """The query file cannot be read or has the wrong shape; the message says where."""


@dataclass(frozen=True)
class EvalQuery:
    q: str
    rel: frozenset[str]


def load_queries(path: Path) -> list[EvalQuery]:
    """Read and check a query file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise EvalFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise EvalFileError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(data, list) or not data:
        raise EvalFileError(f"{path}: expected a non-empty JSON list of {{\"q\", \"rel\"}} objects")
    queries = []
    for n, entry in enumerate(data):
        if not (isinstance(entry, dict) and isinstance(entry.get("q"), str) and entry["q"].strip()
                and isinstance(entry.get("rel"), list)
                and all(isinstance(r, str) for r in entry["rel"])):
            raise EvalFileError(f"{path}: entry {n} must be {{\"q\": text, \"rel\": [file names]}}")
        queries.append(EvalQuery(entry["q"], frozenset(entry["rel"])))
    return queries


def recall_at(ranked: Sequence[str], rel: frozenset[str], k: int) -> float:
    """Share of the relevant photos found in the first k."""
    return len(rel.intersection(ranked[:k])) / len(rel)


def reciprocal_rank(ranked: Sequence[str], rel: frozenset[str]) -> float:
    """1 / rank of the first relevant photo (0 when none is found)."""
    return next((1.0 / rank for rank, name in enumerate(ranked, 1) if name in rel), 0.0)


def ndcg_at(ranked: Sequence[str], rel: frozenset[str], k: int) -> float:
    """Binary-relevance nDCG: relevant photos count more the higher they come."""
    gain = sum(1.0 / math.log2(rank + 1) for rank, name in enumerate(ranked[:k], 1) if name in rel)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(rel), k) + 1))
    return gain / ideal


@dataclass(frozen=True)
class ModeReport:
    mode: str
    queries: int  # queries with answers
    recall_at_1: float
    recall_at_5: float
    recall_at_10: float
    mrr: float
    ndcg_at_10: float
    no_answer_queries: int
    no_answer_results: float  # mean results returned for no-answer queries (lower is better)
    skipped: int = 0  # queries whose relevant photos are not indexed
    #: Share of queries with answers found only among the weak matches (below the cut-off).
    weak_found: float = 0.0

    def as_dict(self) -> dict[str, float | int | str]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def indexed_names(engine: SearchEngine) -> set[str]:
    """The file names of every indexed file."""
    with engine.db.read() as session:
        return {Path(path).name for path in session.scalars(select(File.path))}


def evaluate_mode(engine: SearchEngine, queries: Sequence[EvalQuery], mode: str,
                  min_score: float | None = None, parse: bool = True) -> ModeReport:
    names = indexed_names(engine)
    present = [EvalQuery(q.q, q.rel & names) for q in queries]
    answered = [q for q in present if q.rel]
    unanswered = [q for q, original in zip(present, queries, strict=True) if not original.rel]
    totals = {"r1": 0.0, "r5": 0.0, "r10": 0.0, "mrr": 0.0, "ndcg": 0.0, "weak": 0.0}

    def search(q: str) -> tuple[list[str], list[str]]:
        """(names above the cut-off, names of weak matches)."""
        hits = engine.search(q, k=DEPTH, mode=mode, min_score=min_score, parse=parse).results
        return ([Path(h.path).name for h in hits if not h.weak],
                [Path(h.path).name for h in hits if h.weak])

    for query in answered:
        ranked, weak = search(query.q)
        totals["weak"] += bool(query.rel.intersection(weak))
        totals["r1"] += recall_at(ranked, query.rel, 1)
        totals["r5"] += recall_at(ranked, query.rel, 5)
        totals["r10"] += recall_at(ranked, query.rel, 10)
        totals["mrr"] += reciprocal_rank(ranked, query.rel)
        totals["ndcg"] += ndcg_at(ranked, query.rel, DEPTH)
    stray = sum(len(search(q.q)[0]) for q in unanswered)
    n = len(answered) or 1
    return ModeReport(mode, len(answered), totals["r1"] / n, totals["r5"] / n, totals["r10"] / n,
                      totals["mrr"] / n, totals["ndcg"] / n, len(unanswered),
                      stray / len(unanswered) if unanswered else 0.0,
                      len(queries) - len(answered) - len(unanswered), totals["weak"] / n)


def evaluate(engine: SearchEngine, queries: Sequence[EvalQuery],
             modes: Sequence[str] = MODES, min_score: float | None = None,
             parse: bool = True) -> list[ModeReport]:
    """One report per mode, over the same queries."""
    return [evaluate_mode(engine, queries, mode, min_score, parse) for mode in modes]


def format_table(reports: Sequence[ModeReport]) -> str:
    """The reports as a fixed-width table."""
    head = (f"{'mode':<9}{'R@1':>7}{'R@5':>7}{'R@10':>7}{'MRR':>7}{'nDCG@10':>9}"
            f"{'no-answer hits':>16}{'found weak':>12}")
    lines = [head]
    for r in reports:
        lines.append(f"{r.mode:<9}{r.recall_at_1:>7.3f}{r.recall_at_5:>7.3f}{r.recall_at_10:>7.3f}"
                     f"{r.mrr:>7.3f}{r.ndcg_at_10:>9.3f}{r.no_answer_results:>16.2f}"
                     f"{r.weak_found:>12.3f}")
    queries = reports[0].queries if reports else 0
    negatives = reports[0].no_answer_queries if reports else 0
    skipped = reports[0].skipped if reports else 0
    lines.append(f"({queries} queries with answers; {negatives} no-answer queries, "
                 "whose mean result count is shown; found weak: answered only below the cut-off"
                 + (f"; {skipped} skipped: their photos are not indexed)" if skipped else ")"))
    return "\n".join(lines)
