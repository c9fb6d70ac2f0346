"""Bandwidth windows (`[[download.limits]]`): a download limit by local time of day.

The runner calls ``BandwidthWindows.apply`` on each tick; the shared token bucket
takes a new rate live, so transfers already running slow down or speed up within a
tenth of a second. Outside every window the plain `[download] max_bytes_per_sec`
applies (0 = none). A window may cross midnight (``"23:00-07:00"``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo

from catalogsync.records import record

from .ratelimit import TokenBucket


@record
class BandwidthWindow:
    """One `[[download.limits]]` entry: a download limit during local hours (may cross midnight)."""

    hours: str
    start_minute: int
    end_minute: int
    max_bytes_per_sec: int


def in_window(window: BandwidthWindow, minute_of_day: int) -> bool:
    start, end = window.start_minute, window.end_minute
    if start < end:
        return start <= minute_of_day < end
    return minute_of_day >= start or minute_of_day < end  # crosses midnight


def limit_at(windows: Sequence[BandwidthWindow], base: int, minute_of_day: int) -> int:
    """The limit in force (bytes/s, 0 = none): the first window that covers the minute."""
    for window in windows:
        if in_window(window, minute_of_day):
            return window.max_bytes_per_sec
    return base


class BandwidthWindows:
    """Keeps a token bucket's rate in step with the windows."""

    def __init__(
        self,
        windows: Sequence[BandwidthWindow],
        base: int,
        zone: tzinfo | None,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.windows = list(windows)
        self.base = base
        self.zone = zone
        self._now = now
        self.current: int | None = None

    def limit_now(self) -> int:
        local = datetime.fromtimestamp(self._now(), self.zone)
        return limit_at(self.windows, self.base, local.hour * 60 + local.minute)

    def apply(self, limiter: TokenBucket) -> bool:
        """Set the bucket's rate if the window changed; True when it did."""
        if not self.windows:
            return False
        limit = self.limit_now()
        if limit == self.current:
            return False
        self.current = limit
        limiter.set_rate(limit or None)
        return True
