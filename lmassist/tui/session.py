"""What a chat is, apart from how it is drawn: the visible thread, its settings, and its history rows.

Kept free of Textual so that the rules (what is saved when, what the model sees, what a regenerated
reply replaces) can be read and tested on their own, and so worker threads can call it: the store
is thread-safe and every method here is a short store call.

History rows are never rewritten to hide an old version: a regenerated reply, or an edited user
message, is a new row whose ``options`` say which row it ``replaces``. Resuming a conversation
replays those markers, so the view comes back exactly as it was left, and nothing is lost.

The chat screen imports this module before the app's first frame, which needs none of the generation
contract: its names are imported in the methods that use them (the errors come from the small
:mod:`lmassist.errors`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lmassist.errors import LMAssistError

if TYPE_CHECKING:
    from lmassist.generation import GenerationOptions, Message, Model

OPTION_FIELDS = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed")


@dataclass
class Turn:
    """One message in the visible thread, with the id of its history row once it is saved."""

    role: str
    content: str
    model: str | None = None
    status: str = "complete"
    mid: int | None = None
    kind: str = "chat"  # "chat": the model sees it; "task": a slash task and its result; "error"
    stats: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def visible_thread(stored: list[Any]) -> list[Turn]:
    """Replay history rows into the thread the user saw: a row that ``replaces`` another drops it
    and everything after it (an edited message drops its old reply too)."""
    turns: list[Turn] = []
    for m in stored:
        opts = m.options or {}
        replaces = opts.get("replaces")
        if replaces is not None:
            for i, t in enumerate(turns):
                if t.mid == replaces:
                    del turns[i:]
                    break
        if m.role == "system":
            continue
        turns.append(Turn(
            role=m.role, content=m.content, model=m.model, status=m.status, mid=m.id,
            kind="task" if opts.get("task") else "chat", stats=m.stats,
        ))
    return turns


class ChatSession:
    """The current conversation: its turns, its settings, and the store it is saved in."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.conversation: Any = None
        self.turns: list[Turn] = []
        self.settings: dict[str, Any] = {}

    # -- settings --------------------------------------------------------------------------------

    @property
    def system_prompt(self) -> str:
        return str(self.settings.get("system") or "")

    def options(self) -> GenerationOptions:
        """The conversation's generation options over the defaults."""
        from lmassist.generation import GenerationOptions

        stored = self.settings.get("options") or {}
        known = {k: v for k, v in stored.items() if k in OPTION_FIELDS}
        return GenerationOptions().replace(**known).validate()

    def set_settings(self, settings: dict[str, Any]) -> None:
        """Validate, keep and persist (once the conversation exists) the system prompt and options."""
        from lmassist.generation import GenerationOptions

        options = {k: v for k, v in (settings.get("options") or {}).items() if k in OPTION_FIELDS}
        GenerationOptions().replace(**options).validate()
        self.settings = {"system": str(settings.get("system") or ""), "options": options}
        if self.conversation is not None:
            self.store.set_settings(self.conversation.id, self.settings)

    def set_option(self, key: str, value: str) -> None:
        """``/set KEY VALUE``: one option, parsed and checked like ``-o KEY VALUE`` on the command line."""
        from lmassist.generation import GenerationOptions

        parsed = GenerationOptions.from_pairs([(key, value)], base=self.options())
        name = next((f for f in OPTION_FIELDS if getattr(parsed, f) != getattr(self.options(), f)), None)
        options = dict(self.settings.get("options") or {})
        if name is None:  # same value as now: still record it, under its canonical name
            name = {"max_tokens": "max_new_tokens", "n": "max_new_tokens"}.get(key.replace("-", "_"), key.replace("-", "_"))
            if name not in OPTION_FIELDS:
                raise LMAssistError(f"option {key!r} cannot be set per conversation")
        options[name] = getattr(parsed, name)
        self.set_settings({**self.settings, "options": options})

    # -- conversations ---------------------------------------------------------------------------

    def new(self) -> None:
        self.conversation = None
        self.turns = []
        self.settings = {}

    def load(self, cid: str) -> None:
        self.conversation = self.store.get(cid)
        self.turns = visible_thread(self.store.messages(self.conversation.id))
        self.settings = dict(self.conversation.settings or {})

    def ensure_conversation(self, model: str | None) -> str:
        if self.conversation is None:
            self.conversation = self.store.new_conversation(model=model, settings=self.settings or None)
        return self.conversation.id

    def refresh(self) -> None:
        if self.conversation is not None:
            self.conversation = self.store.get(self.conversation.id)

    # -- messages --------------------------------------------------------------------------------

    def add_user(self, content: str, *, model: str | None = None, kind: str = "chat",
                 replaces: int | None = None, meta: dict[str, Any] | None = None) -> Turn:
        """Save the user's message now, before anything is generated for it."""
        cid = self.ensure_conversation(model)
        options = dict(meta or {})
        if replaces is not None:
            options["replaces"] = replaces
        mid = self.store.add_message(cid, "user", content, options=options or None)
        if self.conversation.title is None:  # the first user message has just named it
            self.refresh()
        turn = Turn("user", content, mid=mid, kind=kind, meta=dict(meta or {}))
        self._drop_replaced(replaces)
        self.turns.append(turn)
        return turn

    def begin_reply(self, model: str, *, kind: str = "chat", replaces: int | None = None,
                    meta: dict[str, Any] | None = None, options: GenerationOptions | None = None) -> Turn:
        """Save an empty, pending reply row that the streaming text is written into."""
        cid = self.ensure_conversation(model)
        saved = {**(options.to_dict() if options else {}), **(meta or {})}
        if replaces is not None:
            saved["replaces"] = replaces
        mid = self.store.add_message(cid, "assistant", "", model=model, options=saved, status="pending")
        self._drop_replaced(replaces)
        turn = Turn("assistant", "", model=model, status="pending", mid=mid, kind=kind, meta=dict(meta or {}))
        self.turns.append(turn)
        return turn

    def save_partial(self, turn: Turn, text: str) -> None:
        turn.content = text
        if turn.mid is not None:
            self.store.update_message(turn.mid, content=text)

    def finish_reply(self, turn: Turn, text: str, status: str, stats: dict[str, Any] | None = None) -> None:
        turn.content, turn.status, turn.stats = text, status, stats
        if turn.mid is not None:
            self.store.update_message(turn.mid, content=text, status=status, stats=stats)

    def _drop_replaced(self, mid: int | None) -> None:
        if mid is None:
            return
        for i, t in enumerate(self.turns):
            if t.mid == mid:
                del self.turns[i:]
                return

    def last(self, role: str, kind: str = "chat") -> Turn | None:
        for t in reversed(self.turns):
            if t.role == role and t.kind == kind:
                return t
        return None

    def context(self, model: Model, upto: Turn | None = None) -> list[Message]:
        """What the model sees: the system prompt and the chat turns (not tasks, not errors), trimmed
        from the oldest to leave room for the reply in the model's context window."""
        from lmassist.generation import Message, fit_messages
        from lmassist.store import drop_unanswered

        turns = self.turns if upto is None else self.turns[: self.turns.index(upto) + 1]
        # A message whose reply failed (too long, a backend error) is shown, but not sent again:
        # with it the model would see two questions in a row, and a long one would push out the rest.
        chat = [t for t in turns if t.kind == "chat" and t.content and t.status != "error"]
        msgs = [Message(t.role, t.content) for t in drop_unanswered(chat, keep_last=True)]  # type: ignore[arg-type]
        if self.system_prompt:
            msgs.insert(0, Message("system", self.system_prompt))
        budget = max(model.context_length - self.options().max_new_tokens, 64)
        return fit_messages(msgs, lambda ms: sum(model.count_tokens(m.content) + 4 for m in ms), budget)


class ModelHost:
    """Loads models by name off the UI thread and keeps them, so switching back is instant.

    Every call may block (it is meant for worker threads); the registry is built on first use, so
    plugin discovery never delays the first frame.
    """

    def __init__(self, registry_factory: Callable[[], Any] | None = None,
                 preloaded: list[Model] | None = None, load_settings: dict[str, Any] | None = None) -> None:
        self._load_settings = dict(load_settings or {})
        self._registry_factory = registry_factory
        self._registry: Any = None
        self._lock = threading.Lock()
        self._loading: dict[str, Future[Model]] = {}
        self.loaded: dict[str, Model] = {m.info.name: m for m in preloaded or []}
        self._owned: set[str] = set()

    @property
    def registry_ready(self) -> bool:
        return self._registry is not None

    def registry(self) -> Any:
        with self._lock:
            if self._registry is None:
                if self._registry_factory is None:
                    from lmassist.registry import Registry

                    self._registry = Registry()
                else:
                    self._registry = self._registry_factory()
            return self._registry

    def resolve(self, name: str | None) -> str:
        """The full ``backend:model`` name for what the user typed (raises a one-line error)."""
        if name and name in self.loaded:
            return name
        return self.registry().resolve(name).full_name

    def load(self, name: str | None) -> Model:
        full = self.resolve(name)
        with self._lock:
            if full in self.loaded:
                return self.loaded[full]
            future = self._loading.get(full)
            owner = future is None
            if owner:
                future = self._loading[full] = Future()
        assert future is not None
        if not owner:
            return future.result()
        try:
            model = self.registry().load(full, **self._load_settings)
        except BaseException as e:
            future.set_exception(e)
            with self._lock:
                self._loading.pop(full, None)
            raise
        with self._lock:
            self.loaded[full] = model
            self._owned.add(full)
            self._loading.pop(full, None)
        future.set_result(model)
        return model

    def close(self) -> None:
        """Free the models this host loaded (never those handed to it)."""
        for name in list(self._owned):
            model = self.loaded.pop(name, None)
            if model is not None:
                try:
                    model.close()
                except Exception:  # noqa: BLE001 - closing must not stop the app from exiting
                    pass
        self._owned.clear()
