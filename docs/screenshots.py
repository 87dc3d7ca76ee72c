"""Regenerate the SVG screenshots in ``docs/screenshots/`` from the real app on the real default model.

    python docs/screenshots.py

It runs ``lmassist``'s app headless (Textual's ``run_test``), types into it like a user, and saves
what the terminal shows. History goes to a throwaway ``LMASSIST_HOME``; the model comes from the
usual models folder (``lmassist models pull smollm2-135m-instruct`` first). Replies are greedy, so
the pictures change only when the model or the app does.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "screenshots"
SIZE = (118, 34)
OPTIONS = {"max_new_tokens": 160, "temperature": 0, "seed": 1}
NOTES = """# Team sync, 3 March

Alice will bring the budget to Thursday's review. The release moves to April because the
installer still fails on older laptops. Bob owns the installer fix and will report on Monday.
Everyone agreed to cut the beta survey to five questions.
"""
OFFSITE = """# Team offsite

## Venue

The offsite is at the Harbour Hall in Leith on 14 May, from 9:30 to 17:00.
Lunch is provided; tell Dana about allergies by 1 May.

## Agenda

Morning: the roadmap for the second half. Afternoon: the installer post-mortem.
"""


async def until(pilot: Any, condition: Callable[[], Any], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {condition}")
        await pilot.pause(0.05)


async def send(pilot: Any, text: str) -> None:
    chat = pilot.app.chat
    chat.chat_input.focus()
    chat.chat_input.text = text
    await pilot.press("enter")
    await pilot.pause(0.1)
    await until(pilot, lambda: not chat.busy)
    await pilot.pause(0.3)


def shot(app: Any, name: str) -> None:
    path = app.save_screenshot(f"{name}.svg", str(OUT))
    print("wrote", Path(path).relative_to(OUT.parent.parent))


async def your_files(pilot: Any, workdir: Path, notes: Path) -> None:
    """A file attached to a chat (its chip), then a folder index answering with citations."""
    from lmassist.docindex.index import DocIndex

    chat = pilot.app.chat
    await pilot.press("ctrl+n")
    chat.session.set_settings({"options": OPTIONS})
    os.chdir(workdir)  # the chip shows the path as typed
    await send(pilot, f"/attach {notes.name}")
    await until(pilot, lambda: chat.query(".attachment-chip"))
    await send(pilot, "Who owns the installer fix?")
    shot(pilot.app, "attach")

    team = workdir / "team"
    team.mkdir()
    (team / "sync-0303.md").write_text(NOTES)
    (team / "offsite.md").write_text(OFFSITE)
    with DocIndex() as index:
        index.add("team", team)
    await pilot.press("ctrl+n")
    chat.session.set_settings({"options": OPTIONS})
    await send(pilot, "/docs team")
    await send(pilot, "Where is the offsite?")
    shot(pilot.app, "docs")


async def main(workdir: Path) -> None:
    from lmassist.tui.app import LMAssistApp

    notes = workdir / "notes.md"
    notes.write_text(NOTES)
    app = LMAssistApp()
    async with app.run_test(size=SIZE) as pilot:
        chat = app.chat
        await until(pilot, lambda: chat.model_ready and chat.tasks)
        chat.chat_input.cursor_blink = False
        chat.session.set_settings({"options": OPTIONS})

        await send(pilot, "Give me three short tips for writing clear meeting notes.")
        shot(app, "chat")

        await send(pilot, f"/summarize {notes}")
        shot(app, "task")

        await your_files(pilot, workdir, notes)

        await pilot.press("ctrl+n")
        chat.session.set_settings({"options": OPTIONS})
        await send(pilot, "What is a haiku? One sentence.")
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        await pilot.press(*"notes")
        await pilot.pause(0.5)
        shot(app, "history")
        await pilot.press("escape")

        await pilot.press("ctrl+p")
        await pilot.pause(0.5)
        shot(app, "palette")
        await pilot.press("escape")
        await pilot.pause(0.2)

        await pilot.press("f1")
        await pilot.pause(0.3)
        shot(app, "help")


if __name__ == "__main__":
    from lmassist.config import paths

    OUT.mkdir(exist_ok=True)
    os.environ["LMASSIST_MODELS_DIR"] = str(paths().models)  # the user's models, a throwaway history
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LMASSIST_HOME"] = tmp
        asyncio.run(main(Path(tmp)))
