"""Files attached to a conversation: read once, shown as a chip, stored once by content hash.

``ask -f``, ``chat -f`` and the app's ``/attach`` all go through here, so a folder, a glob or ``-``
means the same everywhere and every bad input gives the same one line:

* :func:`collect` turns what the user typed into :class:`Attachment` values (files, folders walked
  recursively, globs, ``-`` for stdin); files in a folder or glob that are binary, not UTF-8 or too
  large are skipped and counted (:attr:`Collected.skipped`), a file named on its own is an error;
* :func:`chip` is the compact label a face shows (``notes.md · 4.2 KB · ~1,050 tokens``);
* :func:`fit_attachments` is what the model is shown: every file whole when they fit the context,
  else the passages that best match the question (retrieval, never a silent cut), with the one line
  that says so (:attr:`AttachmentFit.summary`).

Storage (one row per content hash, linked to the message that attached it) is
:meth:`lmassist.store.Store.add_message`'s ``attachments``; the conversation API the faces call is
:meth:`lmassist.conversation.ConversationLog.attach` and :func:`with_attachments` (the messages of a turn
with the files in front of the question, fitted to the model's context).
"""

from __future__ import annotations

from lmassist.attachments.collect import MAX_ATTACHMENT_BYTES, MAX_TOTAL_BYTES, Collected, collect
from lmassist.attachments.messages import latest_versions, with_attachments
from lmassist.attachments.prompt import AttachmentFit, Passage, fit_attachments, render, split_passages
from lmassist.attachments.record import Attachment, chip, human_size

__all__ = [
    "MAX_ATTACHMENT_BYTES", "MAX_TOTAL_BYTES", "Attachment", "AttachmentFit", "Collected", "Passage", "chip",
    "collect", "fit_attachments", "human_size", "latest_versions", "render", "split_passages", "with_attachments",
]
