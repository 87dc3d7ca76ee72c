"""Talking to an OpenAI-compatible server: where it is, its HTTP client, its event stream, its errors.

Every network failure becomes a one-line :class:`LMAssistError` that names the URL, because
"connection refused" alone does not say which of the user's servers is down. ``httpx`` is imported
when a request is made, never at import.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lmassist.config import Settings
from lmassist.errors import LMAssistError, one_line
from lmassist_openai.retry import Backoff, Outage, RetryPolicy, Timing, policy_from

BACKEND = "openai"
OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT_S = 120.0  # between two pieces of data: a big prompt on a busy server is slow to start
CONNECT_TIMEOUT_S = 5.0
LIST_TIMEOUT_S = 10.0  # listing models happens in `models list` and name lookups: keep it short
DEFAULT_CONTEXT = 4096
# Requests in flight at once; more wait for a free connection. --concurrency beyond this gains nothing.
MAX_CONNECTIONS = 64


@dataclass(frozen=True)
class ServerConfig:
    """Where the server is and how to talk to it, resolved from settings, then the environment."""

    base_url: str
    api_key: str | None = None
    timeout: float = DEFAULT_TIMEOUT_S
    context_length: int | None = None
    retry: RetryPolicy = RetryPolicy()

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc or self.base_url

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"


def normalize_base_url(url: str) -> str:
    """Accept ``host:port``, ``http://host:port`` and ``http://host:port/v1`` alike."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        url += "/v1"
    return url


def resolve_config(settings: dict[str, Any] | None = None) -> ServerConfig | None:
    """The server to use, or None when none is configured.

    Settings (``openai.base_url``, ``openai.api_key``, ``openai.timeout``, ``openai.context_length``,
    ``openai.retries``, ``openai.retry_time``) win over ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` /
    ``LMASSIST_OPENAI_RETRIES`` / ``LMASSIST_OPENAI_RETRY_TIME``. A key with no URL means OpenAI
    itself, as with OpenAI's own client.
    """
    settings = settings or {}
    base = settings.get("base_url") or os.environ.get("OPENAI_BASE_URL") or ""
    key = settings.get("api_key") or os.environ.get("OPENAI_API_KEY") or None
    if not base.strip():
        if not key:
            return None
        base = OPENAI_URL
    try:
        timeout = float(settings.get("timeout") or DEFAULT_TIMEOUT_S)
        ctx = settings.get("context_length")
        context_length = int(ctx) if ctx else None
    except (TypeError, ValueError):
        raise LMAssistError("openai.timeout and openai.context_length must be numbers") from None
    if timeout <= 0:
        raise LMAssistError(f"openai.timeout must be positive, got {timeout}")
    retry = policy_from(settings, dict(os.environ))
    return ServerConfig(normalize_base_url(base), key, timeout, context_length, retry)


def stored_settings() -> dict[str, Any]:
    """The user's ``openai.*`` settings; an unreadable settings file counts as none (env still works)."""
    try:
        return Settings().backend_settings(BACKEND)
    except LMAssistError:
        return {}


# -- errors ---------------------------------------------------------------------------------------


def network_error(url: str, exc: BaseException, timeout: float) -> LMAssistError:
    """A one-line message for a request that never got an HTTP answer."""
    import httpx

    if isinstance(exc, httpx.ConnectTimeout):
        return LMAssistError(f"cannot reach the server at {url}: connecting timed out")
    if isinstance(exc, httpx.TimeoutException):
        return LMAssistError(
            f"the server at {url} did not answer within {timeout:g} s (timeout); "
            "it may be overloaded, or raise the setting openai.timeout"
        )
    if isinstance(exc, httpx.ConnectError):
        detail = str(exc)
        if "refused" in detail.lower():
            detail = "connection refused (is the server running?)"
        elif "name or service not known" in detail.lower() or "nodename nor servname" in detail.lower():
            detail = "unknown host"
        return LMAssistError(f"cannot reach the server at {url}: {one_line(detail)}")
    if isinstance(exc, httpx.RemoteProtocolError):
        return LMAssistError(f"the server at {url} closed the connection mid-answer: {one_line(exc)}")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return LMAssistError(f"invalid server URL {url}: {one_line(exc)}")
    return LMAssistError(f"request to {url} failed: {one_line(exc) or type(exc).__name__}")


def error_message(body: bytes) -> str:
    """The human part of an error body: OpenAI's ``{"error": {"message"}}``, FastAPI's ``detail``..."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return one_line(text, 160)
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or err.get("msg") or err
        else:
            msg = err
        if isinstance(msg, list | dict):
            msg = json.dumps(msg)
        return one_line(str(msg).splitlines()[0] if str(msg).strip() else str(msg), 160)
    return one_line(text, 160)


def status_error(url: str, response: Any) -> LMAssistError:
    """A one-line message for an HTTP error answer, naming the URL and the status."""
    try:
        body = response.read()
    except Exception:  # noqa: BLE001 - the status is what matters; the body is a bonus
        body = b""
    message = error_message(body) if body else ""
    status = f"HTTP {response.status_code}" + (f" {response.reason_phrase}" if response.reason_phrase else "")
    hint = ""
    if response.status_code in (401, 403):
        hint = " (check the setting openai.api_key or OPENAI_API_KEY)"
    return LMAssistError(f"the server at {url} answered {status}" + (f": {message}" if message else "") + hint)


# -- the HTTP client --------------------------------------------------------------------------------


class Server:
    """One server: an ``httpx.Client`` with the key and timeouts, and JSON requests with our errors.

    Shared by every thread that calls the model at once (``--concurrency N``): the client is made
    once under a lock, and httpx's connection pool hands each concurrent request its own connection
    (httpcore guards the pool with a lock), up to :data:`MAX_CONNECTIONS`. ``timing`` holds the
    clocks and the sleep that retries use, so tests can replace them; ``outage`` is what every
    thread knows about the server being down (see :class:`lmassist_openai.retry.Outage`).
    """

    def __init__(self, config: ServerConfig, timing: Timing | None = None) -> None:
        self.config = config
        self.timing = timing or Timing()
        self.outage = Outage()
        self._client: Any = None
        self._lock = threading.Lock()

    def backoff(self) -> Backoff:
        """A fresh count of tries for one request."""
        return Backoff(self.config.retry, self.timing, self.outage)

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import httpx

                headers = {"Accept": "application/json"}
                if self.config.api_key:
                    headers["Authorization"] = f"Bearer {self.config.api_key}"
                timeout = httpx.Timeout(self.config.timeout, connect=min(CONNECT_TIMEOUT_S, self.config.timeout))
                limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)
                self._client = httpx.Client(headers=headers, timeout=timeout, limits=limits, follow_redirects=True)
            return self._client

    def get_json(self, path: str, timeout: float | None = None) -> Any:
        import httpx

        url = self.config.url(path)
        wait = timeout or self.config.timeout
        try:
            response = self.client.get(url, timeout=httpx.Timeout(wait, connect=min(CONNECT_TIMEOUT_S, wait)))
        except (httpx.HTTPError, httpx.InvalidURL) as e:
            raise network_error(url, e, wait) from None
        if response.status_code >= 400:
            raise status_error(url, response)
        try:
            return response.json()
        except ValueError:
            raise LMAssistError(f"the server at {url} did not answer with JSON; is it an OpenAI-compatible API?") from None

    def list_models(self, timeout: float | None = None) -> list[dict[str, Any]]:
        data = self.get_json("models", timeout)
        items = data.get("data") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise LMAssistError(f"the server at {self.config.url('models')} sent no model list")
        return [m for m in items if isinstance(m, dict) and m.get("id")]

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def context_length_of(entry: dict[str, Any]) -> int | None:
    """The context length a model entry reports, under the names servers use for it."""
    meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
    for value in (
        entry.get("max_model_len"),  # vLLM
        entry.get("context_length"),  # OpenRouter, LM Studio
        entry.get("context_window"),
        meta.get("n_ctx"),  # llama.cpp's llama-server
        meta.get("n_ctx_train"),
    ):
        if isinstance(value, int) and value > 0:
            return value
    return None


def iter_sse(lines: Iterator[str]) -> Iterator[str]:
    """The ``data`` payloads of a server-sent event stream, until ``[DONE]``.

    Multi-line data fields are joined with newlines as the SSE format says; comments, ``event:``
    and ``id:`` fields are skipped.
    """
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                payload = "\n".join(data)
                data = []
                if payload.strip() == "[DONE]":
                    return
                yield payload
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        payload = "\n".join(data)
        if payload.strip() != "[DONE]":
            yield payload


