"""What `capdex status` and `GET /api/status` report; shared so both say the same thing."""

from __future__ import annotations

from capdex.embedder import canonical_name
from capdex.settings import Settings
from capdex.store import repo
from capdex.store.db import Database
from capdex.store.vectors import read_meta


def status(settings: Settings, db: Database, index_size: int | None = None) -> dict[str, object]:
    """Counts and configuration. `vectors` is what the FAISS index holds.

    Pass `index_size` when an in-memory index is at hand (the server); otherwise the count saved
    with the index file is used, so the CLI does not load the index or a model.
    """
    embedder = canonical_name(settings.embedder)
    counts = repo.counts(db, embedder)
    if index_size is None:
        meta = read_meta(settings.index_path) or {}
        index_size = int(meta.get("count", 0)) if meta.get("embedder") == embedder else 0
    return {
        "photos": counts.photos,
        "files": counts.files,
        "vectors": index_size,
        "captions": counts.captions,
        # what made the stored captions (a run with --captioner X leaves the default as it was)
        "captioned_by": repo.captions_by_source(db),
        "errors": counts.errors,
        "captioner": settings.captioner,  # the default for photos indexed next
        "embedder": embedder,
        "data_dir": str(settings.data_dir),
        "database": "sqlite" if settings.db_url.startswith("sqlite") else settings.db_url.split(":")[0],
    }
