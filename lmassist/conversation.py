"""One conversation, whichever face shows it: ``lmassist ask``, the line ``chat`` and the app.

The rules are written here once:

* a conversation starts with its first message, the system prompt (when there is one) as its first
  row; the user's message is saved before the model is asked;
* the reply is saved as it streams and finally as ``complete``, ``interrupted`` or ``error``, with
  its stats; a turn that fails before the model says anything leaves its question marked ``error``
  (and a failed first question leaves no conversation behind);
* history rows are never rewritten to hide an old version: a regenerated reply or an edited message
  is a new row whose options say which row it ``replaces`` (:func:`replay`);
* what the model is shown leaves out slash tasks, failed turns and unanswered questions
  (:func:`conversation_context` for stored rows, :func:`thread_context` for the app's thread), and
  the model trims it to its context (:meth:`lmassist.generation.Model.fit`);
* one turn at a time per conversation, across processes (:func:`lmassist.store.turn_lock`);
* files attached (:meth:`ConversationLog.attach`) are saved with the next user message, in its
  transaction, and shown to the model on that turn and every later one, in front of the question
  (:func:`with_attachments`): whole when they fit, else the passages that best match the question.
  A re-attached name shows its latest content only; attachments of rows the context leaves out
  (replaced, failed) are left out with them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from lmassist.attachments import Attachment, AttachmentFit, latest_versions, with_attachments
from lmassist.generation import GenerationOptions, LMAssistError, Message, Model
from lmassist.store import Conversation, Store, StoredAttachment, StoredMessage, TurnLockCancelled, turn_lock

BUSY_MESSAGE = "another lmassist is replying in this conversation; try again when it has finished"


class _Row(Protocol):
    role: str


_R = TypeVar("_R", bound=_Row)


# -- what the model is shown -------------------------------------------------------------------------


def replay(rows: Sequence[StoredMessage]) -> list[StoredMessage]:
    """History rows as the conversation became: a row that ``replaces`` another drops it and
    everything after it (an edited message drops its old reply too)."""
    kept: list[StoredMessage] = []
    for m in rows:
        replaces = (m.options or {}).get("replaces")
        if replaces is not None:
            for i, r in enumerate(kept):
                if r.id == replaces:
                    del kept[i:]
                    break
        kept.append(m)
    return kept


def drop_unanswered(items: Sequence[_R], keep_last: bool = False) -> list[_R]:
    """Leave out user messages that got no reply (the next message is the user's again).

    Such a message is a turn that failed or was killed before the model said anything; shown to
    the model it makes two user turns in a row, and a long one pushes everything before it out of
    the context. It stays in the history; it is only not sent again. ``keep_last`` keeps a final
    user message (the one being asked now).
    """
    kept = []
    for i, m in enumerate(items):
        nxt = items[i + 1] if i + 1 < len(items) else None
        if m.role == "user" and (nxt is None and not keep_last or nxt is not None and nxt.role == "user"):
            continue
        kept.append(m)
    return kept


def conversation_context(messages: Sequence[StoredMessage]) -> list[StoredMessage]:
    """The rows a model is shown when a stored conversation goes on (``ask -c``, ``chat -c``).

    The history keeps everything; the context keeps what the conversation became (:func:`replay`),
    without slash tasks, turns that failed (status ``error``, or a reply with no text) and user
    messages that never got a reply.
    """
    rows = [
        m for m in replay(messages)
        if not (m.options or {}).get("task") and m.status != "error"
        and (m.role != "assistant" or m.content.strip())
    ]
    return drop_unanswered(rows)


def thread_context(turns: Sequence[Any], system: str = "") -> list[Message]:
    """What the model is shown of the app's visible thread (turns with ``role``, ``content``,
    ``kind`` and ``status``): the system prompt and the chat turns, not tasks, not errors.

    A message whose reply failed (too long, a backend error) is shown, but not sent again: with it
    the model would see two questions in a row, and a long one would push out the rest.
    """
    chat = [t for t in turns if t.kind == "chat" and t.content and t.status != "error"]
    msgs = [Message(t.role, t.content) for t in drop_unanswered(chat, keep_last=True)]
    if system:
        msgs.insert(0, Message("system", system))
    return msgs


def turn_messages(context: Sequence[Message], system: str | None, text: str) -> list[Message]:
    """The context, the system prompt in front when it has none yet, and the new question."""
    messages = list(context)
    if system and not (messages and messages[0].role == "system"):
        messages.insert(0, Message("system", system))
    messages.append(Message("user", text))
    return messages


def as_attachment(row: StoredAttachment) -> Attachment:
    return Attachment.from_text(row.name, row.text)


# -- what is saved -----------------------------------------------------------------------------------


class ReplyRow:
    """A reply's history row: created pending (at once, or with the first text), updated as it
    streams, then final. Without a store (``ask --no-log``) it saves nothing."""

    def __init__(self, store: Store | None, cid: str | None, model: str, options: dict[str, Any] | None,
                 mid: int | None = None) -> None:
        self.store, self.cid, self.model, self.options = store, cid, model, options
        self.mid = mid

    @property
    def saving(self) -> bool:
        return self.store is not None and self.cid is not None

    def create(self, text: str = "", status: str = "pending", stats: dict[str, Any] | None = None) -> None:
        if self.saving and self.mid is None:
            self.mid = self.store.add_message(  # type: ignore[union-attr]
                self.cid, "assistant", text, model=self.model, options=self.options, stats=stats, status=status,  # type: ignore[arg-type]
            )

    def save(self, text: str) -> None:
        """The text so far (the row is created with the first)."""
        if not self.saving:
            return
        if self.mid is None:
            self.create(text)
        else:
            self.store.update_message(self.mid, content=text)  # type: ignore[union-attr]

    def finish(self, text: str, status: str, stats: dict[str, Any] | None = None) -> None:
        if not self.saving:
            return
        if self.mid is None:
            self.create(text, status, stats)
        else:
            self.store.update_message(self.mid, content=text, status=status, stats=stats)  # type: ignore[union-attr]


@dataclass
class Exchange:
    """One question and its reply, as ``ask`` and the line chat run them."""

    messages: list[Message]  # what the model is asked, before the model trims it
    reply: ReplyRow
    user_mid: int | None = None
    new_conversation: bool = False
    attachments: AttachmentFit | None = None  # how the conversation's attachments were fitted in


class ConversationLog:
    """A conversation's rows in the history, written by the rules of this module.

    ``record`` is the stored conversation (None until the first message starts one); ``store``
    None saves nothing. Any number of logs may share one store; each holds at most one turn lock.

    Attaching files (the faces call these): :meth:`attach` queues them for the next user message
    (:attr:`pending`), :meth:`attached` lists what the model is shown on the next turn, and
    :meth:`start_exchange` (or :meth:`add_user` plus :func:`with_attachments`) saves and shows them.
    """

    def __init__(self, store: Store | None, record: Conversation | None = None) -> None:
        self.store = store
        self.record = record
        self._held: tuple[str, ExitStack] | None = None
        self.pending: list[Attachment] = []  # attached, to be saved with the next user message
        self._unsaved: list[Attachment] = []  # sent already without a store (``ask --no-log``)

    @property
    def id(self) -> str | None:
        return self.record.id if self.record is not None else None

    @classmethod
    def resume(cls, store: Store | None, latest: bool = False, cid: str | None = None) -> ConversationLog:
        """The conversation ``--cid`` names, or the latest with ``--continue``; else a new one."""
        log = cls(store)
        if store is not None and (latest or cid):
            log.record = store.get(cid) if cid else store.latest()
            if log.record is None:
                raise LMAssistError("there is no conversation to continue yet")
        return log

    def open(self, cid: str) -> list[StoredMessage]:
        """Switch to conversation ``cid`` and return its rows."""
        self.record = self._store().get(cid)
        return self._store().messages(self.record.id)

    def refresh(self) -> None:
        if self.record is not None and self.store is not None:
            self.record = self.store.get(self.record.id)

    def ensure(self, model: str | None, settings: dict[str, Any] | None = None, system: str | None = None) -> str | None:
        """The conversation's id, starting it (with ``system`` as its first row) if need be."""
        if self.store is None:
            return None
        if self.record is None:
            self.record = self.store.new_conversation(model=model, settings=settings or None)
            if system:
                self.store.add_message(self.record.id, "system", system)
        return self.record.id

    def context(self) -> list[Message]:
        """What the model is shown of the stored conversation (empty for a new one)."""
        return self._context()[0]

    def _context(self) -> tuple[list[Message], list[Attachment]]:
        """The stored context and the attachments of the rows in it."""
        if self.store is None or self.record is None:
            return [], list(self._unsaved)
        rows = conversation_context(self.store.messages(self.record.id))
        kept = {m.id for m in rows}
        files = [as_attachment(a) for a in self.store.attachments(self.record.id) if a.message_id in kept]
        return [Message(m.role, m.content) for m in rows], [*files, *self._unsaved]  # type: ignore[arg-type]

    # -- attachments ---------------------------------------------------------------------------------

    def attach(self, attachments: Sequence[Attachment]) -> list[Attachment]:
        """Attach files to the conversation: saved with the next user message, shown to the model
        from that turn on. Returns those that were new (a file already attached with the same
        content is not attached twice)."""
        known = {a.key for a in [*self.attached()]}
        added = []
        for a in attachments:
            if a.key not in known:
                known.add(a.key)
                added.append(a)
        self.pending.extend(added)
        return added

    def attached(self) -> list[Attachment]:
        """What the model is shown of the attachments on the next turn: those in the context and the
        pending ones, one per name (its latest content)."""
        return latest_versions([*self._context()[1], *self.pending])

    # -- rows ----------------------------------------------------------------------------------------

    def add_user(self, content: str, *, model: str | None = None, options: dict[str, Any] | None = None) -> int | None:
        """Save the user's message now, before anything is generated for it, with the pending
        attachments (in the same transaction)."""
        cid = self.ensure(model)
        pending, self.pending = self.pending, []
        if cid is None:
            self._unsaved.extend(pending)
            return None
        try:
            mid = self._store().add_message(cid, "user", content, options=options or None, attachments=pending)
        except BaseException:
            self.pending = pending
            raise
        if self.record is not None and self.record.title is None:  # the first user message has just named it
            self.refresh()
        return mid

    def reply(self, model: str, options: dict[str, Any] | None, *, now: bool = False) -> ReplyRow:
        """The row a reply is saved in: created pending ``now`` (the app shows it at once), or with
        its first text (``ask``)."""
        row = ReplyRow(self.store, self.id, model, options)
        if now:
            row.create()
        return row

    def save_reply(self, mid: int, text: str) -> None:
        self._store().update_message(mid, content=text)

    def finish_reply(self, mid: int, text: str, status: str, stats: dict[str, Any] | None = None) -> None:
        self._store().update_message(mid, content=text, status=status, stats=stats)

    # -- a question and its reply ---------------------------------------------------------------------

    def start_exchange(self, text: str, *, model: str, options: GenerationOptions,
                       system: str | None = None, llm: Model | None = None,
                       messages: list[Message] | None = None, reply_options: dict[str, Any] | None = None) -> Exchange:
        """Read the context (again: another lmassist may have added to it), fit the attachments in
        (counted by ``llm``), save the question, and make the reply's row; call it holding
        :meth:`turn`. ``messages`` replaces what the model is asked (``ask --docs`` builds its own);
        ``reply_options`` are saved with the reply (its citations). Nothing is saved when the
        attachments cannot fit."""
        context, stored_files = self._context()
        fit = None
        if messages is None:
            messages = turn_messages(context, system, text)
            messages, fit = with_attachments(messages, [*stored_files, *self.pending], llm, options)
        new = self.record is None and self.store is not None
        self.ensure(model, system=system)
        user_mid = self.add_user(text)
        return Exchange(messages, self.reply(model, {**options.to_dict(), **(reply_options or {})}), user_mid, new,
                        fit)

    def finish_exchange(self, exchange: Exchange, text: str, status: str, stats: dict[str, Any] | None,
                        *, keep_conversation: bool = False) -> None:
        """Save how the turn ended. A turn that failed before any text marks its question ``error``
        (left out of later contexts); if it was a new conversation's first, the conversation goes,
        unless ``keep_conversation`` (the process is leaving at once)."""
        if self.store is None:
            return
        if text or exchange.reply.mid is not None:
            exchange.reply.finish(text, status, stats)
        elif status == "error":
            if exchange.new_conversation and not keep_conversation and self.record is not None:
                self.store.delete(self.record.id)
                self.record = None
            elif exchange.user_mid is not None:
                self.store.update_message(exchange.user_mid, status="error")

    # -- one turn at a time ----------------------------------------------------------------------------

    @contextmanager
    def turn(self, cancelled: Callable[[], bool], waiting: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold the conversation for one turn (nothing to hold for a new one or without a store);
        raises :class:`TurnLockCancelled` when ``cancelled`` turns true while waiting."""
        if self.store is None or self.record is None:
            yield
            return
        with turn_lock(self.store, self.record.id, cancelled=cancelled, waiting=waiting):
            yield

    def hold(self, cancelled: Callable[[], bool] | None = None) -> None:
        """Take the turn lock until :meth:`release` (the app: from a reply's row to its last save).

        Without ``cancelled`` a conversation held by another process is refused at once, with a
        one-line error, rather than waited for. Holding it already is no error.
        """
        if self.store is None or self.record is None:
            return
        if self._held is not None:
            if self._held[0] == self.record.id:
                return
            self.release()
        stack = ExitStack()
        try:
            stack.enter_context(turn_lock(self.store, self.record.id, cancelled=cancelled or (lambda: True)))
        except TurnLockCancelled:
            if cancelled is None:
                raise LMAssistError(BUSY_MESSAGE) from None
            raise
        self._held = (self.record.id, stack)

    def release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held[1].close()

    @property
    def held(self) -> bool:
        return self._held is not None

    def _store(self) -> Store:
        if self.store is None:
            raise LMAssistError("this conversation is not being saved")
        return self.store
