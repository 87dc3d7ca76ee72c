"""One attached file: its text and what identifies it (a content hash), and the chip that shows it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from lmassist.docindex.passages import approx_tokens
from lmassist.progress import human_size

__all__ = ["Attachment", "chip", "human_size"]


@dataclass(frozen=True)
class Attachment:
    """A file's text as the model will see it.

    ``sha256`` is of the text in UTF-8 (not of the bytes on disk), so one content is stored once
    however it was encoded or named; ``size`` is that text's length in bytes; ``tokens`` is an
    estimate (about four characters a token) until a model counts them.
    """

    name: str
    text: str
    sha256: str
    size: int
    tokens: int

    @classmethod
    def from_text(cls, name: str, text: str) -> Attachment:
        data = text.encode("utf-8")
        return cls(name, text, hashlib.sha256(data).hexdigest(), len(data), approx_tokens(text))

    @property
    def key(self) -> tuple[str, str]:
        """What makes two attachments the same in one conversation: the name and the content."""
        return (self.name, self.sha256)

    def to_dict(self, text: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "sha256": self.sha256, "size": self.size, "tokens": self.tokens}
        if text:
            out["text"] = self.text
        return out


def chip(a: Attachment) -> str:
    """The compact label a face shows for an attachment: ``notes.md · 4.2 KB · ~1,050 tokens``."""
    return f"{a.name} · {human_size(a.size)} · ~{a.tokens:,} tokens"
