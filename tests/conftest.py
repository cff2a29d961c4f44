"""Shared fixtures: a temp data dir per test, a fake colour captioner, the real embedder."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from capdex.embedder import Embedder
from capdex.settings import Settings
from capdex.captioners import Captioner, registry

if TYPE_CHECKING:
    from capdex.captioners.ocr import TextBoxes

# The stub chat LLM (`chat_stub`): one server for the session, for every module that asks.
pytest_plugins = ["tests.llm.fixtures"]

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 40, 220),
    "yellow": (240, 230, 40),
    "black": (5, 5, 5),
    "white": (250, 250, 250),
}


class ColourCaptioner(Captioner):
    """Captions an image by its average colour; counts what it was asked to caption."""

    name = "test-colour"
    version = "1"
    batch_size = 4
    input_size = 64
    calls: list[int] = []

    def caption_batch(self, images: Sequence[Image.Image]) -> list[str]:
        type(self).calls.append(len(images))
        out = []
        for image in images:
            mean = np.asarray(image.convert("RGB"), dtype=np.float32).reshape(-1, 3).mean(0)
            name = min(COLOURS, key=lambda c: float(np.sum((np.array(COLOURS[c]) - mean) ** 2)))
            out.append(f"a plain {name} picture")
        return out

    @classmethod
    def captioned(cls) -> int:
        return sum(cls.calls)


@pytest.fixture(scope="session")
def embedder_onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX export of the embedder for the whole session (each data dir would redo it)."""
    return tmp_path_factory.mktemp("embedders")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                          embedder_onnx_dir: Path) -> Iterator[None]:
    """No test reads the user's data dir, settings or the network."""
    for var in ("CAPDEX_DATA_DIR", "CAPDEX_DATABASE_URL", "CAPDEX_CAPTIONER", "CAPDEX_EMBEDDER",
                "CAPDEX_EMBEDDER_BACKEND",
                "CAPDEX_API_KEY", "CAPDEX_PHOTO_ROOTS", "CAPDEX_CORS_ORIGINS", "CAPDEX_HOST",
                "CAPDEX_SPARK_MASTER", "CAPDEX_SPARK_PYTHON", "CAPDEX_SPARK_EXECUTOR_DATA_DIR",
                "CAPDEX_LLM", "CAPDEX_LLM_ENDPOINT", "CAPDEX_LLM_MODEL", "CAPDEX_LLM_API_KEY",
                "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "CAPDEX_OPENAI_API_KEY",
                "CAPDEX_ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("CAPDEX_EMBEDDER_ONNX_DIR", str(embedder_onnx_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    yield
    registry.reset()


@pytest.fixture
def colour_captioner() -> type[ColourCaptioner]:
    registry.register(ColourCaptioner)
    ColourCaptioner.calls = []
    return ColourCaptioner


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, captioner="test-colour")


@pytest.fixture(scope="session")
def embedder(embedder_onnx_dir: Path) -> Embedder:
    """The real default embedder, loaded once per test session."""
    return Embedder("all-MiniLM-L6-v2", cache_dir=embedder_onnx_dir)


def line_across(image: Image.Image) -> TextBoxes:
    """What a fake OCR engine's `find_text` reports for a photo it says shows text: one line
    across the middle of `image`."""
    from capdex.captioners.ocr import TextBoxes

    width, height = image.size
    box = [[0, height * 0.4], [width - 1, height * 0.4], [width - 1, height * 0.6],
           [0, height * 0.6]]
    return TextBoxes(np.array([box], dtype=np.float32), (width, height))


def write_colour_photo(path: Path, colour: str, size: tuple[int, int] = (64, 48), seed: int = 0) -> Path:
    """A small JPEG of one colour with a little noise (so copies are byte-identical, others not)."""
    rng = np.random.default_rng(seed)
    base = np.array(COLOURS[colour], dtype=np.int16)
    pixels = np.clip(base + rng.integers(-8, 9, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, "RGB").save(path, quality=90)
    return path


@pytest.fixture
def colour_folder(tmp_path: Path) -> Path:
    """A small photo tree: one photo per colour, some in a sub-folder."""
    root = tmp_path / "photos"
    for i, colour in enumerate(COLOURS):
        sub = root / ("nested" if i % 2 else "")
        write_colour_photo(sub / f"{colour}.jpg", colour, seed=i)
    return root


# -- the store on both databases ------------------------------------------------------------------
#: A PostgreSQL role that may create databases (`.ci/postgres` makes one and prints this URL).
DEFAULT_TEST_POSTGRES_URL = "postgresql+psycopg://capdex_test:capdex_test@127.0.0.1:5432/postgres"


def _postgres_admin_url() -> str:
    import os

    return os.environ.get("CAPDEX_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of a reachable PostgreSQL server. Skips when there is none, except in CI
    (`CI` set), where a missing server fails loudly: CI must run the PostgreSQL tests."""
    import os

    from sqlalchemy import create_engine, text

    url = _postgres_admin_url()
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - no driver, no server, bad password: all "not here"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests, but {url} is unreachable: {exc}")
        pytest.skip(f"no PostgreSQL server reachable ({type(exc).__name__}); run .ci/postgres")
    return url


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = request.getfixturevalue("postgres_server")
    name = f"capdex_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(admin, name)
        admin.dispose()


def _drop_database(admin, name: str) -> None:
    """Drop a test database; an autovacuum worker that just started on it (a superuser
    process FORCE may not end without pg_signal_backend) is waited out for a few seconds."""
    import time

    from sqlalchemy import text
    from sqlalchemy.exc import ProgrammingError

    for attempt in range(20):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except ProgrammingError:
            if attempt == 19:
                raise
            time.sleep(0.25)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store's database URL, once per supported engine (a fresh database each time)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'capdex.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def db_settings(data_dir: Path, database_url: str) -> Settings:
    """`settings`, with the database on each supported engine in turn."""
    return Settings(data_dir=data_dir, captioner="test-colour", database_url=database_url)


# -- a real Spark standalone cluster ---------------------------------------------------------------
@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A Spark master and one worker (2 cores, 2 GiB) on loopback, from pyspark's own scripts;
    stopped after the session. Skips only without pyspark or Java, and never in CI (`CI` set),
    which installs both and must run the cluster tests."""
    import os

    from tests.spark_cluster import ClusterUnavailable, start_cluster

    try:
        cluster = start_cluster(tmp_path_factory.mktemp("spark-cluster"))
    except ClusterUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Spark cluster tests: {exc}")
        pytest.skip(f"cannot start a Spark cluster: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()
