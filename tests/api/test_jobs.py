"""Index jobs over HTTP: roots are enforced, one job at a time, progress, re-captioning, stopping."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from capdex.api.app import create_app
from capdex.api.jobs import JobError, check_paths
from capdex.settings import Settings
from capdex.captioners import registry
from tests.api.serving import configured, serving
from tests.api.fakes import GatedCaptioner, WordsCaptioner
from tests.conftest import write_colour_photo

http = httpx.Client(timeout=60)


@pytest.fixture
def captioners(colour_captioner) -> None:
    GatedCaptioner.gate = threading.Event()
    registry.register(GatedCaptioner)
    registry.register(WordsCaptioner)


@pytest.fixture
def server(settings: Settings, colour_folder: Path, captioners) -> Iterator[str]:
    with serving(create_app(configured(settings, photo_roots=[colour_folder]))) as url:
        yield url


def wait_for(url: str, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(f"{url}/api/jobs/{job_id}").json()
        if job["state"] != "running":
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def top(url: str, query: str) -> dict:
    return http.get(f"{url}/api/search", params={"q": query, "k": 1}).json()["results"][0]


# -- paths under the roots ------------------------------------------------------------------------
def test_paths_must_lie_under_a_root(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    (root / "a").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (root / "link-out").symlink_to(tmp_path / "secret")
    (root / "link-in").symlink_to(root / "a")
    assert check_paths([str(root / "a")], [root]) == [str(root / "a")]
    assert check_paths([str(root / "link-in")], [root]) == [str(root / "link-in")]
    assert check_paths([], [root]) == [str(root)]
    for bad in (str(tmp_path / "secret"), str(root / ".." / "secret"), str(root / "link-out"),
                str(root / "a" / ".." / ".." / "secret"), str(tmp_path / "photos-2"), "/"):
        with pytest.raises(JobError) as caught:
            check_paths([bad], [root])
        assert caught.value.status == 403 and "not under a photo root" in caught.value.reason


def test_a_symlinked_root_is_fine(tmp_path: Path) -> None:
    (tmp_path / "real" / "2024").mkdir(parents=True)
    (tmp_path / "photos").symlink_to(tmp_path / "real")
    assert check_paths([str(tmp_path / "photos" / "2024")], [tmp_path / "photos"])


@pytest.mark.parametrize("bad,status", [("relative/path", 422), ("a\x00b", 422), ("  ", 422),
                                        ("\ud800", 422)])
def test_unusable_paths_are_422(tmp_path: Path, bad: str, status: int) -> None:
    with pytest.raises(JobError) as caught:
        check_paths([bad], [tmp_path])
    assert caught.value.status == status


def test_missing_path_is_422(tmp_path: Path) -> None:
    with pytest.raises(JobError) as caught:
        check_paths([str(tmp_path / "nope")], [tmp_path])
    assert caught.value.status == 422 and "no such file or folder" in caught.value.reason


def test_no_roots_means_indexing_over_http_is_off(tmp_path: Path) -> None:
    with pytest.raises(JobError) as caught:
        check_paths([str(tmp_path)], [])
    assert caught.value.status == 403 and "--photo-root" in caught.value.reason


# -- over HTTP ------------------------------------------------------------------------------------
def test_index_job_runs_and_its_photos_become_searchable(server: str, colour_folder: Path) -> None:
    response = http.post(f"{server}/api/index", json={"paths": [str(colour_folder)],
                                                      "captioner": "test-colour"})
    assert response.status_code == 202, response.text
    job = wait_for(server, response.json()["id"])
    assert job["state"] == "done", job
    assert job["summary"]["new"] == 6 and job["total"] > 0 and job["done"] == job["total"]
    assert Path(top(server, "something green")["path"]).name == "green.jpg"
    listing = http.get(f"{server}/api/jobs").json()
    assert listing["current"] is None and listing["jobs"][0]["id"] == job["id"]
    assert listing["photo_roots"] == [str(colour_folder)]


def test_second_job_while_one_runs_is_409(server: str, colour_folder: Path) -> None:
    first = http.post(f"{server}/api/index", json={"captioner": "test-gated"})
    assert first.status_code == 202
    second = http.post(f"{server}/api/index", json={"captioner": "test-colour"})
    assert second.status_code == 409 and first.json()["id"] in second.json()["detail"]
    running = http.get(f"{server}/api/jobs").json()["current"]
    assert running["id"] == first.json()["id"] and running["state"] == "running"
    GatedCaptioner.gate.set()
    assert wait_for(server, first.json()["id"])["state"] == "done"
    third = http.post(f"{server}/api/index", json={"captioner": "test-colour"})
    assert third.status_code == 202


def test_progress_is_visible_while_a_job_runs(server: str) -> None:
    job_id = http.post(f"{server}/api/index", json={"captioner": "test-gated"}).json()["id"]
    job = wait_for_stage(server, job_id, "caption")
    assert job["state"] == "running" and job["total"] == 6 and job["done"] < 6
    GatedCaptioner.gate.set()
    assert wait_for(server, job_id)["state"] == "done"


def wait_for_stage(url: str, job_id: str, stage: str) -> dict:
    deadline = time.monotonic() + 30
    while (job := http.get(f"{url}/api/jobs/{job_id}").json())["stage"] != stage:
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    return job


def test_a_job_can_be_stopped_and_keeps_what_it_finished(server: str) -> None:
    job_id = http.post(f"{server}/api/index", json={"captioner": "test-gated"}).json()["id"]
    wait_for_stage(server, job_id, "caption")  # its first batch is being captioned
    assert http.post(f"{server}/api/jobs/{job_id}/cancel").status_code == 202
    GatedCaptioner.gate.set()
    job = wait_for(server, job_id)
    assert job["state"] == "cancelled" and "stopped" in job["error"]
    status = http.get(f"{server}/api/status").json()
    assert status["photos"] == status["vectors"] >= 1  # the finished batch is searchable


@pytest.mark.parametrize("body,status,reason", [
    ({"paths": ["/etc"]}, 403, "not under a photo root"),
    ({"paths": ["relative"]}, 422, "absolute path"),
    ({"captioner": "no-such-model"}, 422, "unknown captioner"),
    ({"captioner": "../../x"}, 422, ""),
    ({"paths": "not-a-list"}, 422, ""),
    ({"paths": ["/x"] * 101}, 422, ""),
    ({"surprise": 1}, 422, ""),
])
def test_bad_index_requests_are_4xx_with_a_reason(server: str, body: dict, status: int,
                                                  reason: str) -> None:
    response = http.post(f"{server}/api/index", json=body)
    assert response.status_code == status, response.text
    assert reason in str(response.json()["detail"])


def test_paths_outside_the_roots_are_403_even_through_symlinks(server: str, colour_folder: Path,
                                                               tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write_colour_photo(outside / "x.jpg", "red")
    os.symlink(outside, colour_folder / "sneaky")
    for path in (str(colour_folder / "sneaky"), f"{colour_folder}/../outside"):
        response = http.post(f"{server}/api/index", json={"paths": [path]})
        assert response.status_code == 403, (path, response.text)


def test_without_roots_indexing_over_http_is_off(settings: Settings, captioners) -> None:
    with serving(create_app(settings)) as url:
        response = http.post(f"{url}/api/index", json={})
        assert response.status_code == 403 and "photo roots" in response.json()["detail"]


def test_unknown_jobs_are_404_and_bad_ids_422(server: str) -> None:
    assert http.get(f"{server}/api/jobs/0123456789ab").status_code == 404
    assert http.get(f"{server}/api/jobs/..%2f..%2fetc").status_code in (404, 422)
    assert http.get(f"{server}/api/jobs/NOTANID").status_code == 422
    assert http.post(f"{server}/api/jobs/0123456789ab/cancel").status_code == 404


def test_recaption_one_photo_with_another_model(server: str) -> None:
    wait_for(server, http.post(f"{server}/api/index", json={}).json()["id"])
    red = top(server, "red")
    response = http.post(f"{server}/api/photos/{red['id']}/recaption",
                         json={"captioner": "test-words"})
    assert response.status_code == 202, response.text
    job = wait_for(server, response.json()["id"])
    assert job["state"] == "done" and job["summary"]["recaptioned"] == 1, job
    photo = http.get(f"{server}/api/photos/{red['id']}").json()
    assert photo["caption"] == "a vivid red painting"
    assert photo["captions"][0]["captioner"] == "test-words"
    assert top(server, "vivid red painting")["id"] == red["id"]
    others = http.get(f"{server}/api/search", params={"q": "blue", "k": 1}).json()["results"][0]
    assert others["caption"] == "a plain blue picture"  # only the one photo changed


def test_recaption_of_unknown_photo_is_404(server: str) -> None:
    for photo_id in (999999, 2**70):
        response = http.post(f"{server}/api/photos/{photo_id}/recaption", json={})
        assert response.status_code in (404, 422)


def test_captioners_are_listed(server: str) -> None:
    data = http.get(f"{server}/api/captioners").json()
    assert data["default"] == "test-colour"
    assert {"test-colour", "test-words", "tagger"} <= set(data["captioners"])


def test_shutdown_stops_a_running_job(settings: Settings, colour_folder: Path, captioners) -> None:
    app = create_app(configured(settings, photo_roots=[colour_folder]))
    with serving(app) as url:
        http.post(f"{url}/api/index", json={"captioner": "test-gated"})
        GatedCaptioner.gate.set()  # let the current batch finish; the next one sees the stop
    job = app.state.jobs.recent()[0]
    assert job.state in ("cancelled", "done") and app.state.jobs.current is None
