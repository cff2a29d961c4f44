"""Loading once under a lock, one large model at a time, idle unload, missing extras."""

from __future__ import annotations

import threading
import time

import pytest

from capdex.captioners import MissingDependencyError
from capdex.captioners.lifecycle import ModelHandle, active_large_model, require


class Tracker:
    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.released: list[str] = []

    def handle(self, name: str, **kwargs: object) -> ModelHandle[str]:
        def load() -> str:
            time.sleep(0.05)  # long enough for racing threads to pile up
            self.loaded.append(name)
            return f"model:{name}"

        return ModelHandle(name, load, release=self.released.append, **kwargs)


def test_loads_lazily_and_once_across_threads() -> None:
    tracker = Tracker()
    handle = tracker.handle("a")
    assert not handle.loaded and tracker.loaded == []
    seen: list[str] = []

    def use() -> None:
        with handle.use() as model:
            seen.append(model)

    threads = [threading.Thread(target=use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tracker.loaded == ["a"] and seen == ["model:a"] * 6
    handle.unload()


def test_loading_a_large_model_unloads_the_previous_one() -> None:
    tracker = Tracker()
    first, second = tracker.handle("first"), tracker.handle("second")
    with first.use():
        pass
    assert active_large_model() == "first"
    with second.use():
        pass
    assert not first.loaded and second.loaded
    assert tracker.released == ["model:first"] and active_large_model() == "second"
    small = tracker.handle("small", large=False)
    with small.use():
        pass
    assert second.loaded and small.loaded  # small models neither evict nor get evicted
    second.unload()
    small.unload()
    assert active_large_model() is None


def test_idle_unload_and_reload() -> None:
    tracker = Tracker()
    handle = tracker.handle("idle", idle_ttl=0.1)
    with handle.use():
        pass
    time.sleep(0.4)
    assert not handle.loaded and tracker.released == ["model:idle"]
    with handle.use():
        pass
    assert handle.loads == 2
    handle.unload()


def test_a_model_in_use_is_not_unloaded_under_it() -> None:
    tracker = Tracker()
    busy = tracker.handle("busy", idle_ttl=0.05)
    other = tracker.handle("other")
    started, finished = threading.Event(), threading.Event()
    state: dict[str, bool] = {}

    def long_inference() -> None:
        with busy.use():
            started.set()
            time.sleep(0.3)
            state["loaded_during_use"] = busy.loaded
        finished.set()

    thread = threading.Thread(target=long_inference)
    thread.start()
    started.wait()
    with other.use():  # waits for the inference to finish, then evicts `busy`
        assert finished.is_set()
    thread.join()
    assert state["loaded_during_use"] and not busy.loaded
    other.unload()


def test_release_errors_do_not_escape() -> None:
    def broken_release(model: object) -> None:
        raise RuntimeError("boom")

    handle = ModelHandle("x", lambda: object(), release=broken_release)
    with handle.use():
        pass
    handle.unload()
    assert not handle.loaded


def test_missing_package_names_the_extra() -> None:
    with pytest.raises(MissingDependencyError) as error:
        require("capdex_no_such_package", "moondream", package="llama-cpp-python")
    assert "llama-cpp-python" in str(error.value)
    assert "pip install 'capdex[moondream]'" in str(error.value)
