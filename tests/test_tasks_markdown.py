"""translate on parsed Markdown, reST and code: structure, not model quality.

The model here upper-cases what it is asked to translate, so every character the task hands it
shows in the output in capitals and every character it keeps does not: a test of what the task sends
and what it puts back. Translation quality is tests/test_translate_quality.py's (real Gemma) and
``lmassist eval-task translate``'s.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lmassist.generation import Model, ModelInfo, StreamRequest
from lmassist.tasks.chunking import document_format
from lmassist.tasks.html_text import html_pieces
from lmassist.tasks.rewrite import rewrap
from lmassist.tasks.translate import Translator


class Upper(Model):
    """Replies to a translation request with the text to translate in capitals (chat or completion)."""

    def __init__(self, chat: bool = True) -> None:
        self.info = ModelInfo(name="test:upper", backend="test", context_length=2048, chat_template=chat)
        self.requests: list[str] = []

    def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
        if request.messages:
            text = request.messages[-1].content.split("\n\n", 1)[1]
        else:
            text = (request.prompt or "").rsplit("\nEnglish: ", 1)[-1].rsplit("\n", 1)[0]
            text = text.removeprefix("English: ")
        self.requests.append(text)
        yield " " + text.upper() if not request.messages else text.upper()

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)


DOC = """---
title: Field notes
tags: [garden, plan]
---

Garden plan
===========

We planted the [new roses](https://example.com/Roses) near the `Gate` today,
and the soil was still wet from the rain.

    ./water --all
    echo Done

```python
def grow(plant):
    return "Tall"
```

- Buy seeds at the market
  before the shop closes
- Fix the fence

  Call Bob about the posts
  1. Measure the gap
  2. Order wood

> The gardener says
> roses need sun.

| Plant | Where |
|-------|------:|
| Roses | `bed-1` |

## Next steps ##

[docs]: https://example.com/Docs
"""


@pytest.fixture(params=[True, False], ids=["chat", "completion"])
def upper(request) -> Upper:
    return Upper(chat=request.param)


def translate(model: Model, text: str, fmt: str = "markdown", **kw) -> str:
    return Translator(model, "fr").translate_document(text, fmt=fmt, **kw)


def test_markdown_structure_survives_word_for_word(upper) -> None:
    out = translate(upper, DOC)
    want = DOC
    for words in ("Garden plan", "We planted the", "new roses", "near the", "today,",
                  "and the soil was still wet from the rain.", "Buy seeds at the market", "before the shop closes",
                  "Fix the fence", "Call Bob about the posts", "Measure the gap", "Order wood",
                  "The gardener says", "roses need sun.", "Plant", "Where", "Roses |", "Next steps"):
        want = want.replace(words, words.upper(), 1)
    assert out == want


def test_setext_underline_and_line_count_kept(upper) -> None:
    lines = translate(upper, DOC).splitlines()
    assert lines[5:7] == ["GARDEN PLAN", "==========="]
    assert len(lines) == len(DOC.splitlines())


def test_code_front_matter_and_inline_markup_never_reach_the_model(upper) -> None:
    translate(upper, DOC)
    sent = "\n".join(upper.requests)
    for kept in ("./water", "def grow", "title:", "https://", "Gate", "bed-1", "---", "|", "[", "#", "-", ">"):
        assert kept not in sent, kept


def test_list_continuation_lines_keep_their_lines(upper) -> None:
    out = translate(upper, "- Buy seeds at the market\n  before the shop closes\n- Fix it\n")
    assert out == "- BUY SEEDS AT THE MARKET\n  BEFORE THE SHOP CLOSES\n- FIX IT\n"
    # a sentence over a line break is one request, so the model sees the whole sentence
    assert "Buy seeds at the market before the shop closes" in upper.requests


def test_rewrap_keeps_line_breaks_when_the_words_change() -> None:
    assert rewrap("A B C D", ["a b", "c d"]) == ["A B", "C D"]
    lines = rewrap("un deux trois quatre cinq six sept", ["one two three", "four five"])
    assert len(lines) == 2 and " ".join(lines) == "un deux trois quatre cinq six sept"
    assert rewrap("seul", ["one", "two"]) == ["seul"]  # fewer words than lines: never a blank line


def test_paragraph_of_one_line_is_one_line_in_a_real_translation_shape() -> None:
    class Longer(Upper):
        def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
            yield from (p + " ET AUSSI" for p in super().stream_pieces(request))

    out = translate(Longer(), "One two three\nfour five six.\n")
    assert out.count("\n") == 2 and out.endswith("ET AUSSI\n")


RST = """=====
Guide
=====

Install it like this::

    pip install tool

.. note:: Keep this directive.

- First point
  goes on
- Second point uses :ref:`setup`

Section
-------

Text.
"""


def test_rst_titles_lists_and_literal_blocks(upper) -> None:
    out = translate(upper, RST, fmt="rst")
    assert out.startswith("=====\nGUIDE\n=====\n\nINSTALL IT LIKE THIS::\n\n    pip install tool\n\n")
    assert ".. note:: Keep this directive.\n" in out
    assert "- FIRST POINT\n  GOES ON\n- SECOND POINT USES :ref:`setup`\n" in out
    assert "SECTION\n-------\n\nTEXT.\n" in out


def test_rst_underline_grows_with_the_title() -> None:
    class Wordy(Upper):
        def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
            yield from (p + " GÉNÉRAL" for p in super().stream_pieces(request))

    out = translate(Wordy(), "Setup\n-----\n\nText.\n", fmt="rst")
    assert out.startswith("SETUP GÉNÉRAL\n-------------\n")


def test_source_code_comes_back_unchanged(upper) -> None:
    code = 'def f():\n    """Return the answer."""\n    return 42  # the answer\n'
    assert translate(upper, code, fmt=document_format("tool.py")) == code
    assert upper.requests == []
    assert document_format("notes.txt") == document_format("stdin") == "markdown"
    assert document_format("guide.rst") == "rst"


PAGE = """<!DOCTYPE html>
<html><head><title>Field notes</title><style>p > a { color: red }</style>
<script>if (a<b && c>d) { x = "<p>not text</p>"; }</script></head>
<body>
<!-- a comment with words -->
<h1 class="top">Garden plan</h1>
<p>We planted the <a href="https://example.com/Roses" title="Roses > tulips">new roses</a> near the
   gate today &amp; the soil was wet.</p>
<pre>./water --all
echo Done</pre>
<p>Run <code>make all</code> first.</p>
<img src="x.png" alt="A photo"/><br>
<p>Caf&eacute; &lt;open&gt; at 9</p>
</body></html>
"""


def test_an_html_page_has_its_prose_translated_and_everything_else_kept(upper) -> None:
    """Tags, attributes, comments, script, style, pre and code byte for byte; text between tags
    sent decoded (one space for HTML's whitespace) and put back escaped."""
    assert "".join(p.text for p in html_pieces(PAGE)) == PAGE
    out = translate(upper, PAGE, fmt=document_format("page.html"))
    assert upper.requests == ["Field notes", "Garden plan", "We planted the", "new roses",
                              "near the gate today & the soil was wet.", "Run", "first.", "Café", "at 9"]
    assert out == (PAGE.replace("Field notes", "FIELD NOTES").replace(">Garden plan<", ">GARDEN PLAN<")
                   .replace("We planted the", "WE PLANTED THE").replace(">new roses<", ">NEW ROSES<")
                   .replace("near the\n   gate today &amp; the soil was wet.", "NEAR THE GATE TODAY &amp; THE SOIL WAS WET.")
                   .replace("Run <code>", "RUN <code>").replace("</code> first.", "</code> FIRST.")
                   .replace("Caf&eacute; &lt;open&gt; at 9", "CAFÉ &lt;open&gt; AT 9"))


def test_html_without_prose_or_with_broken_markup_is_copied(upper) -> None:
    for page in ("<br><hr/>\n", "<p>unclosed <b>bold", "<div title='a > b'>x</div", "a < b and <3\n", ""):
        assert "".join(p.text for p in html_pieces(page)) == page
    assert translate(upper, "<br><hr/>\n", fmt="html") == "<br><hr/>\n" and upper.requests == []
    assert translate(upper, "<p>unclosed <b>bold", fmt="html") == "<p>UNCLOSED <b>BOLD"
    assert translate(upper, "a < b and <3\n", fmt="html") == "A &lt; B AND &lt;3\n"


def test_crlf_and_no_final_newline(upper) -> None:
    assert translate(upper, "# Hi there\r\n\r\nSome text") == "# HI THERE\r\n\r\nSOME TEXT"


def test_rst_words_never_cross_an_indentation_change() -> None:
    class Swap(Upper):  # a "translation" with one word more, so the words are re-flowed
        def stream_pieces(self, request: StreamRequest) -> Iterator[str]:
            yield from (p + " PLUS" for p in super().stream_pieces(request))

    model = Swap()
    out = translate(model, "term\n   its definition\n   goes on here\n", fmt="rst")
    assert out.splitlines()[0] == "TERM PLUS"
    assert "term" in model.requests and "its definition goes on here" in model.requests
