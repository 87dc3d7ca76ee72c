"""The lmassist-openai plugin against a real OpenAI-compatible server, and against broken ones.

The real server is ``python -m llama_cpp.server`` serving the default model on 127.0.0.1, started
once for the module. Failures (a closed port, HTTP 500, a server that never answers) come from a
tiny ``http.server`` in a thread, because a real server cannot be made to fail on cue.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli
from test_openai_jobs import LlamaServer, free_port, plugin_env

from lmassist.generation import (
    CancelToken,
    GenerationOptions,
    LMAssistError,
    ModelLoadError,
    UnsupportedError,
)
from lmassist.plugins import PluginManager
from lmassist.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "plugins" / "lmassist-openai"
sys.path.insert(0, str(PLUGIN_DIR))  # import the plugin from its source tree, as the fixture registers it

import lmassist_openai  # noqa: E402
from lmassist_openai.client import iter_sse, normalize_base_url, resolve_config  # noqa: E402

GREEDY = GenerationOptions(temperature=0, max_new_tokens=24)


@pytest.fixture(scope="module")
def server_url(default_gguf: Path) -> Iterator[str]:
    """A real llama.cpp OpenAI-compatible server serving the default model as ``smollm2``."""
    srv = LlamaServer(default_gguf, n_ctx=4096).start()
    try:
        yield srv.url
    finally:
        srv.stop()


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A registry with the plugin registered the way a plugin author tests theirs: no install."""
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    pm = PluginManager(load_entry_points=False)
    pm.register(lmassist_openai, name="lmassist-openai")
    return Registry(pm)


@pytest.fixture
def model(registry: Registry, server_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server_url)
    m = registry.load("openai:smollm2")
    yield m
    m.close()


# -- a real server ---------------------------------------------------------------------------------


def test_lists_models_from_the_server(registry, server_url, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server_url)
    assert [s.full_name for s in registry.models("openai")] == ["openai:smollm2"]
    assert registry.resolve("openai:smollm2").source == server_url
    assert registry.backend("openai").unavailable_reason() is None
    assert not registry.manager.errors


def test_base_url_from_settings_wins_over_environment(registry, server_url, monkeypatch):
    from lmassist.config import Settings

    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there
    Settings().set("openai.base_url", server_url.removesuffix("/v1"))  # "/v1" is added when missing
    with registry.load("openai:smollm2") as m:
        assert m.info.details["base_url"] == server_url
        assert m.chat([{"role": "user", "content": "Hi"}], GREEDY.replace(max_new_tokens=4)).result()


def test_streams_a_chat_reply_with_stats(model):
    gen = model.chat([{"role": "user", "content": "Name three colours."}], GREEDY)
    pieces = list(gen)
    assert len(pieces) > 3 and "".join(pieces) == gen.text and gen.text.strip()
    s = gen.stats
    assert s.generated_tokens == len(pieces) and s.prompt_tokens > 0
    assert s.stop_reason in ("eos", "length") and s.time_to_first_token_s is not None
    assert model.info.chat_template and model.info.device.startswith("remote")


def test_greedy_reply_matches_the_server_and_completion_works(model):
    a = model.chat([{"role": "user", "content": "What is 2+2?"}], GREEDY).result()
    b = model.chat([{"role": "user", "content": "What is 2+2?"}], GREEDY).result()
    assert a == b
    gen = model.complete("Once upon a time", GREEDY.replace(max_new_tokens=8))
    assert gen.result().strip() and gen.stats.stop_reason == "length" and gen.stats.generated_tokens == 8


def test_stop_strings_apply(model):
    gen = model.complete("1, 2, 3, 4, 5,", GREEDY.replace(stop=(" 7",), max_new_tokens=20))
    text = gen.result()
    assert " 7" not in text and gen.stats.stop_reason in ("stop", "eos")


def test_cancel_mid_stream_keeps_the_partial_text(model):
    token = CancelToken()
    gen = model.chat([{"role": "user", "content": "Write a long story about a dragon."}],
                     GREEDY.replace(max_new_tokens=400), token)
    seen = []
    for piece in gen:
        seen.append(piece)
        if len(seen) == 5:
            token.cancel()
    assert gen.interrupted and gen.stats.generated_tokens == 5 and gen.text == "".join(seen)
    # the server is fine afterwards
    assert model.chat([{"role": "user", "content": "Hi"}], GREEDY.replace(max_new_tokens=4)).result()


def test_cancel_from_another_thread_before_the_first_token_closes_the_stream(model):
    token = CancelToken()
    long_prompt = "Tell me about the sea. " * 60  # the server is busy reading this when we cancel
    gen = model.chat([{"role": "user", "content": long_prompt}], GREEDY.replace(max_new_tokens=100), token)
    threading.Timer(0.05, token.cancel).start()
    start = time.monotonic()
    gen.result()
    assert time.monotonic() - start < 2.0
    assert gen.interrupted and gen.stats.generated_tokens <= 2
    assert model.chat([{"role": "user", "content": "Hi"}], GREEDY.replace(max_new_tokens=4)).result()


def test_score_is_unsupported_so_tasks_fall_back(model):
    assert not model.supports_score
    with pytest.raises(UnsupportedError):
        model.score("The sky is", [" blue"])
    assert model.count_tokens("hello world") >= 2  # an estimate, erring high


def test_a_task_runs_through_the_remote_model(registry, model, tmp_path):
    """summarize only needs generation, so it works on a backend without ``score``."""
    if "summarize" not in registry.tasks:
        pytest.skip("the summarize task is not registered yet")
    text = ("The city council met on Tuesday to discuss the new budget. Members agreed to spend more on "
            "parks and libraries, and less on roads. The mayor said the plan would be final next month. ") * 4
    path = tmp_path / "council.txt"
    path.write_text(text, encoding="utf-8")
    out = registry.task("summarize").run_slash(model, str(path))
    assert out.strip() and out.strip() != text.strip()


def test_cli_ask_through_an_installed_plugin(server_url, tmp_path):
    proc = run_cli("ask", "-m", "openai:smollm2", "-O", "temperature", "0", "-O", "max_new_tokens", "12",
                   "--json", "--no-log", "Say hello.", env=plugin_env(tmp_path, server_url))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["reply"].strip() and out["model"] == "openai:smollm2"
    listing = run_cli("models", "list", "--backend", "openai", "--json", env=plugin_env(tmp_path, server_url))
    assert [m["name"] for m in json.loads(listing.stdout)] == ["openai:smollm2"]
    plugins = json.loads(run_cli("plugins", "--json", env=plugin_env(tmp_path, server_url)).stdout)
    assert any(p["name"] == "lmassist-openai" and p["hooks"] == ["register_backends"] and not p["error"] for p in plugins)


# -- servers that fail -----------------------------------------------------------------------------


class FakeServer:
    """An OpenAI-shaped server that misbehaves on cue: ``mode`` is 500, models500, slow, or usage."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _json(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if fake.mode == "models500":
                    self._json(500, {"error": {"message": "model store is broken"}})
                else:
                    self._json(200, {"object": "list", "data": [{"id": "fake", "object": "model", "max_model_len": 2048}]})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    if fake.mode == "500":
                        self._json(500, {"error": {"message": "CUDA out of memory\nat line 3", "type": "server_error"}})
                    elif fake.mode == "slow":
                        time.sleep(3)
                        self._json(200, {})
                    elif fake.mode == "usage":
                        self.send_response(200)
                        self.send_header("Content-Type", "text/event-stream")
                        self.end_headers()
                        events = [
                            {"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]},
                            {"choices": [{"delta": {"content": "Hello"}, "finish_reason": None}]},
                            {"choices": [{"delta": {"content": " there,\nfriend"}, "finish_reason": None}]},
                            {"choices": [{"delta": {}, "finish_reason": "stop"}]},
                            {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 5}},
                        ]
                        for e in events:
                            self.wfile.write(f"data: {json.dumps(e)}\n\n".encode())
                        self.wfile.write(b"data: [DONE]\n\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_server():
    servers: list[FakeServer] = []

    def start(mode: str) -> FakeServer:
        servers.append(FakeServer(mode))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_server_down_is_a_one_line_error_naming_the_url(registry, monkeypatch, tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    assert registry.models("openai") == []  # recorded, not raised: other backends still list
    assert any("connection refused" in e.message and url in e.message for e in registry.manager.errors)
    with pytest.raises(ModelLoadError, match=f"cannot reach the server at {url}/models: connection refused"):
        registry.load("openai:smollm2")
    assert_one_line_error(run_cli("ask", "-m", "openai:smollm2", "hi", env=plugin_env(tmp_path, url)),
                          "cannot reach the server at", url, "connection refused")


def test_http_500_names_the_status_and_the_message(registry, fake_server, monkeypatch, tmp_path):
    srv = fake_server("500")
    monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
    m = registry.load("openai:fake", retries=1, retry_time=5)  # a 500 is retried; once is enough here
    assert m.context_length == 2048  # from the server's max_model_len
    with pytest.raises(LMAssistError) as err:
        m.chat([{"role": "user", "content": "hi"}]).result()
    msg = str(err.value)
    assert f"{srv.url}/chat/completions" in msg and "HTTP 500" in msg and "CUDA out of memory" in msg
    assert "\n" not in msg and "gave up after 2 tries" in msg
    env = {**plugin_env(tmp_path, srv.url), "LMASSIST_OPENAI_RETRIES": "0"}
    assert_one_line_error(run_cli("ask", "-m", "openai:fake", "--no-log", "hi", env=env), "HTTP 500", srv.url)
    down = fake_server("models500")
    monkeypatch.setenv("OPENAI_BASE_URL", down.url)
    with pytest.raises(ModelLoadError, match="HTTP 500.*model store is broken"):
        registry.load("openai:fake")


def test_a_slow_server_times_out_with_a_one_line_error(registry, fake_server, monkeypatch, tmp_path):
    srv = fake_server("slow")
    monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
    m = registry.load("openai:fake", timeout=0.5, retries=0)  # test_openai_retry.py retries timeouts
    start = time.monotonic()
    with pytest.raises(LMAssistError, match=r"did not answer within 0.5 s \(timeout\)") as err:
        m.complete("hi").result()
    assert time.monotonic() - start < 2.5 and srv.url in str(err.value)
    from lmassist.config import Settings

    Settings().set("openai.timeout", 0.5)
    Settings().set("openai.retries", 0)
    assert_one_line_error(run_cli("ask", "-m", "openai:fake", "--no-log", "hi", env=plugin_env(tmp_path, srv.url)),
                          "timeout", srv.url)


def test_unknown_model_on_the_server(registry, fake_server, monkeypatch):
    srv = fake_server("usage")
    monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
    with pytest.raises(ModelLoadError, match="does not serve 'nope'; it serves: fake"):
        registry.load("openai:nope")


def test_usage_from_the_stream_sets_the_stats(registry, fake_server, monkeypatch):
    srv = fake_server("usage")
    monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
    with registry.load("openai:fake") as m:
        gen = m.chat([{"role": "user", "content": "hi"}])
        assert gen.result() == "Hello there,\nfriend"
    # two events carried five tokens: the stats follow the server's count, not the event count
    assert gen.stats.prompt_tokens == 11 and gen.stats.generated_tokens == 5 and gen.stats.stop_reason == "eos"


# -- configuration and parsing ---------------------------------------------------------------------


def test_unconfigured_backend_is_unavailable_not_broken(registry):
    backend = registry.backend("openai")
    assert "OPENAI_BASE_URL" in backend.unavailable_reason()
    assert registry.models("openai") == [] and not registry.manager.errors
    with pytest.raises(LMAssistError, match="backend 'openai' is unavailable.*OPENAI_BASE_URL"):
        registry.load("openai:anything")


def test_config_resolution(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert resolve_config({}) is None
    assert normalize_base_url("localhost:8000") == "http://localhost:8000/v1"
    assert normalize_base_url("http://h:1/v1/") == "http://h:1/v1"
    assert normalize_base_url("https://h/openai/v1") == "https://h/openai/v1"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert resolve_config({}).base_url == "https://api.openai.com/v1"  # a key alone means OpenAI itself
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env:1")
    cfg = resolve_config({"base_url": "http://settings:2", "timeout": "7"})
    assert cfg.base_url == "http://settings:2/v1" and cfg.api_key == "sk-test" and cfg.timeout == 7
    with pytest.raises(LMAssistError, match="must be numbers"):
        resolve_config({"timeout": "soon"})


def test_sse_parsing():
    lines = [": keep-alive", "event: message", "data: {\"a\": 1}", "", "data: line one", "data: line two", "",
             "data: [DONE]", "", "data: after"]
    assert list(iter_sse(iter(lines))) == ['{"a": 1}', "line one\nline two"]


# -- nothing reaches the network unless the user names a remote model --------------------------------


class ConnectionRecorder:
    """A loopback server standing in for a proxy (or a server): it records each connection's first
    line (``CONNECT api.openai.com:443 HTTP/1.1``, ``GET /v1/models HTTP/1.1``) and refuses it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while b"\r\n" not in data and len(data) < 8192:
                        chunk = conn.recv(1024)
                        if not chunk:
                            break
                        data += chunk
                    self.seen.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    self.seen.append(data.decode("latin-1") or "(a connection that sent nothing)")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def recorder() -> Iterator[ConnectionRecorder]:
    r = ConnectionRecorder()
    yield r
    r.close()


def through_proxy(env: dict[str, str], proxy: str, no_proxy: str = "") -> dict[str, str]:
    """Every request httpx makes goes to ``proxy`` (httpx reads these variables, as curl and pip do)."""
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        env[var] = env[var.lower()] = proxy
    env["NO_PROXY"] = env["no_proxy"] = no_proxy
    return env


def test_an_exported_api_key_sends_nothing_until_an_openai_model_is_named(recorder, tmp_path, default_gguf):
    """The hostile-input trial's finding: `models list`, a typo and a bare name made a CONNECT to api.openai.com."""
    env = through_proxy(plugin_env(tmp_path, None), recorder.url)
    env["OPENAI_API_KEY"] = "sk-exported-for-another-tool"

    listing = run_cli("models", "list", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    names = [m["name"] for m in json.loads(listing.stdout)]
    assert "llamacpp:smollm2-135m-instruct" in names and not any(n.startswith("openai:") for n in names)
    plain = run_cli("models", "list", env=env)
    assert plain.returncode == 0 and "lmassist models list --backend openai" in plain.stdout
    typo = run_cli("ask", "-m", "smollm", "--no-log", "hi", env=env)
    assert_one_line_error(typo, "unknown model 'smollm'", "openai:smollm")
    bare = run_cli("ask", "-m", "smollm2-135m-instruct", "-O", "max_new_tokens", "4", "-O", "temperature", "0",
                   "--no-log", "--json", "Say hi.", env=env)
    assert bare.returncode == 0, bare.stderr
    assert json.loads(bare.stdout)["model"] == "llamacpp:smollm2-135m-instruct"
    remote_name = run_cli("ask", "-m", "gpt-4o-mini", "--no-log", "hi", env=env)  # served remotely, named bare
    assert_one_line_error(remote_name, "unknown model 'gpt-4o-mini'", "openai:gpt-4o-mini")
    for args in (["backends", "--json"], ["plugins", "--json"], ["tasks", "--json"]):
        assert run_cli(*args, env=env).returncode == 0
    assert recorder.seen == []

    # Naming the remote model is the choice: that, and only that, goes out (the recorder sees it).
    explicit = run_cli("ask", "-m", "openai:gpt-4o-mini", "--no-log", "hi", env=env)
    assert_one_line_error(explicit, "cannot load openai:gpt-4o-mini", "https://api.openai.com/v1/models")
    assert recorder.seen and set(recorder.seen) == {"CONNECT api.openai.com:443 HTTP/1.1"}
    recorder.seen.clear()
    asked = run_cli("models", "list", "--backend", "openai", "--json", env=env)  # asking for the list is asking
    assert asked.returncode == 0 and set(recorder.seen) == {"CONNECT api.openai.com:443 HTTP/1.1"}
    recorder.seen.clear()
    everything = run_cli("models", "list", "--remote", "--json", env=env)
    assert everything.returncode == 0 and set(recorder.seen) == {"CONNECT api.openai.com:443 HTTP/1.1"}


def test_a_configured_server_is_asked_only_when_named(recorder, tmp_path):
    env = plugin_env(tmp_path, recorder.url + "/v1")
    for args in (["models", "list", "--json"], ["ask", "-m", "smollm", "--no-log", "hi"], ["backends", "--json"]):
        run_cli(*args, env=env)
    assert recorder.seen == []
    run_cli("models", "list", "--backend", "openai", "--json", env=env)
    assert recorder.seen == ["GET /v1/models HTTP/1.1"]


def test_a_named_remote_model_still_works_against_a_real_server(server_url, recorder, tmp_path):
    env = through_proxy(plugin_env(tmp_path, server_url), recorder.url, no_proxy="127.0.0.1")
    env["OPENAI_API_KEY"] = "sk-local"
    proc = run_cli("ask", "-m", "openai:smollm2", "-O", "temperature", "0", "-O", "max_new_tokens", "8",
                   "--json", "--no-log", "Say hello.", env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["reply"].strip() and out["model"] == "openai:smollm2" and out["device"].startswith("remote (127.0.0.1")
    local = run_cli("models", "list", "--json", env=env)
    assert "openai:smollm2" not in [m["name"] for m in json.loads(local.stdout)]  # listed only when asked
    assert recorder.seen == []  # loopback went direct; nothing else went anywhere
