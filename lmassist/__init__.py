"""lmassist: a local-first terminal chat and writing assistant."""

from lmassist.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
