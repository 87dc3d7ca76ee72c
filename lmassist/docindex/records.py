"""What the index hands back: collections, search hits with citations, update summaries."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Collection:
    """An indexed folder: its name, root, filters, file and passage counts, last update (epoch s)."""

    id: int
    name: str
    root: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    files: int = 0
    chunks: int = 0
    updated: float | None = None


@dataclass(frozen=True)
class Hit:
    """A passage found by :meth:`DocIndex.search`; ``score`` is BM25's (higher is better)."""

    collection: str
    root: str
    path: str  # relative to the root, "/"-separated
    start_line: int
    end_line: int
    heading: str
    text: str
    score: float

    @property
    def citation(self) -> str:
        """``path:line`` (the passage's first line), the form editors and terminals open."""
        return f"{self.path}:{self.start_line}"


@dataclass
class UpdateSummary:
    """What an ``add``/``update`` did. ``read`` counts files whose bytes were read (size or mtime
    changed); ``unchanged`` those left as they were; ``skipped`` files left out, by reason."""

    name: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    # the work done, for tests and benchmarks: files read, passages written, wall time
    read: int = 0
    chunks: int = 0
    seconds: float = 0.0
    skipped: Counter = field(default_factory=Counter)

    def line(self) -> str:
        """The summary as the one line ``docs update`` prints."""
        text = (f"{self.name}: {self.added} added, {self.updated} updated, {self.removed} removed, "
                f"{self.unchanged} unchanged")
        skipped = sum(self.skipped.values())
        if skipped:
            reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(self.skipped.items()))
            text += f"; {skipped} skipped ({reasons})"
        return text + f" in {self.seconds:.1f} s"
