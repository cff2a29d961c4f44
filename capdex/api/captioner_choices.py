"""Which captioners can run on this server, and what the others need first.

The page offers only captioners that can run; choosing one that cannot (a model not downloaded,
an extra not installed, an HTTP model with no key) is refused before a job starts, with the
reason, instead of failing in the job's thread with a traceback in the server's log. Reads the
model catalogue (`captioners.catalog`) and the registry; no model is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capdex.settings import Settings


def missing(name: str, settings: Settings) -> str | None:
    """None when `name` can caption here; otherwise what it needs, in a short sentence."""
    from capdex.captioners import CaptionerError, catalog, registry

    try:
        spec = registry.captioner_class(name).spec
    except CaptionerError as exc:
        return str(exc)
    except ImportError as exc:  # a plugin whose module or its dependencies are missing
        return f"cannot be loaded: {exc}"
    if spec.kind == "plugin":
        return None  # registered and importable is all capdex knows of it
    chosen = settings.captioner == name
    if spec.kind == "http":
        if name == "openai" and settings.openai_api_key is None and not chosen:
            return "needs an API key: set OPENAI_API_KEY (or an endpoint, as the default captioner)"
        if name == "anthropic" and settings.anthropic_api_key is None:
            return "needs an API key: set ANTHROPIC_API_KEY"
        if name == "ollama" and not chosen and not settings.captioner_endpoint:
            return ("needs a running Ollama server: set CAPDEX_CAPTIONER_ENDPOINT to it "
                    "(or start the server with CAPDEX_CAPTIONER=ollama)")
        return None
    status = catalog.status(name, settings)
    return None if status.installed else (status.install or "not installed")


def unavailable(names: list[str], settings: Settings) -> dict[str, str]:
    """The captioners among `names` that cannot run here, with what each needs."""
    found = {}
    for name in names:
        need = missing(name, settings)
        if need is not None:
            found[name] = need
    return found
