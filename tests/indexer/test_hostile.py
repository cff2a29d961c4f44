"""A run over a folder of hostile and odd files: it never stops, and every file is accounted for."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from capdex.api.cli import app as cli
from capdex.paths import to_store
from capdex.settings import Settings
from capdex.captioners import Captioner, registry
from capdex.indexer.pipeline import Indexer
from capdex.store.db import Database
from capdex.store.models import Caption, File, IndexingError, Photo
from tests.odd_files import layout, two_tone, write_hostile, write_odd_but_valid


class LayoutCaptioner(Captioner):
    """Says which colour is above which, so a sideways picture gets a different caption."""

    name = "test-layout"
    batch_size = 4
    input_size = 64

    def caption_batch(self, images: Sequence[Image.Image]) -> list[str]:
        return [layout(image) for image in images]


@pytest.fixture
def library(tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    root = tmp_path / "photos"
    odd = write_odd_but_valid(root / "odd")
    hostile = write_hostile(root / "hostile")
    return root, odd, hostile


@pytest.fixture
def indexer(data_dir: Path, embedder):
    registry.register(LayoutCaptioner)
    settings = Settings(data_dir=data_dir, captioner="test-layout")
    db = Database(settings.db_url)
    return lambda: Indexer(settings, db, embedder=embedder)


def captions_by_path(db: Database) -> dict[str, str]:
    with db.read() as session:
        rows = session.execute(select(File.path, Caption.text)
                               .join(Caption, Caption.photo_id == File.photo_id)).all()
    return dict(rows)


def errors_by_path(db: Database) -> dict[str, str]:
    with db.read() as session:
        return dict(session.execute(select(IndexingError.path, IndexingError.reason)).all())


@pytest.mark.slow
def test_every_file_is_indexed_or_recorded_and_the_run_goes_on(library, indexer, data_dir) -> None:
    root, odd, hostile = library
    run = indexer()
    summary = run.run([root])
    assert summary.new == 14 and summary.failed == len(hostile) == 8

    captions = captions_by_path(run.db)
    for name, expected in odd.items():
        assert captions[to_store(str(root / "odd" / name))] == expected, name
    assert to_store(str(root / "odd" / os.fsdecode(b"caf\xe9-latin1.jpg"))).endswith("caf\\xe9-latin1.jpg")
    assert len(captions) == 14  # grey16.png too, whatever its caption

    errors = errors_by_path(run.db)
    assert set(errors) == {str(root / "hostile" / name) for name in hostile}
    for name, fragment in hostile.items():
        assert fragment in errors[str(root / "hostile" / name)], name


@pytest.mark.slow
def test_errors_are_listed_counted_kept_and_retried_once_fixed(library, indexer, data_dir) -> None:
    root, _, hostile = library
    indexer().run([root])
    runner = CliRunner()
    listed = json.loads(runner.invoke(cli, ["errors", "--json", "--data-dir", str(data_dir)]).stdout)
    assert len(listed["errors"]) == 8 and all(e["reason"] for e in listed["errors"])
    status = json.loads(runner.invoke(cli, ["status", "--json", "--data-dir", str(data_dir)]).stdout)
    assert status["errors"] == 8 and status["photos"] == 14
    human = runner.invoke(cli, ["errors", "--data-dir", str(data_dir)]).stdout
    assert "truncated.jpg" in human and "decompression bomb" in human

    again = indexer().run([root])
    assert again.new == 0 and again.failed == 8 and not again.failures  # known, not retried

    fixed = root / "hostile" / "truncated.jpg"
    two_tone("yellow", "green", seed=99).save(fixed, quality=90)
    (root / "hostile" / "broken-link.jpg").unlink()
    run = indexer()
    summary = run.run([root])
    assert summary.new == 1 and summary.failed == 6
    assert captions_by_path(run.db)[str(fixed)] == "yellow over green"
    assert str(fixed) not in errors_by_path(run.db)
    assert str(root / "hostile" / "broken-link.jpg") not in errors_by_path(run.db)


def test_retry_failed_retries_unchanged_failures(tmp_path: Path, indexer) -> None:
    from tests.odd_files import bomb_png

    root = tmp_path / "photos"
    root.mkdir()
    (root / "big.png").write_bytes(bomb_png(12_001, 10_000))
    run = indexer()
    assert run.run([root]).failed == 1
    run.settings = run.settings.model_copy(update={"max_image_pixels": 200_000_000})
    assert run.run([root]).failures == []  # unchanged: not retried
    run.retry_failed = True
    assert run.run([root]).failures  # retried (and still broken: its pixel data is a stub)


def test_a_data_dir_inside_the_photo_folder_is_not_indexed(tmp_path: Path, embedder, colour_captioner) -> None:
    from tests.conftest import write_colour_photo

    root = tmp_path / "photos"
    write_colour_photo(root / "a.jpg", "red")
    settings = Settings(data_dir=root / "capdex-data", captioner="test-colour")
    db = Database(settings.db_url)
    Indexer(settings, db, embedder=embedder).run([root])
    summary = Indexer(settings, db, embedder=embedder).run([root])  # thumbnails (.webp) exist now
    assert summary.new == 0 and summary.scanned == 1
    with db.read() as session:
        assert len(session.scalars(select(Photo.id)).all()) == 1
