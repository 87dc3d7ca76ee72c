"""Task plugins: question answering, summarization, translation and sentiment.

Each task is an object implementing the contract in :mod:`lmassist.tasks.base`; the built-in ones
register through the same ``register_tasks`` hook a third-party plugin uses
(:mod:`lmassist.tasks.builtin`), and every registered task becomes a CLI command and a TUI slash
command. Nothing heavy is imported here, so ``lmassist --help`` stays fast.
"""
