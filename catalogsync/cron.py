"""Cron lines in the machine's local time zone (cronsim), as epoch seconds.

cronsim follows Debian cron on DST: a time skipped in spring runs at the first minute
after the jump, a time repeated in autumn runs once.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any

# cronsim and zoneinfo are imported where used: `catalogsync status` reads the next
# schedule through this module, and without schedules it needs neither (about 3 ms).

log = logging.getLogger("catalogsync.schedules")


def validate_cron(expr: Any) -> str | None:
    """None when ``expr`` is a five-field cron line, else what is wrong with it."""
    if not isinstance(expr, str) or len(expr.split()) != 5:
        return "a cron line has five fields (minute hour day month weekday)"
    from cronsim import CronSim, CronSimError

    try:
        CronSim(expr, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        return str(exc)
    return None


@lru_cache(maxsize=1)
def local_zone() -> tzinfo:
    """The machine's time zone with its DST rules: $TZ, else /etc/localtime, else UTC."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            log.warning("TZ=%s is not a known time zone; using /etc/localtime", name)
    try:
        with open("/etc/localtime", "rb") as fh:
            return ZoneInfo.from_file(fh, key="localtime")
    except (OSError, ValueError):
        return UTC


def next_after(expr: str, at: float, zone: tzinfo) -> float:
    """Epoch seconds of the first slot strictly after ``at``."""
    from cronsim import CronSim

    return next(CronSim(expr, datetime.fromtimestamp(at, zone))).timestamp()


def latest_at_or_before(expr: str, at: float, zone: tzinfo) -> float:
    """Epoch seconds of the last slot at or before ``at``."""
    from cronsim import CronSim

    return next(CronSim(expr, datetime.fromtimestamp(at + 1, zone), reverse=True)).timestamp()


def iso_utc(at: float | None) -> str | None:
    """``2026-01-02T03:00:00Z``."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
