"""Retry timing, kept apart from the HTTP code so it can be reasoned about (and tested) alone: which answers
are worth another try, how long to wait, and when to give up. Mirrors ``src/sdk/retry.ts``, in seconds."""

from __future__ import annotations

import random as _random
import re
import time
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Optional

__all__ = ["DEFAULT_RETRY", "RetryOptions", "backoff_seconds", "is_retryable_status", "next_delay", "retry_after_seconds"]


@dataclass(frozen=True)
class RetryOptions:
    """How the client retries; every wait is bounded."""

    retries: int = 3
    """Further attempts after the first."""
    base_delay: float = 0.2
    """First backoff delay in seconds; doubles per attempt, with full jitter."""
    max_delay: float = 5.0
    """Cap of one backoff delay, in seconds."""
    max_retry_after: float = 30.0
    """A ``Retry-After`` longer than this (seconds) is not waited for: the error is raised instead."""


DEFAULT_RETRY = RetryOptions()
"""Up to 4 attempts, at most a few seconds of waiting unless the server asks for more."""

_DIGITS = re.compile(r"^[0-9]+$")
_LETTER = re.compile(r"[A-Za-z]")


def is_retryable_status(status: int) -> bool:
    """429 and 5xx, except 501 (not implemented: trying again cannot help)."""
    return status == 429 or (500 <= status <= 599 and status != 501)


def retry_after_seconds(header: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds a ``Retry-After`` header asks to wait: delay-seconds (``120``) or an HTTP date.

    None when absent or unparsable; a date in the past means "now" (0). ``now`` is a Unix time.
    """
    if header is None:
        return None
    text = header.strip()
    if _DIGITS.match(text):
        return float(int(text))
    if not _LETTER.search(text):
        return None
    try:
        at = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if at.tzinfo is None:  # an HTTP date is GMT; "-0000" parses naive
        at = at.replace(tzinfo=timezone.utc)
    return max(0.0, at.timestamp() - (time.time() if now is None else now))


def backoff_seconds(n: int, opts: RetryOptions, random: Callable[[], float] = _random.random) -> float:
    """Exponential backoff with full jitter for attempt ``n`` (0 = the wait before the first retry)."""
    ceiling = min(opts.max_delay, opts.base_delay * float(2 ** min(n, 20)))
    return random() * ceiling


def next_delay(n: int, opts: RetryOptions, retry_after: Optional[float]) -> Optional[float]:
    """The wait before retry ``n``, or None to stop.

    Stops when out of retries, or when the server asked for longer than ``max_retry_after``. A
    ``Retry-After`` is honoured as asked (it is the server's statement of when to come back).
    """
    if n >= opts.retries:
        return None
    if retry_after is not None:
        return None if retry_after > opts.max_retry_after else retry_after
    return backoff_seconds(n, opts)
