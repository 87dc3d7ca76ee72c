"""lmassist/conversation.py: one conversation for ask, the line chat and the app.

Real SQLite files in tmp_path; the real default model (llama.cpp) where a reply is generated; a tiny
local GPT-2 (transformers) for trimming through the same fit function.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lmassist.conversation import (
    BUSY_MESSAGE,
    ConversationLog,
    conversation_context,
    replay,
    thread_context,
)
from lmassist.generation import CancelToken, GenerationOptions, LMAssistError, Message, option_name
from lmassist.store import Store, TurnLockCancelled, turn_lock
from lmassist.tui.session import ChatSession, Turn, visible_thread

SHORT = GenerationOptions(temperature=0.0, max_new_tokens=12)


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "history.db") as s:
        yield s


def rows(store: Store, cid: str | None) -> list[tuple[str, str]]:
    assert cid is not None
    return [(m.role, m.status) for m in store.messages(cid)]


def run_reply(log: ConversationLog, model, text: str, system: str | None = None, stop_after: int | None = None):
    """One exchange as ask runs it: question saved first, the reply saved as it streams, then final."""
    exchange = log.start_exchange(text, model=model.info.name, options=SHORT, system=system)
    cancel = CancelToken()
    gen = model.chat(exchange.messages, SHORT, cancel)
    for i, _ in enumerate(gen):
        exchange.reply.save(gen.text)
        if stop_after is not None and i + 1 >= stop_after:
            cancel.cancel()
    status = "interrupted" if gen.interrupted else "complete"
    log.finish_exchange(exchange, gen.text, status, gen.stats.to_dict())
    return exchange, gen


# -- saved rows -------------------------------------------------------------------------------------


def test_an_exchange_saves_system_question_and_reply(store: Store, smollm) -> None:
    log = ConversationLog(store)
    exchange, gen = run_reply(log, smollm, "Say hello.", system="Be brief.")
    assert exchange.new_conversation and gen.text
    assert rows(store, log.id) == [("system", "complete"), ("user", "complete"), ("assistant", "complete")]
    saved = store.messages(log.id)
    assert saved[2].content == gen.text and saved[2].model == smollm.info.name
    assert saved[2].stats["generated_tokens"] == gen.stats.generated_tokens
    assert saved[2].options["max_new_tokens"] == SHORT.max_new_tokens
    assert log.record.title == "Say hello."
    # The next turn is asked with what the conversation became, the system prompt once.
    again = log.start_exchange("And goodbye?", model=smollm.info.name, options=SHORT, system="Be brief.")
    assert [m.role for m in again.messages] == ["system", "user", "assistant", "user"]
    assert not again.new_conversation


def test_an_interrupted_reply_is_kept_as_interrupted(store: Store, smollm) -> None:
    log = ConversationLog(store)
    _, gen = run_reply(log, smollm, "Count from one to fifty.", stop_after=3)
    assert gen.interrupted and gen.text
    saved = store.messages(log.id)
    assert [(m.role, m.status) for m in saved] == [("user", "complete"), ("assistant", "interrupted")]
    assert saved[1].content == gen.text and saved[1].stats["stop_reason"] == "cancelled"
    # An interrupted reply with text is still part of what the model is shown next.
    assert [m.role for m in log.context()] == ["user", "assistant"]


def test_a_failed_first_turn_leaves_no_conversation(store: Store) -> None:
    log = ConversationLog(store)
    exchange = log.start_exchange("hi", model="test:m", options=SHORT)
    log.finish_exchange(exchange, "", "error", None)
    assert log.record is None and store.conversations() == []


def test_a_failed_later_turn_marks_its_question_and_leaves_the_context(store: Store) -> None:
    log = ConversationLog(store)
    first = log.start_exchange("one", model="test:m", options=SHORT)
    log.finish_exchange(first, "first answer", "complete", None)
    second = log.start_exchange("two", model="test:m", options=SHORT)
    log.finish_exchange(second, "", "error", None)
    assert rows(store, log.id) == [("user", "complete"), ("assistant", "complete"), ("user", "error")]
    assert [m.content for m in log.context()] == ["one", "first answer"]


def test_a_hard_stop_keeps_a_new_conversation(store: Store) -> None:
    log = ConversationLog(store)
    exchange = log.start_exchange("hi", model="test:m", options=SHORT)
    log.finish_exchange(exchange, "", "error", None, keep_conversation=True)
    assert rows(store, log.id) == [("user", "error")]


def test_without_a_store_nothing_is_saved() -> None:
    log = ConversationLog(None)
    exchange = log.start_exchange("hi", model="test:m", options=SHORT, system="sys")
    exchange.reply.save("partial")
    log.finish_exchange(exchange, "partial", "complete", None)
    assert log.id is None and exchange.user_mid is None and exchange.reply.mid is None
    assert [m.role for m in exchange.messages] == ["system", "user"]


def test_resume_names_the_latest_or_a_prefix(store: Store) -> None:
    with pytest.raises(LMAssistError, match="no conversation to continue"):
        ConversationLog.resume(store, latest=True)
    first = store.new_conversation(model="a")
    second = store.new_conversation(model="b")
    assert ConversationLog.resume(store, latest=True).id == second.id
    assert ConversationLog.resume(store, cid=first.id).id == first.id
    assert ConversationLog.resume(store).record is None


# -- what the model is shown ------------------------------------------------------------------------


def test_replaced_rows_tasks_and_errors_are_left_out(store: Store) -> None:
    c = store.new_conversation()
    q = store.add_message(c.id, "user", "q1")
    old = store.add_message(c.id, "assistant", "old answer")
    store.add_message(c.id, "assistant", "new answer", options={"replaces": old})
    store.add_message(c.id, "user", "/upper x", options={"task": "upper"})
    store.add_message(c.id, "assistant", "X", options={"task": "upper"})
    store.add_message(c.id, "user", "lost", status="error")
    stored = store.messages(c.id)
    assert [m.content for m in replay(stored)][:2] == ["q1", "new answer"]
    assert [m.content for m in conversation_context(stored)] == ["q1", "new answer"]
    # The app's thread replays the same markers.
    assert [t.content for t in visible_thread(stored)][:2] == ["q1", "new answer"]
    assert visible_thread(stored)[0].mid == q


def test_thread_context_keeps_the_question_being_asked() -> None:
    turns = [Turn("user", "a"), Turn("assistant", "b"), Turn("user", "failed"), Turn("user", "now"),
             Turn("user", "/t", kind="task"), Turn("assistant", "oops", status="error")]
    assert thread_context(turns, "sys") == [
        Message("system", "sys"), Message("user", "a"), Message("assistant", "b"), Message("user", "now")]


# -- trimming: one fit function, each model's own count ---------------------------------------------


def long_conversation(n: int, words: int) -> list[Message]:
    msgs = [Message("system", "You are terse.")]
    for i in range(n):
        msgs += [Message("user", f"Question {i}: " + "tell me more " * words),
                 Message("assistant", f"Answer {i}: " + "more and more " * words)]
    msgs.append(Message("user", "Last question?"))
    return msgs


def check_fit(model, msgs: list[Message], options: GenerationOptions) -> list[Message]:
    fitted = model.fit(msgs, options)
    assert len(fitted) < len(msgs)
    assert fitted[0] == msgs[0] and fitted[-1] == msgs[-1]  # the system prompt and the question stay
    assert fitted[1:] == msgs[len(msgs) - len(fitted) + 1:]  # the oldest turns went first
    assert model.count_messages(fitted) <= model.prompt_budget(options)
    # One more turn would not have fitted.
    assert model.count_messages([msgs[0], *msgs[len(msgs) - len(fitted):]]) > model.prompt_budget(options)
    # chat() trims through the same function: the prompt it reads is exactly the fitted one.
    gen = model.chat(msgs, options)
    gen.result()
    assert gen.stats.prompt_tokens == model.count_messages(fitted)
    return fitted


def test_llamacpp_trims_through_the_one_fit_function(smollm) -> None:
    options = SHORT.replace(max_new_tokens=3000)  # capped at a quarter of the context for the budget
    assert smollm.prompt_budget(options) == smollm.context_length - smollm.context_length // 4
    # The count is the chat template's own, not an estimate.
    msgs = long_conversation(40, 30)
    assert smollm.count_messages(msgs[:2]) != sum(smollm.count_tokens(m.content) + 4 for m in msgs[:2])
    check_fit(smollm, msgs, options.replace(max_new_tokens=4))


def test_transformers_trims_through_the_one_fit_function(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from test_hf import build_tiny_gpt2

    from lmassist.plugins import PluginManager
    from lmassist.registry import Registry

    folder = build_tiny_gpt2(tmp_path / "gpt2", n_positions=256)
    with Registry(PluginManager(load_entry_points=False)).load("hf:" + str(folder)) as tiny:
        assert not tiny.info.chat_template
        assert tiny.count_messages(long_conversation(1, 2)) == len(tiny.encode_messages(long_conversation(1, 2)))
        check_fit(tiny, long_conversation(12, 4), GenerationOptions(temperature=0.0, max_new_tokens=8))


def test_the_app_shows_the_model_what_its_fit_keeps(store: Store, smollm) -> None:
    session = ChatSession(store)
    session.set_settings({"options": {"max_new_tokens": 8, "temperature": 0.0}})
    for i in range(40):
        session.add_user(f"Question {i}: " + "tell me more " * 30)
        turn = session.begin_reply(smollm.info.name)
        session.finish_reply(turn, f"Answer {i}: " + "more and more " * 30, "complete")
    last = session.add_user("Last question?")
    context = session.context(smollm, last)
    full = thread_context(session.turns, session.system_prompt)
    assert context == smollm.fit(full, session.options()) and len(context) < len(full)
    assert context[-1].content == "Last question?"


# -- the app's rows and its turn lock ----------------------------------------------------------------


def test_the_app_saves_rows_as_ask_does(store: Store) -> None:
    session = ChatSession(store)
    session.set_settings({"system": "sys", "options": {"max_new_tokens": 5}})
    user = session.add_user("hello")
    reply = session.begin_reply("test:m", options=session.options())
    assert store.message(reply.mid).status == "pending"
    session.save_partial(reply, "hi the")
    assert store.message(reply.mid).content == "hi the"
    session.finish_reply(reply, "hi there", "interrupted", {"stop_reason": "cancelled"})
    saved = store.messages(session.conversation.id)
    assert [(m.role, m.status) for m in saved] == [("user", "complete"), ("assistant", "interrupted")]
    assert saved[1].options["max_new_tokens"] == 5 and saved[0].id == user.mid
    # Regenerating: the new row names the one it replaces; the thread and the history agree.
    again = session.begin_reply("test:m", replaces=reply.mid)
    session.finish_reply(again, "hello!", "complete")
    assert [t.content for t in session.turns] == ["hello", "hello!"]
    assert [t.content for t in visible_thread(store.messages(session.conversation.id))] == ["hello", "hello!"]
    assert store.get(session.conversation.id).settings["system"] == "sys"


def test_the_app_holds_the_turn_lock_while_it_replies(store: Store) -> None:
    session = ChatSession(store)
    session.add_user("hello")
    cid = session.conversation.id
    turn = session.begin_reply("test:m")
    # ask -c in another process would wait: here, a lock that must not wait is refused.
    with pytest.raises(TurnLockCancelled):
        with turn_lock(store, cid, cancelled=lambda: True):
            pass
    session.finish_reply(turn, "hi", "complete")
    with turn_lock(store, cid, cancelled=lambda: True):
        # Another lmassist holds it now: the app refuses at once, or waits while not cancelled.
        session.add_user("again")
        with pytest.raises(LMAssistError, match=BUSY_MESSAGE):
            session.begin_reply("test:m")
        token = CancelToken()
        token.cancel()
        with pytest.raises(TurnLockCancelled):
            session.begin_reply("test:m", cancel=token)
    assert [t.role for t in session.turns] == ["user", "assistant", "user"]
    turn = session.begin_reply("test:m", cancel=CancelToken())
    session.finish_reply(turn, "ok", "complete")
    assert not session.log.held
    folder = store.path.parent / f"{store.path.name}.turns"
    assert not list(folder.iterdir())  # no lock file left behind


def test_a_failed_save_still_lets_go_of_the_lock(store: Store) -> None:
    session = ChatSession(store)
    session.add_user("hello")
    turn = session.begin_reply("test:m")
    store.delete(session.conversation.id)  # the row is gone: the final save fails
    with pytest.raises(LMAssistError):
        session.finish_reply(turn, "hi", "complete")
    assert not session.log.held


def test_option_aliases_are_written_once() -> None:
    assert option_name("max-tokens") == option_name("n") == "max_new_tokens"
    assert GenerationOptions.from_pairs([("n", "7")]).max_new_tokens == 7
    session = ChatSession(None)
    session.settings = {"options": {}}
    session.set_option("max_tokens", "9")
    assert session.settings["options"] == {"max_new_tokens": 9}
    with pytest.raises(LMAssistError, match="cannot be set per conversation"):
        session.set_option("stop", "x")
