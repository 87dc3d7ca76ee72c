"""Folder jobs against a real OpenAI-compatible server: ``python -m llama_cpp.server`` on 127.0.0.1
serving the default model, through the lmassist-openai plugin, with requests in flight at once.

What the server offers for parallel requests (llama-cpp-python 0.3.x, read from its
``llama_cpp/server/settings.py`` and ``app.py``): one ``Llama`` per model, every request behind one
global lock, uvicorn with a single worker, no ``n_parallel`` slots. Concurrent requests are queued
and served one at a time; ``--concurrency N`` overlaps our side (reading, sending, writing) with
the server's work. Its ``--interrupt_requests`` (on by default) cuts a streaming reply short with
``[DONE]`` as soon as another request arrives; the plugin reports that as a failure rather than
returning the truncated text, and these servers are started with ``--interrupt_requests False``,
as the README tells users to. vLLM and llama.cpp's C++ ``llama-server --parallel N`` batch
concurrent requests for real; none is installed here.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lmassist.generation import GenerationOptions, LMAssistError
from lmassist.plugins import PluginManager
from lmassist.registry import Registry

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "lmassist-openai"
sys.path.insert(0, str(PLUGIN_DIR))

import lmassist_openai  # noqa: E402

GREEDY = GenerationOptions(temperature=0, max_new_tokens=12)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` serving the default model as ``smollm2`` on a fixed port, so
    that a test can kill it (SIGKILL, as a crash) and start it again at the same URL."""

    def __init__(self, gguf: Path, *extra: str, n_ctx: int = 2048) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.args = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2",
                     "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(n_ctx), "--verbose", "False",
                     *extra]
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> LlamaServer:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, within: float = 90) -> None:
        import httpx

        deadline = time.monotonic() + within
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {self.proc.stderr.read()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/models", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start within {within} s")
            time.sleep(0.2)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="module")
def server(default_gguf: Path):
    srv = LlamaServer(default_gguf, "--interrupt_requests", "False").start()
    yield srv
    srv.stop()


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    for var in ("OPENAI_API_KEY", "LMASSIST_OPENAI_RETRIES", "LMASSIST_OPENAI_RETRY_TIME"):
        monkeypatch.delenv(var, raising=False)
    pm = PluginManager(load_entry_points=False)
    pm.register(lmassist_openai, name="lmassist-openai")
    return Registry(pm)


def load(registry: Registry, url: str, monkeypatch: pytest.MonkeyPatch, **settings: object):
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    return registry.load("openai:smollm2", **settings)


def ask_all(model, questions: list[str]) -> list[str | BaseException]:
    """Each question from its own thread, all at once; the replies (or errors) in question order."""
    out: list[str | BaseException] = [""] * len(questions)

    def one(i: int) -> None:
        try:
            out[i] = model.chat([{"role": "user", "content": questions[i]}], GREEDY).result()
        except LMAssistError as e:
            out[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


QUESTIONS = ["What colour is the sky?", "Name a fruit.", "What is 3+4?", "Say hello in French."]


def test_parallel_requests_get_the_replies_one_at_a_time_gets(registry, server, monkeypatch):
    with load(registry, server.url, monkeypatch) as model:
        assert model.parallel_safe
        one_by_one = [model.chat([{"role": "user", "content": q}], GREEDY).result() for q in QUESTIONS]
        together = ask_all(model, QUESTIONS)
    assert all(isinstance(r, str) and r.strip() for r in one_by_one)
    assert together == one_by_one


def test_a_server_that_interrupts_streams_fails_the_cut_reply_instead_of_returning_it(registry, default_gguf,
                                                                                     monkeypatch):
    """llama_cpp.server's default: a second request ends the first one's stream early, with no finish_reason."""
    srv = LlamaServer(default_gguf).start()  # --interrupt_requests left at its default (True)
    try:
        with load(registry, srv.url, monkeypatch, retries=0) as model:
            long = GenerationOptions(temperature=0, max_new_tokens=200)
            first = model.chat([{"role": "user", "content": "Write a long story about a dragon."}], long)
            pieces = iter(first)
            next(pieces)  # the first reply is streaming now
            second = threading.Thread(target=lambda: model.chat([{"role": "user", "content": "Hi"}], GREEDY).result())
            second.start()
            with pytest.raises(LMAssistError, match="ended the reply before it finished.*--interrupt_requests False"):
                for _ in pieces:
                    pass
            second.join(60)
    finally:
        srv.stop()
