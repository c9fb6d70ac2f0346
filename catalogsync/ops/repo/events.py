"""Events: the job log the TUI, `jobs show` and notifications read."""

from __future__ import annotations

from typing import Any

from catalogsync.db import SqliteStore

from ._sql import insert_event


class EventsRepository(SqliteStore):
    # -- events ------------------------------------------------------------

    def add_event(
        self, job_id: int | None, event_type: str, message: str, *, level: str = "info"
    ) -> int:
        with self._connection() as conn:
            return insert_event(conn, job_id, event_type, message, level)

    def list_events(self, job_id: int | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """Newest first."""
        if job_id is None:
            rows = self._fetchall(
                "SELECT * FROM job_events ORDER BY id DESC LIMIT ?", (int(limit),)
            )
        else:
            rows = self._fetchall(
                "SELECT * FROM job_events WHERE job_run_id = ? ORDER BY id DESC LIMIT ?",
                (int(job_id), int(limit)),
            )
        return [dict(row) for row in rows]
