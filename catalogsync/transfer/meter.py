"""Measured transfer speed and the two text formats the UI shows for it."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

_MIB = 1024 * 1024


class ThroughputMeter:
    """A smoothed bytes-per-second rate over a sliding time window (thread-safe)."""

    def __init__(
        self,
        window_seconds: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        min_span_seconds: float = 0.5,
    ) -> None:
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self.window_seconds = float(window_seconds)
        self.min_span_seconds = min(float(min_span_seconds), self.window_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, int]] = deque()
        self._bytes_in_window = 0
        self._origin: float | None = None
        self._measured = False
        self._total = 0

    @property
    def total_bytes(self) -> int:
        """All bytes ever added."""
        return self._total

    def start(self, at: float | None = None) -> None:
        """Mark when the transfer began (defaults to now) so the first chunk is not a spike."""
        with self._lock:
            self._origin = self._clock() if at is None else at

    def add(self, nbytes: int) -> None:
        """Record ``nbytes`` that arrived now."""
        now = self._clock()
        with self._lock:
            if self._origin is None:
                self._origin = now
            self._measured = True
            if nbytes > 0:
                self._total += nbytes
                if self._samples and self._samples[-1][0] == now:
                    t, b = self._samples[-1]
                    self._samples[-1] = (t, b + nbytes)
                else:
                    self._samples.append((now, nbytes))
                self._bytes_in_window += nbytes
            self._prune(now)

    def rate(self) -> float | None:
        """Bytes/s over the last window; ``None`` when nothing was measured yet."""
        now = self._clock()
        with self._lock:
            if not self._measured or self._origin is None:
                return None
            self._prune(now)
            if self._bytes_in_window <= 0:
                return 0.0
            start = max(now - self.window_seconds, self._origin)
            span = max(now - start, self.min_span_seconds)
            return self._bytes_in_window / span

    def reset(self) -> None:
        """Forget every sample (for example when a transfer restarts from zero)."""
        with self._lock:
            self._samples.clear()
            self._bytes_in_window = 0
            self._origin = None
            self._measured = False
            self._total = 0

    def _prune(self, now: float) -> None:
        limit = now - self.window_seconds
        while self._samples and self._samples[0][0] <= limit:
            self._bytes_in_window -= self._samples.popleft()[1]


def format_speed(bps: float | None) -> str:
    """``"3.0 MB/s"`` (MiB with one decimal), or ``"-"`` when unknown or zero."""
    if bps is None or bps <= 0:
        return "-"
    return f"{bps / _MIB:.1f} MB/s"


def format_bytes_progress(done: int | None, total: int | None) -> str:
    """``"10.0 / 20.0 MB"``, ``"10.0 MB"`` when the total is unknown, ``"-"`` when both are."""
    if done is None and total is None:
        return "-"
    if total is None:
        return f"{(done or 0) / _MIB:.1f} MB"
    return f"{(done or 0) / _MIB:.1f} / {total / _MIB:.1f} MB"
