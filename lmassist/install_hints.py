"""What to ``pip install`` for a missing optional dependency, fitted to the machine.

``pip install 'lmassist[inhouse]'`` on a machine without an NVIDIA GPU pulls the default (CUDA) torch
wheel from PyPI and some twenty ``nvidia-*`` packages: gigabytes that can never run there. Where no
NVIDIA GPU is found, the hint installs the CPU wheel of torch first, from PyTorch's own index, and then
the extra (which then finds torch already satisfied).

Detection is cheap and never imports torch: ``nvidia-smi`` on PATH or the NVIDIA kernel driver's
``/proc/driver/nvidia``. macOS wheels on PyPI are CPU/MPS builds already, so no index is needed there.
"""

from __future__ import annotations

import os
import shutil
import sys

CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"

# Top-level module -> the extra that provides it. torch, safetensors and tokenizers are in both
# ``inhouse`` and ``hf``; ``None`` means "the extra depends on what the user was doing".
EXTRA_OF_MODULE: dict[str, str | None] = {
    "torch": None,
    "safetensors": None,
    "tokenizers": None,
    "transformers": "hf",
    "accelerate": "hf",
    "gguf": "hf",
    "huggingface_hub": "hf",
    "llama_cpp": "llamacpp",
    "rouge_score": "bench",
    "sacrebleu": "bench",
}

# Extras whose packages include torch.
TORCH_EXTRAS = frozenset({"inhouse", "hf"})


def has_nvidia_gpu() -> bool:
    """True when an NVIDIA driver is visible: ``nvidia-smi`` on PATH or ``/proc/driver/nvidia``."""
    return shutil.which("nvidia-smi") is not None or os.path.isdir("/proc/driver/nvidia")


def needs_cpu_torch_index(gpu: bool | None = None) -> bool:
    """Whether plain ``pip install torch`` would fetch a CUDA build that cannot be used here."""
    if sys.platform == "darwin":
        return False
    return not (has_nvidia_gpu() if gpu is None else gpu)


def install_hint(extra: str, gpu: bool | None = None) -> str:
    """The command that makes ``lmassist[extra]`` work on this machine, as one shell line."""
    line = f"pip install 'lmassist[{extra}]'"
    if extra in TORCH_EXTRAS and needs_cpu_torch_index(gpu):
        return f"pip install torch --index-url {CPU_TORCH_INDEX} && {line}"
    return line


# The built-in backends come with the extra of the same name.
BUILTIN_BACKEND_EXTRAS = {"llamacpp": "llamacpp", "hf": "hf", "inhouse": "inhouse"}


def backend_install_hint(name: str, declared: str) -> str:
    """A built-in backend's hint fitted to this machine (the CPU torch wheel where there is no NVIDIA
    GPU, not gigabytes of CUDA); a plugin's backend keeps the hint it declares."""
    extra = BUILTIN_BACKEND_EXTRAS.get(name)
    if extra is not None and declared in ("", f"pip install 'lmassist[{extra}]'"):
        return install_hint(extra)
    return declared


def extra_for_module(module: str, context: str = "") -> str | None:
    """The extra that provides ``module`` (a dotted name is fine), or None if it is not one of ours.

    ``context`` (the command line, say) picks between ``inhouse`` and ``hf`` for the modules both
    need: anything naming ``hf:`` or transformers means ``hf``, otherwise ``inhouse``.
    """
    top = module.split(".", 1)[0]
    if top not in EXTRA_OF_MODULE:
        return None
    extra = EXTRA_OF_MODULE[top]
    if extra is None:
        extra = "hf" if ("hf:" in context or "hf " in f"{context} ") else "inhouse"
    return extra


def missing_module_message(module: str, context: str = "", gpu: bool | None = None) -> str | None:
    """One line for a ``ModuleNotFoundError`` of an optional dependency, or None for any other module."""
    extra = extra_for_module(module, context)
    if extra is None:
        return None
    top = module.split(".", 1)[0]
    return (f"{top} is not installed (an optional dependency, part of lmassist[{extra}]); "
            f"install it with: {install_hint(extra, gpu)}")
