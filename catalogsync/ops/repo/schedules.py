"""Schedule state: the last slot each schedule ran, kept across restarts."""

from __future__ import annotations

from typing import Any

from catalogsync import clock
from catalogsync.db import SqliteStore


class SchedulesRepository(SqliteStore):
    def schedule_states(self) -> dict[str, dict[str, Any]]:
        return {str(r["name"]): dict(r) for r in self._fetchall("SELECT * FROM schedule_runs")}

    def save_schedule_state(
        self,
        name: str,
        cron: str,
        job_type: str,
        *,
        last_slot_at: float,
        last_run_at: float | None = None,
        last_result: str | None = None,
        last_job_id: int | None = None,
        last_message: str | None = None,
    ) -> None:
        with self._connection() as conn:
            conn.execute(
                """
                INSERT INTO schedule_runs (name, cron, job_type, last_slot_at, last_run_at,
                    last_result, last_job_id, last_message, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET cron = excluded.cron,
                    job_type = excluded.job_type, last_slot_at = excluded.last_slot_at,
                    last_run_at = COALESCE(excluded.last_run_at, last_run_at),
                    last_result = COALESCE(excluded.last_result, last_result),
                    last_job_id = COALESCE(excluded.last_job_id, last_job_id),
                    last_message = COALESCE(excluded.last_message, last_message),
                    updated_at = excluded.updated_at
                """,
                (
                    name,
                    cron,
                    job_type,
                    last_slot_at,
                    last_run_at,
                    last_result,
                    last_job_id,
                    last_message,
                    clock.now_text(),
                ),
            )
