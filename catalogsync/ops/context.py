"""A running job's context: the stop flag its workers and transfers check, and why."""

from __future__ import annotations

import threading
from enum import StrEnum


class StopReason(StrEnum):
    """Why a job's workers were told to stop; a later, stronger reason outranks a weaker one."""

    PAUSE = "pause"
    STORAGE = "storage"
    CANCEL = "cancel"
    SHUTDOWN = "shutdown"


# A cancel or shutdown outranks a pause; the first storage message is kept.
_RANK = {reason: rank for rank, reason in enumerate(StopReason)}


class JobContext:
    """What a running job's workers share: its stop flag and why it was raised."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self._stop = threading.Event()
        self.reason: StopReason | None = None
        self.message: str | None = None
        self._lock = threading.Lock()

    def stop(self, reason: str, message: str | None = None) -> None:
        """Raise the stop flag; ``reason`` is a ``StopReason`` (or its value, from a helper)."""
        stop_reason = StopReason(reason)
        with self._lock:
            if self.reason is None or _RANK[stop_reason] > _RANK[self.reason]:
                self.reason = stop_reason
                self.message = message
            self._stop.set()

    def clear(self) -> None:
        with self._lock:
            self.reason = None
            self.message = None
            self._stop.clear()

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float) -> bool:
        return self._stop.wait(seconds)
