"""A shared token bucket that caps the bytes per second of all download workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from catalogsync.errors import TransferStopped
from catalogsync.transfer.stop import never

MIN_BURST_BYTES = 16 * 1024
MAX_SLEEP_SLICE = 0.1


class TokenBucket:
    """Thread-safe byte budget: ``acquire(n)`` blocks until ``n`` bytes may pass.

    A rate of 0 or ``None`` means unlimited. The bucket holds at most
    ``burst_bytes`` tokens (default: a tenth of a second of traffic, at least
    16 KiB) so traffic stays smooth; waiters sleep in slices of at most 0.1 s.
    """

    def __init__(
        self,
        rate_bytes_per_sec: float | None,
        burst_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._explicit_burst = burst_bytes
        self._rate = 0.0
        self._burst = MIN_BURST_BYTES
        self._configure(rate_bytes_per_sec, burst_bytes)
        self._tokens = float(self._burst)
        self._last = clock()

    @property
    def rate(self) -> float | None:
        """Bytes per second, or ``None`` when unlimited."""
        return self._rate or None

    @property
    def burst_bytes(self) -> int:
        """Most bytes that may pass at once after an idle period."""
        return self._burst

    def set_rate(self, rate_bytes_per_sec: float | None, burst_bytes: int | None = None) -> None:
        """Change the rate live; waiting workers pick it up within one sleep slice."""
        with self._lock:
            self._refill(self._clock())
            if burst_bytes is not None:
                self._explicit_burst = burst_bytes
            self._configure(rate_bytes_per_sec, self._explicit_burst)
            self._tokens = min(self._tokens, float(self._burst))

    def acquire(self, n: int, should_stop: Callable[[], bool] = never) -> None:
        """Block until ``n`` tokens were taken; raise ``TransferStopped`` once ``should_stop()``."""
        remaining = int(n)
        while remaining > 0:
            with self._lock:
                if self._rate <= 0:
                    return
                now = self._clock()
                self._refill(now)
                want = min(remaining, self._burst)
                if self._tokens >= want:
                    self._tokens -= want
                    remaining -= want
                    continue
                wait = (want - self._tokens) / self._rate
            if should_stop():
                raise TransferStopped("transfer stopped while waiting for the rate limit")
            self._sleep(min(MAX_SLEEP_SLICE, max(wait, 0.001)))

    def _configure(self, rate: float | None, burst: int | None) -> None:
        self._rate = float(rate) if rate and rate > 0 else 0.0
        if burst is not None and burst > 0:
            self._burst = int(burst)
        else:
            self._burst = max(MIN_BURST_BYTES, int(self._rate / 10))

    def _refill(self, now: float) -> None:
        elapsed = now - self._last
        self._last = now
        if elapsed > 0 and self._rate > 0:
            self._tokens = min(float(self._burst), self._tokens + elapsed * self._rate)
