"""The errors lmassist shows its users, in a module of their own.

They live apart from the generation contract (which re-exports them) so that code on the app's
start-up path can catch them without building the contract's dataclasses before the first frame.
"""

from __future__ import annotations


class LMAssistError(Exception):
    """An error meant for the user: its message is shown as one line, without a traceback."""


class ModelLoadError(LMAssistError):
    """A model could not be found or loaded (missing file, corrupt weights, unknown name)."""


class ContextLengthError(LMAssistError):
    """The prompt does not fit in the model's context window, even after trimming."""


class UnsupportedError(LMAssistError):
    """The backend cannot do what was asked (for example ``score`` over a remote API)."""
