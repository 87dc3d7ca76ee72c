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

import json
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

GREEDY = GenerationOptions(temperature=0, max_new_tokens=8)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plugin_env(tmp_path: Path, base_url: str | None) -> dict[str, str]:
    """Environment for a subprocess that finds the plugin through its entry point, as if installed."""
    site = tmp_path / "site"
    info = site / "lmassist_openai-0.1.0.dist-info"
    if not info.exists():
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lmassist-openai\nVersion: 0.1.0\n")
        (info / "entry_points.txt").write_text("[lmassist]\nopenai = lmassist_openai\n")
    paths = [str(site), str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")]
    env = {"PYTHONPATH": os.pathsep.join(p for p in paths if p), "OPENAI_API_KEY": ""}
    env["OPENAI_BASE_URL"] = base_url or ""
    return env


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


QUESTIONS = ["What colour is the sky?", "Name a fruit.", "Say hello in French."]


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


# -- folder jobs through the CLI ---------------------------------------------------------------------

REVIEWS = [
    "I loved this film, it was wonderful.", "Terrible acting and a boring plot.",
    "Brilliant music and a moving story.", "I want my money back.",
    "The best meal I have had this year.", "Cold soup and a rude waiter.",
    "A lovely walk along the river.", "The app crashes every time I open it.",
]
NOTES = ["The council met on Tuesday and agreed to spend more on parks.", "The storm closed schools for two days.",
         "Sales rose four percent in the north."]


def write_files(folder: Path, texts: list[str], per_file: int) -> list[str]:
    """``texts`` split into files of ``per_file`` lines each; the relative paths in input order."""
    folder.mkdir()
    names = []
    for i in range(0, len(texts), per_file):
        name = f"r{i // per_file:02d}.txt"
        (folder / name).write_text("\n".join(texts[i:i + per_file]) + "\n", encoding="utf-8")
        names.append(name)
    return names


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "lmassist", *args]


def job_env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, **plugin_env(tmp_path, url), **extra}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)


def read_tree(root: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(root.glob("*.txt"))}


def sentiment_args(folder: Path, *more: str) -> list[str]:
    return cli("sentiment", str(folder), "--per-line", "-m", "openai:smollm2", "--concurrency", "4", *more)


@pytest.fixture(scope="module")
def reviews(server, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Eight reviews in four files, and their labels from a clean run with --concurrency 4 (--out)."""
    base = tmp_path_factory.mktemp("reviews")
    folder = base / "reviews"
    names = write_files(folder, REVIEWS, 2)
    env = job_env(base, server.url, LMASSIST_HOME=str(base / "home"))
    proc = run(sentiment_args(folder, "--out", str(base / "clean")), env)
    assert proc.returncode == 0, proc.stderr
    clean = read_tree(base / "clean")
    assert list(clean) == names
    for name, text in clean.items():  # one label line per review, in the file's order
        rows = [line.split("\t") for line in text.splitlines()]
        assert [r[-1] for r in rows] == (folder / name).read_text(encoding="utf-8").splitlines()
        assert all(r[0] in ("positive", "negative") for r in rows)
    return folder, clean


def labels_of(record: dict) -> list[tuple[str, int, str]]:
    """(source, line, label) from a record: one per input file with its lines, or one per line."""
    rows = record.get("results") or [record]
    return [(Path(r["source"]).name, r["line"], r["label"]) for r in rows]


def test_sentiment_per_line_stream_keeps_input_order(server, reviews, tmp_path):
    folder, clean = reviews
    proc = run(sentiment_args(folder), job_env(tmp_path, server.url))
    assert proc.returncode == 0, proc.stderr
    got = [row for line in proc.stdout.splitlines() for row in labels_of(json.loads(line))]
    expected = [(name, i + 1, row.split("\t")[0]) for name, text in clean.items()
                for i, row in enumerate(text.splitlines())]
    assert got == expected  # every review once, in input order, labelled as in the clean run


def test_summarize_folder_with_concurrency(server, tmp_path):
    folder = tmp_path / "notes"
    names = write_files(folder, NOTES, 1)
    env = job_env(tmp_path, server.url)
    base = cli("summarize", str(folder), "--mode", "abstractive", "--length", "short", "-m", "openai:smollm2",
               "--concurrency", "4")
    stream = run(base, env)
    assert stream.returncode == 0, stream.stderr
    records = [json.loads(line) for line in stream.stdout.splitlines()]
    assert [Path(r["source"]).name for r in records] == names
    tree = run([*base, "--out", str(tmp_path / "summaries")], env)
    assert tree.returncode == 0, tree.stderr
    written = read_tree(tmp_path / "summaries")
    assert list(written) == names
    for record in records:  # a second run, in another order at the server: each summary with its own input
        summary = written[Path(record["source"]).name].strip()
        assert summary and summary == record["summaries"][0]["summary"].strip()


def start_killable(args: list[str], env: dict[str, str], out: Path) -> subprocess.Popen:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob("*.txt")):  # wait until the run is well under way
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no output after 120 s"
        time.sleep(0.05)
    return proc


def test_server_killed_mid_run_and_restarted_the_run_retries(server, reviews, tmp_path):
    folder, clean = reviews
    out = tmp_path / "labels"
    env = job_env(tmp_path, server.url)
    proc = start_killable(sentiment_args(folder, "--out", str(out)), env, out)
    server.kill()
    assert proc.poll() is None  # the run was still going when its server died
    time.sleep(0.5)
    server.start(wait=False)  # back after a few seconds; the requests in flight wait with backoff
    stdout, stderr = proc.communicate(timeout=180)
    server.wait_ready()
    # Requests that had no text yet were retried; one cut off mid-answer fails (exit 1, one line).
    failed = [line for line in stderr.splitlines() if "failed:" in line]
    assert proc.returncode == (1 if failed else 0), stderr
    assert all("broke off" in line or "before it finished" in line for line in failed), stderr
    again = run(sentiment_args(folder, "--out", str(out)), env)
    assert again.returncode == 0, again.stderr
    assert read_tree(out) == clean  # nothing lost, nothing twice, the same labels
    assert f"{len(clean) - len(failed)} up to date" in again.stderr  # finished outputs were not redone


def test_server_down_for_good_fails_the_rest_in_one_line_each_and_a_rerun_finishes(server, reviews, tmp_path):
    folder, clean = reviews
    out = tmp_path / "labels"
    env = job_env(tmp_path, server.url, LMASSIST_OPENAI_RETRY_TIME="2")
    proc = start_killable(sentiment_args(folder, "--out", str(out)), env, out)
    server.kill()
    stdout, stderr = proc.communicate(timeout=120)
    done = len(list(out.glob("*.txt")))
    failed = [line for line in stderr.splitlines() if "failed:" in line]
    assert proc.returncode == 1 and done < len(clean) and len(failed) == len(clean) - done, stderr
    assert "Traceback" not in stderr and all(server.url in line for line in failed)
    server.start()
    again = run(sentiment_args(folder, "--out", str(out)), env)
    assert again.returncode == 0, again.stderr
    assert read_tree(out) == clean
    assert f"{len(clean) - done} done, {done} up to date, 0 failed" in again.stderr
