"""Progress on stderr during long work: a bar on a terminal, a plain line every few seconds otherwise.

One display for every long job (task commands, ``models pull``, training), so a log file or CI sees
the same kind of line from each. rich is imported when a bar is drawn, not before: every command
module imports this one to build ``lmassist --help``, which draws none.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from lmassist.config import progress_interval


def human_size(n: int | None) -> str:
    """Sizes in decimal SI units (1 kB = 1000 B), the unit pip, rich's download bar and disk makers
    use, so ``models list`` and the ``models pull`` bar print the same figure for the same file."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if round(size, 1) < 1000 or unit == "GB":  # 999,999 B is "1.0 MB", not "1000.0 kB"
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class ProgressReporter:
    """The one progress display of every long command (task commands, ``models pull``).

    On a terminal: a rich bar on stderr (counts, or bytes in SI units for downloads). Otherwise (a pipe,
    a log file, CI): a plain line every :func:`progress_interval` seconds, from a timer thread so that a
    slow step still shows the work is alive, e.g. ``sentiment: 40/100 (40%), 3.1/s, ETA 19 s``; nothing
    for work shorter than one interval, and a closing line when progress lines were printed.

    Use as a context manager whose value is the ``progress(done, total)`` callback, or call
    :meth:`start` and :meth:`stop`. ``enabled=False`` shows nothing at all (``--quiet``).
    """

    def __init__(self, description: str, unit: str = "", *, download: bool = False, transient: bool = True,
                 lazy: bool = False, interval: float | None = None, stream: Any = None, enabled: bool = True,
                 counts: bool = True, elapsed: bool = False) -> None:
        self.description = description
        self.enabled = enabled
        self.counts = counts  # the bar's done/total column (off where ``info`` says it better)
        self.elapsed = elapsed  # the bar's elapsed-time column
        self.unit = unit
        self.download = download
        self.transient = transient
        self.lazy = lazy  # draw the terminal bar at the first update, so a failure before it prints one line
        self.interval = progress_interval() if interval is None else interval
        self.stream = stream
        self.done = 0
        self.total: int | None = None
        self.info = ""
        self.started_at = 0.0
        self._first: tuple[float, int] | None = None  # (time, done) of the first update: rates start there
        self._bar: Any = None
        self._task_id: Any = None
        self._thread: Any = None
        self._stop: Any = None
        self._lines = 0

    def _out(self) -> Any:
        return self.stream if self.stream is not None else sys.stderr

    # -- the callback ------------------------------------------------------------------------------

    def update(self, done: int, total: int | None = None, info: str | None = None) -> None:
        """``info`` is a short status shown after the counts (``loss 2.31  ppl 10.1``), kept until changed."""
        self.done, self.total = done, total
        if info is not None:
            self.info = info
        if self._first is None:
            self._first = (time.monotonic(), done)
        if self._bar is not None:
            if not self._bar.live.is_started:
                self._bar.start()
            self._bar.update(self._task_id, completed=done, total=total, info=self.info)

    __call__ = update

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> Callable[[int, int | None], None]:
        self.started_at = time.monotonic()
        out = self._out()
        if not self.enabled:
            pass
        elif out is not None and out.isatty():
            self._bar = self._rich_bar()
            self._task_id = self._bar.add_task(self.description, total=None, info=self.info)
            if not self.lazy:
                self._bar.start()
        elif out is not None and self.interval > 0:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._tick, name="lmassist-progress", daemon=True)
            self._thread.start()
        return self.update

    def stop(self, finished: bool = True) -> None:
        """Remove the bar; after plain progress lines, say how it ended (not on failure: the error
        line is then the last word)."""
        if self._bar is not None:
            if self._bar.live.is_started:
                self._bar.stop()
            self._bar = None
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            if self._lines and finished:
                self._line(self.final_line())

    def note(self, text: str) -> None:
        """A line of its own (a validation result, say): above the bar on a terminal, else plain."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            self._line(text)

    def __enter__(self) -> Callable[[int, int | None], None]:
        return self.start()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.stop(finished=exc_type is None)

    # -- what is shown -----------------------------------------------------------------------------

    def _rich_bar(self) -> Any:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        counts = [DownloadColumn(), TransferSpeedColumn()] if self.download else [MofNCompleteColumn()]
        elapsed = [TimeElapsedColumn()] if self.elapsed else []
        return Progress(
            TextColumn("{task.description}"), BarColumn(), *(counts if self.counts else []),
            TextColumn("{task.fields[info]}"), *elapsed, TimeRemainingColumn(),
            console=Console(file=self._out(), highlight=False), transient=self.transient,
        )

    def _amount(self, n: float) -> str:
        return human_size(int(n)) if self.download else f"{int(n)}"

    def _rate(self, now: float) -> float | None:
        """Steps per second since the first update (what came before it, a model load say, is not
        stepping); with one update so far, since the start, which is all there is to go on."""
        if self._first is None:
            return None
        t0, d0 = self._first
        if self.done <= d0:
            t0, d0 = self.started_at, 0
        if now - t0 <= 0 or self.done <= d0:
            return None
        return (self.done - d0) / (now - t0)

    def status_line(self, now: float | None = None) -> str:
        """``sentiment: 40/100 lines (40%), 3.1/s, ETA 19 s`` (what is known of it)."""
        now = time.monotonic() if now is None else now
        elapsed = now - self.started_at
        unit = f" {self.unit}" if self.unit else ""
        if self._first is None:
            return f"{self.description}: working, {duration(elapsed)} elapsed"
        parts = []
        if self.total:
            pct = 100 * self.done / self.total
            parts.append(f"{self._amount(self.done)}/{self._amount(self.total)}{unit} ({pct:.0f}%)")
        else:
            parts.append(f"{self._amount(self.done)}{unit} done")
        rate = self._rate(now)
        if rate:
            if self.download:
                parts.append(f"{human_size(int(rate))}/s")
            else:
                parts.append(f"{rate:.1f}/s" if rate >= 1 else f"{rate:.2f}/s")
            if self.total and self.total > self.done:
                parts.append(f"ETA {duration((self.total - self.done) / rate)}")
        else:
            parts.append(f"{duration(elapsed)} elapsed")
        if self.info:
            parts.append(self.info)
        return f"{self.description}: " + ", ".join(parts)

    def final_line(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        amount = self._amount(self.done)
        if self.total:
            amount = f"{amount}/{self._amount(self.total)}"
        return f"{self.description}: {amount}{unit} in {duration(time.monotonic() - self.started_at)}"

    def _line(self, text: str) -> None:
        out = self._out()
        try:
            out.write(text + "\n")
            out.flush()
        except (OSError, ValueError):  # stderr closed or gone: progress is not worth an error
            pass

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._lines += 1
            self._line(self.status_line())


def progress_bar(description: str) -> tuple[ProgressReporter, Callable[[int, int | None], None]]:
    """A download's progress on stderr (bytes, SI units) and the ``progress(done, total)`` callback
    that drives it; call ``.stop()`` on the first value when done."""
    bar = ProgressReporter(description, download=True, transient=False, lazy=True)
    return bar, bar.start()
