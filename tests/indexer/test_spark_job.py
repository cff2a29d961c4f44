"""The Spark job in local[2] on the real sample photos with the real tagger, then `capdex import`
into SQLite and PostgreSQL, then search. One Spark session and one job run for the module."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from capdex.api.cli import app
from capdex.embedder import Embedder
from capdex.samples import SAMPLES, write_samples
from capdex.settings import Settings
from capdex.indexer.human import set_human_caption
from capdex.indexer.importer import ParquetImportError, import_parquet
from capdex.indexer.spark_job import COLUMNS, run_spark_index
from capdex.search.engine import SearchEngine
from capdex.store import repo
from capdex.store.db import Database
from capdex.store.models import Caption, Photo, Vector

N = len(SAMPLES)  # sample photos written, all readable
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    if not os.environ.get("CI"):  # CI installs the spark extra and must run these tests
        pytest.importorskip("pyspark")
    from capdex.indexer.spark_job import spark_session

    session = spark_session("local[2]", app_name="capdex-tests")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def spark_result(spark: object, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(photo folder, Parquet result) of one spark-index run over the samples + a broken file."""
    root = tmp_path_factory.mktemp("spark")
    photos = root / "photos"
    write_samples(photos)
    (photos / "broken.jpg").write_bytes(b"this is not a jpeg")
    output = root / "out.parquet"
    settings = Settings(data_dir=root / "job-data")  # the real default captioner: tagger
    summary = run_spark_index([photos], output, settings, spark=spark, partitions=2)
    assert summary.files == len(list(photos.iterdir()))
    assert summary.failed == 1 and summary.captioned == summary.files - 1
    return photos, output


def _settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


def test_the_job_captions_every_photo_and_makes_a_broken_file_an_error_row(
    spark_result: tuple[Path, Path], embedder: Embedder
) -> None:
    photos, output = spark_result
    frame = pd.read_parquet(output)
    assert list(frame.columns) == COLUMNS
    assert sorted(frame["path"]) == sorted(str(p) for p in photos.iterdir())
    broken = frame[frame["path"].str.endswith("broken.jpg")].iloc[0]
    assert "not a recognised image" in broken["error"] and pd.isna(broken["caption"])
    good = frame[frame["error"].isna()]
    assert set(good["captioner"]) == {"tagger"} and set(good["embedder"]) == {embedder.name}
    assert good["content_hash"].str.len().eq(64).all()
    vectors = np.stack(good["vector"].to_list())
    assert vectors.shape == (len(good), embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    cat = good[good["path"].str.endswith("chelsea-the-cat.png")].iloc[0]
    assert "cat" in cat["caption"] and cat["width"] == 451


def test_import_then_search_finds_the_cat(spark_result: tuple[Path, Path], tmp_path: Path,
                                          database_url: str, embedder: Embedder) -> None:
    photos, output = spark_result
    settings = _settings(tmp_path, database_url)
    db = Database(settings.db_url)
    summary = import_parquet(settings, db, output, embedder=embedder)
    assert (summary.new, summary.failed, summary.reembedded) == (N, 1, 0)
    counts = repo.counts(db, embedder.name)
    assert (counts.photos, counts.vectors, counts.errors) == (N, N, 1)
    hits = SearchEngine(settings, db, embedder).search("a cat", k=3).results
    assert hits[0].path == str(photos / "chelsea-the-cat.png")
    db.close()


def test_import_is_idempotent_and_a_human_caption_wins(
    spark_result: tuple[Path, Path], tmp_path: Path, database_url: str, embedder: Embedder
) -> None:
    photos, output = spark_result
    settings = _settings(tmp_path, database_url)
    db = Database(settings.db_url)
    import_parquet(settings, db, output, embedder=embedder)
    with db.read() as session:
        cat = session.query(Photo).join(Photo.files).filter_by(
            path=str(photos / "chelsea-the-cat.png")).one()
    set_human_caption(db, embedder, cat.id, "a sleeping dog on a sofa").apply_to(
        SearchEngine(settings, db, embedder).index, db)

    again = import_parquet(settings, db, output, embedder=embedder)
    assert (again.new, again.linked, again.unchanged) == (0, 0, N)
    counts = repo.counts(db, embedder.name)
    assert (counts.photos, counts.files, counts.vectors, counts.captions) == (N, N, N, N + 1)
    with db.read() as session:
        captions = session.query(Caption).filter_by(photo_id=cat.id).all()
        assert repo.effective_caption(captions).text == "a sleeping dog on a sofa"
    hits = SearchEngine(settings, db, embedder).search("a dog", k=1).results
    assert hits[0].id == cat.id and hits[0].caption == "a sleeping dog on a sofa"
    db.close()


def test_copies_link_to_the_known_photo_and_local_runs_mix(
    spark_result: tuple[Path, Path], tmp_path: Path, embedder: Embedder
) -> None:
    """A photo a local `index` run already has only gains a file from the import; a local run
    after the import finds everything unchanged."""
    from capdex.indexer.pipeline import Indexer

    photos, output = spark_result
    settings = Settings(data_dir=tmp_path / "data", captioner="tagger")
    local = tmp_path / "local"
    local.mkdir()
    shutil.copy2(photos / "chelsea-the-cat.png", local / "cat-copy.png")
    db = Database(settings.db_url)
    Indexer(settings, db, embedder=embedder).run([local])
    summary = import_parquet(settings, db, output, embedder=embedder)
    assert (summary.new, summary.linked) == (N - 1, 1)
    with db.read() as session:
        cat = session.query(Photo).join(Photo.files).filter_by(path=str(local / "cat-copy.png")).one()
        assert sorted(f.path for f in cat.files) == sorted(
            [str(local / "cat-copy.png"), str(photos / "chelsea-the-cat.png")])
    rerun = Indexer(settings, db, embedder=embedder).run([photos, local])
    assert (rerun.new, rerun.changed, rerun.removed, rerun.unchanged) == (0, 0, 0, N + 1)
    db.close()


def test_vectors_of_another_embedder_are_replaced_by_the_stores(
    spark_result: tuple[Path, Path], tmp_path: Path, embedder: Embedder
) -> None:
    photos, output = spark_result
    frame = pd.read_parquet(output)
    frame["embedder"] = frame["embedder"].where(frame["error"].notna(), "some-other-model")
    frame["vector"] = [None if v is None else [1.0, 0.0] for v in frame["vector"]]
    other = tmp_path / "other.parquet"
    frame.to_parquet(other)
    settings = Settings(data_dir=tmp_path / "data")
    db = Database(settings.db_url)
    summary = import_parquet(settings, db, other, embedder=embedder)
    assert (summary.new, summary.reembedded) == (N, N)
    with db.read() as session:
        assert {e for (e,) in session.query(Vector.embedder).distinct()} == {embedder.name}
    hits = SearchEngine(settings, db, embedder).search("a cat", k=1).results
    assert hits[0].path == str(photos / "chelsea-the-cat.png")
    db.close()


def test_import_on_the_command_line(spark_result: tuple[Path, Path], tmp_path: Path) -> None:
    _, output = spark_result
    runner = CliRunner()
    data = tmp_path / "data"
    result = runner.invoke(app, ["import", str(output), "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert f"{N} new" in result.output and "1 failed" in result.output
    bad = runner.invoke(app, ["import", str(tmp_path / "nope.parquet"), "--data-dir", str(data)])
    assert bad.exit_code == 2 and "no such file" in bad.output


def test_a_parquet_file_of_something_else_is_refused(tmp_path: Path) -> None:
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "x.parquet")
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(ParquetImportError, match="not a spark-index result"):
        import_parquet(settings, Database(settings.db_url), tmp_path / "x.parquet")


def test_a_file_an_executor_cannot_find_is_an_error_row_naming_shared_storage(
    tmp_path: Path, embedder: Embedder
) -> None:
    """The driver lists paths; an executor that does not see them (no shared mount) records an
    error row for each, and the job goes on."""
    from capdex.indexer.spark_job import process_batch
    from capdex.indexer.stages import CaptionStage

    class NeverCalled:
        name, version, input_size = "never", "1", None

        def caption_batch(self, images: list[object]) -> list[str]:
            raise AssertionError("nothing readable to caption")

    settings = Settings(data_dir=tmp_path / "data")
    rows = process_batch([{"path": str(tmp_path / "gone.jpg"), "size": 10, "mtime_ns": 1}],
                         settings, [CaptionStage(settings, NeverCalled())], embedder)
    assert rows[0]["caption"] is None
    assert "not found on Spark executor host" in rows[0]["error"]
    assert "storage every executor reads" in rows[0]["error"]


def test_an_executor_batch_captions_measures_and_embeds_a_readable_photo(
    tmp_path: Path, embedder: Embedder, colour_captioner: type
) -> None:
    """What each executor runs (`process_batch`), without Spark: one row per file, with the
    caption, the size and the caption's vector."""
    from capdex.indexer.spark_job import process_batch
    from capdex.indexer.stages import CaptionStage
    from tests.conftest import write_colour_photo

    settings = Settings(data_dir=tmp_path / "data")
    photo = write_colour_photo(tmp_path / "red.jpg", "red", size=(64, 48))
    record = {"path": str(photo), "size": photo.stat().st_size,
              "mtime_ns": photo.stat().st_mtime_ns}
    rows = process_batch([record], settings, [CaptionStage(settings, colour_captioner(settings))],
                         embedder)
    assert rows[0]["error"] is None
    assert (rows[0]["caption"], rows[0]["width"], rows[0]["height"]) == ("a plain red picture", 64, 48)
    assert len(rows[0]["vector"]) == embedder.dim


def test_a_failed_job_says_why_in_one_line() -> None:
    from capdex.indexer.spark_job import job_failure

    wrapped = ("An error occurred while calling o68.parquet.\n: org.apache.spark.SparkException: "
               "Job aborted due to stage failure: Task 0 in stage 0.0 failed 1 times, most recent "
               "failure: Lost task 0.0 (TID 0) (127.0.0.1 executor 0): "
               "org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
               '  File "/x/worker.py", line 1, in main\n'
               "captioners.base.ModelNotInstalledError: model 'blip-base' is not installed\n"
               "\tat org.apache.spark.api.python.BasePythonRunner.handlePythonException\n")
    assert job_failure(wrapped) == ("captioners.base.ModelNotInstalledError: model 'blip-base' "
                                    "is not installed")
    jvm = ("An error occurred while calling o68.parquet.\nLost task 0.0 in stage 0.0: "
           'java.io.IOException: Cannot run program "/nope/python": error=2, No such file\n')
    assert job_failure(jvm).startswith('Cannot run program "/nope/python"')
    assert "CAPDEX_SPARK_PYTHON" in job_failure(jvm)
    assert "CAPDEX_SPARK_PYTHON" in job_failure("x\nModuleNotFoundError: No module named 'pyarrow'")


def test_an_unreachable_master_is_refused_at_once(tmp_path: Path) -> None:
    import socket

    from capdex.indexer.spark_job import SparkJobError, check_master

    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SparkJobError, match=f"cannot reach the Spark master spark://127.0.0.1:{port}"):
        check_master(f"spark://127.0.0.1:{port}", timeout=2)
    check_master("local[2]")  # nothing to reach
    result = CliRunner().invoke(app, ["spark-index", str(tmp_path), "--output", str(tmp_path / "o"),
                                      "--master", f"spark://127.0.0.1:{port}"])
    assert result.exit_code == 2 and "cannot reach the Spark master" in result.output


def test_the_code_zip_declares_the_builtin_captioners() -> None:
    """Executors import capdex from the zip, without its installed metadata: the zip's own
    dist-info lets the registry find the built-in captioners' entry points there."""
    from importlib.metadata import distributions

    from capdex.indexer.spark_job import code_zip
    from tests.captioners.conftest import BUILTIN_MODELS

    (shipped,) = distributions(path=[str(code_zip())])
    declared = {ep.name: ep.value for ep in shipped.entry_points
                if ep.group == "capdex.captioners"}
    assert BUILTIN_MODELS <= set(declared)
    assert declared["tagger"] == "capdex.captioners.tagger:TaggerCaptioner"
