"""lmassist-openai: a backend for any OpenAI-compatible server (vLLM, llama.cpp, Ollama, TGI, OpenAI).

This module only registers the backend; the client code lives in :mod:`lmassist_openai.backend`
and imports ``httpx`` only when a model is listed or loaded, so that ``lmassist --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

from lmassist import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_backends(register: Any) -> None:
    from lmassist_openai.backend import OpenAIBackend

    register(OpenAIBackend())
