"""HTTP requests retried with exponential backoff, honouring the server's Retry-After: one loop for every
client of ours (the Wikipedia API, OpenAI-compatible providers)."""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Collection

import httpx

log = logging.getLogger(__name__)
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def send_with_retries(send: Callable[[], httpx.Response], *, retries: int, backoff_s: float, what: str,
                      statuses: Collection[int] = RETRY_STATUSES, max_retry_after_s: float = 120.0,
                      sleep: Callable[[float], None] = time.sleep) -> httpx.Response:
    """`send()` until it answers with a status not in `statuses`, at most `retries` + 1 times, waiting
    `backoff_s` · 2^attempt (or the server's Retry-After, capped) in between. Returns the last response,
    whatever its status (a retried one is read and closed first); a transport error (timeout, refused
    connection) on the last attempt is raised."""
    for attempt in range(retries + 1):
        last = attempt == retries
        try:
            response = send()
        except httpx.TransportError as exc:
            if last:
                raise
            failure, wait = f"{type(exc).__name__}: {exc}", backoff_s * 2**attempt
        else:
            if response.status_code not in statuses or last:
                return response
            response.read()
            response.close()
            failure = f"HTTP {response.status_code}"
            wait = retry_after(response, max_retry_after_s) or backoff_s * 2**attempt
        log.warning("%s: %s; retrying in %.1f s (%d of %d)", what, failure, wait, attempt + 1, retries)
        sleep(wait)
    raise AssertionError("unreachable")


def retry_after(response: httpx.Response, cap_s: float) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date), capped."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), cap_s)
