"""Translation, block by block, keeping the Markdown (or reST) structure around the translated text.

Small models translate short, plain sentences best and mangle markup, so the structure is never
handed to the model: the CommonMark parser finds the blocks, :mod:`lmassist.tasks.rewrite` hands
over their words (headings, list markers, quotes and table pipes stay; each paragraph keeps its
lines), link targets, inline code and URLs are cut out and put back around translated runs of plain
text; code blocks (fenced and indented), HTML, rules and front matter pass through byte for byte,
and so does a source-code file, comments and docstrings included. Chat models get an instruction; base models (Gemma-3-270M, GPT-2) get
"English: … / French: …" pairs ending on the target-language cue, stopped at the newline.
"""

from __future__ import annotations

import re
from typing import Any

from lmassist.generation import CancelToken, GenerationOptions, LMAssistError, Message, Model
from lmassist.tasks import prompts
from lmassist.tasks.base import FILES, FileTask, Param, Progress, TaskResult
from lmassist.tasks.chunk_memo import chunk_key, memoized
from lmassist.tasks.chunking import (
    UNCHANGED_FORMATS,
    document_blocks,
    document_format,
    split_by_tokens,
    split_sentences,
)
from lmassist.tasks.html_text import html_pieces, rewrite_prose
from lmassist.tasks.rewrite import needs_rewrite, rewrite_block
from lmassist.tasks.translate_shots import SHOT_SOURCES, SHOTS

LANGUAGES: dict[str, str] = {
    "ar": "Arabic", "bg": "Bulgarian", "ca": "Catalan", "cs": "Czech", "da": "Danish", "de": "German",
    "el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian", "fi": "Finnish", "fr": "French",
    "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian", "nl": "Dutch", "no": "Norwegian", "pl": "Polish",
    "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak", "sl": "Slovenian", "sv": "Swedish",
    "th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese",
}

# Most source tokens in one translation request: a sentence longer than this is cut by tokens.
PIECE_TOKENS = 200

# Inline pieces that are never translated: code spans, images, autolinks/URLs, link targets, HTML tags.
_PROTECTED = re.compile(
    r"(`+)(?:.+?)\1"                       # inline code
    r"|!\[[^\]]*\]\([^)]*\)"               # images, alt text included
    r"|\]\([^)]*\)"                        # a link's target: "](url)"
    r"|<[^>\s]+>"                          # autolinks and tags
    r"|https?://\S+"                       # bare URLs
    r"|:[\w.+-]+:(?=`)"                    # a reST role before its `text`
    r"|[\[\]]"                             # link text brackets
    r"|\*\*|__|(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w)"  # emphasis markers
)


def resolve_language(name: str) -> str:
    """An ISO 639-1 code from a code or an English name, or a one-line error listing the choices."""
    key = name.strip().lower()
    if key in LANGUAGES:
        return key
    for code, lang in LANGUAGES.items():
        if lang.lower() == key:
            return code
    base = key.split("-")[0].split("_")[0]
    if base in LANGUAGES:
        return base
    choices = ", ".join(f"{c} ({n})" for c, n in LANGUAGES.items())
    raise LMAssistError(f"unknown language {name!r}; choose one of: {choices}")


class Translator:
    """Translate Markdown text with one model, keeping the structure and leaving code untouched."""

    def __init__(self, model: Model, target: str, source: str = "en") -> None:
        self.model = model
        self.target, self.source = resolve_language(target), resolve_language(source)
        self.form = prompts.form_for(model)
        self._shots = ""
        self._prompt: str | None = None
        if self.source == "en" and self.target in SHOTS:
            src, tgt = LANGUAGES["en"], LANGUAGES[self.target]
            self._shots = "".join(f"{src}: {a}\n{tgt}: {b}\n\n" for a, b in zip(SHOT_SOURCES, SHOTS[self.target], strict=True))

    def translate_document(self, text: str, progress: Progress | None = None,
                           cancel: CancelToken | None = None, fmt: str = "markdown", memo: Any = None) -> str:
        """``text`` translated block by block, its markup and code kept (:mod:`lmassist.tasks.rewrite`).

        ``fmt`` is what :func:`~lmassist.tasks.chunking.document_format` says of the input's name;
        source code comes back unchanged, and an HTML page with only its prose translated
        (:mod:`lmassist.tasks.html_text`). With a ``memo`` (``get``/``put``, see
        :mod:`lmassist.tasks.chunk_memo`) each finished block is looked up before and stored
        after it is translated, so a run stopped by Ctrl+C redoes only the blocks it had not
        finished. Once ``cancel`` is set the rest is copied untranslated (and not stored).
        """
        if fmt in UNCHANGED_FORMATS:
            return text

        def inline(run: str) -> str:
            return self.translate_inline(run, cancel)

        if fmt == "html":
            pieces = [(p.text, p.prose, lambda t=p.text: rewrite_prose(t, inline)) for p in html_pieces(text)]
        else:
            pieces = [(b.text, needs_rewrite(b), lambda b=b: rewrite_block(b, inline, fmt))
                      for b in document_blocks(text, fmt)]
        todo = sum(1 for _, rewrite, _ in pieces if rewrite)
        done, out = 0, []
        for piece, rewrite, rewritten in pieces:
            if not rewrite or (cancel is not None and cancel.cancelled):
                out.append(piece)
                continue
            out.append(memoized(memo, self.memo_key(piece, fmt), cancel, rewritten))
            done += 1
            if progress:
                progress(done, todo)
        return "".join(out)

    def memo_key(self, text: str, fmt: str) -> str:
        """What a translated block is stored under: its text and everything else that changes it."""
        if self._prompt is None:  # the templates as the user's settings have them, read once
            self._prompt = "\0".join(
                [prompts.template("translate", "chat", k) for k in ("system", "user")] if self.form == "chat"
                else [prompts.template("translate", "completion", "prompt"), self._shots])
        return chunk_key("translate", text, self.model.info.name, self.source, self.target, fmt, self.form,
                         self._prompt)

    def translate_inline(self, text: str, cancel: CancelToken | None = None) -> str:
        """Translate the plain runs between protected inline pieces (code, URLs, link targets)."""
        out, pos = [], 0
        for m in _PROTECTED.finditer(text):
            out.append(self._run(text[pos : m.start()], cancel))
            out.append(m.group(0))
            pos = m.end()
        out.append(self._run(text[pos:], cancel))
        return "".join(out)

    def _run(self, run: str, cancel: CancelToken | None) -> str:
        if not re.search(r"[^\W\d_]", run):  # nothing to translate: spaces, digits, punctuation
            return run
        lead = run[: len(run) - len(run.lstrip())]
        trail = run[len(run.rstrip()):]
        body = run.strip()
        translated = " ".join(
            piece if cancel is not None and cancel.cancelled else self.translate_sentence(piece, cancel)
            for piece in self.pieces(body, cancel)
        )
        return lead + translated + trail

    def piece_budget(self) -> int:
        """Most source tokens one request carries: room for the prompt, the shots and a reply of
        about twice the source's length."""
        return max(16, min(PIECE_TOKENS, (self.model.context_length - 256) // 3))

    def pieces(self, body: str, cancel: CancelToken | None = None) -> list[str]:
        """What one request translates: sentences, and a sentence too long for one request (a
        1 MB line with no full stop) cut by tokens, so every request fits the context."""
        budget = self.piece_budget()
        if len(body) <= budget * 4 and self.model.count_tokens(body) <= 60:
            return [body]
        out: list[str] = []
        for sentence in split_sentences(body):
            if cancel is not None and cancel.cancelled:
                out.append(sentence)
                continue
            fits = len(sentence) <= budget * 64 and self.model.count_tokens(sentence) <= budget
            out.extend([sentence] if fits else (p for p, _ in split_by_tokens(sentence, self.model.count_tokens, budget)))
        return out

    def translate_sentence(self, sentence: str, cancel: CancelToken | None = None) -> str:
        n = self.model.count_tokens(sentence)
        # Greedy, no repetition penalty: a penalty pushes a small model off the right word when the
        # source repeats one (measured no better on en->fr); loops are cut in clean_translation.
        opts = GenerationOptions(max_new_tokens=min(2 * n + 16, 512), temperature=0.0, repetition_penalty=1.0)
        src, tgt = LANGUAGES[self.source], LANGUAGES[self.target]
        if self.form == "chat":
            messages = [
                Message("system", prompts.template("translate", "chat", "system")),
                Message("user", prompts.render(prompts.template("translate", "chat", "user"),
                                               source=src, target=tgt, text=sentence)),
            ]
            out = self.model.chat(messages, opts, cancel).result()
        else:
            prompt = prompts.render(prompts.template("translate", "completion", "prompt"),
                                    shots=self._shots, source=src, target=tgt, text=sentence)
            out = self.model.complete(prompt, opts.replace(stop=prompts.stops("translate")), cancel).result()
        return clean_translation(out, sentence, (src, tgt)) or sentence


_QUOTES = "\"'“”«»„‘’"


def clean_translation(out: str, source: str, labels: tuple[str, ...] = ()) -> str:
    """The translation alone, as one line: what a base model adds around it is cut off.

    A few-shot completion can run on into the next pair ("… English: …"), wrap the sentence in
    quotes the source did not have, or fall into a loop ("très très très …"); each of these costs
    the reader more than the missing bit it might have added, so labels end the text, unmatched
    wrapping quotes go, and a phrase repeated three times or more is kept once.
    """
    text = " ".join(out.split())
    for label in labels:
        m = re.search(rf"(?:^|\s){re.escape(label)}\s*:", text, re.I)
        if m:
            text = text[: m.start()].strip() if m.start() else text[m.end():].strip()
    text = " ".join(_drop_loops(text.split()))
    src = source.strip()
    quotes = sum(ch in _QUOTES for ch in text)
    if text[:1] in _QUOTES and src[:1] not in _QUOTES and (quotes == 1 or (quotes == 2 and text[-1:] in _QUOTES)):
        text, quotes = text[1:].lstrip(), quotes - 1
    if text[-1:] in _QUOTES and src[-1:] not in _QUOTES and quotes == 1:
        text = text[:-1].rstrip()
    return text


def _drop_loops(words: list[str], longest: int = 8) -> list[str]:
    """Keep one copy of any run of 1..``longest`` words repeated three or more times in a row."""
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in range(1, longest + 1):
            unit = words[i : i + n]
            reps = 1
            while len(unit) == n and words[i + reps * n : i + (reps + 1) * n] == unit:
                reps += 1
            if reps >= 3:
                out.extend(unit)
                i += reps * n
                break
        else:
            out.append(words[i])
            i += 1
    return out


TRANSLATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["task", "model", "source_language", "target_language", "translations"],
    "properties": {
        "task": {"const": "translate"},
        "model": {"type": "string"},
        "source_language": {"type": "string", "description": "ISO 639-1 code"},
        "target_language": {"type": "string", "description": "ISO 639-1 code"},
        "translations": {"type": "array", "items": {"type": "object", "properties": {
            "source": {"type": "string"}, "text": {"type": "string"}}}},
    },
}


class TranslateTask(FileTask):
    name = "translate"
    progress_unit = "blocks"
    summary = "Translate files or stdin paragraph by paragraph, keeping Markdown structure and code."
    description = (
        "Translate FILE (or stdin, '-') into --to LANG, paragraph by paragraph. Markdown is parsed: "
        "headings, list markers, quotes, table pipes, link targets and each paragraph's line breaks are "
        "kept; code blocks, inline code, URLs and front matter are left untouched. reST titles, "
        "paragraphs and lists are translated, its directives and literal blocks kept; source code files "
        "come back unchanged (comments included), and so does HTML. LANG is an ISO 639-1 code or an English name (fr, French). The default 135M model "
        "cannot really translate; a multilingual model such as Gemma-3-270M (-m gemma3-270m) does far better."
    )
    params = (
        FILES,
        Param("to", "option", flags=("-t", "--to"), metavar="LANG", required=True, help="Target language (code or name)."),
        Param("source_lang", "option", flags=("-f", "--from"), metavar="LANG", default="en",
              help="Source language (code or name)."),
    )
    json_schema = TRANSLATE_SCHEMA
    examples = ("lmassist translate README.md --to fr -o README.fr.md", "echo 'Good morning' | lmassist translate --to German")

    def check(self, values: dict[str, Any]) -> None:
        resolve_language(values.get("to") or "")
        resolve_language(values.get("source_lang") or "en")

    def run(self, model: Model, values: dict[str, Any], progress: Progress | None = None,
            cancel: CancelToken | None = None) -> TaskResult:
        self.check(values)
        inputs = self.inputs(values)
        translator = Translator(model, values["to"], values.get("source_lang") or "en")
        memo = values.get("memo")
        results = [{"source": i.source, "text": translator.translate_document(
            i.text, progress, cancel, document_format(i.source), memo)} for i in inputs]
        text = "".join(r["text"] for r in results) if len(results) == 1 else "\n".join(r["text"] for r in results)
        return self.result(model, text, text, source_language=translator.source,
                           target_language=translator.target, translations=results)
