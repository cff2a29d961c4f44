from tests.llm.fixtures import _chat_stub_server, chat_stub  # noqa: F401 - fixtures
