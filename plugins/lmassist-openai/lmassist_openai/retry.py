"""Trying a request again when the server could not take it now: which failures, how long to wait, when to stop.

A server behind a folder job is shared and busy: vLLM answers 429 or 503 when its queue is full,
a load balancer resets connections while a node restarts, llama.cpp's server refuses connections
while it reloads. Each is worth another try after a wait, so the job goes on instead of failing
every input that was in flight. The wait is exponential backoff with full jitter (a random time
between zero and a cap that doubles with each try), so that many workers that failed together do
not come back together; a server that says when to come back (``Retry-After``) is believed.

What is never retried: any other 4xx (the request itself is wrong and will be wrong again), and a
streaming reply that already handed out text (the caller has used it; see
:meth:`lmassist_openai.backend.OpenAIModel.stream_pieces`).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any

from lmassist.errors import LMAssistError
from lmassist.generation import CancelToken

DEFAULT_RETRIES = 6  # tries after the first: about 30 s of waiting on average, enough for a restart
DEFAULT_RETRY_TIME_S = 120.0
BASE_WAIT_S = 0.5
MAX_WAIT_S = 30.0
# 5xx that will not change by waiting: the server does not implement the call at all.
PERMANENT_5XX = frozenset({501, 505})


class RetryableError(LMAssistError):
    """A failure that another try may not have: 429, most 5xx, a reset or refused connection, a timeout."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retryable_status(status: int) -> bool:
    return status in (408, 429) or (500 <= status < 600 and status not in PERMANENT_5XX)


def retryable_network_error(exc: BaseException) -> bool:
    """Whether an httpx error can pass by itself: a reset, a refused connection, a timeout.

    An unknown host, a bad URL or a proxy that refuses us will not; they fail at once.
    """
    import httpx

    if isinstance(exc, httpx.ConnectError):
        detail = str(exc).lower()
        return not ("name or service not known" in detail or "nodename nor servname" in detail)
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


def retry_after_s(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: a number of seconds or an HTTP date (``now`` is
    the wall clock, as a Unix time). None when absent or unreadable; never negative."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def sleep_unless_cancelled(seconds: float, cancel: CancelToken) -> None:
    """Wait ``seconds``, waking early when the request is cancelled (Ctrl+C must not wait out a backoff)."""
    end = time.monotonic() + seconds
    while not cancel.cancelled:
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``retries`` tries after the first, all within ``total_s`` of the first."""

    retries: int = DEFAULT_RETRIES
    total_s: float = DEFAULT_RETRY_TIME_S
    base_s: float = BASE_WAIT_S
    cap_s: float = MAX_WAIT_S

    def ceiling(self, failures: int) -> float:
        """The longest jittered wait after ``failures`` failed tries: base, 2 x base, 4 x base... up to the cap."""
        return min(self.cap_s, self.base_s * 2 ** (failures - 1))


@dataclass
class Timing:
    """The clocks, the sleep and the dice, in one place so tests can replace them (no real waits)."""

    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    sleep: Callable[[float, CancelToken], None] = sleep_unless_cancelled
    random: Callable[[], float] = random.random


class Outage:
    """When the server was last seen failing with nothing in between, shared by every thread.

    A job with 4 workers and 10,000 inputs must not spend two minutes of retries on each input
    once the server is gone for good: a try that starts after the server has failed for longer
    than the policy's ``total_s`` gives up at its first failure.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None

    def failed(self, now: float) -> float:
        """Record a failure; return when the outage began."""
        with self._lock:
            if self._since is None:
                self._since = now
            return self._since

    def recovered(self) -> None:
        with self._lock:
            self._since = None


class Backoff:
    """One request's tries: after each failure, how long to wait, or a final error when it is time to stop."""

    def __init__(self, policy: RetryPolicy, timing: Timing, outage: Outage | None = None) -> None:
        self.policy = policy
        self.timing = timing
        self.outage = outage or Outage()
        self.start = timing.clock()
        self.failures = 0

    def next_wait(self, failure: RetryableError) -> float:
        """Seconds to wait before the next try; raises a one-line :class:`LMAssistError` to give up."""
        now = self.timing.clock()
        self.failures += 1
        began = min(self.start, self.outage.failed(now))
        left = self.policy.total_s - (now - began)
        if failure.retry_after is not None:
            wait = failure.retry_after
        else:
            wait = self.timing.random() * self.policy.ceiling(self.failures)
        if self.failures > self.policy.retries:
            raise self._give_up(failure, now)
        if wait > left:
            if failure.retry_after is not None and left > 0:
                raise LMAssistError(
                    f"{failure}; the server asked to retry after {wait:g} s, past the {self.policy.total_s:g} s "
                    "allowed for retries (raise the setting openai.retry_time to wait that long)"
                )
            raise self._give_up(failure, now)
        return wait

    def _give_up(self, failure: RetryableError, now: float) -> LMAssistError:
        if self.policy.retries == 0:
            return LMAssistError(str(failure))  # retrying is off: the failure as it is
        tries = self.failures
        return LMAssistError(
            f"{failure} (gave up after {tries} tr{'y' if tries == 1 else 'ies'} in {now - self.start:.1f} s; "
            "the settings openai.retries and openai.retry_time allow more)"
        )


def policy_from(settings: dict[str, Any], env: dict[str, str]) -> RetryPolicy:
    """The policy from ``openai.retries`` / ``openai.retry_time``, else ``LMASSIST_OPENAI_RETRIES`` /
    ``LMASSIST_OPENAI_RETRY_TIME``, else the defaults."""
    def pick(key: str, var: str) -> Any:
        value = settings.get(key)
        return value if value not in (None, "") else env.get(var) or None

    raw_retries = pick("retries", "LMASSIST_OPENAI_RETRIES")
    raw_time = pick("retry_time", "LMASSIST_OPENAI_RETRY_TIME")
    try:
        retries = DEFAULT_RETRIES if raw_retries is None else int(raw_retries)
        total = DEFAULT_RETRY_TIME_S if raw_time is None else float(raw_time)
    except (TypeError, ValueError):
        raise LMAssistError(
            f"openai.retries must be a whole number and openai.retry_time a number of seconds, "
            f"got {raw_retries!r} and {raw_time!r}"
        ) from None
    if retries < 0 or total < 0:
        raise LMAssistError("openai.retries and openai.retry_time must not be negative")
    return RetryPolicy(retries=retries, total_s=total)
