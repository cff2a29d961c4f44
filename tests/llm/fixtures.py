"""The stub chat LLM as a fixture: one server per session, reset before each test. tests/conftest.py
registers this module as a plugin, so any test can ask for `chat_stub`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.llm.chat_stub import ChatStub


@pytest.fixture(scope="session")
def _chat_stub_server() -> Iterator[ChatStub]:
    server = ChatStub().start()
    yield server
    server.stop()


@pytest.fixture
def chat_stub(_chat_stub_server: ChatStub) -> ChatStub:
    _chat_stub_server.reset()
    return _chat_stub_server
