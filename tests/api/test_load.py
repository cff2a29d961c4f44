"""Load, bounded: 20 concurrent clients search (and fetch thumbnails) on loopback while an index
job runs in the same server; every answer must be a success."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from PIL import Image

from capdex.api.app import create_app
from capdex.settings import Settings
from capdex.captioners import registry
from capdex.indexer.pipeline import Indexer
from capdex.store.db import Database
from tests.api.serving import configured, serving
from tests.conftest import COLOURS, ColourCaptioner, write_colour_photo

pytestmark = pytest.mark.slow
CLIENTS = 20
MAX_REQUESTS_PER_CLIENT = 150
TIME_LIMIT = 90.0
NEW_PHOTOS = 60
QUERIES = ["red", "something green", "a blue picture", "yellow", "dark", "white light",
           "a plain picture", "colour"]


class SlowColourCaptioner(ColourCaptioner):
    """The colour captioner at the pace of a small real model, so the job outlasts the start."""

    name = "test-slow-colour"

    def caption_batch(self, images: Sequence[Image.Image]) -> list[str]:
        time.sleep(0.15)
        return super().caption_batch(images)


@pytest.fixture
def server(settings: Settings, colour_folder: Path, embedder, colour_captioner) -> Iterator[str]:
    Indexer(settings, Database(settings.db_url), embedder=embedder).run([colour_folder])
    names = list(COLOURS)
    for i in range(NEW_PHOTOS):
        write_colour_photo(colour_folder / "incoming" / f"{i:03}.jpg", names[i % len(names)],
                           seed=1000 + i)
    registry.register(SlowColourCaptioner)
    app = create_app(configured(settings, photo_roots=[colour_folder]))
    with serving(app) as url:
        yield url
        app.state.jobs.shutdown()


def test_twenty_clients_search_while_an_index_job_runs(server: str) -> None:
    warm = httpx.get(f"{server}/api/search", params={"q": "warm up"}, timeout=60)
    assert warm.status_code == 200
    start = httpx.post(f"{server}/api/index", json={"captioner": "test-slow-colour"}, timeout=30)
    assert start.status_code == 202, start.text
    job_id = start.json()["id"]

    stop = threading.Event()
    outcomes: Counter[str] = Counter()
    during_job = Counter[str]()
    failures: list[str] = []
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + TIME_LIMIT

    def client(number: int) -> None:
        with httpx.Client(base_url=server, timeout=30) as http:
            for i in range(MAX_REQUESTS_PER_CLIENT):
                if stop.is_set() or time.monotonic() > deadline:
                    return
                query = QUERIES[(number + i) % len(QUERIES)]
                try:
                    began = time.monotonic()
                    response = http.get("/api/search", params={"q": query, "k": 12,
                                                               "offset": i % 3})
                    ok = response.status_code == 200 and "results" in response.json()
                    with lock:
                        latencies.append(time.monotonic() - began)
                    if ok and i % 5 == 0 and response.json()["results"]:
                        hit = response.json()["results"][0]["id"]
                        thumb = http.get(f"/api/photos/{hit}/thumbnail")
                        ok = thumb.status_code == 200 and thumb.content[:4] == b"RIFF"
                    detail = f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, detail = False, f"{type(exc).__name__}: {exc}"
                with lock:
                    outcomes["ok" if ok else "error"] += 1
                    if not ok:
                        failures.append(f"client {number}, {query!r}: {detail}")
                    if running.is_set():
                        during_job["requests"] += 1

    running = threading.Event()
    running.set()
    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    job = {}
    with httpx.Client(base_url=server, timeout=30) as http:
        while time.monotonic() < deadline:
            job = http.get(f"/api/jobs/{job_id}").json()
            if job["state"] != "running":
                break
            time.sleep(0.2)
    running.clear()
    stop.set()
    for thread in threads:
        thread.join(30)

    assert job.get("state") == "done", job
    assert job["summary"]["new"] == NEW_PHOTOS
    assert not failures, f"{len(failures)} failed requests, e.g.:\n" + "\n".join(failures[:10])
    assert during_job["requests"] >= CLIENTS, "the clients barely overlapped the index job"
    status = httpx.get(f"{server}/api/status", timeout=30).json()
    assert status["photos"] == status["vectors"] == len(COLOURS) + NEW_PHOTOS
    latencies.sort()
    print(f"\n{outcomes['ok']} requests ok, {during_job['requests']} during the index job; search "
          f"p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
          f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.0f} ms")
