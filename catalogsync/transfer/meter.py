"""Measured transfer speed and the two text formats the UI shows for it."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

_MIB = 1024 * 1024


# A pause longer than this between two arrivals ends a burst.
BURST_GAP_SECONDS = 0.1


class ThroughputMeter:
    """A smoothed bytes-per-second rate over a sliding time window (thread-safe).

    Servers that pace per connection send in bursts: nginx's ``limit_rate`` sends a
    second's worth at once every second, others whole MiB at a time. A plain window
    read at an arbitrary moment counts a varying number of bursts (and the partial one
    arriving now): measured against nginx it read 18 % low. So arrivals are grouped
    into bursts (separated by pauses over ``BURST_GAP_SECONDS``) and, once at least
    ``min_burst_span`` seconds of whole bursts are known, the rate is the bytes between
    two burst ends over the time between them: exact for any burst size or period, and
    no worse than the window for a smooth flow. A flow that stops decays towards 0.
    """

    def __init__(
        self,
        window_seconds: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        min_span_seconds: float = 0.5,
        min_burst_span: float = 1.0,
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
        self.min_burst_span = float(min_burst_span)
        self._last_at: float | None = None  # the newest arrival and the total then
        self._last_total = 0
        self._ends: deque[tuple[float, int]] = deque()  # (time, total) at each burst end

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
                if self._last_at is not None and now - self._last_at > BURST_GAP_SECONDS:
                    self._ends.append((self._last_at, self._last_total))
                self._total += nbytes
                self._last_at, self._last_total = now, self._total
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
            burst = self._burst_rate(now)
            if burst is not None:
                return burst
            if self._bytes_in_window <= 0:
                return 0.0
            start = max(now - self.window_seconds, self._origin)
            span = max(now - start, self.min_span_seconds)
            return self._bytes_in_window / span

    def _burst_rate(self, now: float) -> float | None:
        """Bytes between two burst ends over the time between them (None: too few)."""
        ends = list(self._ends)
        if self._last_at is not None and now - self._last_at > BURST_GAP_SECONDS:
            ends.append((self._last_at, self._last_total))  # the newest burst is whole
        if len(ends) < 2:
            return None
        last_at, last_total = ends[-1]
        first = 0
        for index, (at, _total) in enumerate(ends):
            if at <= last_at - self.window_seconds:
                first = index
        first_at, first_total = ends[first]
        span = last_at - first_at
        if span < self.min_burst_span:
            return None
        # Normally the next burst is due within one mean period of the last one; past
        # that the waiting counts, so a flow that stops decays instead of freezing.
        period = span / (len(ends) - 1 - first)
        return (last_total - first_total) / max(span, now - first_at - period)

    def reset(self) -> None:
        """Forget every sample (for example when a transfer restarts from zero)."""
        with self._lock:
            self._ends.clear()
            self._last_at = None
            self._last_total = 0
            self._samples.clear()
            self._bytes_in_window = 0
            self._origin = None
            self._measured = False
            self._total = 0

    def _prune(self, now: float) -> None:
        limit = now - self.window_seconds
        while self._samples and self._samples[0][0] <= limit:
            self._bytes_in_window -= self._samples.popleft()[1]
        # Burst ends are kept for two windows (at most one per BURST_GAP_SECONDS).
        horizon = now - 2 * self.window_seconds
        while self._ends and self._ends[0][0] < horizon:
            self._ends.popleft()


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
