"""Faces and people: the store's rules for them (issue 14).

- A face belongs to a photo; a person groups faces. `assigned_by` says who put a face with its
  person: the machine (grouping may move it) or a human (the machine never moves it again).
- A new faces-stage version finds faces again; a face's person and who assigned it (or that it
  was forgotten) carry over to the new face in the same place, so re-indexing loses no work.
- Forgetting a person drops its faces' descriptors (privacy) and keeps them out of grouping.
- Named people's names, and how many faces a photo shows, are the photo's words of kind
  "people", which keyword search finds (`capdex.store.words`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from capdex.store import words
from capdex.store.models import HUMAN, MACHINE, Face, FaceScan, File, Person, utcnow

KIND = "people"
#: Words for how many faces a photo shows; "people" too for one, so a search for people finds
#: every photo with someone in it (keyword words: "people" does not stem to "person").
_COUNTS = {1: "a person, people", 2: "two people", 3: "three people"}
#: Boxes overlapping this much (intersection over union) are one face seen by two versions.
SAME_PLACE = 0.5


class PeopleError(ValueError):
    """A request about people or faces that cannot be done; the message says why."""


class NotFound(PeopleError):
    """No person or face with that id."""


@dataclass(frozen=True)
class PersonSummary:
    id: int
    name: str | None
    faces: int
    photos: int
    #: A face to show for this person (its best-scored one).
    cover_face: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "faces": self.faces, "photos": self.photos,
                "cover_face": self.cover_face}


def pack(descriptor: Sequence[float] | None) -> bytes | None:
    """A descriptor as float32 bytes (None stays None)."""
    import numpy as np

    return None if descriptor is None else np.asarray(descriptor, dtype=np.float32).tobytes()


def unpack(blob: bytes) -> Any:
    import numpy as np

    return np.frombuffer(blob, dtype=np.float32)


def stale_photos(session: Session, version: str) -> list[int]:
    """Photos with a file that the faces stage of `version` has not looked at, in id order."""
    done = select(FaceScan.photo_id).where(FaceScan.version == version)
    return list(session.scalars(select(File.photo_id).distinct()
                                .where(File.photo_id.not_in(done)).order_by(File.photo_id)))


def replace_faces(session: Session, photo_id: int, found: Sequence[dict[str, Any]],
                  version: str) -> list[Face]:
    """Store what the faces stage of `version` found in a photo (`FoundFace.as_dict()`s),
    replacing an older version's faces. Returns the new faces (for grouping)."""
    old = list(session.scalars(select(Face).where(Face.photo_id == photo_id)))
    scan = session.get(FaceScan, photo_id)
    if scan is not None and scan.version == version:
        return []  # already stored (a retried commit, an import of the same results)
    added = []
    matched = []
    for item in found:
        x, y, w, h = (float(v) for v in item["box"])
        face = Face(photo_id=photo_id, box_x=x, box_y=y, box_w=w, box_h=h,
                    score=float(item["score"]), descriptor=pack(item.get("descriptor")),
                    person_id=None, assigned_by=MACHINE, version=version)
        twin = _same_place(face, [f for f in old if f not in matched])
        if twin is not None:  # the same face: its person (and who chose it) carries over
            face.person_id, face.assigned_by = twin.person_id, twin.assigned_by
            if twin.descriptor is None:
                face.descriptor = None  # forgotten stays forgotten
            matched.append(twin)
        added.append(face)
    for face in old:  # a human's face no new detection matches stays: nothing a person did is lost
        if face.assigned_by != HUMAN or face in matched:
            session.delete(face)
    session.add_all(added)
    if scan is None:
        session.add(FaceScan(photo_id=photo_id, version=version, faces=len(found)))
    else:
        scan.version, scan.faces, scan.created_at = version, len(found), utcnow()
    session.flush()
    touched = {f.person_id for f in old if f.person_id} | {f.person_id for f in added
                                                           if f.person_id}
    refresh_centroids(session, touched)
    refresh_words(session, [photo_id])
    return added


def _box_iou(a: Face, b: Face) -> float:
    left, top = max(a.box_x, b.box_x), max(a.box_y, b.box_y)
    right = min(a.box_x + a.box_w, b.box_x + b.box_w)
    bottom = min(a.box_y + a.box_h, b.box_y + b.box_h)
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = a.box_w * a.box_h + b.box_w * b.box_h - inter
    return inter / union if union > 0 else 0.0


def _same_place(face: Face, candidates: Iterable[Face]) -> Face | None:
    best = max(candidates, key=lambda c: _box_iou(face, c), default=None)
    return best if best is not None and _box_iou(face, best) >= SAME_PLACE else None


# --- grouping support (the algorithm is capdex.indexer.people) -----------------------------------
def centroids(session: Session) -> tuple[list[int], list[bytes]]:
    """(person ids, centroids) of the people that have one."""
    rows = session.execute(select(Person.id, Person.centroid)
                           .where(Person.centroid.is_not(None)).order_by(Person.id)).all()
    return [r[0] for r in rows], [r[1] for r in rows if r[1] is not None]


def new_person(session: Session, name: str | None = None) -> Person:
    person = Person(name=name)
    session.add(person)
    session.flush()
    return person


def machine_assign(session: Session, faces: Iterable[Face], person_id: int | None) -> None:
    """The machine puts these faces with a person; a human's face is never moved."""
    for face in faces:
        if face.assigned_by != HUMAN:
            face.person_id = person_id
    session.flush()


def movable_faces(session: Session) -> list[tuple[int, int | None, bytes]]:
    """(face id, person id, descriptor) of every face the machine may move."""
    rows = session.execute(select(Face.id, Face.person_id, Face.descriptor)
                           .where(Face.assigned_by == MACHINE, Face.descriptor.is_not(None))
                           .order_by(Face.id)).all()
    return [(r[0], r[1], r[2]) for r in rows if r[2] is not None]


def move_machine_faces(session: Session, moves: dict[int, int]) -> set[int]:
    """Apply {face id: person id} to machine-assigned faces; returns the photos touched."""
    photos: set[int] = set()
    for face_id, person_id in moves.items():
        face = session.get(Face, face_id)
        if face is not None and face.assigned_by == MACHINE and face.person_id != person_id:
            face.person_id = person_id
            photos.add(face.photo_id)
    session.flush()
    return photos


def drop_empty_people(session: Session) -> int:
    """Delete unnamed people with no face left; named ones stay (a name is a person's work)."""
    used = select(Face.person_id).where(Face.person_id.is_not(None))
    empty = list(session.scalars(select(Person.id).where(Person.id.not_in(used),
                                                         Person.name.is_(None))))
    if empty:
        session.execute(delete(Person).where(Person.id.in_(empty)))
    return len(empty)


def refresh_centroids(session: Session, person_ids: Iterable[int | None]) -> None:
    """Make each person's centroid the mean of its faces' descriptors (None when it has none)."""
    import numpy as np

    for person_id in {p for p in person_ids if p}:
        person = session.get(Person, person_id)
        if person is None:
            continue
        blobs = list(session.scalars(select(Face.descriptor).where(
            Face.person_id == person_id, Face.descriptor.is_not(None))))
        vectors = [unpack(b) for b in blobs if b is not None]
        person.centroid = (np.mean(vectors, axis=0).astype(np.float32).tobytes()
                           if vectors else None)
    session.flush()


def refresh_words(session: Session, photo_ids: Iterable[int]) -> None:
    """Make the photos' "people" words: named people in them, then how many faces they show."""
    for photo_id in set(photo_ids):
        rows = session.execute(select(Face.id, Person.name).outerjoin(
            Person, Person.id == Face.person_id).where(Face.photo_id == photo_id)
            .order_by(Face.score.desc(), Face.id)).all()
        names = list(dict.fromkeys(name for _, name in rows if name))
        count = len(rows)
        counted = _COUNTS.get(count, "a group of people group photo") if count else ""
        words.set_words(session, photo_id, KIND, ", ".join([*names, counted]) if count else "")


def _photos_of_people(session: Session, person_ids: Iterable[int]) -> set[int]:
    ids = list(person_ids)
    return set(session.scalars(select(Face.photo_id).where(Face.person_id.in_(ids))))


# --- what people do ------------------------------------------------------------------------------
def person(session: Session, person_id: int) -> Person:
    found = session.get(Person, person_id)
    if found is None:
        raise NotFound(f"no person with id {person_id}")
    return found


def face(session: Session, face_id: int) -> Face:
    found = session.get(Face, face_id)
    if found is None:
        raise NotFound(f"no face with id {face_id}")
    return found


def name_person(session: Session, person_id: int, name: str | None) -> Person:
    """Name a person ("" or None: unnamed again); their photos' words follow at once."""
    found = person(session, person_id)
    name = " ".join((name or "").split()) or None
    if name is not None and len(name) > 200:
        raise PeopleError("name: longer than 200 characters")
    found.name = name
    session.flush()
    refresh_words(session, _photos_of_people(session, [person_id]))
    return found


def merge(session: Session, person_id: int, into: int) -> Person:
    """Move every face of `person_id` to `into` (who a human assigned stays human) and delete
    `person_id`; `into` keeps its name, or takes the other's when it had none."""
    if person_id == into:
        raise PeopleError("a person cannot be merged into themselves")
    source, target = person(session, person_id), person(session, into)
    photos = _photos_of_people(session, [person_id])
    session.execute(update(Face).where(Face.person_id == person_id).values(person_id=into))
    if target.name is None:
        target.name = source.name
    session.delete(source)
    session.flush()
    refresh_centroids(session, [into])
    refresh_words(session, photos)
    return target


def assign_face(session: Session, face_id: int, person_id: int | None) -> Face:
    """A human puts a face with a person (None: with nobody, "not this person"); the machine
    never moves it again."""
    found = face(session, face_id)
    if person_id is not None:
        person(session, person_id)
    before = found.person_id
    found.person_id, found.assigned_by = person_id, HUMAN
    session.flush()
    refresh_centroids(session, [before, person_id])
    refresh_words(session, [found.photo_id])
    return found


def forget(session: Session, person_id: int) -> int:
    """Delete a person and drop their faces' descriptors (privacy): the faces stay as boxes
    with nobody, marked by a human so no grouping takes them up. Returns the faces forgotten."""
    person(session, person_id)
    photos = _photos_of_people(session, [person_id])
    count = session.scalar(select(func.count(Face.id)).where(Face.person_id == person_id)) or 0
    session.execute(update(Face).where(Face.person_id == person_id).values(
        descriptor=None, person_id=None, assigned_by=HUMAN))
    session.execute(delete(Person).where(Person.id == person_id))
    session.flush()
    refresh_words(session, photos)
    return int(count)


# --- reading -------------------------------------------------------------------------------------
def list_people(session: Session) -> list[PersonSummary]:
    """Every person with a face or a name, most faces first."""
    counts = (select(Face.person_id, func.count(Face.id).label("faces"),
                     func.count(func.distinct(Face.photo_id)).label("photos"),
                     func.max(Face.score).label("best"))
              .where(Face.person_id.is_not(None)).group_by(Face.person_id).subquery())
    rows = session.execute(select(Person.id, Person.name, counts.c.faces, counts.c.photos)
                           .outerjoin(counts, counts.c.person_id == Person.id)
                           .where(or_(counts.c.faces > 0, Person.name.is_not(None)))
                           .order_by(func.coalesce(counts.c.faces, 0).desc(), Person.id)).all()
    covers = _covers(session, [r[0] for r in rows])
    return [PersonSummary(r[0], r[1], int(r[2] or 0), int(r[3] or 0), covers.get(r[0]))
            for r in rows]


def _covers(session: Session, person_ids: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for start in range(0, len(person_ids), 500):
        rows = session.execute(select(Face.person_id, Face.id).where(
            Face.person_id.in_(person_ids[start : start + 500]))
            .order_by(Face.person_id, Face.score.desc(), Face.id))
        for person_id, face_id in rows:
            if person_id is not None:
                out.setdefault(person_id, face_id)
    return out


def summary(session: Session, person_id: int) -> PersonSummary:
    found = person(session, person_id)
    for item in list_people(session):
        if item.id == person_id:
            return item
    return PersonSummary(found.id, found.name, 0, 0)


def photo_ids_of(session: Session, person_id: int) -> list[int]:
    """The photos (with a file) a person's faces are in, in id order."""
    return list(session.scalars(select(Face.photo_id).distinct().where(
        Face.person_id == person_id, Face.photo_id.in_(select(File.photo_id)))
        .order_by(Face.photo_id)))


def faces_in(session: Session, photo_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """{photo id: [face as JSON-ready data]} (the box, score, person and who assigned it)."""
    out: dict[int, list[dict[str, Any]]] = {}
    ids = list(photo_ids)
    for start in range(0, len(ids), 500):
        rows = session.execute(select(Face, Person.name).outerjoin(
            Person, Person.id == Face.person_id).where(Face.photo_id.in_(ids[start : start + 500]))
            .order_by(Face.photo_id, Face.box_x, Face.id)).all()
        for item, name in rows:
            out.setdefault(item.photo_id, []).append(face_dict(item, name))
    return out


def face_dict(item: Face, name: str | None) -> dict[str, Any]:
    return {"id": item.id, "box": [item.box_x, item.box_y, item.box_w, item.box_h],
            "score": item.score, "person_id": item.person_id, "person_name": name,
            "assigned_by": item.assigned_by}


def resolve(session: Session, person: int | str) -> list[int]:
    """The ids of the people `person` means: an id, or a name (case-insensitive; a part of a
    name, e.g. "obama", when no name is exactly it)."""
    text = " ".join(str(person).split())
    if text.isdigit():
        return [int(text)] if session.get(Person, int(text)) is not None else []
    if not text:
        return []
    exact = list(session.scalars(select(Person.id).where(
        func.lower(Person.name) == text.lower()).order_by(Person.id)))
    return exact or list(session.scalars(select(Person.id).where(
        func.lower(Person.name).contains(text.lower(), autoescape=True)).order_by(Person.id)))


def person_photos(person: str) -> Select[Any]:
    """A select of the ids of photos showing `person` (as `resolve` reads it), for filters."""
    text = " ".join(person.split())
    if text.isdigit():
        return select(Face.photo_id).where(Face.person_id == int(text))
    exact = select(Person.id).where(func.lower(Person.name) == text.lower())
    part = select(Person.id).where(func.lower(Person.name).contains(text.lower(), autoescape=True))
    return select(Face.photo_id).where(or_(Face.person_id.in_(exact), and_(
        ~exact.exists(), Face.person_id.in_(part))))
