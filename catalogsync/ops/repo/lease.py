"""The runner lease (one runner per database) and recovery after an unclean stop."""

from __future__ import annotations

from typing import Any

from catalogsync import clock
from catalogsync.db import SqliteStore
from catalogsync.records import record

from ..models import JobRun, JobStatus
from ._sql import WORKER_IDLE_SET, front_of_queue_rank, insert_event


@record
class RecoveryReport:
    jobs_requeued: int = 0
    jobs_paused: int = 0
    items_reset: int = 0
    workers_reset: int = 0

    @property
    def anything(self) -> bool:
        return bool(self.jobs_requeued or self.jobs_paused or self.items_reset)


class LeaseRepository(SqliteStore):
    # -- runner lease and recovery ----------------------------------------

    def get_lease(self) -> dict[str, Any] | None:
        row = self._fetchone("SELECT * FROM runner_lease WHERE id = 1")
        return dict(row) if row is not None else None

    def try_acquire_lease(
        self, owner: str, pid: int, host: str, *, stale_after: float, holder_alive: Any
    ) -> dict[str, Any] | None:
        """Take the lease if free, stale or dead; else return the live holder's row.

        ``holder_alive(row)`` tells whether a non-stale holder's process still exists.
        """
        with self._connection() as conn:
            row = conn.execute("SELECT * FROM runner_lease WHERE id = 1").fetchone()
            if row is not None and row["owner"] != owner:
                fresh = clock.now() - float(row["heartbeat_epoch"]) < stale_after
                if fresh and holder_alive(dict(row)):
                    return dict(row)
            conn.execute(
                """
                INSERT INTO runner_lease (id, owner, pid, host, started_at, heartbeat_epoch)
                VALUES (1, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, pid = excluded.pid,
                    host = excluded.host, started_at = excluded.started_at,
                    heartbeat_epoch = excluded.heartbeat_epoch
                """,
                (owner, int(pid), host, clock.now_text(), clock.now()),
            )
        return None

    def heartbeat_lease(self, owner: str) -> bool:
        """Refresh our lease; False when someone else holds it now."""
        with self._connection() as conn:
            cursor = conn.execute(
                "UPDATE runner_lease SET heartbeat_epoch = ? WHERE id = 1 AND owner = ?",
                (clock.now(), owner),
            )
            return cursor.rowcount == 1

    def release_lease(self, owner: str) -> None:
        with self._connection() as conn:
            conn.execute("DELETE FROM runner_lease WHERE id = 1 AND owner = ?", (owner,))

    def recover_interrupted(self) -> RecoveryReport:
        """After an unclean stop: items back to pending, workers reset, jobs re-queued first."""
        report = RecoveryReport()
        with self._connection() as conn:
            report.items_reset = conn.execute(
                "UPDATE job_items SET status = 'pending', worker_id = NULL WHERE status = 'running'"
            ).rowcount
            report.workers_reset = conn.execute(
                f"UPDATE job_workers SET {WORKER_IDLE_SET}, status = 'stopped' "
                "WHERE status IN ('running', 'idle')"
            ).rowcount
            interrupted = conn.execute(
                "SELECT * FROM job_runs WHERE status IN ('running', 'pause_requested') "
                "ORDER BY COALESCE(started_at, created_at), id"
            ).fetchall()
            base = front_of_queue_rank(conn, len(interrupted) + 1)
            for offset, row in enumerate(interrupted):
                job = JobRun.from_row(row)
                if job.status == JobStatus.PAUSE_REQUESTED:
                    conn.execute(
                        "UPDATE job_runs SET status = 'paused', "
                        "pause_reason = 'paused by operator' WHERE id = ?",
                        (job.id,),
                    )
                    report.jobs_paused += 1
                    message = f"job {job.id} was pausing when the runner stopped; now paused"
                else:
                    conn.execute(
                        "UPDATE job_runs SET status = 'queued', queue_rank = ? WHERE id = ?",
                        (base + offset, job.id),
                    )
                    report.jobs_requeued += 1
                    message = (
                        f"job {job.id} was interrupted by an unclean stop; "
                        "re-queued ahead of new jobs"
                    )
                insert_event(conn, job.id, "recovered", message, "warning")
            conn.execute(
                "UPDATE job_stages SET status = 'pending' WHERE status = 'running' "
                "AND job_run_id IN (SELECT id FROM job_runs WHERE status IN ('queued', 'paused'))"
            )
        return report
