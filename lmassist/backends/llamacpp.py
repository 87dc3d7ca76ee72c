"""The llama.cpp backend: quantized GGUF models through llama-cpp-python.

Listing and loading models; the loaded model is :mod:`lmassist.backends.llamacpp_model`.
``llama_cpp`` is imported in ``load`` (and ``device``) only.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lmassist import hookimpl
from lmassist.backends.llamacpp_check import checked_extra_buffers, load_llama
from lmassist.backends.llamacpp_prefixes import PrefixStates
from lmassist.config import paths
from lmassist.generation import (
    Backend,
    GenerationOptions,
    Model,
    ModelLoadError,
    ModelSpec,
    ProgressCallback,
)
from lmassist.modelfiles import KNOWN_GGUFS, check_gguf, local_ggufs, pull_known
from lmassist.system import CpuSample, ThreadGovernor, physical_cores, thread_setting

DEFAULT_N_CTX = 4096  # half of SmolLM2's trained context: llama.cpp allocates the KV cache up front


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """llama.cpp's C code logs to fd 2 while loading; keep the user's terminal clean."""
    if os.environ.get("LMASSIST_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class LlamaCppBackend(Backend):
    name = "llamacpp"
    description = "Quantized GGUF models through llama.cpp (fast on CPU; GPU offload when built for it)"
    install_hint = "pip install 'lmassist[llamacpp]'"

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("llama_cpp") is None:
            return "llama-cpp-python is not installed"
        return None

    def device(self) -> str:
        if self.unavailable_reason():
            return "n/a"
        import llama_cpp

        return "gpu offload" if llama_cpp.llama_supports_gpu_offload() else f"cpu ({physical_cores()} cores)"

    def models(self) -> list[ModelSpec]:
        specs = {}
        for name, known in KNOWN_GGUFS.items():
            specs[name] = ModelSpec(
                backend=self.name,
                name=name,
                source=str(known.path),
                description=known.description,
                installed=known.path.exists(),
                size_bytes=known.size_bytes,
                context_length=known.context_length,
                pull=_puller(known),
                details={"terms": known.terms[0], "terms_path": str(known.terms_path)} if known.terms else {},
            )
        for name, path in local_ggufs().items():
            if name in specs and specs[name].installed:
                continue
            specs[name] = self._file_spec(name, path)
        return list(specs.values())

    def _file_spec(self, name: str, path: Path) -> ModelSpec:
        known = KNOWN_GGUFS.get(name)
        return ModelSpec(
            backend=self.name,
            name=name,
            source=str(path),
            description=known.description if known else f"GGUF file {path.name}",
            installed=path.exists(),
            size_bytes=path.stat().st_size if path.exists() else None,
            context_length=known.context_length if known else None,
        )

    def spec_for(self, model: str) -> ModelSpec:
        path = Path(model).expanduser()
        if model.endswith(".gguf") or path.exists():
            check_gguf(path)
            return self._file_spec(path.stem.lower(), path.resolve())
        return super().spec_for(model)

    def load(self, spec: ModelSpec, **settings: Any) -> Model:
        path = Path(spec.source)
        check_gguf(path)
        import llama_cpp

        from lmassist.backends.llamacpp_model import LlamaCppModel

        cores = physical_cores()
        fixed = thread_setting(settings.get("threads"), "llamacpp.threads")
        # Never more context than the model was trained for: llama.cpp would allocate it all first.
        n_ctx = min(int(settings.get("n_ctx") or DEFAULT_N_CTX), _trained_context(llama_cpp, path) or 2**31)
        gpu_layers = int(settings.get("n_gpu_layers", -1 if llama_cpp.llama_supports_gpu_offload() else 0))
        extra_buffers = checked_extra_buffers(str(path), str(settings.get("extra_buffers") or "auto"))
        loading = CpuSample.now()
        threads = fixed or cores
        try:
            with _quiet_stderr():
                llm = load_llama(
                    llama_cpp, extra_buffers,
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_gpu_layers=gpu_layers,
                    verbose=bool(os.environ.get("LMASSIST_DEBUG")),
                )
        except (ValueError, RuntimeError, OSError) as e:
            raise ModelLoadError(f"cannot load {path}: llama.cpp could not read it ({e})") from None

        def apply(n: int) -> None:
            llama_cpp.llama_set_n_threads(llm._ctx.ctx, n, n)

        governor = ThreadGovernor(apply, cores, fixed, since=loading)  # the load is the first look
        governor.tick(force=True)
        known = KNOWN_GGUFS.get(spec.name)
        defaults = GenerationOptions().replace(**dict(known.recommended)) if known else GenerationOptions()
        prefixes = PrefixStates(paths().cache / "llamacpp-prefixes", str(path))
        return LlamaCppModel(
            spec, llm, governor, defaults, chat=known.chat if known else True, prefixes=prefixes,
            extra_buffers=extra_buffers,
        )


def _trained_context(llama_cpp: Any, path: Path) -> int:
    """The context length a GGUF was trained with, read from its header (vocabulary only, no weights)."""
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    with _quiet_stderr():
        model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        return 0  # the real load says what is wrong with the file
    try:
        # With the vocabulary only, llama_model_n_ctx_train() reads 0; the header's key does not.
        buf = ctypes.create_string_buffer(64)
        llama_cpp.llama_model_meta_val_str(model, b"general.architecture", buf, len(buf))
        key = f"{buf.value.decode(errors='replace')}.context_length".encode()
        if llama_cpp.llama_model_meta_val_str(model, key, buf, len(buf)) < 0:
            return 0
        return int(buf.value or 0)
    except ValueError:
        return 0
    finally:
        llama_cpp.llama_model_free(model)


def _puller(known: Any) -> Any:
    def pull(progress: ProgressCallback | None = None) -> None:
        pull_known(known, progress)

    return pull


@hookimpl
def register_backends(register: Any) -> None:
    register(LlamaCppBackend())

