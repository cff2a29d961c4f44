"""Questions about one photo through the captioners that take a prompt: the HTTP ones against a
loopback server, Moondream and hf-vlm on tiny real models (their words are noise)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from capdex.captioners import CaptionerError, QuestionsNotSupported, create
from capdex.captioners.questions import answerer, answering_captioners
from tests.captioners.conftest import make_settings
from tests.captioners.fake_llm_server import FakeLLMServer, decode_images

QUESTION = "What does the sign say?"
ANSWERERS = ["anthropic", "hf-vlm", "moondream2", "ollama", "openai"]


def test_the_captioners_that_take_a_prompt_answer(tmp_path: Path) -> None:
    assert answering_captioners() == ANSWERERS
    with pytest.raises(QuestionsNotSupported, match="tagger.*captioners that can: anthropic, "
                       "hf-vlm, moondream2, ollama, openai"):
        answerer("tagger", make_settings(tmp_path, "tagger"))
    with pytest.raises(QuestionsNotSupported, match="takes no prompt"):
        create("tagger", make_settings(tmp_path, "tagger")).answer(Image.new("RGB", (8, 8)), "?")
    with pytest.raises(CaptionerError, match="unknown captioner 'nope'"):
        answerer("nope", make_settings(tmp_path, "tagger"))


@pytest.mark.parametrize("name", ["ollama", "openai", "anthropic"])
def test_http_captioners_send_the_question_with_the_photo(
    tmp_path: Path, llm_server: FakeLLMServer, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    llm_server.behaviour.caption = "  The sign says “STOP”.\x1b[2J\n"
    settings = make_settings(tmp_path, name, captioner_endpoint=llm_server.url,
                             captioner_retry_backoff=0.01, ask_max_tokens=300)
    captioner = answerer(name, settings)
    # Not cleaned like a caption: an answer keeps its own words (but no terminal escapes).
    answer = captioner.answer(Image.new("RGB", (640, 480), "red"), QUESTION)
    assert answer == "The sign says “STOP”.[2J"
    body = llm_server.requests[-1].body
    text = str(body["messages"])
    assert QUESTION in text and settings.llm_prompt not in text
    if name == "ollama":
        assert body["options"]["num_predict"] == 300
    else:
        assert body["max_tokens"] == 300
    assert decode_images(body)[0].size == (640, 480)
    # Captions still use the caption instruction and length.
    captioner.caption(Image.new("RGB", (8, 8)))
    assert settings.llm_prompt in str(llm_server.requests[-1].body["messages"])


def test_moondream_answers_through_llama_cpp(tmp_path: Path, moondream_dir: Path) -> None:
    settings = make_settings(tmp_path, "moondream2", model_path=moondream_dir, ask_max_tokens=16,
                             captioner_options={"moondream2": {"context": 512, "threads": 1}})
    captioner = answerer("moondream2", settings)
    image = Image.new("RGB", (64, 48), (200, 20, 20))
    answer = captioner.answer(image, QUESTION)
    assert isinstance(answer, str) and answer == captioner.answer(image, QUESTION)
    captioner.close()


def test_hf_vlm_answers_through_its_chat_template(tmp_path: Path, llava_dir: Path) -> None:
    settings = make_settings(tmp_path, "hf-vlm", model_path=llava_dir, ask_max_tokens=16,
                             torch_dtype="fp32")
    captioner = answerer("hf-vlm", settings)
    image = Image.new("RGB", (64, 48), (20, 200, 20))
    answer = captioner.answer(image, QUESTION)
    assert isinstance(answer, str) and answer == captioner.answer(image, QUESTION)
    with captioner._model.use() as loaded:
        rendered = loaded.processor.apply_chat_template(
            captioner.messages("What does the sign say?"), add_generation_prompt=True)
    assert QUESTION in rendered
    captioner.close()
