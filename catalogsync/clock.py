"""Wall-clock access in one place, so tests and snapshots can freeze time."""

from __future__ import annotations

import time
from datetime import UTC, datetime

_frozen: float | None = None


def now() -> float:
    """Seconds since the epoch (frozen when a test froze the clock)."""
    return _frozen if _frozen is not None else time.time()


_last_text: tuple[int, str] = (-1, "")


def now_text() -> str:
    """UTC timestamp as stored in the database: ``YYYY-MM-DD HH:MM:SS``.

    Kept for the second it names: a download writes several a song, and formatting one
    cost more than the SQL statement it went into.
    """
    global _last_text
    second = int(now() // 1)
    cached = _last_text
    if cached[0] != second:
        cached = (second, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second)))
        _last_text = cached
    return cached[1]


def parse_text(value: str | None) -> float | None:
    """Epoch seconds of a stored timestamp, or None."""
    if not value:
        return None
    try:
        return datetime.strptime(value[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def freeze(at: float | None) -> None:
    """Freeze the clock at ``at`` (None unfreezes); for tests and snapshots only."""
    global _frozen
    _frozen = at
