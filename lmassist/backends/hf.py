"""The Hugging Face transformers backend: hub models from the local cache, saved folders, GGUF files.

``hf:gpt2`` and any ``hf:ORG/NAME`` load from the local Hugging Face cache only (users fetch them
with ``lmassist models pull``); ``hf:/path/to/folder`` loads a ``save_pretrained`` folder;
``hf:/path/to/file.gguf`` and ``hf:smollm2-135m-instruct`` (the default model's GGUF) are
dequantized by transformers once and cached as safetensors. Models run on CUDA when there is a GPU
(bf16 where supported, else fp16), then Apple MPS, then the CPU in fp32. On the CPU, torch's
thread count follows the machine's load unless ``hf.threads`` fixes it (see ``hf_model``).

torch and transformers are imported only in ``load`` and ``device``: listing models and
``lmassist --help`` must not pay seconds for them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lmassist import hookimpl
from lmassist.backends import hf_sources as sources
from lmassist.errors import describe
from lmassist.generation import (
    Backend,
    Model,
    ModelLoadError,
    ModelSpec,
    ProgressCallback,
)
from lmassist.modelfiles import DEFAULT_GGUF, check_gguf
from lmassist.system import CpuSample, physical_cores, pick_device, thread_setting

DEFAULT_HUB_MODEL = "gpt2"
DTYPES = ("float32", "float16", "bfloat16")
REQUIRED = ("torch", "transformers", "accelerate", "gguf", "safetensors")


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def pick_dtype(device: str, requested: str | None = None) -> Any:
    """fp32 on CPU (fast there and exact); bf16 on GPUs that have it, else fp16."""
    import torch

    want = (requested or "auto").strip().lower()
    if want != "auto":
        if want not in DTYPES:
            raise ModelLoadError(f"unknown dtype {requested!r}; use auto, {', '.join(DTYPES)}")
        return getattr(torch, want)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers logs warnings and draws tqdm bars while loading; keep the terminal clean."""
    if os.environ.get("LMASSIST_DEBUG"):
        yield
        return
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _no_gguf_progress_bar() -> Iterator[None]:
    """transformers' GGUF reader draws a plain tqdm bar that its own logging switch does not hide."""
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        gguf_utils = None
    original = getattr(gguf_utils, "tqdm", None)
    if original is None or os.environ.get("LMASSIST_DEBUG"):
        yield
        return

    def silent(*args: Any, **kwargs: Any) -> Any:
        return original(*args, **{**kwargs, "disable": True})

    gguf_utils.tqdm = silent
    try:
        yield
    finally:
        gguf_utils.tqdm = original


class HFBackend(Backend):
    name = "hf"
    description = "Hugging Face transformers models: hub models from the local cache, saved folders, GGUF files"
    install_hint = "pip install 'lmassist[hf]'"
    requires = REQUIRED

    def device(self) -> str:
        if self.unavailable_reason():
            return "n/a"
        import torch

        chosen = pick_device()
        if chosen == "cuda":
            return f"cuda ({torch.cuda.get_device_name(0)})"
        if chosen == "cpu":
            return f"cpu ({physical_cores()} cores)"
        return chosen

    # -- model specs ------------------------------------------------------------------------

    def models(self) -> list[ModelSpec]:
        specs = [self._hub_spec(DEFAULT_HUB_MODEL, description="GPT-2 (124M), the classic base model"), self._default_gguf_spec()]
        for repo_id, snap in sources.cached_hub_models().items():
            if repo_id != DEFAULT_HUB_MODEL:
                specs.append(self._hub_spec(repo_id, snapshot=snap))
        return specs

    def _default_gguf_spec(self) -> ModelSpec:
        path = DEFAULT_GGUF.path
        return ModelSpec(
            backend=self.name,
            name=DEFAULT_GGUF.name,
            source=str(path),
            description=DEFAULT_GGUF.description.split(" (")[0] + " (GGUF dequantized for transformers)",
            installed=path.exists(),
            size_bytes=DEFAULT_GGUF.size_bytes,
            context_length=DEFAULT_GGUF.context_length,
            details={"kind": "gguf"},
        )

    def _hub_spec(self, repo_id: str, snapshot: Path | None = None, description: str = "") -> ModelSpec:
        snapshot = snapshot or sources.cached_snapshot(repo_id)

        def pull(progress: ProgressCallback | None = None) -> None:
            sources.pull_hub_model(repo_id, progress)

        return ModelSpec(
            backend=self.name,
            name=repo_id,
            source=repo_id,
            description=description or f"{repo_id} from the Hugging Face hub",
            installed=snapshot is not None,
            size_bytes=sources.folder_size(snapshot) if snapshot else None,
            context_length=1024 if repo_id == DEFAULT_HUB_MODEL else None,
            pull=pull,
            details={"kind": "hub"},
        )

    def spec_for(self, model: str) -> ModelSpec:
        path = Path(model).expanduser()
        if model.endswith(".gguf") or path.is_file():
            check_gguf(path)
            path = path.resolve()
            return ModelSpec(
                backend=self.name, name=str(path), source=str(path), description=f"GGUF file {path.name}",
                size_bytes=path.stat().st_size, details={"kind": "gguf"},
            )
        if path.is_dir():
            path = path.resolve()
            return ModelSpec(
                backend=self.name, name=str(path), source=str(path), description=f"model folder {path.name}",
                details={"kind": "folder"},
            )
        if os.sep in model and (model.startswith((".", "~", os.sep)) or model.count("/") > 1):
            raise ModelLoadError(f"no such model folder or file: {model}")
        if sources.HUB_ID.match(model):
            return self._hub_spec(model)
        raise ModelLoadError(f"hf:{model} is not a hub id (ORG/NAME), a model folder or a .gguf file")

    # -- loading ----------------------------------------------------------------------------

    def load(self, spec: ModelSpec, **settings: Any) -> Model:
        kind = spec.details.get("kind") or ("gguf" if spec.source.endswith(".gguf") else "folder")
        # Cheap checks first, so a wrong path fails before seconds of importing torch.
        if kind == "gguf":
            check_gguf(Path(spec.source))
        elif kind == "hub":
            folder = self._hub_folder(spec.source)
        else:
            folder = self._check_folder(Path(spec.source))
        device = pick_device(settings.get("device"))
        dtype = pick_dtype(device, settings.get("dtype"))
        trust = _truthy(settings.get("trust_remote_code", False))
        threads = thread_setting(settings.get("threads"), "hf.threads")
        loading = CpuSample.now()  # what the machine does while we load is the first look at its load
        details: dict[str, Any] = {"source": spec.source}
        with _quiet_transformers():
            if kind == "gguf":
                folder, details = self._gguf_folder(Path(spec.source))
                details["source"] = spec.source
            model, tokenizer = self._from_folder(folder, spec, device, dtype, trust)
        from lmassist.backends.hf_model import HFModel

        return HFModel(spec, model, tokenizer, device, details, threads=threads, cores=physical_cores(), since=loading)

    def _hub_folder(self, repo_id: str) -> Path:
        snapshot = sources.cached_snapshot(repo_id)
        if snapshot is None:
            raise ModelLoadError(
                f"hf:{repo_id} is not in the local Hugging Face cache ({sources.hub_cache_dir()}) and lmassist "
                f"does not download at run time: run 'lmassist models pull hf:{repo_id}' where the hub is "
                "reachable, or use a local folder or GGUF: lmassist ask -m hf:/path/to/folder"
            )
        return snapshot

    def _check_folder(self, folder: Path) -> Path:
        if not folder.is_dir():
            raise ModelLoadError(f"no such model folder: {folder}")
        if not (folder / "config.json").exists():
            raise ModelLoadError(
                f"{folder} holds no transformers model (no config.json); give a folder written by "
                "save_pretrained, a .gguf file or a hub id"
            )
        return folder

    def _from_folder(self, folder: Path, spec: ModelSpec, device: str, dtype: Any, trust: bool) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        where = spec.source
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=trust)
        except Exception as e:  # noqa: BLE001 - transformers raises many types; all mean "cannot load"
            raise ModelLoadError(f"cannot load the tokenizer of {where}: {describe(e)}") from None
        try:
            model = AutoModelForCausalLM.from_pretrained(
                folder, local_files_only=True, trust_remote_code=trust, dtype=dtype, use_safetensors=None,
            )
        except Exception as e:  # noqa: BLE001
            message = describe(e)
            if "trust_remote_code" in message:
                message = "it ships its own Python code; rerun with --trust-remote-code if you trust it"
            raise ModelLoadError(f"cannot load {where} with transformers: {message}") from None
        model.eval()
        if device != "cpu":
            try:
                model.to(device)
            except Exception as e:  # noqa: BLE001 - out of memory or a broken driver
                raise ModelLoadError(f"cannot move {spec.full_name} to {device}: {describe(e)}") from None
        return model, tokenizer

    def _gguf_folder(self, path: Path) -> tuple[Path, dict[str, Any]]:
        """The safetensors conversion of a GGUF, made on first use and cached."""
        check_gguf(path)
        started = time.perf_counter()

        def convert(folder: Path) -> None:
            sources.note(f"Converting {path.name} for transformers (first load only; cached afterwards)...")
            model, tokenizer = _load_gguf(path)
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)

        folder, converted = sources.converted_gguf(path, convert)
        return folder, {"gguf_cache": str(folder), "converted_now": converted,
                        "prepare_s": round(time.perf_counter() - started, 3)}


def _load_gguf(path: Path) -> tuple[Any, Any]:
    """Dequantize a GGUF with transformers (fp32), as a plain model that ``save_pretrained`` accepts."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"gguf_file": path.name, "local_files_only": True}
    try:
        from transformers import GgufConfig

        quant: dict[str, Any] = {"quantization_config": GgufConfig(dequantize=True)}
    except ImportError:  # older transformers always dequantize
        quant = {}
    try:
        with _no_gguf_progress_bar():
            tokenizer = AutoTokenizer.from_pretrained(path.parent, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(path.parent, dtype=torch.float32, **kwargs, **quant)
    except Exception as e:  # noqa: BLE001 - unsupported architectures raise ValueError, bad files others
        arch = sources.gguf_architecture(path)
        if "not supported" in str(e) or "architecture" in str(e).lower():
            raise ModelLoadError(
                f"transformers cannot load {path.name}: its architecture {arch!r} is not supported by "
                f"transformers; run it with llama.cpp instead: lmassist ask -m llamacpp:{path}"
            ) from None
        raise ModelLoadError(f"transformers cannot load {path.name} ({arch or 'unknown architecture'}): {describe(e)}") from None
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # dense weights but still flagged as GGUF-quantized: unflag to save them
        quantizer.remove_quantization_config(model)
    if getattr(tokenizer, "pad_token", None) is None and getattr(tokenizer, "eos_token", None) is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


@hookimpl
def register_backends(register: Any) -> None:
    register(HFBackend())

