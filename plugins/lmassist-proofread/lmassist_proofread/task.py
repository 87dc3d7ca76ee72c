"""Proofreading and tone rewriting, one Markdown block at a time, never touching code.

Why block by block: a small model edits a short paragraph far better than a page, any input
length fits any context, and the Markdown structure (heading marks and setext underlines, list
markers and their continuation indent, quote marks, table pipes) never passes through the model,
so it cannot be damaged: the CommonMark parser finds the blocks and :mod:`lmassist.tasks.rewrite`
hands out only their words, as translate does, and never code, HTML or front matter.

Why the safety checks: a model may answer with a preamble, drop an inline code span, or ramble; an
edit that fails the checks leaves its block exactly as it was, because a proofreader that corrupts
text is worse than none.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from lmassist.docindex.blocks import Block
from lmassist.generation import CancelToken, GenerationOptions, LMAssistError, Message, Model
from lmassist.tasks.base import FILES, FileTask, Param, Progress, TaskResult
from lmassist.tasks.chunking import chunk_text, document_blocks
from lmassist.tasks.rewrite import needs_rewrite, rewrite_block

TONES: dict[str, str] = {
    "formal": "formal and polite",
    "friendly": "warm and friendly",
    "concise": "concise, cutting filler words while keeping every fact",
    "casual": "casual and relaxed",
    "professional": "professional",
    "confident": "confident and direct",
    "simple": "simple, with plain everyday words",
    "academic": "academic",
    "polite": "polite",
    "persuasive": "persuasive",
}

# Inline pieces that must come back verbatim: code spans, images, link targets, autolinks, URLs.
_PROTECTED = re.compile(r"(`+).+?\1|!\[[^\]]*\]\([^)]*\)|\]\([^)]*\)|<[^>\s]+>|https?://[^\s)>\]]+")
_PREAMBLE = re.compile(
    r"^\s*(?:sure[,!.]?\s*)?(?:here(?:'s| is| are)\b[^\n:]*:|(?:the\s+)?(?:corrected|rewritten|revised|proofread|edited)"
    r"(?:\s+(?:text|version|sentence|paragraph))?\s*:|(?:text|output|answer)\s*:)\s*",
    re.IGNORECASE,
)

SYSTEM = "You are a meticulous copy editor. You reply with the edited text only, with no comments."
PROOFREAD_PROMPT = (
    "Correct the spelling and grammar of this text. Keep its meaning, wording and style; change as little "
    "as possible and keep anything in backticks as it is. Reply with the corrected text only.\n\n{text}"
)
# One worked example: a small chat model copies the pattern (reply with the text, nothing else)
# far more reliably than it follows the instruction alone.
PROOFREAD_EXAMPLE = ("She dont like apples but she eat them anyway.", "She doesn't like apples, but she eats them anyway.")
TONE_PROMPT = (
    "Rewrite the text below so that it sounds {tone}. Keep its meaning and every fact, name and number. "
    "Keep anything in backticks exactly as it is. Reply with the rewritten text only.\n\nText: {text}"
)
# Base models (no chat template) continue text, so they get a pattern to continue instead of orders.
PROOFREAD_SHOTS = (
    "Corrected versions of sentences with mistakes.\n\n"
    "Original: their going too the store tomorow, arent they?\n"
    "Corrected: They're going to the store tomorrow, aren't they?\n\n"
    "Original: She dont like apples but she eat them anyway.\n"
    "Corrected: She doesn't like apples, but she eats them anyway.\n\n"
    "Original: {text}\nCorrected:"
)
TONE_SHOTS = "Texts rewritten so that they sound {tone}.\n\nOriginal: {text}\nRewritten:"


@dataclass
class Edit:
    """What happened to one input: the new text and how many blocks the model changed."""

    source: str
    original: str
    text: str
    edited_blocks: int
    kept_blocks: int  # edits rejected by the safety checks

    def diff(self) -> str:
        absolute = self.source.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", self.source)
        old, new = (self.source, self.source) if absolute else (f"a/{self.source}", f"b/{self.source}")
        return "".join(difflib.unified_diff(
            self.original.splitlines(keepends=True), self.text.splitlines(keepends=True), fromfile=old, tofile=new,
        ))


def tone_description(tone: str | None) -> str | None:
    """A phrase for the prompt from ``--tone``; any short description works, known names read better."""
    if tone is None:
        return None
    key = " ".join(tone.strip().lower().split())
    if not key:
        raise LMAssistError("--tone needs a value, e.g. --tone formal")
    if len(key) > 40 or not re.fullmatch(r"[a-z][a-z ,'-]*", key):
        raise LMAssistError(f"--tone should be a word or two, e.g. {', '.join(list(TONES)[:4])}; got {tone!r}")
    return TONES.get(key, key)


class Proofreader:
    """Edit Markdown text with one model: proofread it, or rewrite it in ``tone``."""

    def __init__(self, model: Model, tone: str | None = None) -> None:
        self.model = model
        self.tone = tone_description(tone)
        self.chat = bool(getattr(model.info, "chat_template", False))
        self.budget = max(32, model.context_length // 3)  # tokens of input per request

    # -- documents and blocks -----------------------------------------------------------------------

    def edit_document(self, text: str, source: str = "stdin", progress: Progress | None = None,
                      cancel: CancelToken | None = None) -> Edit:
        blocks = list(document_blocks(text, "markdown", keep_blank=True))
        todo = sum(1 for b in blocks if self._editable(b))
        out: list[str] = []
        done = edited = kept = 0
        for block in blocks:
            if not self._editable(block) or (cancel is not None and cancel.cancelled):
                out.append(block.text)
                continue
            new = self.edit_block(block, cancel)
            if new is None:
                kept += 1
                new = block.text
            elif new != block.text:
                edited += 1
            out.append(new)
            done += 1
            if progress:
                progress(done, todo)
        return Edit(source, text, "".join(out), edited, kept)

    def _editable(self, block: Block) -> bool:
        if block.kind == "heading" and self.tone is not None:
            return False  # a heading has no tone to speak of; rewriting it only moves the reader's landmarks
        return needs_rewrite(block)

    def edit_block(self, block: Block, cancel: CancelToken | None = None) -> str | None:
        """The block with its words edited and its markup kept (:mod:`lmassist.tasks.rewrite`); None
        if the edit of any of its runs (a table cell, a paragraph inside a list item) was rejected,
        because half a block edited reads worse than none."""
        rejected = changed = False

        def rewrite(run: str) -> str:
            nonlocal rejected, changed
            if rejected or (cancel is not None and cancel.cancelled):
                rejected = True
                return run
            new = self.edit_text(run, cancel)
            if new is None:
                rejected = True
                return run
            if new.split() == run.split():
                return run
            changed = True
            return new

        new = rewrite_block(block, rewrite)
        if rejected:
            return None
        # Nothing changed but spacing: the source exactly, its double spaces and hard breaks too.
        return new if changed else block.text

    # -- text ---------------------------------------------------------------------------------------

    def edit_text(self, text: str, cancel: CancelToken | None = None) -> str | None:
        """Edit one paragraph's text (split by sentences when it is too long for one request)."""
        if self.model.count_tokens(text) <= self.budget:
            return self._edit_piece(text, cancel)
        out = []
        for piece in chunk_text([text], self.model.count_tokens, self.budget, separator=" "):
            new = self._edit_piece(piece, cancel)
            out.append(piece if new is None else new)
        return " ".join(out)

    def _edit_piece(self, text: str, cancel: CancelToken | None) -> str | None:
        n = self.model.count_tokens(text)
        grow = 2 if self.tone else 1.5
        opts = GenerationOptions(
            max_new_tokens=max(16, min(int(n * grow) + 24, self.model.context_length // 2)),
            temperature=0.0,
            repetition_penalty=1.0,  # an edit repeats most of its input: penalising that garbles it
        )
        if self.chat:
            if self.tone:
                messages = [Message("system", SYSTEM), Message("user", TONE_PROMPT.format(tone=self.tone, text=text))]
            else:
                shot, answer = PROOFREAD_EXAMPLE
                messages = [
                    Message("system", SYSTEM),
                    Message("user", PROOFREAD_PROMPT.format(text=shot)),
                    Message("assistant", answer),
                    Message("user", PROOFREAD_PROMPT.format(text=text)),
                ]
            gen = self.model.chat(messages, opts, cancel)
        else:
            prompt = TONE_SHOTS.format(tone=self.tone, text=text) if self.tone else PROOFREAD_SHOTS.format(text=text)
            gen = self.model.complete(prompt, opts.replace(stop=("\n",)), cancel)
        out = gen.result()
        if gen.interrupted:
            return None
        return self.accept(text, out)

    def accept(self, original: str, output: str) -> str | None:
        """The cleaned edit, or None when it does not look like an edit of ``original``."""
        out = _PREAMBLE.sub("", output.strip(), count=1).strip()
        if "\n\n" in out and "\n\n" not in original:
            out = out.split("\n\n")[0].strip()  # the edit, then a note about it: keep the edit
        if len(out) >= 2 and out[0] == out[-1] and out[0] in "\"'" and original[:1] != out[0]:
            out = out[1:-1].strip()  # the model quoted its answer
        out = " ".join(out.split())
        if not out:
            return None
        if Counter(m.group(0) for m in _PROTECTED.finditer(original)) != Counter(m.group(0) for m in _PROTECTED.finditer(out)):
            return None  # inline code or a link changed: not ours to change
        ratio = len(out) / max(1, len(original))
        if self.tone is None:
            similar = difflib.SequenceMatcher(None, original.lower(), out.lower(), autojunk=False).ratio()
            if not 0.7 <= ratio <= 1.4 or similar < 0.7:
                return None  # a proofread changes little; anything else is a rewrite nobody asked for
        elif not 0.2 <= ratio <= 3.0:
            return None
        return out


PROOFREAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["task", "model", "mode", "tone", "results"],
    "properties": {
        "task": {"const": "proofread"},
        "model": {"type": "string"},
        "mode": {"enum": ["proofread", "tone"]},
        "tone": {"type": ["string", "null"]},
        "results": {"type": "array", "items": {
            "type": "object",
            "required": ["source", "text", "diff", "edited_blocks", "kept_blocks"],
            "properties": {
                "source": {"type": "string", "description": "file path or 'stdin'"},
                "text": {"type": "string", "description": "the edited text"},
                "diff": {"type": "string", "description": "unified diff from the input to the edited text"},
                "edited_blocks": {"type": "integer", "description": "paragraphs the model changed"},
                "kept_blocks": {"type": "integer", "description": "edits rejected by the safety checks"},
            },
        }},
    },
}


class ProofreadTask(FileTask):
    name = "proofread"
    summary = "Proofread files or stdin, or rewrite them in a tone (--tone), keeping Markdown and code."
    description = (
        "Correct spelling, grammar and punctuation in each FILE (or stdin, '-'), or with --tone rewrite "
        "it to sound formal, friendly, concise, ... Each paragraph (and table cell) is edited on its own; "
        "heading marks, list markers, quotes and table pipes are kept, and code blocks, HTML, front "
        "matter, inline code and URLs are never changed. "
        "--diff prints a unified diff instead of the edited text. (Plugin lmassist-proofread.)"
    )
    params = (
        FILES,
        Param("tone", "option", metavar="TONE",
              help="Rewrite in this tone instead of proofreading: formal, friendly, concise, casual, simple, ..."),
        Param("diff", "flag", help="Print a unified diff of the changes instead of the edited text."),
    )
    json_schema = PROOFREAD_SCHEMA
    examples = (
        "lmassist proofread notes.md --diff",
        "cat email.txt | lmassist proofread - --tone friendly",
        "lmassist proofread README.md --tone concise -o README.concise.md",
    )

    @property
    def slash_usage(self) -> str:
        return "/proofread FILE [--tone formal|friendly|concise|...] [--diff]"

    def check(self, values: dict[str, Any]) -> None:
        tone_description(values.get("tone"))

    def run(self, model: Model, values: dict[str, Any], progress: Progress | None = None,
            cancel: CancelToken | None = None) -> TaskResult:
        self.check(values)
        editor = Proofreader(model, values.get("tone"))
        edits = [editor.edit_document(i.text, i.source, progress, cancel) for i in self.inputs(values)]
        if values.get("diff"):
            text = "".join(e.diff() for e in edits)
            markdown = f"```diff\n{text}```" if text else "No changes."
        else:
            text = edits[0].text if len(edits) == 1 else "\n".join(e.text for e in edits)
            markdown = text
        results = [{"source": e.source, "text": e.text, "diff": e.diff(), "edited_blocks": e.edited_blocks,
                    "kept_blocks": e.kept_blocks} for e in edits]
        return self.result(model, text, markdown, mode="tone" if editor.tone else "proofread",
                           tone=values.get("tone"), results=results)
