"""Ask on top of the read path: retrieve the photos a question is about with the search engine
(hybrid, with whatever filters the engine reads out of the query), put their facts before an
LLM as fenced data, and keep only the citations of photos it was shown.

Nothing here writes: asking never changes what is stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from capdex.llm import ChatClient, LLMError, LLMNotConfigured, chat_client
from capdex.search.ask.citations import CitationFilter, clean_answer
from capdex.search.ask.prompt import Prompt, build_prompt
from capdex.search.engine import SearchEngine, SearchResults
from capdex.search.request import SearchRequest
from capdex.settings import Settings
from capdex.store.facts import PhotoFacts, photo_facts

NO_PHOTOS = "No photos in the library match this question, so there is nothing to answer from."


class AskError(RuntimeError):
    """Ask could not answer; `result` still holds the retrieved photos (no answer)."""

    def __init__(self, message: str, result: AskResult) -> None:
        super().__init__(message)
        self.result = result


class AskUnavailable(AskError):
    """No LLM is configured (HTTP 503, exit 2)."""


class AskFailed(AskError):
    """The LLM failed: down, too slow, an error, a malformed answer (HTTP 502)."""


@dataclass
class AskResult:
    question: str
    #: The retrieved photos, best first, as search results with `place`, `people`, `cited`.
    photos: list[dict[str, Any]]
    total: int
    answer: str | None = None
    model: str | None = None
    cited: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The answer reached `ask_max_answer_chars` and was cut there.
    truncated: bool = False

    def finish(self, answer: str, cited: list[int], model: str | None, truncated: bool) -> None:
        self.answer, self.cited, self.model, self.truncated = answer, cited, model, truncated
        if truncated:
            self.notes.append("the answer was cut at its length limit (CAPDEX_ASK_MAX_ANSWER_CHARS)")
        for photo in self.photos:
            photo["cited"] = photo["id"] in cited

    def as_dict(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.answer, "photos": self.photos,
                "model": self.model, "cited": self.cited, "total": self.total,
                "notes": self.notes, "truncated": self.truncated}


@dataclass
class _Retrieved:
    result: AskResult
    prompt: Prompt | None


class Asker:
    """Answers questions from one library. `llm` (a ChatClient, or a function making one) is
    made from the settings on first use when not given."""

    def __init__(self, settings: Settings, engine: SearchEngine,
                 llm: ChatClient | Callable[[], ChatClient] | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self._llm = llm
        self._lock = threading.Lock()

    def llm(self) -> ChatClient:
        """The chat client; LLMNotConfigured when the settings name none."""
        with self._lock:
            if self._llm is None:
                self._llm = chat_client(self.settings)
            elif not isinstance(self._llm, ChatClient):
                self._llm = self._llm()
            return self._llm

    def close(self) -> None:
        """Close the LLM client's connections (if one was made)."""
        with self._lock:
            if isinstance(self._llm, ChatClient):
                self._llm.close()

    def retrieve(self, question: str, k: int | None = None) -> _Retrieved:
        """The photos the question is about, as a search for it finds them (SearchRequestError
        for a blank or overlong question), and the prompt made of them."""
        request = SearchRequest.build(question, k=k or self.settings.ask_k)
        results: SearchResults = self.engine.search(request)
        facts = photo_facts(self.engine.db, [hit.id for hit in results.results])
        photos, shown = [], []
        for hit in results.results:
            if hit.weak:
                continue  # below the cut-off: not what the question is about
            fact = facts.get(hit.id)
            if fact is None:
                continue  # removed since it was found
            photos.append({**hit.as_dict(), "place": fact.place, "people": fact.people,
                           "cited": False})
            shown.append(fact)
        result = AskResult(request.q, photos, results.total, notes=list(results.notes))
        prompt = self._prompt(request.q, shown, results.total) if shown else None
        return _Retrieved(result, prompt)

    def _prompt(self, question: str, facts: list[PhotoFacts], total: int) -> Prompt:
        return build_prompt(question, facts, total, text_chars=self.settings.ask_text_chars)

    def _client_for(self, retrieved: _Retrieved) -> ChatClient:
        try:
            return self.llm()
        except LLMNotConfigured as exc:
            raise AskUnavailable(str(exc), retrieved.result) from None

    def ask(self, question: str, k: int | None = None) -> AskResult:
        """The answer, whole."""
        retrieved = self.retrieve(question, k)
        client = self._client_for(retrieved)
        result, prompt = retrieved.result, retrieved.prompt
        if prompt is None:
            result.finish(NO_PHOTOS, [], None, False)
            return result
        try:
            answer = client.complete(prompt.system, prompt.user)
        except LLMError as exc:
            raise AskFailed(str(exc), result) from None
        text, cited = clean_answer(answer.text, prompt.ids)
        result.finish(text, cited, answer.model, answer.truncated)
        return result

    def answering(self, question: str, k: int | None = None) -> Answering:
        """The answer as it is written. The photos are known (`result`) before the first word;
        AskUnavailable / AskFailed are raised here when the LLM cannot even start."""
        retrieved = self.retrieve(question, k)
        client = self._client_for(retrieved)
        return Answering(client, retrieved)


class Answering:
    """An answer being written: iterate for text pieces (citations already cleaned); when the
    iteration ends `result` holds the whole answer. AskFailed if the LLM fails midway."""

    def __init__(self, client: ChatClient, retrieved: _Retrieved) -> None:
        self.result = retrieved.result
        self._prompt = retrieved.prompt
        self._exits = ExitStack()
        self._stream = None
        if self._prompt is not None:
            try:
                self._stream = self._exits.enter_context(
                    client.stream(self._prompt.system, self._prompt.user))
            except LLMError as exc:
                raise AskFailed(str(exc), self.result) from None

    def __iter__(self) -> Iterator[str]:
        try:
            if self._stream is None or self._prompt is None:
                self.result.finish(NO_PHOTOS, [], None, False)
                yield NO_PHOTOS
                return
            citations = CitationFilter(self._prompt.ids)
            written: list[str] = []
            try:
                for piece in self._stream:
                    shown = citations.feed(piece)
                    if shown:
                        written.append(shown)
                        yield shown
            except LLMError as exc:
                raise AskFailed(str(exc), self.result) from None
            rest = citations.finish()
            if rest:
                written.append(rest)
                yield rest
            self.result.finish("".join(written).strip(), citations.cited, self._stream.model,
                               self._stream.truncated)
        finally:
            self.close()

    def close(self) -> None:
        self._exits.close()
