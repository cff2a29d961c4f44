"""Indexer.recaption_photos: a person asks for a new caption of chosen photos with a chosen model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from filelock import FileLock
from PIL import Image

from capdex.embedder import Embedder
from capdex.settings import Settings
from capdex.indexer.pipeline import Indexer, IndexerError
from capdex.search.engine import SearchEngine
from capdex.store.db import Database
from capdex.store.models import HUMAN, Caption
from tests.conftest import ColourCaptioner


class ShoutingCaptioner(ColourCaptioner):
    name = "test-shouting"
    version = "7"

    def caption_batch(self, images: Sequence[Image.Image]) -> list[str]:
        return [t.upper() for t in super().caption_batch(images)]


@pytest.fixture
def indexed(settings: Settings, colour_folder: Path, embedder: Embedder, colour_captioner) -> Database:
    db = Database(settings.db_url)
    Indexer(settings, db, embedder=embedder).run([colour_folder])
    return db


def photo_id(settings: Settings, db: Database, embedder: Embedder, query: str) -> int:
    return SearchEngine(settings, db, embedder).search(query, k=1).results[0].id


def captions(db: Database, pid: int) -> dict[str, Caption]:
    with db.read() as session:
        return {c.source: c for c in session.query(Caption).filter_by(photo_id=pid)}


def test_recaptions_only_the_chosen_photos(settings: Settings, indexed: Database, embedder: Embedder) -> None:
    red = photo_id(settings, indexed, embedder, "red")
    summary = Indexer(settings, indexed, embedder=embedder,
                      captioner=ShoutingCaptioner(settings)).recaption_photos([red])
    assert summary.recaptioned == 1 and summary.failed == 0
    machine = captions(indexed, red)["machine"]
    assert (machine.text, machine.captioner, machine.captioner_version) == (
        "A PLAIN RED PICTURE", "test-shouting", "7")
    blue = photo_id(settings, indexed, embedder, "blue")
    assert captions(indexed, blue)["machine"].captioner == "test-colour"


def test_same_model_again_still_recaptions(settings: Settings, indexed: Database, embedder: Embedder) -> None:
    red = photo_id(settings, indexed, embedder, "red")
    ColourCaptioner.calls = []
    summary = Indexer(settings, indexed, embedder=embedder).recaption_photos([red])
    assert summary.recaptioned == 1 and ColourCaptioner.captioned() == 1


def test_human_caption_keeps_speaking_for_the_photo(settings: Settings, indexed: Database, embedder: Embedder) -> None:
    red = photo_id(settings, indexed, embedder, "red")
    with indexed.session() as session:
        session.add(Caption(photo_id=red, text="grandma's birthday cake", source=HUMAN))
    Indexer(settings, indexed, embedder=embedder,
            captioner=ShoutingCaptioner(settings)).recaption_photos([red])
    stored = captions(indexed, red)
    assert stored["machine"].text == "A PLAIN RED PICTURE" and stored["human"].text == "grandma's birthday cake"


def test_unknown_or_vanished_photos_are_skipped(settings: Settings, indexed: Database, embedder: Embedder,
                                                colour_folder: Path) -> None:
    red = photo_id(settings, indexed, embedder, "red")
    (colour_folder / "red.jpg").unlink()
    summary = Indexer(settings, indexed, embedder=embedder).recaption_photos([red, 999_999])
    assert summary.recaptioned == 0 and summary.failed == 0


def test_refused_while_another_run_holds_the_data_dir(settings: Settings, indexed: Database, embedder: Embedder) -> None:
    with FileLock(str(settings.data_dir / "index.lock")), pytest.raises(IndexerError, match="another"):
        Indexer(settings, indexed, embedder=embedder).recaption_photos([1])
