"""Retries of idempotent HTTP calls, for the REST peers' client (`adapters.rest`) and the
operator's network API (`adapters.camara`): one policy, so the two cannot drift.

- A call that succeeds at once costs no retry machinery: the first attempt runs outside
  tenacity, whose loop (built once; it keeps its state per thread) is entered only after
  a failure.
- Only an idempotent call is retried, only on an error `retryable` accepts (the clients'
  timeouts, refused connections, `5xx` and `429`), at most `retries` more times.
- Each retry waits what the peer asked (`Retry-After`, carried by the error, which the
  client refuses to retry when it asks too long) or else a jittered exponential back-off
  (50 ms doubling up to 2 s, ±0.1 s).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

T = TypeVar("T")

BACKOFF = wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.1)


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` in seconds (RFC 9110: delay-seconds or an HTTP date), or None."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


class Retries:
    """The retry policy of one client (module docstring). `retryable(error)`: whether a
    failure may be tried again; `asked(error)`: the wait the peer asked for, or None."""

    def __init__(
        self,
        retries: int,
        retryable: Callable[[BaseException], bool],
        asked: Callable[[BaseException], float | None],
    ) -> None:
        self.retries, self._retryable, self._asked = retries, retryable, asked
        self._loop = Retrying(
            stop=stop_after_attempt(max(retries, 1)),
            wait=self._wait,
            retry=retry_if_exception(retryable),
            reraise=True,
        )

    def run(self, once: Callable[[], T], *, idempotent: bool) -> T:
        """`once()`, tried again as the policy allows; the last failure is raised."""
        try:
            return once()
        except Exception as error:
            if not (idempotent and self.retries and self._retryable(error)):
                raise
            time.sleep(self.pause(error, 1))  # then the retries, each after its pause
        for attempt in self._loop:
            with attempt:
                return once()
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def pause(self, error: BaseException | None, failed: int) -> float:
        """The wait after `failed` attempts that ended in `error`."""
        asked = self._asked(error) if error is not None else None
        if asked is not None:
            return asked
        state = RetryCallState(self._loop, fn=None, args=(), kwargs={})
        state.attempt_number = failed
        return float(BACKOFF(state))

    def _wait(self, state: RetryCallState) -> float:
        """The pause after the `n`th retry failed (the first attempt came before the loop)."""
        error = state.outcome.exception() if state.outcome is not None else None
        return self.pause(error, state.attempt_number + 1)
