"""Retrying what is safe to retry: a call that failed with ConnectionLoss (or OperationTimeout)
is tried again after a growing, jittered delay, until it succeeds, tries run out, or a deadline.

The client retries reads with this by default (`command_retry`): a read changes nothing, so
sending it again is harmless. It never retries writes by itself: a write that got ConnectionLoss
may or may not have taken effect, and sending it again could create a second sequential node,
fail a versioned set that in fact succeeded, or report NodeExists/NoNode for the caller's own
change. Only the caller knows whether its write is idempotent; it can wrap it in a Retry.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from zkclient.exceptions import ConnectionClosedError, RetryFailedError
from zkcore._errors import ConnectionLossError, OperationTimeoutError

P = ParamSpec("P")
T = TypeVar("T")


class ForceRetryError(Exception):
    """Raise inside a retried function to ask for another try."""


class Retry:
    """kazoo's KazooRetry: `Retry(max_tries=5)(func, *args)` calls func until it does not raise
    one of `retry_exceptions`.

    max_tries: how many retries after the first call (-1: no limit). delay: the first wait, in
    seconds; each later wait is `backoff` times the one before, at most `max_delay`, with
    +-max_jitter of randomness so that many clients do not retry in step. deadline: seconds
    after the first call beyond which no retry starts. RetryFailedError when it gives up."""

    RETRY_EXCEPTIONS: tuple[type[BaseException], ...] = (
        ConnectionLossError,
        OperationTimeoutError,
        ForceRetryError,
    )

    def __init__(
        self,
        max_tries: int = 1,
        delay: float = 0.1,
        backoff: float = 2.0,
        max_jitter: float = 0.4,
        max_delay: float = 60.0,
        deadline: float | None = None,
        sleep_func: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        interrupt: Callable[[], bool] | None = None,
    ) -> None:
        if max_tries < -1:
            raise ValueError(f"max_tries must be -1 (no limit) or >= 0, got {max_tries}")
        if delay < 0 or backoff < 1 or max_delay < 0:
            raise ValueError(
                f"need delay >= 0, backoff >= 1, max_delay >= 0; got {delay}, {backoff}, {max_delay}"
            )
        self.max_tries = max_tries
        self.delay = delay
        self.backoff = backoff
        self.max_jitter = min(max(max_jitter, 0.0), 1.0)
        self.max_delay = max_delay
        self.deadline = deadline
        self.sleep_func = sleep_func
        self.clock = clock
        self.rng = rng or random.Random()
        self.interrupt = interrupt
        self.retry_exceptions = self.RETRY_EXCEPTIONS

    def copy(self) -> Retry:
        """A fresh Retry with the same policy (a Retry may be used by one thread at a time)."""
        other = Retry(self.max_tries, self.delay, self.backoff, self.max_jitter, self.max_delay, self.deadline,
                      self.sleep_func, self.clock, self.rng, self.interrupt)  # fmt: skip
        other.retry_exceptions = self.retry_exceptions
        return other

    def delays(self) -> list[float]:
        """The waits before each retry without jitter (the policy at a glance; for tests)."""
        out, current = [], self.delay
        for _ in range(self.max_tries if self.max_tries >= 0 else 0):
            out.append(min(current, self.max_delay))
            current = min(current * self.backoff, self.max_delay)
        return out

    def __call__(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        attempts = 0
        current = self.delay
        stop_at = None if self.deadline is None else self.clock() + self.deadline
        while True:
            try:
                return func(*args, **kwargs)
            except ConnectionClosedError:
                raise  # closed by the application: nothing to wait for
            except self.retry_exceptions as e:
                if attempts == self.max_tries:
                    raise RetryFailedError(f"too many retry attempts ({attempts}); last error: {e!r}") from e
                attempts += 1
                wait = min(current, self.max_delay) * self.rng.uniform(
                    1 - self.max_jitter, 1 + self.max_jitter
                )
                if stop_at is not None and self.clock() + wait >= stop_at:
                    raise RetryFailedError(
                        f"retry deadline of {self.deadline}s exceeded; last error: {e!r}"
                    ) from e
                self._wait(wait)
                current = min(current * self.backoff, self.max_delay)

    def _wait(self, seconds: float) -> None:
        if self.interrupt is None:
            self.sleep_func(seconds)
            return
        while seconds > 0:
            step = min(0.1, seconds)
            self.sleep_func(step)
            seconds -= step
            if self.interrupt():
                raise RetryFailedError("retry interrupted")


KazooRetry = Retry

__all__ = ["ForceRetryError", "KazooRetry", "Retry", "RetryFailedError"]
