"""Grouping faces into people (issue 14): incremental as faces arrive, and a re-grouping.

- A new face joins the person whose centroid is nearest, if within `SAME_PERSON`; otherwise it
  starts a new (unnamed) person. Every face with a descriptor has a person.
- `regroup` clusters every face the machine may move with scikit-learn's DBSCAN (eps =
  `SAME_PERSON`, one face is a cluster): a cluster near a named person's centroid joins them
  (named people pull their new faces), else it keeps the person most of its faces had, else it
  becomes a new person. Faces a human assigned (and forgotten ones) never move.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from capdex.captioners.faces import INSTALL, SAME_PERSON
from capdex.store import people as store
from capdex.store.models import MACHINE, Face, Person


def group_new_faces(session: Session, faces: Sequence[Face],
                    threshold: float = SAME_PERSON) -> None:
    """Put each new machine face with the nearest person within `threshold`, or a new person."""
    import numpy as np

    pending = [f for f in faces if f.person_id is None and f.descriptor is not None
               and f.assigned_by == MACHINE]
    if not pending:
        return
    ids, blobs = store.centroids(session)
    matrix = np.stack([store.unpack(b) for b in blobs]) if blobs else np.zeros((0, 128), "float32")
    touched: set[int] = set()
    for face in pending:
        assert face.descriptor is not None  # `pending` holds faces with one
        vector = store.unpack(face.descriptor)
        person_id = None
        if len(ids):
            distances = np.linalg.norm(matrix - vector, axis=1)
            best = int(np.argmin(distances))
            if distances[best] <= threshold:
                person_id = ids[best]
        if person_id is None:
            person_id = store.new_person(session).id
            ids.append(person_id)
            matrix = np.vstack([matrix, vector[None, :]])
        store.machine_assign(session, [face], person_id)
        touched.add(person_id)
        # the centroid moves with its faces, so the next face of a batch compares with it
        store.refresh_centroids(session, [person_id])
        refreshed = session.get(Person, person_id)
        if refreshed is not None and refreshed.centroid is not None:
            matrix[ids.index(person_id)] = store.unpack(refreshed.centroid)
    store.refresh_words(session, {f.photo_id for f in pending})


def regroup(session: Session, threshold: float = SAME_PERSON) -> dict[str, int]:
    """Cluster every movable face again; returns counts (faces moved, people now, removed)."""
    import numpy as np

    try:
        from sklearn.cluster import DBSCAN
    except ImportError as exc:
        raise RuntimeError(f"regrouping faces needs scikit-learn: {INSTALL}") from exc
    rows = store.movable_faces(session)
    if not rows:
        return {"moved": 0, "people": len(store.list_people(session)),
                "removed": store.drop_empty_people(session)}
    vectors = np.stack([store.unpack(blob) for _, _, blob in rows])
    labels = DBSCAN(eps=threshold, min_samples=1, metric="euclidean").fit_predict(vectors)
    named = _named_centroids(session)
    moves: dict[int, int] = {}
    taken: set[int] = set()
    clusters: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        clusters.setdefault(int(label), []).append(index)
    # largest clusters choose first, so a person's id stays with the bulk of their faces
    for members in sorted(clusters.values(), key=len, reverse=True):
        centre = vectors[members].mean(axis=0)
        person_id = _nearest_named(named, centre, threshold)
        if person_id is None:
            votes = Counter(rows[i][1] for i in members if rows[i][1] is not None)
            person_id = next((p for p, _ in votes.most_common() if p not in taken), None)
        if person_id is None:
            person_id = store.new_person(session).id
        taken.add(person_id)
        moves.update({rows[i][0]: person_id for i in members})
    before = {face_id: person_id for face_id, person_id, _ in rows}
    photos = store.move_machine_faces(session, moves)
    changed = [f for f, p in moves.items() if before.get(f) != p]
    store.refresh_centroids(session, set(moves.values()) | {p for p in before.values() if p})
    removed = store.drop_empty_people(session)
    store.refresh_words(session, photos)
    return {"moved": len(changed), "people": len(store.list_people(session)), "removed": removed}


def _named_centroids(session: Session) -> list[tuple[int, Any]]:
    rows = session.execute(select(Person.id, Person.centroid).where(
        Person.name.is_not(None), Person.centroid.is_not(None))).all()
    return [(person_id, store.unpack(blob)) for person_id, blob in rows if blob is not None]


def _nearest_named(named: list[tuple[int, Any]], centre: Any, threshold: float) -> int | None:
    import numpy as np

    best = min(named, key=lambda item: float(np.linalg.norm(item[1] - centre)), default=None)
    if best is None or float(np.linalg.norm(best[1] - centre)) > threshold:
        return None
    return best[0]


def faces_of(session: Session, face_ids: Sequence[int]) -> list[Face]:
    return list(session.scalars(select(Face).where(Face.id.in_(list(face_ids)))))
