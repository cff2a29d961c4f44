"""Files that could not be indexed, and why: one row per path, retried when the file changes
(its size or mtime differs from the ones recorded) and cleared when it is indexed or gone."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from capdex.paths import under
from capdex.store.models import IndexingError


def record_error(session: Session, path: str, reason: str, size: int | None,
                 mtime_ns: int | None) -> None:
    """Record (or update) why `path` could not be indexed."""
    existing = session.scalar(select(IndexingError).where(IndexingError.path == path))
    if existing is None:
        session.add(IndexingError(path=path, reason=reason, size=size, mtime_ns=mtime_ns))
    else:
        existing.reason, existing.size, existing.mtime_ns = reason, size, mtime_ns


def clear_errors(session: Session, paths: Iterable[str]) -> None:
    """Forget the errors of these paths (indexed now, or gone)."""
    paths = list(paths)
    for start in range(0, len(paths), 500):
        session.execute(delete(IndexingError).where(
            IndexingError.path.in_(paths[start : start + 500])))


def errors_under(conn: Connection | Session,
                 roots: list[str]) -> dict[str, tuple[int | None, int | None]]:
    """{path: (size, mtime_ns) it had when it failed} of the errors under `roots`."""
    rows = conn.execute(select(IndexingError.path, IndexingError.size, IndexingError.mtime_ns)
                        .where(under(IndexingError.path, *roots)))
    return {path: (size, mtime_ns) for path, size, mtime_ns in rows}


def all_errors(session: Session) -> list[IndexingError]:
    """Every recorded error, by path."""
    return list(session.scalars(select(IndexingError).order_by(IndexingError.path)))
