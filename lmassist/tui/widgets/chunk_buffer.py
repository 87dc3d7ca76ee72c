"""Streamed text on its way from a reply's worker thread to the UI, batched between redraws."""

from __future__ import annotations

import threading


class ChunkBuffer:
    """Text from the worker not yet shown: one wake-up message at a time, so a busy UI gets fewer,
    larger writes instead of a backlog of one message per token."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self._scheduled = False

    def put(self, text: str) -> bool:
        """Add text; True when the caller must post a wake-up (none is pending)."""
        with self._lock:
            self._parts.append(text)
            wake = not self._scheduled
            self._scheduled = True
            return wake

    def take(self) -> str:
        with self._lock:
            text = "".join(self._parts)
            self._parts.clear()
            self._scheduled = False
            return text
