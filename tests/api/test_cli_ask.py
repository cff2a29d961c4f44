"""`capdex ask` through its runner, with the stub LLM on loopback."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capdex.api.cli import app
from tests.llm.chat_stub import ChatStub

runner = CliRunner()


def capdex(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def indexed(colour_folder: Path, data_dir: Path, colour_captioner, monkeypatch: pytest.MonkeyPatch) -> str:
    code, _, err = capdex("index", str(colour_folder), "--data-dir", str(data_dir),
                          "--captioner", "test-colour", "--no-ocr")
    assert code == 0, err
    monkeypatch.setenv("CAPDEX_MIN_SCORE", "0")
    monkeypatch.setenv("CAPDEX_LLM_RETRIES", "0")
    return str(data_dir)


def photo_ids(data_dir: str) -> dict[str, int]:
    _, out, _ = capdex("search", "picture", "--json", "--min-score", "0", "--data-dir", data_dir)
    return {Path(r["path"]).stem: r["id"] for r in json.loads(out)["results"]}


def test_ask_json(indexed: str, chat_stub: ChatStub) -> None:
    red = photo_ids(indexed)["red"]
    chat_stub.behaviour.answer = f"The red one [#{red}] [#424242]."
    code, out, err = capdex("ask", "which photo is red?", "-k", "2", "--json",
                            "--llm-endpoint", chat_stub.url, "--data-dir", indexed)
    assert code == 0, err
    data = json.loads(out)
    assert data["answer"] == f"The red one [#{red}]." and data["cited"] == [red]
    assert data["photos"][0]["id"] == red and len(data["photos"]) == 2
    assert chat_stub.requests[-1].body["messages"][1]["content"].endswith(
        "Question: which photo is red?")


def test_ask_streams_the_answer_then_lists_the_photos(indexed: str, chat_stub: ChatStub,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    red = photo_ids(indexed)["red"]
    chat_stub.behaviour.answer = f"Red [#{red}], not [#424242]."
    monkeypatch.setenv("CAPDEX_LLM", "ollama")
    monkeypatch.setenv("CAPDEX_LLM_ENDPOINT", chat_stub.url)
    code, out, err = capdex("ask", "which photo is red?", "-k", "3", "--data-dir", indexed)
    assert code == 0, err
    assert out.startswith(f"Red [#{red}], not.\n")
    assert f"* [#{red}] " in out and "424242" not in out
    assert chat_stub.requests[-1].path == "/api/chat"
    assert chat_stub.requests[-1].body["stream"] is True


def test_ask_without_an_llm_exits_2_and_still_lists_the_photos(indexed: str) -> None:
    red = photo_ids(indexed)["red"]
    code, out, err = capdex("ask", "which photo is red?", "--data-dir", indexed)
    assert code == 2
    assert "CAPDEX_LLM_ENDPOINT" in err and f"[#{red}]" in out
    code, out, _ = capdex("ask", "which photo is red?", "--json", "--data-dir", indexed)
    assert code == 2 and json.loads(out)["photos"][0]["id"] == red


def test_ask_with_the_llm_down_exits_1_and_says_why(indexed: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = capdex("ask", "red?", "--llm", "ollama", "--llm-endpoint",
                          f"http://127.0.0.1:{port}", "--data-dir", indexed)
    assert code == 1 and "cannot connect" in err and f"127.0.0.1:{port}/api/chat" in err


def test_bad_input_exits_2(indexed: str, chat_stub: ChatStub) -> None:
    code, _, err = capdex("ask", "  ", "--llm-endpoint", chat_stub.url, "--data-dir", indexed)
    assert code == 2 and "question" in err
    code, _, err = capdex("ask", "red?", "--llm", "gpt", "--data-dir", indexed)
    assert code == 2 and "llm" in err
    assert chat_stub.requests == []


def test_ask_about_one_photo(indexed: str, chat_stub: ChatStub) -> None:
    red = photo_ids(indexed)["red"]
    chat_stub.behaviour.answer = "It is entirely red."
    code, out, err = capdex("ask", "What colour is it?", "--photo", str(red), "--captioner",
                            "ollama", "--endpoint", chat_stub.url, "--data-dir", indexed)
    assert code == 0, err
    assert out == "It is entirely red.\n"
    assert chat_stub.requests[-1].body["messages"][0]["images"]
    code, out, _ = capdex("ask", "What colour is it?", "--photo", str(red), "--captioner",
                          "ollama", "--endpoint", chat_stub.url, "--json", "--data-dir", indexed)
    assert json.loads(out) == {"id": red, "question": "What colour is it?",
                               "answer": "It is entirely red.", "captioner": "ollama"}


def test_ask_about_one_photo_errors(indexed: str) -> None:
    red = photo_ids(indexed)["red"]
    code, _, err = capdex("ask", "colour?", "--photo", str(red), "--captioner", "test-colour",
                          "--data-dir", indexed)
    assert code == 2 and "captioners that can: anthropic, hf-vlm, moondream2, ollama, openai" in err
    code, _, err = capdex("ask", "colour?", "--photo", "999999", "--captioner", "ollama",
                          "--data-dir", indexed)
    assert code == 2 and "no photo with id 999999" in err
