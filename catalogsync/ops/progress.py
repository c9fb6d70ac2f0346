"""Live worker progress: bytes, smoothed speed and percent, written about twice a second."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from catalogsync.redact import mask_secrets
from catalogsync.transfer.meter import ThroughputMeter

from .repository import OpsRepository

WRITE_INTERVAL_SECONDS = 0.5


class WorkerProgress:
    """Feeds a worker's ``job_workers`` row (and its speed samples) from transfer callbacks."""

    def __init__(
        self,
        repository: OpsRepository,
        worker_name: str,
        job_id: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = WRITE_INTERVAL_SECONDS,
    ) -> None:
        self.repository = repository
        self.worker_name = worker_name
        self.job_id = job_id
        self.meter = ThroughputMeter(clock=clock)
        self._clock = clock
        self._interval = interval
        self._last_write: float | None = None
        self._last_bytes_at: float | None = None
        self._last_done = 0
        self._display: str | None = None
        self._retry_shown = False
        self._lock = threading.Lock()

    def start(self, display_text: str | None = None, *, already: int = 0) -> None:
        """A new transfer begins (``already`` bytes were on disk from an earlier try).

        Nothing is written here: claiming the item already reset the worker row's song
        fields, and a short file finishes before a write would be useful. The meter is
        the worker's, not the file's, so the speed carries across songs instead of
        dropping to nothing (the claim keeps the row's speed for the same reason).
        """
        with self._lock:
            self._last_done = already
            self._display = display_text
            self._retry_shown = False

    def on_retry(self, error: Any, delay: float) -> None:
        """Downloader callback before it waits to try again: the row says why it waits."""
        code = getattr(error, "code", "")
        why = "stalled" if code in ("timeout", "stalled") else code or "failed"
        text = f"{why}, retrying in {max(round(delay), 1)} s"
        if self._display:
            text = f"{text}: {self._display}"
        with self._lock:
            self._retry_shown = True
        self.repository.update_worker_state(
            self.worker_name,
            job_id=self.job_id,
            current_display_text=mask_secrets(text),
            speed_bytes_per_sec=None,  # waiting, not transferring
        )

    def on_bytes(self, done: int, total: int | None) -> None:
        """Transfer callback: ``done`` bytes so far of ``total``."""
        with self._lock:
            delta = done - self._last_done
            if delta > 0:
                self.meter.add(delta)
            self._last_done = done
            now = self._clock()
            quiet = now - self._last_bytes_at if self._last_bytes_at is not None else 0.0
            if delta > 0:
                self._last_bytes_at = now
            if not self._due(now, quiet):
                return
            self._last_write = now
            restore = self._retry_shown
            self._retry_shown = False
        self._write(done, total, self.meter.rate(), display=self._display if restore else None)

    def _due(self, now: float, quiet: float) -> bool:
        """Whether bytes that landed at ``now`` after ``quiet`` seconds without any are
        written: about twice a second for a steady flow, and at every burst of a server
        that sends one every 0.5 s.

        Neither "``interval`` after the last write" (0.5 s bursts would be shown at every
        other one) nor "once per 0.5 s slot of the clock" (bursts landing either side of a
        slot boundary alias: two in one slot, none in the next, and the row stands still
        for a second) does both. A steady flow is written 0.9 ``interval`` after the last
        write; the first bytes after a pause (a burst) once half an interval has passed.
        """
        last = self._last_write
        if last is None:
            return True
        gap = now - last
        burst = quiet >= 0.4 * self._interval
        return gap >= 0.9 * self._interval or (burst and gap >= 0.5 * self._interval)

    def on_wait(self, seconds_left: float) -> None:
        """Pacing callback: the row shows ``cooldown 42 s`` while a platform holds us back."""
        text = self._display or ""
        if seconds_left > 0:
            text = f"cooldown {math.ceil(seconds_left)} s" + (f" · {text}" if text else "")
        self.repository.update_worker_state(
            self.worker_name,
            job_id=self.job_id,
            current_display_text=mask_secrets(text) if text else None,
            **({"speed_bytes_per_sec": None} if seconds_left > 0 else {}),
        )

    def on_growth(self, done: int, total: int | None, rate: float | None) -> None:
        """File-growth monitor callback (it measured the rate itself)."""
        self._write(done, total, rate)

    def _write(
        self, done: int, total: int | None, rate: float | None, *, display: str | None = None
    ) -> None:
        percent = round(done * 100.0 / total, 1) if total else None
        extra: dict[str, Any] = {"current_display_text": display} if display else {}
        self.repository.update_worker_state(
            self.worker_name,
            job_id=self.job_id,
            downloaded_bytes=done,
            total_bytes=total,
            speed_bytes_per_sec=rate,
            progress_percent=min(percent, 100.0) if percent is not None else None,
            **extra,
        )
