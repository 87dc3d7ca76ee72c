"""Folders as a searchable knowledge base: structural blocks, a safe folder walk, an FTS5 index.

* :mod:`~lmassist.docindex.blocks` / :mod:`~lmassist.docindex.formats` split a document into
  blocks with line ranges and heading paths (Markdown through a CommonMark parser);
  :mod:`~lmassist.docindex.passages` picks the splitter by file name and sizes blocks into passages.
* :mod:`~lmassist.docindex.walk` lists the text files under a folder, counting each skip by reason.
* :mod:`~lmassist.docindex.index` keeps collections of folders in one SQLite file and searches them
  (tables and error messages in :mod:`~lmassist.docindex.schema`, free text to a safe query in
  :mod:`~lmassist.docindex.query`, what it returns in :mod:`~lmassist.docindex.records`).

A library for now (issue #16); the ``docs`` commands and ``ask --docs`` are to be built on it.
"""
