"""The invariants a data dir must hold after any sequence of runs, crashes included."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

import faiss
from sqlalchemy import select

from capdex.paths import to_store
from capdex.settings import IMAGE_EXTENSIONS
from capdex.store import looks, repo
from capdex.store.db import Database
from capdex.store.models import Caption, File, IndexingError, Photo, PhotoLooks, Vector
from capdex.store.vectors import file_checksum, read_meta


def photos_on_disk(root: Path) -> dict[str, str]:
    """{stored path: sha256} of every image file under `root`."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                path = os.path.join(folder, name)
                found[to_store(path)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return found


def assert_consistent(data_dir: Path, root: Path, embedder: str) -> dict[str, int]:
    """Every file on disk is exactly one file row of the photo with its bytes; every present
    photo has one machine caption and one vector (of its effective caption); no vector belongs
    to a photo without files; the saved FAISS file holds exactly the database's vectors; no
    errors and no temporary files are left. Returns a few counts."""
    db = Database(f"sqlite:///{data_dir / 'capdex.db'}")
    disk = photos_on_disk(root)
    with db.read() as session:
        files = session.execute(select(File.path, File.photo_id)).all()
        hashes = dict(session.execute(select(Photo.id, Photo.content_hash)).all())
        captions = session.scalars(select(Caption)).all()
        vectors = session.execute(select(Vector.id, Vector.photo_id, Vector.caption_id)
                                  .where(Vector.embedder == embedder)).all()
        errors = session.scalars(select(IndexingError.path)).all()
    assert not errors, errors
    assert sorted(p for p, _ in files) == sorted(disk), "file rows differ from the files on disk"
    for path, photo_id in files:
        assert hashes[photo_id] == disk[path], f"{path} points at the wrong photo"
    present = {photo_id for _, photo_id in files}
    assert len(present) == len(set(disk.values())), "some content is stored as two photos"
    assert len(hashes) == len(set(hashes.values()))

    kinds = Counter((c.photo_id, c.source) for c in captions)
    assert all(n == 1 for n in kinds.values()), "a photo has two captions of one kind"
    assert all((pid, "machine") in kinds for pid in present), "a present photo lost its caption"
    by_photo: dict[int, list[Caption]] = {}
    for caption in captions:
        by_photo.setdefault(caption.photo_id, []).append(caption)

    per_photo = Counter(photo_id for _, photo_id, _ in vectors)
    assert set(per_photo) == present, "orphan vectors, or present photos without a vector"
    assert all(n == 1 for n in per_photo.values())
    for _, photo_id, caption_id in vectors:
        assert repo.effective_caption(by_photo[photo_id]).id == caption_id

    index_path = data_dir / "vectors.faiss"
    index = faiss.read_index(str(index_path))
    on_disk = sorted(faiss.vector_to_array(index.id_map).tolist())
    assert on_disk == sorted(v for v, _, _ in vectors), "the FAISS file differs from the database"
    assert read_meta(index_path) == {"embedder": embedder, "dim": index.d, "count": len(on_disk),
                                     "max_id": max(on_disk, default=None),
                                     "size": index_path.stat().st_size,
                                     "sha256": file_checksum(index_path)}

    assert_looks_consistent(db, data_dir)
    leftovers = list(data_dir.rglob("*.tmp")) + list(root.rglob("*.tmp"))
    assert not leftovers, leftovers
    db.close()
    return {"files": len(files), "photos": len(present), "vectors": len(vectors)}


def assert_looks_consistent(db: Database, data_dir: Path) -> None:
    """When photos have looks (the tagger captioned them): every present photo the tagger
    captioned has looks of the newest model, and `looks.faiss` holds exactly those rows."""
    model = looks.newest_model(db)
    if model is None:
        return
    with db.read() as session:
        assert looks.stale_photos(session, model.split(" ")[0], model) == [], \
            "a photo the tagger captioned has no looks"
        rows = sorted(session.scalars(select(PhotoLooks.id).where(PhotoLooks.model == model)))
    index_path = data_dir / looks.INDEX_FILE
    index = faiss.read_index(str(index_path))
    assert sorted(faiss.vector_to_array(index.id_map).tolist()) == rows, \
        "the looks FAISS file differs from the database"
    meta = read_meta(index_path)
    assert meta is not None and meta["embedder"] == model and meta["count"] == len(rows)
