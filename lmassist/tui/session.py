"""The app's face of a conversation: the visible thread, its settings, and its history rows.

The rules (what is saved when, what the model sees, what a regenerated reply replaces) are
:mod:`lmassist.conversation`'s, shared with ``ask`` and the line chat; this module keeps what only
the app has: the thread as the user sees it (:class:`Turn`), per-conversation settings, and the
models it has loaded (:class:`ModelHost`). Kept free of Textual so worker threads can call it: the
store is thread-safe and every method here is a short store call.

What a reply is made from (:meth:`ChatSession.plan_reply`) is the thread, or with ``/docs NAME`` a
folder index's passages (:mod:`lmassist.tasks.docs_answer`), plus the files attached so far
(:meth:`lmassist.conversation.ConversationLog.attach`: saved with the next message, shown to the
model from then on).

History rows are never rewritten to hide an old version: a regenerated reply, or an edited user
message, is a new row whose ``options`` say which row it ``replaces``. Resuming a conversation
replays those markers, so the view comes back exactly as it was left, and nothing is lost.

The chat screen imports this module before the app's first frame, which needs neither the
generation contract nor the store: :mod:`lmassist.conversation` and the contract's names are
imported in the methods that use them (the errors come from the small :mod:`lmassist.errors`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lmassist.errors import LMAssistError

if TYPE_CHECKING:
    from lmassist.conversation import ConversationLog
    from lmassist.generation import CancelToken, GenerationOptions, Message, Model

OPTION_FIELDS = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed")
KEPT_OPTIONS = (*OPTION_FIELDS, "stop")  # what a chat keeps: the fields above, and a template's stop strings
SHOWN_META = ("task", "docs", "citations")  # what a row's options add to its view (a reply's sources)


@dataclass
class ReplyPlan:
    """What a reply is made from: the messages the model is asked, what its row records beside them
    (``meta``: the collection and citations of a ``/docs`` answer), or the text to give instead of
    asking the model at all (``abstain``: the notes do not hold the answer)."""

    messages: list[Message]
    meta: dict[str, Any] = field(default_factory=dict)
    abstain: str | None = None
    note: str | None = None  # one line for the user: the attachments did not fit whole


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


def visible_thread(stored: list[Any], attachments: list[Any] = ()) -> list[Turn]:
    """History rows as the thread the user saw (:func:`lmassist.conversation.replay`), system rows
    aside; a message that attached files carries their chips (``meta["attachments"]``)."""
    from lmassist.conversation import replay

    chips = attachment_chips(attachments)
    return [
        Turn(role=m.role, content=m.content, model=m.model, status=m.status, mid=m.id,
             kind="task" if (m.options or {}).get("task") else "chat", stats=m.stats,
             meta={**{k: v for k, v in (m.options or {}).items() if k in SHOWN_META},
                   **({"attachments": chips[m.id]} if m.id in chips else {})})
        for m in replay(stored) if m.role != "system"
    ]


def attachment_chips(stored: list[Any]) -> dict[int, list[str]]:
    """The chip of each stored attachment (:func:`lmassist.attachments.chip`), by the message that attached it."""
    if not stored:
        return {}
    from lmassist.attachments import chip
    from lmassist.conversation import as_attachment

    chips: dict[int, list[str]] = {}
    for row in stored:
        chips.setdefault(row.message_id, []).append(chip(as_attachment(row)))
    return chips


@dataclass
class Attached:
    """What one ``/attach`` did: the files new to the conversation, the chips to show for them, and
    the one-line notes (files a folder or glob skipped, files attached already)."""

    added: list[Any]
    chips: list[str]
    notes: list[str]


class ChatSession:
    """The current conversation: its turns, its settings, and the history log it is saved in."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.turns: list[Turn] = []
        self.settings: dict[str, Any] = {}
        self._log: ConversationLog | None = None  # made on first use: it imports the store

    @property
    def log(self) -> ConversationLog:
        if self._log is None:
            from lmassist.conversation import ConversationLog

            self._log = ConversationLog(self.store)
        return self._log

    @property
    def conversation(self) -> Any:
        """The stored conversation (None until the first message starts one)."""
        return self._log.record if self._log is not None else None

    @conversation.setter
    def conversation(self, record: Any) -> None:
        self.log.record = record

    # -- settings --------------------------------------------------------------------------------

    @property
    def system_prompt(self) -> str:
        return str(self.settings.get("system") or "")

    @property
    def docs(self) -> str | None:
        """The folder index (``lmassist docs`` collection) that answers the chat, set by ``/docs NAME``."""
        return self.settings.get("docs") or None

    def set_docs(self, name: str | None) -> None:
        self.set_settings({**self.settings, "docs": name})

    def options(self) -> GenerationOptions:
        """The conversation's generation options over the defaults."""
        from lmassist.generation import GenerationOptions

        stored = self.settings.get("options") or {}
        known = {k: v for k, v in stored.items() if k in KEPT_OPTIONS}
        return GenerationOptions().replace(**known).validate()

    def set_settings(self, settings: dict[str, Any]) -> None:
        """Validate, keep and persist (once the conversation exists) the system prompt and options."""
        from lmassist.generation import GenerationOptions

        options = {k: v for k, v in (settings.get("options") or {}).items() if k in KEPT_OPTIONS}
        GenerationOptions().replace(**options).validate()
        self.settings = {"system": str(settings.get("system") or ""), "options": options}
        if settings.get("docs"):
            self.settings["docs"] = str(settings["docs"])
        if self.conversation is not None:
            self.store.set_settings(self.conversation.id, self.settings)

    def set_option(self, key: str, value: str) -> None:
        """``/set KEY VALUE``: one option, parsed and checked like ``-o KEY VALUE`` on the command line."""
        from lmassist.generation import GenerationOptions, option_name

        parsed = GenerationOptions.from_pairs([(key, value)], base=self.options())
        name = option_name(key)
        if name not in OPTION_FIELDS:
            raise LMAssistError(f"option {key!r} cannot be set per conversation")
        options = dict(self.settings.get("options") or {})
        options[name] = getattr(parsed, name)
        self.set_settings({**self.settings, "options": options})

    # -- conversations ---------------------------------------------------------------------------

    def new(self) -> list[str]:
        """Start a new chat; the names of the files attached to the one left but never sent.

        Those files belonged to the chat left, so they are not carried over, but the user is told
        (a file attached to the wrong chat is worse than one attached again)."""
        dropped = self._drop_pending()
        if self._log is not None:
            self._log.record = None
        self.turns = []
        self.settings = {}
        return dropped

    def load(self, cid: str) -> list[str]:
        """Show conversation ``cid``; the names of the files attached here but never sent (see :meth:`new`)."""
        rows = self.log.open(cid)
        dropped = self._drop_pending()
        self.turns = visible_thread(rows, self.store.attachments(cid))
        self.settings = dict(self.conversation.settings or {})
        return dropped

    def _drop_pending(self) -> list[str]:
        if self._log is None:
            return []
        dropped = [a.name for a in self._log.pending]
        self._log.pending = []
        return dropped

    # -- attachments -----------------------------------------------------------------------------

    def attach(self, paths: list[str]) -> Attached:
        """Read files, folders and globs (:func:`lmassist.attachments.collect`) and attach them to
        the conversation (:meth:`lmassist.conversation.ConversationLog.attach`): saved with the next
        message, shown to the model from then on. Blocks (it reads the files): call it from a worker."""
        from lmassist.attachments import chip, collect

        collected = collect(paths)
        added = self.log.attach(collected)
        notes = [line for line in [collected.skipped_line()] if line]
        if len(added) < len(collected):
            same = len(collected) - len(added)
            notes.append(f"{same} file{'s' if same != 1 else ''} attached already with the same content")
        return Attached(added, [chip(a) for a in added], notes)

    def _attached_to(self, mid: int) -> list[Any]:
        from lmassist.conversation import as_attachment

        if self.conversation is None:
            return []
        return [as_attachment(a) for a in self.store.attachments(self.conversation.id) if a.message_id == mid]

    def attachments_for(self, upto: Turn) -> list[Any]:
        """The files the model is shown with the reply to ``upto``: those saved with the chat
        messages up to it (failed ones aside), and any attached but not yet sent."""
        from lmassist.conversation import as_attachment

        if self.conversation is None:
            return list(self.log.pending)
        turns = self.turns[: self.turns.index(upto) + 1] if upto in self.turns else self.turns
        kept = {t.mid for t in turns if t.kind == "chat" and t.status != "error"}
        stored = [as_attachment(a) for a in self.store.attachments(self.conversation.id) if a.message_id in kept]
        return [*stored, *self.log.pending]

    def ensure_conversation(self, model: str | None) -> str:
        return str(self.log.ensure(model, settings=self.settings))

    def refresh(self) -> None:
        if self._log is not None:
            self._log.refresh()

    # -- messages --------------------------------------------------------------------------------

    def add_user(self, content: str, *, model: str | None = None, kind: str = "chat",
                 replaces: int | None = None, meta: dict[str, Any] | None = None) -> Turn:
        """Save the user's message now, before anything is generated for it, with the files attached
        since the last one (an edited message keeps the files the one it replaces had)."""
        self.ensure_conversation(model)
        options = dict(meta or {})
        if replaces is not None:
            options["replaces"] = replaces
            self.log.pending = [*self._attached_to(replaces), *self.log.pending]
        held: list[Any] = []
        if kind != "chat":  # a slash task's line: attached files wait for the next chat message
            held, self.log.pending = self.log.pending, []
        try:
            mid = self.log.add_user(content, options=options)
        finally:
            self.log.pending = [*held, *self.log.pending]
        turn = Turn("user", content, mid=mid, kind=kind, meta=dict(meta or {}))
        self._drop_replaced(replaces)
        self.turns.append(turn)
        return turn

    def begin_reply(self, model: str, *, kind: str = "chat", replaces: int | None = None,
                    meta: dict[str, Any] | None = None, options: GenerationOptions | None = None,
                    cancel: CancelToken | None = None) -> Turn:
        """Hold the conversation (as ``ask`` does) and save an empty, pending reply row that the
        streaming text is written into; :meth:`finish_reply` lets go. Another lmassist replying in
        this conversation is waited for while ``cancel`` is not set; without ``cancel``, refused."""
        self.ensure_conversation(model)
        self.log.hold(None if cancel is None else (lambda: cancel.cancelled))
        saved = {**(options.to_dict() if options else {}), **(meta or {})}
        if replaces is not None:
            saved["replaces"] = replaces
        try:
            row = self.log.reply(model, saved, now=True)
        except BaseException:
            self.log.release()
            raise
        self._drop_replaced(replaces)
        turn = Turn("assistant", "", model=model, status="pending", mid=row.mid, kind=kind, meta=dict(meta or {}))
        self.turns.append(turn)
        return turn

    def save_partial(self, turn: Turn, text: str) -> None:
        turn.content = text
        if turn.mid is not None:
            self.log.save_reply(turn.mid, text)

    def finish_reply(self, turn: Turn, text: str, status: str, stats: dict[str, Any] | None = None) -> None:
        turn.content, turn.status, turn.stats = text, status, stats
        try:
            if turn.mid is not None:
                self.log.finish_reply(turn.mid, text, status, stats)
        finally:
            self.log.release()

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
        """What the model sees (:func:`lmassist.conversation.thread_context`), trimmed by the model
        (:meth:`lmassist.generation.Model.fit`) to leave room for the reply."""
        from lmassist.conversation import thread_context

        turns = self.turns if upto is None else self.turns[: self.turns.index(upto) + 1]
        return model.fit(thread_context(turns, self.system_prompt), self.options())

    def plan_reply(self, model: Model, upto: Turn) -> ReplyPlan:
        """The messages for the reply to ``upto``: the thread, or with ``/docs NAME`` on, the passages
        of that folder index that answer it (:func:`lmassist.tasks.docs_answer.docs_turn`) with the
        thread before it as history; the attached files go in front of the question
        (:func:`lmassist.conversation.with_attachments`, which says when they did not fit whole).
        Blocks (it searches the index, counts tokens): call it from a worker."""
        from lmassist.conversation import with_attachments

        options = self.options()
        plan = ReplyPlan(self.context(model, upto))
        if self.docs:
            from lmassist.tasks.docs_answer import docs_turn

            history = [m for m in plan.messages[:-1] if m.role != "system"]  # docs_turn brings its own
            turn = docs_turn(model, self.docs, upto.content, history)
            citations = [{"path": c.path, "line": c.line, "end_line": c.end_line} for c in turn.citations]
            plan = ReplyPlan(list(turn.messages), {"docs": self.docs, "citations": citations}, turn.abstain)
        files = self.attachments_for(upto)
        if files and plan.abstain is None:
            plan.messages, fit = with_attachments(plan.messages, files, model, options)  # chat() trims the rest
            if fit is not None and fit.retrieved:
                plan.note = fit.summary
        return plan


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
