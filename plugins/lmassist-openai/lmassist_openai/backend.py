"""The ``openai`` backend: chat and completion over the OpenAI HTTP API, streamed as server-sent events.

Any server that speaks this API works the same way (vLLM, llama.cpp's server, Ollama, TGI, OpenAI),
which is how users go past one machine. What the API cannot give us, we say so rather than fake it:
``score`` is unsupported (no prompt log-probabilities), so tasks fall back to generation, and token
counts for splitting long inputs are a conservative estimate. The HTTP side (configuration, the
client, the event stream, one-line errors) is :mod:`lmassist_openai.client`.
"""

from __future__ import annotations

import importlib.util
import json
import math
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lmassist.errors import one_line
from lmassist.generation import (
    Backend,
    ContextLengthError,
    GenerationOptions,
    LMAssistError,
    Message,
    Model,
    ModelInfo,
    ModelLoadError,
    ModelSpec,
    StopReason,
    StreamRequest,
)
from lmassist_openai.client import (
    BACKEND,
    DEFAULT_CONTEXT,
    LIST_TIMEOUT_S,
    Server,
    ServerConfig,
    context_length_of,
    error_message,
    iter_sse,
    network_error,
    resolve_config,
    status_error,
    stored_settings,
)
from lmassist_openai.retry import RetryableError, retry_after_s, retryable_network_error, retryable_status

BYTES_PER_TOKEN = 3  # an over-estimate of tokens (BPE vocabularies average 3.5-4.5 bytes a token)


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
        stream = self._response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        self._done.set()


@dataclass
class _Reply:
    """What one try has received so far."""

    pieces: int = 0
    usage: dict[str, Any] | None = None


class _RetryNow(Exception):
    """Ask again at once, without counting a try (the request is changed to suit the server)."""


_FINISH: dict[str, StopReason] = {"stop": "eos", "length": "length", "eos": "eos", "content_filter": "stop"}


class OpenAIModel(Model):
    """A model on an OpenAI-compatible server. Construction makes no request; ``load`` checks first.

    Several threads may stream from it at once: the server queues or batches the requests (vLLM's
    continuous batching, llama.cpp's slots), and each request holds only its own state here.
    """

    parallel_safe = True

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

    def fit(self, messages: list[Message], options: GenerationOptions) -> list[Message]:
        try:
            return super().fit(messages, options)
        except ContextLengthError:
            return messages  # our count is an estimate: let the server decide

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
        if request.messages is not None:  # already fitted by Model.chat
            body["messages"] = [m.to_dict() for m in request.messages]
            request.prompt_tokens = self.count_messages(request.messages)
        else:
            body["prompt"] = request.prompt or ""
            request.prompt_tokens = self.count_tokens(request.prompt or "")
        return body

    def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
        """Stream one reply, trying again (with backoff) when the server could not take the request now.

        A try is repeated only while it has yielded nothing: once text has gone to the caller (who may
        have shown it, or stored it), a try that breaks off half-way fails with a one-line reason
        instead of starting over behind the caller's back. A folder job records that input as failed,
        and running the command again redoes it.
        """
        url = self.server.config.url("chat/completions" if request.messages is not None else "completions")
        backoff = self.server.backoff()
        while True:
            reply = _Reply()
            request.finish_reason = None
            try:
                yield from self._stream_once(url, request, reply)
            except _RetryNow:
                continue
            except RetryableError as failure:
                if request.cancel.cancelled:
                    return
                if reply.pieces:
                    raise LMAssistError(
                        f"{failure}; the reply broke off after {reply.pieces} tokens and is not retried half-way "
                        "(run the command again to redo it)"
                    ) from None
                self.server.timing.sleep(backoff.next_wait(failure), request.cancel)
                if request.cancel.cancelled:
                    return
                continue
            break
        yield from self._finish(request, reply)

    def _stream_once(self, url: str, request: StreamRequest, reply: _Reply) -> Iterator[str]:
        """One try: send the request and yield the reply's text as it arrives."""
        import httpx

        body = self._body(request)
        watcher: _CancelWatcher | None = None
        try:
            with self.server.client.stream("POST", url, json=body) as response:
                if response.status_code >= 400:
                    self._raise_for_status(url, response)
                self.server.outage.recovered()
                watcher = _CancelWatcher(request, response)
                watcher.start()
                yield from self._read_events(url, request, response, reply)
        except (httpx.HTTPError, httpx.InvalidURL) as e:
            if request.cancel.cancelled:
                return  # our watcher closed the stream: that is the cancellation, not an error
            error = network_error(url, e, self.server.config.timeout)
            if retryable_network_error(e):
                raise RetryableError(str(error)) from None
            raise error from None
        finally:
            if watcher is not None:
                watcher.stop()
        if request.finish_reason is None and not request.cancel.cancelled:
            # The stream ended without saying why: the server went away, or llama_cpp.server cut it
            # short for the next request (its --interrupt_requests, on by default).
            raise RetryableError(
                f"the server at {url} ended the reply before it finished (no finish_reason); "
                "llama_cpp.server does this unless started with --interrupt_requests False"
            )

    def _raise_for_status(self, url: str, response: Any) -> None:
        error = status_error(url, response)
        status = response.status_code
        if self._stream_usage and status in (400, 422) and "stream_options" in str(error):
            self._stream_usage = False  # a server that rejects stream_options: ask again without it
            raise _RetryNow()
        if retryable_status(status):
            raise RetryableError(str(error), retry_after_s(response.headers.get("retry-after"), self.server.timing.wall_clock()))
        self.server.outage.recovered()  # it answered: up, but the request is wrong
        raise error

    def _read_events(self, url: str, request: StreamRequest, response: Any, reply: _Reply) -> Iterator[str]:
        chat = request.messages is not None
        for payload in iter_sse(response.iter_lines()):
            if request.cancel.cancelled:
                return
            try:
                event = json.loads(payload)
            except ValueError:
                raise LMAssistError(f"the server at {url} sent a malformed event: {one_line(payload, 80)}") from None
            if not isinstance(event, dict):
                continue
            if event.get("error"):
                raise LMAssistError(f"the server at {url} reported an error: {error_message(json.dumps(event).encode())}")
            for choice in event.get("choices") or []:
                text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
                if text:
                    reply.pieces += 1
                    yield text
                finish = choice.get("finish_reason")
                if finish:
                    reason = _FINISH.get(finish, "eos")
                    if finish == "stop" and isinstance(choice.get("stop_reason"), str):
                        reason = "stop"  # vLLM says which stop string ended it
                    request.finish_reason = reason
            if isinstance(event.get("usage"), dict):
                reply.usage = event["usage"]

    def _finish(self, request: StreamRequest, reply: _Reply) -> Iterator[str]:
        usage = reply.usage
        if not usage:
            return
        if isinstance(usage.get("prompt_tokens"), int):
            request.prompt_tokens = usage["prompt_tokens"]
        # The interface counts one piece per token; a server that packs several tokens into one
        # event would under-count, so top up to the server's own count.
        extra = usage.get("completion_tokens")
        if isinstance(extra, int) and extra > reply.pieces:
            for _ in range(extra - reply.pieces):
                yield ""

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
        names = ("base_url", "api_key", "timeout", "context_length", "retries", "retry_time")
        known = {k: v for k, v in settings.items() if k in names and v not in (None, "")}
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
