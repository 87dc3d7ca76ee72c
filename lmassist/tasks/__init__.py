"""Tasks: question answering, summarization, translation and sentiment.

Each task is a :class:`lmassist.tasks.base.Task` (the contract, checked when a plugin registers
it); the built-in ones register through the same ``register_tasks`` hook a third-party plugin uses
(:mod:`lmassist.tasks.builtin`). The command line (:mod:`lmassist.commands.tasks`) and the TUI
build a command and a slash command from every task in the registry; tasks know nothing of them.
"""
