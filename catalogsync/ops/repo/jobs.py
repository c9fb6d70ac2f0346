"""Jobs: create, read, claim, move through statuses and places in the queue."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from catalogsync import clock
from catalogsync.db import SqliteStore
from catalogsync.errors import CatalogsyncError, InvalidTransitionError, NotFoundError
from catalogsync.redact import mask_secrets

from ..jobdefs import JOB_TYPES, job_lane_type
from ..models import ACTIVE_JOB_STATUSES, JobRun, JobStatus
from ._sql import front_of_queue_rank, json_dumps


class JobsRepository(SqliteStore):
    # -- jobs --------------------------------------------------------------

    def create_job(
        self,
        job_type: str,
        config_snapshot: dict[str, Any] | None = None,
        *,
        status: JobStatus = JobStatus.QUEUED,
        priority: int = 100,
        requested_by: str | None = None,
        sources: list[str] | None = None,
        playlist_scope: dict[str, Any] | None = None,
        backend_name: str | None = None,
    ) -> int:
        """Insert a job (queued by default) and return its id."""
        if job_type not in JOB_TYPES:
            raise CatalogsyncError(
                f"unknown job type {job_type!r}; choose one of: {', '.join(JOB_TYPES)}"
            )
        now = clock.now_text()
        with self._connection() as conn:
            job_id = int(
                conn.execute(
                    """
                    INSERT INTO job_runs (job_type, status, priority, requested_by,
                        config_snapshot, sources, playlist_scope,
                        backend_name, created_at, started_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                    (
                        job_type,
                        JobStatus(status).value,
                        int(priority),
                        requested_by,
                        json_dumps(config_snapshot or {}),
                        json.dumps(list(sources or [])),
                        json_dumps(playlist_scope or {}),
                        backend_name,
                        now,
                        now if status in ACTIVE_JOB_STATUSES else None,
                    ),
                ).lastrowid
                or 0
            )
            conn.execute("UPDATE job_runs SET queue_rank = id WHERE id = ?", (job_id,))
        return job_id

    def get_job(self, job_id: int) -> JobRun | None:
        row = self._fetchone("SELECT * FROM job_runs WHERE id = ?", (int(job_id),))
        return JobRun.from_row(row) if row is not None else None

    def require_job(self, job_id: int) -> JobRun:
        job = self.get_job(job_id)
        if job is None:
            raise NotFoundError(f"job {job_id} does not exist")
        return job

    def list_jobs(self, statuses: Iterable[JobStatus] | None = None) -> list[JobRun]:
        if statuses is None:
            rows = self._fetchall("SELECT * FROM job_runs ORDER BY id")
        else:
            values = [JobStatus(s).value for s in statuses]
            marks = ",".join("?" * len(values))
            rows = self._fetchall(
                f"SELECT * FROM job_runs WHERE status IN ({marks}) ORDER BY id", values
            )
        return [JobRun.from_row(row) for row in rows]

    def job_statuses(self, job_ids: list[int]) -> dict[int, JobStatus]:
        if not job_ids:
            return {}
        rows = self._fetchall(
            f"SELECT id, status FROM job_runs WHERE id IN ({','.join('?' * len(job_ids))})",
            [int(i) for i in job_ids],
        )
        return {int(r["id"]): JobStatus(r["status"]) for r in rows}

    def list_active_jobs(self) -> list[JobRun]:
        rows = self._fetchall(
            """
            SELECT * FROM job_runs WHERE status IN (?, ?)
            ORDER BY COALESCE(started_at, created_at) ASC, id ASC
            """,
            (JobStatus.RUNNING.value, JobStatus.PAUSE_REQUESTED.value),
        )
        return [JobRun.from_row(row) for row in rows]

    def list_queued_jobs(self, limit: int = 100) -> list[JobRun]:
        """Queued jobs in queue order: priority, then place (queue_rank), then id."""
        rows = self._fetchall(
            """
            SELECT * FROM job_runs WHERE status = ?
            ORDER BY priority ASC, queue_rank ASC, id ASC LIMIT ?
            """,
            (JobStatus.QUEUED.value, int(limit)),
        )
        return [JobRun.from_row(row) for row in rows]

    def claim_job_if_queued(self, job_id: int) -> JobRun | None:
        """Compare-and-set queued -> running; None when another runner won or it changed."""
        with self._connection() as conn:
            cursor = conn.execute(
                """
                UPDATE job_runs
                SET status = ?, started_at = COALESCE(started_at, ?), ended_at = NULL,
                    pause_reason = NULL
                WHERE id = ? AND status = ?
                """,
                (JobStatus.RUNNING.value, clock.now_text(), int(job_id), JobStatus.QUEUED.value),
            )
            if cursor.rowcount != 1:
                return None
            row = conn.execute("SELECT * FROM job_runs WHERE id = ?", (int(job_id),)).fetchone()
        return JobRun.from_row(row)

    def set_job_status(
        self,
        job_id: int,
        status: JobStatus,
        *,
        from_statuses: Iterable[JobStatus] | None = None,
        error: str | None = None,
        pause_reason: str | None = None,
    ) -> bool:
        """Move a job to ``status`` (only from ``from_statuses`` when given); True if it moved."""
        status = JobStatus(status)
        sets = ["status = ?"]
        params: list[Any] = [status.value]
        if status.is_finished:
            sets.append("ended_at = ?")
            params.append(clock.now_text())
        if error is not None:
            sets.append("error = ?")
            params.append(mask_secrets(error))
        if status == JobStatus.PAUSED:
            sets.append("pause_reason = ?")
            params.append(mask_secrets(pause_reason) if pause_reason else pause_reason)
        where = "id = ?"
        params.append(int(job_id))
        if from_statuses is not None:
            values = [JobStatus(s).value for s in from_statuses]
            where += f" AND status IN ({','.join('?' * len(values))})"
            params.extend(values)
        with self._connection() as conn:
            cursor = conn.execute(f"UPDATE job_runs SET {', '.join(sets)} WHERE {where}", params)
            return cursor.rowcount == 1

    def move_queued_job(self, job_id: int, direction: int) -> bool:
        """Swap a queued job with its neighbour in its lane's queue (-1 up, +1 down)."""
        with self._connection() as conn:
            row = conn.execute("SELECT * FROM job_runs WHERE id = ?", (int(job_id),)).fetchone()
            if row is None:
                raise NotFoundError(f"job {job_id} does not exist")
            job = JobRun.from_row(row)
            if job.status != JobStatus.QUEUED:
                raise InvalidTransitionError(
                    f"job {job_id} is {job.status.value}; only queued jobs can be reordered"
                )
            lane = job_lane_type(job.job_type)
            queue = [
                JobRun.from_row(r)
                for r in conn.execute(
                    "SELECT * FROM job_runs WHERE status = ? "
                    "ORDER BY priority ASC, queue_rank ASC, id ASC",
                    (JobStatus.QUEUED.value,),
                ).fetchall()
            ]
            lane_queue = [j for j in queue if job_lane_type(j.job_type) == lane]
            index = next(i for i, j in enumerate(lane_queue) if j.id == job.id)
            other_index = index + (1 if direction > 0 else -1)
            if not 0 <= other_index < len(lane_queue):
                return False
            other = lane_queue[other_index]
            # Swapping (priority, rank) pairs moves each job exactly into the other's place.
            conn.execute(
                "UPDATE job_runs SET priority = ?, queue_rank = ? WHERE id = ?",
                (other.priority, other.queue_rank, job.id),
            )
            conn.execute(
                "UPDATE job_runs SET priority = ?, queue_rank = ? WHERE id = ?",
                (job.priority, job.queue_rank, other.id),
            )
        return True

    def requeue_job(self, job_id: int, *, ahead: bool = True) -> bool:
        """A running job stopped by a runner shutdown goes back to the front of its queue."""
        with self._connection() as conn:
            rank = None
            if ahead:
                rank = front_of_queue_rank(conn)
            cursor = conn.execute(
                "UPDATE job_runs SET status = 'queued', queue_rank = COALESCE(?, queue_rank) "
                "WHERE id = ? AND status IN ('running', 'pause_requested')",
                (rank, int(job_id)),
            )
            return cursor.rowcount == 1

    def unfinished_job_like(
        self, job_type: str, sources: list[str], playlist_scope: dict[str, Any]
    ) -> int | None:
        """The id of an unfinished job of this type and scope (a schedule's queueing lock)."""
        row = self._fetchone(
            """
            SELECT id FROM job_runs WHERE job_type = ? AND sources = ? AND playlist_scope = ?
              AND status IN ('queued', 'running', 'pause_requested', 'paused')
            ORDER BY id LIMIT 1
            """,
            (job_type, json.dumps(list(sources)), json_dumps(playlist_scope or {})),
        )
        return int(row["id"]) if row is not None else None
