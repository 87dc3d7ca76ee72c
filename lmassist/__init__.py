"""lmassist: a local-first terminal chat and writing assistant."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]


def __getattr__(name: str) -> Any:
    # ``from lmassist import hookimpl`` is what plugins write; resolving it lazily keeps pluggy out of
    # the chat app's first frame, which needs no plugins yet.
    if name == "hookimpl":
        from lmassist.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'lmassist' has no attribute {name!r}")
