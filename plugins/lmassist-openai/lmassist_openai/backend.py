"""The ``openai`` backend: chat and completion over the OpenAI HTTP API, streamed as server-sent events.

Any server that speaks this API works the same way (vLLM, llama.cpp's server, Ollama, TGI, OpenAI),
which is how users go past one machine. What the API cannot give us, we say so rather than fake it:
``score`` is unsupported (no prompt log-probabilities), so tasks fall back to generation, and token
counts for splitting long inputs are a conservative estimate. Every network failure becomes a
one-line :class:`LMAssistError` that names the URL, because "connection refused" alone does not say
which of the user's servers is down.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lmassist.generation import (
    Backend,
    ContextLengthError,
    LMAssistError,
    Model,
    ModelInfo,
    ModelLoadError,
    ModelSpec,
    StopReason,
    StreamRequest,
    fit_messages,
)

BACKEND = "openai"
OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT_S = 120.0  # between two pieces of data: a big prompt on a busy server is slow to start
CONNECT_TIMEOUT_S = 5.0
LIST_TIMEOUT_S = 10.0  # listing models happens in `models list` and name lookups: keep it short
DEFAULT_CONTEXT = 4096
BYTES_PER_TOKEN = 3  # an over-estimate of tokens (BPE vocabularies average 3.5-4.5 bytes a token)


@dataclass(frozen=True)
class ServerConfig:
    """Where the server is and how to talk to it, resolved from settings, then the environment."""

    base_url: str
    api_key: str | None = None
    timeout: float = DEFAULT_TIMEOUT_S
    context_length: int | None = None

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

    Settings (``openai.base_url``, ``openai.api_key``, ``openai.timeout``, ``openai.context_length``)
    win over ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``. A key with no URL means OpenAI itself, as
    with OpenAI's own client.
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
    return ServerConfig(normalize_base_url(base), key, timeout, context_length)


def stored_settings() -> dict[str, Any]:
    """The user's ``openai.*`` settings; an unreadable settings file counts as none (env still works)."""
    from lmassist.config import Settings

    try:
        return Settings().backend_settings(BACKEND)
    except LMAssistError:
        return {}


# -- errors ---------------------------------------------------------------------------------------


def _one_line(text: str, limit: int = 240) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
        return LMAssistError(f"cannot reach the server at {url}: {_one_line(detail)}")
    if isinstance(exc, httpx.RemoteProtocolError):
        return LMAssistError(f"the server at {url} closed the connection mid-answer: {_one_line(exc)}")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return LMAssistError(f"invalid server URL {url}: {_one_line(exc)}")
    return LMAssistError(f"request to {url} failed: {_one_line(exc) or type(exc).__name__}")


def _error_message(body: bytes) -> str:
    """The human part of an error body: OpenAI's ``{"error": {"message"}}``, FastAPI's ``detail``..."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return _one_line(text, 160)
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or err.get("msg") or err
        else:
            msg = err
        if isinstance(msg, list | dict):
            msg = json.dumps(msg)
        return _one_line(str(msg).splitlines()[0] if str(msg).strip() else str(msg), 160)
    return _one_line(text, 160)


def status_error(url: str, response: Any) -> LMAssistError:
    """A one-line message for an HTTP error answer, naming the URL and the status."""
    try:
        body = response.read()
    except Exception:  # noqa: BLE001 - the status is what matters; the body is a bonus
        body = b""
    message = _error_message(body) if body else ""
    status = f"HTTP {response.status_code}" + (f" {response.reason_phrase}" if response.reason_phrase else "")
    hint = ""
    if response.status_code in (401, 403):
        hint = " (check the setting openai.api_key or OPENAI_API_KEY)"
    return LMAssistError(f"the server at {url} answered {status}" + (f": {message}" if message else "") + hint)


# -- the HTTP client --------------------------------------------------------------------------------


class Server:
    """One server: an ``httpx.Client`` with the key and timeouts, and JSON requests with our errors."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import httpx

                headers = {"Accept": "application/json"}
                if self.config.api_key:
                    headers["Authorization"] = f"Bearer {self.config.api_key}"
                timeout = httpx.Timeout(self.config.timeout, connect=min(CONNECT_TIMEOUT_S, self.config.timeout))
                self._client = httpx.Client(headers=headers, timeout=timeout, follow_redirects=True)
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


class _CancelWatcher(threading.Thread):
    """Shuts the stream's socket down as soon as the cancel token is set.

    The reading thread may be blocked waiting for the server (still reading a long prompt, say),
    where checking the token between pieces would not help. Shutting the socket down wakes that
    read at once, and the server sees the client go away and stops generating.
    """

    def __init__(self, request: StreamRequest, response: Any) -> None:
        super().__init__(name="lmassist-openai-cancel", daemon=True)
        self._request = request
        self._response = response
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.02):
            if self._request.cancel.cancelled:
                self._shutdown()
                return

    def _shutdown(self) -> None:
        import socket

        stream = self._response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        self._done.set()


_FINISH: dict[str, StopReason] = {"stop": "eos", "length": "length", "eos": "eos", "content_filter": "stop"}


class OpenAIModel(Model):
    """A model on an OpenAI-compatible server. Construction makes no request; ``load`` checks first."""

    def __init__(self, server: Server, model_id: str, spec: ModelSpec, context_length: int) -> None:
        self.server = server
        self.model_id = model_id
        # Non-standard sampling fields: vLLM, llama.cpp and TGI read them; OpenAI rejects them.
        self._extended = urlsplit(server.config.base_url).hostname != "api.openai.com"
        self._stream_usage = True  # turned off for servers that reject stream_options
        self.info = ModelInfo(
            name=spec.full_name,
            backend=BACKEND,
            context_length=context_length,
            chat_template=True,  # the server applies the model's template
            device=f"remote ({server.config.host})",
            details={"base_url": server.config.base_url, "model": model_id},
        )

    def count_tokens(self, text: str) -> int:
        """An over-estimate: the API has no tokenizer endpoint, and chunks must not overflow."""
        return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)

    def _count_messages(self, messages: list[Any]) -> int:
        return sum(self.count_tokens(m.content) + 4 for m in messages)

    def _body(self, request: StreamRequest) -> dict[str, Any]:
        o = request.options
        body: dict[str, Any] = {
            "model": self.model_id,
            "max_tokens": o.max_new_tokens,
            "temperature": o.temperature,
            "top_p": o.top_p,
            "stream": True,
        }
        if o.stop:
            body["stop"] = list(o.stop)[:4]  # the API's limit; the rest are applied as text arrives
        if o.seed is not None:
            body["seed"] = o.seed
        if self._extended:
            if o.top_k > 0:
                body["top_k"] = o.top_k
            body["repeat_penalty"] = o.repetition_penalty  # llama.cpp
            body["repetition_penalty"] = o.repetition_penalty  # vLLM, TGI
        if self._stream_usage:
            body["stream_options"] = {"include_usage": True}
        if request.messages is not None:
            budget = self.context_length - min(o.max_new_tokens, self.context_length // 4)
            try:
                messages = fit_messages(request.messages, self._count_messages, budget)
            except ContextLengthError:
                messages = request.messages  # our count is an estimate: let the server decide
            body["messages"] = [m.to_dict() for m in messages]
            request.prompt_tokens = self._count_messages(messages)
        else:
            body["prompt"] = request.prompt or ""
            request.prompt_tokens = self.count_tokens(request.prompt or "")
        return body

    def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
        import httpx

        chat = request.messages is not None
        path = "chat/completions" if chat else "completions"
        url = self.server.config.url(path)
        for attempt in range(2):
            body = self._body(request)
            pieces = 0
            usage: dict[str, Any] | None = None
            watcher: _CancelWatcher | None = None
            retry = False
            try:
                with self.server.client.stream("POST", url, json=body) as response:
                    if response.status_code >= 400:
                        error = status_error(url, response)
                        if attempt == 0 and self._stream_usage and response.status_code in (400, 422) and "stream_options" in str(error):
                            self._stream_usage = False
                            retry = True
                        else:
                            raise error
                    else:
                        watcher = _CancelWatcher(request, response)
                        watcher.start()
                        for payload in iter_sse(response.iter_lines()):
                            if request.cancel.cancelled:
                                return
                            try:
                                event = json.loads(payload)
                            except ValueError:
                                raise LMAssistError(f"the server at {url} sent a malformed event: {_one_line(payload, 80)}") from None
                            if not isinstance(event, dict):
                                continue
                            if event.get("error"):
                                raise LMAssistError(f"the server at {url} reported an error: {_error_message(json.dumps(event).encode())}")
                            for choice in event.get("choices") or []:
                                text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
                                if text:
                                    pieces += 1
                                    yield text
                                finish = choice.get("finish_reason")
                                if finish:
                                    reason = _FINISH.get(finish, "eos")
                                    if finish == "stop" and isinstance(choice.get("stop_reason"), str):
                                        reason = "stop"  # vLLM says which stop string ended it
                                    request.finish_reason = reason
                            if isinstance(event.get("usage"), dict):
                                usage = event["usage"]
            except (httpx.HTTPError, httpx.InvalidURL) as e:
                if request.cancel.cancelled:
                    return  # our watcher closed the stream: that is the cancellation, not an error
                raise network_error(url, e, self.server.config.timeout) from None
            finally:
                if watcher is not None:
                    watcher.stop()
            if retry:
                continue
            if usage:
                if isinstance(usage.get("prompt_tokens"), int):
                    request.prompt_tokens = usage["prompt_tokens"]
                # The interface counts one piece per token; a server that packs several tokens into
                # one event would under-count, so top up to the server's own count.
                extra = usage.get("completion_tokens")
                if isinstance(extra, int) and extra > pieces:
                    for _ in range(extra - pieces):
                        yield ""
            return

    def close(self) -> None:
        self.server.close()


class OpenAIBackend(Backend):
    """Models served by an OpenAI-compatible server, named ``openai:MODEL_ID``."""

    name = BACKEND
    description = "Any OpenAI-compatible server: vLLM, llama.cpp, Ollama, TGI, OpenAI (plugin lmassist-openai)"
    # Listing models is a request to the server: lmassist asks only when the user names this
    # backend (`openai:MODEL`, `models list --backend openai`), never for a bare name or a typo.
    remote = True

    @property
    def install_hint(self) -> str:  # type: ignore[override]
        if importlib.util.find_spec("httpx") is None:
            import sys

            return f"{sys.executable} -m pip install 'httpx>=0.27'"
        return ""

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("httpx") is None:
            return "httpx is not installed"
        if self._config() is None:
            return "no server configured: set OPENAI_BASE_URL or the setting openai.base_url"
        return None

    def device(self) -> str:
        config = self._config()
        return f"remote ({config.host})" if config else "n/a"

    def _config(self, settings: dict[str, Any] | None = None) -> ServerConfig | None:
        return resolve_config({**stored_settings(), **(settings or {})})

    def models(self) -> list[ModelSpec]:
        config = self._config()
        if config is None or importlib.util.find_spec("httpx") is None:
            return []  # not configured: nothing to list, and nothing worth a warning
        server = Server(config)
        try:
            items = server.list_models(timeout=min(LIST_TIMEOUT_S, config.timeout))
        finally:
            server.close()
        return [self._spec(config, m["id"], m) for m in items]

    def _spec(self, config: ServerConfig, model_id: str, entry: dict[str, Any] | None = None) -> ModelSpec:
        entry = entry or {}
        owner = entry.get("owned_by")
        return ModelSpec(
            backend=self.name,
            name=str(model_id),
            source=config.base_url,
            description=f"on {config.host}" + (f" (owned by {owner})" if owner else ""),
            installed=True,
            context_length=config.context_length or context_length_of(entry),
            details={"server": config.base_url},
        )

    def spec_for(self, model: str) -> ModelSpec:
        """Any name: servers such as Ollama serve models they do not list; ``load`` checks."""
        config = self._config()
        if config is None:  # loading reports the backend as unavailable, with what to set
            return ModelSpec(backend=self.name, name=model, installed=True)
        return self._spec(config, model)

    def load(self, spec: ModelSpec, **settings: Any) -> Model:
        known = {k: v for k, v in settings.items() if k in ("base_url", "api_key", "timeout", "context_length") and v}
        config = resolve_config({**stored_settings(), **known})  # what the caller passes wins
        if config is None:
            raise ModelLoadError(
                f"cannot load {spec.full_name}: no server configured; set OPENAI_BASE_URL or the setting openai.base_url"
            )
        server = Server(config)
        try:
            items = server.list_models()
        except LMAssistError as e:
            server.close()
            if " answered HTTP 404" in str(e) or " answered HTTP 405" in str(e):
                items = []  # a server without /models: trust the name, generation will tell
                server = Server(config)
            else:
                raise ModelLoadError(f"cannot load {spec.full_name}: {e}") from None
        entry = next((m for m in items if m.get("id") == spec.name), None)
        if items and entry is None:
            served = ", ".join(str(m["id"]) for m in items[:8]) + (", …" if len(items) > 8 else "")
            server.close()
            raise ModelLoadError(f"the server at {config.base_url} does not serve {spec.name!r}; it serves: {served}")
        context = config.context_length or context_length_of(entry or {}) or spec.context_length or DEFAULT_CONTEXT
        return OpenAIModel(server, spec.name, spec, int(context))
