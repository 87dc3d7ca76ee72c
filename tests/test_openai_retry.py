"""The lmassist-openai plugin tries again when a server cannot take a request now, and only then.

A real server cannot be made to answer 429 or 503 on cue, so these tests run a tiny ``http.server``
that follows a script (one step per request). The clocks, the sleep and the dice are replaced
(``Server.timing``): waits are recorded, never slept, so the tests assert the exact backoff.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli
from test_openai_jobs import plugin_env

from lmassist.generation import CancelToken, GenerationOptions, LMAssistError
from lmassist.plugins import PluginManager
from lmassist.registry import Registry

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "lmassist-openai"
sys.path.insert(0, str(PLUGIN_DIR))

import lmassist_openai  # noqa: E402
from lmassist_openai.client import resolve_config  # noqa: E402
from lmassist_openai.retry import RetryPolicy, Timing, retry_after_s  # noqa: E402

HELLO = ["Hello", " there", ",", " friend"]


class ScriptedServer:
    """An OpenAI-shaped server that answers POSTs by a script, one step per request, the last step
    repeating: ``(429, {"Retry-After": "3"})`` an error status with headers; ``"ok"`` a complete
    streamed reply; ``"cut"`` two pieces and then the connection dropped; ``"unfinished"`` a stream that
    ends without a finish_reason; ``"reset"`` a connection reset before any answer."""

    def __init__(self, *script: object, delay: float = 0.0) -> None:
        self.script = list(script)
        self.delay = delay
        self.posts = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._send(200, {}, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                step = server.next_step()
                try:
                    with server.counting():
                        self._answer(step)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _answer(self, step: object) -> None:
                if isinstance(step, tuple):
                    status, headers = step
                    self._send(status, headers, {"error": {"message": f"scripted {status}\nsecond line"}})
                elif step == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                else:
                    self._stream(step)

            def _stream(self, step: object) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                pieces = HELLO[:2] if step == "cut" else HELLO
                for piece in pieces:
                    time.sleep(server.delay)
                    self._event({"choices": [{"delta": {"content": piece}, "finish_reason": None}]})
                if step == "cut":
                    time.sleep(0.2)  # let the client read what was sent before the reset
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if step == "ok":
                    self._event({"choices": [{"delta": {}, "finish_reason": "stop"}]})
                self.wfile.write(b"data: [DONE]\n\n")

            def _event(self, event: dict) -> None:
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()

            def _send(self, status: int, headers: dict[str, str], body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def next_step(self) -> object:
        with self._lock:
            self.posts += 1
            return self.script[min(self.posts, len(self.script)) - 1]

    def counting(self) -> object:
        server = self

        class Counter:
            def __enter__(self) -> None:
                with server._lock:
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)

            def __exit__(self, *exc: object) -> None:
                with server._lock:
                    server.in_flight -= 1

        return Counter()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FakeTime:
    """A clock that moves only when the code under test sleeps, and a record of each sleep."""

    def __init__(self, dice: float = 0.5) -> None:
        self.now = 1000.0
        self.waits: list[float] = []
        self.dice = dice

    def sleep(self, seconds: float, cancel: CancelToken) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def timing(self) -> Timing:
        return Timing(clock=lambda: self.now, wall_clock=lambda: 1_700_000_000.0 + self.now,
                      sleep=self.sleep, random=lambda: self.dice)


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch):
    """Start a scripted server, point the plugin at it; yields ``start(*script, **settings) -> (server, model, time)``."""
    for var in ("OPENAI_API_KEY", "LMASSIST_OPENAI_RETRIES", "LMASSIST_OPENAI_RETRY_TIME"):
        monkeypatch.delenv(var, raising=False)
    servers, models = [], []

    def start(*script: object, dice: float = 0.5, delay: float = 0.0, **settings: object):
        srv = ScriptedServer(*script, delay=delay)
        servers.append(srv)
        monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
        pm = PluginManager(load_entry_points=False)
        pm.register(lmassist_openai, name="lmassist-openai")
        model = Registry(pm).load("openai:fake", **settings)
        models.append(model)
        fake = FakeTime(dice)
        model.server.timing = fake.timing()
        return srv, model, fake

    yield start
    for m in models:
        m.close()
    for s in servers:
        s.close()


def chat(model, cancel: CancelToken | None = None):
    return model.chat([{"role": "user", "content": "hi"}], GenerationOptions(max_new_tokens=8), cancel)


def test_429_with_retry_after_then_503_then_success(serve):
    srv, model, fake = serve((429, {"Retry-After": "3"}), (503, {}), "ok")
    gen = chat(model)
    assert gen.result() == "Hello there, friend" and gen.stats.stop_reason == "eos"
    assert srv.posts == 3
    # Retry-After is believed as given; the 503 waits dice x the second ceiling (0.5 x 1.0 s)
    assert fake.waits == [3.0, 0.5]


def test_retry_after_as_an_http_date(serve):
    srv, model, fake = serve((503, {"Retry-After": formatdate(1_700_000_000.0 + 1000.0 + 7, usegmt=True)}), "ok")
    assert chat(model).result() == "Hello there, friend"
    assert srv.posts == 2 and fake.waits == [7.0]
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", now=1_445_412_480.0 + 2) == 0.0  # past: at once
    assert retry_after_s("soon", now=0) is None and retry_after_s(None, now=0) is None
    assert retry_after_s(" 2.5 ", now=0) == 2.5


def test_full_jitter_grows_exponentially_and_gives_up_after_the_retries(serve):
    srv, model, fake = serve((503, {}), dice=1.0, retries=3)
    with pytest.raises(LMAssistError) as err:
        chat(model).result()
    assert srv.posts == 4 and fake.waits == [0.5, 1.0, 2.0]  # dice 1.0: each wait at its ceiling
    msg = str(err.value)
    assert "\n" not in msg and "HTTP 503" in msg and "scripted 503" in msg and "gave up after 4 tries" in msg
    assert "openai.retries" in msg


def test_the_time_allowed_for_retries_caps_the_waits(serve):
    srv, model, fake = serve((502, {}), dice=1.0, retries=10, retry_time=3)
    with pytest.raises(LMAssistError, match="gave up after 3 tries"):
        chat(model).result()
    assert fake.waits == [0.5, 1.0] and srv.posts == 3  # a third wait of 2 s would end past 3 s

    srv, model, fake = serve((429, {"Retry-After": "10"}), retry_time=5)
    with pytest.raises(LMAssistError, match=r"asked to retry after 10 s, past the 5 s allowed.*openai.retry_time"):
        chat(model).result()
    assert srv.posts == 1 and fake.waits == []


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_fail_at_once_with_the_servers_message(serve, status):
    srv, model, fake = serve((status, {"Retry-After": "1"}))
    with pytest.raises(LMAssistError) as err:
        chat(model).result()
    msg = str(err.value)
    assert srv.posts == 1 and fake.waits == []
    assert f"HTTP {status}" in msg and f"scripted {status}" in msg and "second line" not in msg and "\n" not in msg


def test_a_reset_connection_is_retried(serve):
    srv, model, fake = serve("reset", "reset", "ok")
    assert chat(model).result() == "Hello there, friend"
    assert srv.posts == 3 and len(fake.waits) == 2


def test_a_reply_that_breaks_off_after_text_fails_instead_of_starting_over(serve):
    srv, model, fake = serve("cut", "ok")
    seen: list[str] = []
    with pytest.raises(LMAssistError) as err:
        for piece in chat(model):
            seen.append(piece)
    assert seen == ["Hello", " there"]  # what the caller already had is not repeated behind its back
    assert srv.posts == 1 and fake.waits == []
    assert "broke off after 2 tokens" in str(err.value) and "run the command again" in str(err.value)

    srv, model, fake = serve("unfinished", "ok")
    with pytest.raises(LMAssistError, match="ended the reply before it finished.*--interrupt_requests False"):
        chat(model).result()
    assert srv.posts == 1


def test_a_server_gone_for_good_fails_fast_for_every_later_request(serve):
    srv, model, fake = serve("ok", retries=100, retry_time=20)
    assert chat(model).result()
    srv.close()  # connections are refused from now on
    with pytest.raises(LMAssistError, match="connection refused.*gave up after"):
        chat(model).result()
    first = len(fake.waits)
    assert first > 3 and sum(fake.waits) <= 20
    fake.now += 10  # other work went by: the server has now been down longer than the 20 s allowed
    with pytest.raises(LMAssistError, match="gave up after 1 try"):
        chat(model).result()  # the outage is older than openai.retry_time: no second round of waits
    assert len(fake.waits) == first


def test_cancel_during_a_backoff_wait_returns_at_once(serve):
    srv, model, fake = serve((429, {"Retry-After": "30"}), "ok")
    model.server.timing = Timing()  # the real sleep, which wakes on cancel
    token = CancelToken()
    threading.Timer(0.2, token.cancel).start()
    start = time.monotonic()
    gen = chat(model, token)
    assert gen.result() == "" and gen.interrupted
    assert time.monotonic() - start < 2 and srv.posts == 1


def test_concurrent_requests_share_one_client_safely(serve):
    srv, model, fake = serve("ok", delay=0.05)
    assert model.parallel_safe
    results: list[str | None] = [None] * 8

    def one(i: int) -> None:
        results[i] = chat(model).result()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == ["Hello there, friend"] * 8
    assert srv.posts == 8 and srv.most_in_flight > 1  # they really overlapped


def test_retry_settings_and_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://h:1")
    monkeypatch.delenv("LMASSIST_OPENAI_RETRIES", raising=False)
    monkeypatch.delenv("LMASSIST_OPENAI_RETRY_TIME", raising=False)
    assert resolve_config({}).retry == RetryPolicy()
    monkeypatch.setenv("LMASSIST_OPENAI_RETRIES", "2")
    monkeypatch.setenv("LMASSIST_OPENAI_RETRY_TIME", "9.5")
    assert (resolve_config({}).retry.retries, resolve_config({}).retry.total_s) == (2, 9.5)
    cfg = resolve_config({"retries": 0, "retry_time": "30"})  # settings win, and 0 means no retries
    assert (cfg.retry.retries, cfg.retry.total_s) == (0, 30.0)
    with pytest.raises(LMAssistError, match="openai.retries must be a whole number"):
        resolve_config({"retries": "many"})
    with pytest.raises(LMAssistError, match="must not be negative"):
        resolve_config({"retry_time": -1})


def test_cli_gives_up_with_one_line_and_a_failing_status(tmp_path):
    srv = ScriptedServer((503, {"Retry-After": "0"}))
    try:
        env = {**plugin_env(tmp_path, srv.url), "LMASSIST_OPENAI_RETRIES": "2"}
        proc = run_cli("ask", "-m", "openai:fake", "--no-log", "hi", env=env)
        assert_one_line_error(proc, "HTTP 503", "scripted 503", "gave up after 3 tries", srv.url)
        assert srv.posts == 3
    finally:
        srv.close()
