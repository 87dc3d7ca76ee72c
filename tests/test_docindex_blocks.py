"""Structural blocks: Markdown through CommonMark, reST, HTML, code, text; passages for retrieval."""

from __future__ import annotations

from pathlib import Path

from lmassist.docindex.blocks import markdown_blocks, source_lines
from lmassist.docindex.formats import code_blocks, html_blocks, rst_blocks, text_blocks
from lmassist.docindex.passages import approx_tokens, blocks_for, format_of, pack, split_block

GUIDE = Path(__file__).parent / "data" / "docindex" / "guide.md"


def spans(blocks):
    return [(b.kind, b.start_line, b.end_line) for b in blocks]


def test_markdown_blocks_kinds_and_line_ranges():
    blocks = markdown_blocks(GUIDE.read_text())
    assert spans(blocks) == [
        ("heading", 1, 2), ("paragraph", 4, 5), ("heading", 7, 8), ("heading", 10, 10),
        ("list_item", 12, 12), ("list_item", 13, 14), ("list_item", 15, 15), ("paragraph", 17, 17),
        ("code", 19, 20), ("code", 22, 24), ("quote", 26, 26), ("table", 28, 30), ("text", 32, 32),
    ]


def test_setext_heading_is_a_heading_with_its_title():
    first = markdown_blocks(GUIDE.read_text())[0]
    assert first.kind == "heading" and first.heading_path == ("Field Guide",)
    assert first.text == "Field Guide\n===========\n"


def test_indented_code_block_is_code_and_verbatim():
    block = markdown_blocks(GUIDE.read_text())[8]
    assert block.kind == "code" and block.verbatim
    assert block.text.startswith("    ./install.sh")
    assert not markdown_blocks(GUIDE.read_text())[7].verbatim


def test_list_item_keeps_its_continuation_line():
    item = markdown_blocks(GUIDE.read_text())[5]
    assert item.text == "2. Unpack it\n   with tar, keeping permissions.\n"


def test_heading_paths_nest_by_level():
    blocks = markdown_blocks(GUIDE.read_text())
    assert blocks[1].heading == "Field Guide"
    assert blocks[3].heading_path == ("Field Guide", "Install", "Linux")
    assert blocks[9].heading == "Field Guide > Install > Linux"


def test_keep_blank_blocks_give_the_input_back():
    for text in (GUIDE.read_text(), "a\r\nb\r\n\r\n# h\rno newline at end", "", "\n\n\n", "x\f y\u2028z\n"):
        assert "".join(b.text for b in markdown_blocks(text, keep_blank=True)) == text


def test_source_lines_split_where_commonmark_does():
    assert source_lines("a\fb\u2028c\r\nd\re") == ["a\fb\u2028c\r\n", "d\r", "e"]
    blocks = markdown_blocks("para\fstill\n\n# Two\n")
    assert spans(blocks) == [("paragraph", 1, 1), ("heading", 3, 3)]


def test_atx_heading_resets_deeper_levels():
    text = "# A\n## B\n### C\n## D\ntext\n"
    assert markdown_blocks(text)[-1].heading_path == ("A", "D")


def test_rst_sections_literal_blocks_and_directives():
    text = ("=====\nTitle\n=====\n\nIntro::\n\n    literal\n\n    more literal\n\nSection\n-------\n\n"
            ".. code-block:: python\n\n   x = 1\n\nAfter the code.\n\nOther\n-----\n\nText.\n")
    blocks = rst_blocks(text)
    assert spans(blocks) == [("heading", 1, 3), ("paragraph", 5, 5), ("code", 7, 9), ("heading", 11, 12),
                             ("code", 14, 16), ("paragraph", 18, 18), ("heading", 20, 21), ("paragraph", 23, 23)]
    assert blocks[5].heading_path == ("Title", "Section")
    assert blocks[-1].heading_path == ("Title", "Other")


def test_code_splits_at_top_level_and_names_definitions():
    text = "import os\n\n\ndef f(x):\n    a = 1\n\n    return a\n\n\nclass B(object):\n    pass\n"
    blocks = code_blocks(text)
    assert spans(blocks) == [("code", 1, 1), ("code", 4, 7), ("code", 10, 11)]
    assert [b.heading_path for b in blocks] == [(), ("f",), ("B",)]
    assert code_blocks("fn main() {\n    x();\n\n    y();\n}\n\npub fn g() {}\n")[1].heading_path == ("g",)


def test_html_visible_text_with_headings_and_lines():
    page = ("<html><head><title>T</title><style>p {}</style><script>var x = '<p>';</script></head>\n"
            "<body>\n<h1>Main</h1>\n<p>Hello\nworld &amp; more</p>\n<h2>Sub <em>part</em></h2>\n"
            "<pre>code\n  here</pre>\n<ul><li>one</li><li>two</li></ul>\n<p>broken <b>markup")
    blocks = html_blocks(page)
    assert [(b.kind, b.text.strip()) for b in blocks] == [
        ("paragraph", "T"), ("heading", "Main"), ("paragraph", "Hello world & more"), ("heading", "Sub part"),
        ("code", "code\n  here"), ("list_item", "one"), ("list_item", "two"), ("paragraph", "broken markup")]
    assert (blocks[2].start_line, blocks[2].end_line) == (4, 5)
    assert blocks[4].heading_path == ("Main", "Sub part")


def test_text_paragraphs():
    assert spans(text_blocks("one\ntwo\n\n\nthree\n")) == [("paragraph", 1, 2), ("paragraph", 5, 5)]


def test_format_by_name():
    assert [format_of(n) for n in ("a.MD", "b.rst", "c.htm", "d.py", "Makefile", "notes", "e.txt")] == [
        "markdown", "rst", "html", "code", "code", "text", "text"]
    assert blocks_for("x.py", "def f():\n    pass\n")[0].kind == "code"


def test_split_block_keeps_line_ranges_and_every_word():
    text = "".join(f"line {i} " + "word " * 30 + "\n" for i in range(1, 21))
    block = text_blocks(text)[0]
    pieces = split_block(block, 100)
    assert len(pieces) > 1 and all(approx_tokens(p.text) <= 100 for p in pieces)
    assert pieces[0].start_line == 1 and pieces[-1].end_line == 20
    assert all(a.end_line + 1 == b.start_line for a, b in zip(pieces, pieces[1:], strict=False))
    assert "".join(p.text for p in pieces) == text


def test_a_long_line_splits_at_sentences_then_words():
    line = " ".join(f"Sentence number {i} says something." for i in range(200))
    pieces = split_block(text_blocks(line)[0], 50)
    assert all(approx_tokens(p.text) <= 50 and p.start_line == 1 for p in pieces)
    assert " ".join(p.text for p in pieces).split() == line.split()
    words = split_block(text_blocks("x" * 10 + " y" * 1000)[0], 50)
    assert len(words) > 1 and " ".join(p.text for p in words).split() == ("x" * 10 + " y" * 1000).split()
    blob = split_block(text_blocks("b" * 100_000)[0], 50)  # a minified file: one "word"
    assert all(approx_tokens(p.text) <= 50 for p in blob) and "".join(p.text for p in blob) == "b" * 100_000


def test_pack_merges_a_heading_with_its_text_but_not_code_or_other_sections():
    text = "# A\n\nshort.\n\n```\ncode\n```\n\n# B\n\nother.\n"
    passages = pack(markdown_blocks(text), max_tokens=200, min_tokens=40)
    assert [(p.kind, p.start_line, p.end_line, p.heading) for p in passages] == [
        ("paragraph", 1, 3, "A"), ("code", 5, 7, "A"), ("paragraph", 9, 11, "B")]
    assert passages[0].text == "# A\n\nshort.\n"


def test_yaml_front_matter_is_one_verbatim_block_not_a_heading():
    text = "---\ntitle: Trip\ntags: [a]\n---\n\n# Day one\n\nWe left.\n"
    blocks = markdown_blocks(text)
    assert spans(blocks) == [("front_matter", 1, 4), ("heading", 6, 6), ("paragraph", 8, 8)]
    assert blocks[0].verbatim and blocks[2].heading_path == ("Day one",)
    assert "".join(b.text for b in markdown_blocks(text, keep_blank=True)) == text
    assert spans(markdown_blocks("---\n\ntext\n")) == [("rule", 1, 1), ("paragraph", 3, 3)]
