"""Will llama.cpp run this model on this machine? Find out in a child process, once.

A native crash inside llama.cpp kills the whole Python process with no message: on Intel Xeons
with AMX, llama.cpp 0.3.x builds segfault in their AMX matrix kernels on any batch of more than
one token (ggml-org/llama.cpp#20824). Two defences, both here:

* what llama.cpp reports about the CPU (``llama_print_system_info``) names features known to crash;
  for those we load without the extra (AMX / repacked) weight buffers, which avoids the crashing
  kernels (``llamacpp.extra_buffers = auto|on|off`` overrides);
* the first time a model file meets a llama.cpp build and CPU, a child process loads it and decodes
  a batch and a few tokens. A child that dies on a signal becomes one clear line instead of our own
  death; in ``auto`` mode a crash with extra buffers is retried without them. The outcome is cached
  (model file, llama.cpp version, CPU report, setting), so later runs pay nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lmassist.config import atomic_write_text, paths
from lmassist.errors import ModelLoadError

# CPU features for which llama.cpp's extra buffer types (AMX tiles, repacked weights) are known to
# crash, and why. Loading without extra buffers avoids the crashing kernels.
KNOWN_CRASHES = {
    "AMX_INT8": "llama.cpp's AMX kernels segfault on some Xeons (ggml-org/llama.cpp#20824)",
}
PORTABLE_BUILD = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" '
    "pip install --force-reinstall --no-cache-dir --no-binary llama-cpp-python llama-cpp-python"
)
EXTRA_BUFFERS = ("auto", "on", "off")
CHECK_TIMEOUT_S = 180
CHECK_PROMPT = "The quick brown fox jumps over the lazy dog. " * 4  # decoded as one multi-token batch


def system_info() -> str:
    """What the loaded llama.cpp says it was built for and found on this CPU."""
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()


def cpu_features(info: str) -> dict[str, str]:
    """``"CPU : AVX2 = 1 | AMX_INT8 = 1 |"`` as ``{"AVX2": "1", "AMX_INT8": "1"}``."""
    features: dict[str, str] = {}
    for part in info.replace("\n", "|").split("|"):
        if " : " in part:  # "CPU : SSE3 = 1" starts a backend's section
            part = part.split(" : ", 1)[1]
        key, eq, value = part.partition("=")
        if eq and key.strip():
            features[key.strip()] = value.strip()
    return features


def crash_prone(info: str) -> list[str]:
    """The features this build reports that are known to crash with extra buffers."""
    features = cpu_features(info)
    return [name for name in KNOWN_CRASHES if features.get(name, "0") not in ("0", "")]


def use_extra_buffers(setting: str, info: str) -> bool:
    """Whether to load with extra buffer types, for ``llamacpp.extra_buffers`` and this CPU."""
    if setting not in EXTRA_BUFFERS:
        raise ModelLoadError(f"llamacpp.extra_buffers must be one of {', '.join(EXTRA_BUFFERS)}, not {setting!r}")
    if setting != "auto":
        return setting == "on"
    return not crash_prone(info)


@dataclass
class CheckResult:
    """How a child process fared loading a model and decoding with it."""

    ok: bool
    extra_buffers: bool
    signal: str | None = None
    detail: str = ""
    tokens_per_s: float | None = None
    seconds: float = 0.0

    def crash_line(self, path: str) -> str:
        """The one line a user gets when llama.cpp cannot run the model here."""
        buffers = "on" if self.extra_buffers else "off"
        what = f"crashed with {self.signal}" if self.signal else f"failed ({self.detail})"
        avoid = (
            "set it off (lmassist settings set llamacpp.extra_buffers off) or install a portable build"
            if self.extra_buffers else "install a portable build"
        )
        return (
            f"llama.cpp {what} running {Path(path).name} on this CPU (extra buffers {buffers}); "
            f"to avoid it, {avoid}: {PORTABLE_BUILD}; details: lmassist doctor"
        )


def child_command(path: str, extra_buffers: bool, threads: int) -> list[str]:
    return [
        sys.executable, "-m", "lmassist.backends.llamacpp_check", str(path),
        "--extra-buffers", "on" if extra_buffers else "off", "--threads", str(threads),
    ]


def probe(path: str, extra_buffers: bool, threads: int = 1, timeout: float = CHECK_TIMEOUT_S) -> CheckResult:
    """Load ``path`` and decode with it in a child process; report a crash instead of sharing it."""
    start = time.monotonic()
    try:
        proc = subprocess.run(
            child_command(path, extra_buffers, threads), capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        )
    except subprocess.TimeoutExpired:
        return CheckResult(False, extra_buffers, detail=f"no answer after {timeout:.0f} s",
                           seconds=time.monotonic() - start)
    seconds = time.monotonic() - start
    if proc.returncode < 0:  # killed by a signal: the native crash we are here to catch
        return CheckResult(False, extra_buffers, signal=_signal_name(-proc.returncode), seconds=seconds)
    if proc.returncode != 0:
        # Python's fault handler turns a fatal signal into exit status 128+N on some platforms.
        if proc.returncode > 128 and "Fatal Python error" in proc.stderr:
            return CheckResult(False, extra_buffers, signal=_signal_name(proc.returncode - 128), seconds=seconds)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        return CheckResult(False, extra_buffers, detail=lines[-1] if lines else f"exit status {proc.returncode}",
                           seconds=seconds)
    try:
        report = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return CheckResult(False, extra_buffers, detail="the check printed no result", seconds=seconds)
    return CheckResult(True, extra_buffers, tokens_per_s=report.get("tokens_per_s"), seconds=seconds)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _cache_key(path: str, setting: str, info: str) -> str:
    import llama_cpp

    st = os.stat(path)
    ident = [llama_cpp.__version__, os.path.abspath(path), st.st_size, st.st_mtime_ns, setting, info]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:32]


def cache_file() -> Path:
    return paths().cache / "llamacpp-checks.json"


def _read_cache() -> dict[str, dict]:
    try:
        data = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # missing or damaged: checking again costs a second, nothing more
    return data if isinstance(data, dict) else {}


def checked_extra_buffers(path: str, setting: str, threads: int = 1) -> bool:
    """The extra-buffers choice that runs ``path`` here, checked in a child the first time.

    Raises :class:`ModelLoadError` with one line when llama.cpp crashes either way.
    """
    info = system_info()
    choice = use_extra_buffers(setting, info)
    key = _cache_key(path, setting, info)
    cache = _read_cache()
    known = cache.get(key)
    if isinstance(known, dict) and "ok" in known:
        result = CheckResult(**{k: known[k] for k in CheckResult.__dataclass_fields__ if k in known})
    else:
        result = probe(path, choice, threads)
        if not result.ok and result.signal and setting == "auto" and choice:
            # A crash we did not know about: the extra buffers are the usual suspect, try without.
            retry = probe(path, False, threads)
            if retry.ok:
                result = retry
        if result.ok:  # a failure is checked again next time: it may have been the machine's, not ours
            cache[key] = asdict(result)
            try:
                atomic_write_text(cache_file(), json.dumps(cache, indent=1) + "\n")
            except OSError:
                pass  # an unwritable cache costs a check per run, not the run
    if not result.ok:
        raise ModelLoadError(result.crash_line(path))
    return result.extra_buffers


def load_llama(llama_cpp: object, extra_buffers: bool, **kwargs: object) -> object:
    """``llama_cpp.Llama(**kwargs)`` with ``use_extra_bufts`` set as asked.

    ``Llama`` takes no argument for it, but reads its model parameters from
    ``llama_model_default_params()`` while constructing, so we hand it defaults with the field set.
    """
    low = llama_cpp.llama_cpp  # type: ignore[attr-defined]
    defaults = low.llama_model_default_params
    if extra_buffers or not hasattr(defaults(), "use_extra_bufts"):
        return llama_cpp.Llama(**kwargs)  # type: ignore[attr-defined]

    def without_extra_buffers():  # type: ignore[no-untyped-def]
        params = defaults()
        params.use_extra_bufts = False
        return params

    with _PATCH_LOCK:
        low.llama_model_default_params = without_extra_buffers
        try:
            return llama_cpp.Llama(**kwargs)  # type: ignore[attr-defined]
        finally:
            low.llama_model_default_params = defaults


_PATCH_LOCK = threading.Lock()  # the defaults are patched for one construction at a time


def _child(argv: list[str]) -> int:
    """The child's side: load, decode a multi-token batch, generate a few tokens, print a result."""
    import argparse  # the child process only: doctor, imported for ``lmassist --help``, never needs it

    parser = argparse.ArgumentParser(prog="lmassist.backends.llamacpp_check")
    parser.add_argument("path")
    parser.add_argument("--extra-buffers", choices=("on", "off"), default="on")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    # A real crash on demand, so the tests can prove the report and the fallback on any machine:
    # "segv" always, "segv-with-extra-buffers" only where extra buffers are on (as on AMX).
    inject = os.environ.get("LMASSIST_FAULT_INJECT", "")
    if inject == "segv" or (inject == "segv-with-extra-buffers" and args.extra_buffers == "on"):
        os.kill(os.getpid(), signal.SIGSEGV)
    import llama_cpp

    llm = load_llama(
        llama_cpp, args.extra_buffers == "on", model_path=args.path, n_ctx=256, n_threads=args.threads,
        n_threads_batch=args.threads, n_gpu_layers=0, verbose=False,
    )
    tokens = llm.tokenize(CHECK_PROMPT.encode(), add_bos=True)
    llm.eval(tokens)  # one batch of many tokens: the path that crashed on AMX
    start, n = time.perf_counter(), 0
    for _ in llm.generate(tokens, temp=0.0):
        n += 1
        if n >= 8:
            break
    seconds = time.perf_counter() - start
    print(json.dumps({"tokens_per_s": round(n / seconds, 1) if seconds > 0 else None}))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
