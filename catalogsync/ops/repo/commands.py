"""Commands: pause, resume, cancel and retry, queued as rows and applied in one transaction."""

from __future__ import annotations

import sqlite3
from typing import Any

from catalogsync import clock
from catalogsync.errors import InvalidTransitionError
from catalogsync.records import record

from ..commands_policy import allowed_commands, refusal
from ..models import ACTIVE_JOB_STATUSES, CommandStatus, CommandType, JobRun, JobStatus
from ._sql import cancel_unfinished, insert_event, retry_failed_items
from .jobs import JobsRepository


@record
class CommandOutcome:
    """What applying one command did; the runner uses it to set or clear stop flags."""

    command_id: int
    job_id: int
    command_type: str
    applied: bool
    message: str
    job_status: JobStatus | None = None


class CommandsRepository(JobsRepository):
    # -- commands ----------------------------------------------------------

    def validate_command(self, job: JobRun, command_type: CommandType) -> None:
        """Raise InvalidTransitionError when ``command_type`` makes no sense for ``job`` now
        (``commands_policy.allowed_commands`` decides, ``refusal`` says why; only a retry
        needs the failed-item count)."""
        failed = 0
        if command_type == CommandType.RETRY:
            row = self._fetchone(
                "SELECT COUNT(*) AS n FROM job_items WHERE job_run_id = ? AND status = 'failed'",
                (job.id,),
            )
            failed = int(row["n"]) if row else 0
        if command_type in allowed_commands(job.status, failed):
            return
        reason = refusal(command_type, job.status, failed)
        assert reason is not None  # allowed_commands is exactly the commands without one
        raise InvalidTransitionError(
            f"cannot {command_type.value} job {job.id}: it is {job.status.value}; {reason}"
            if not reason.startswith("it ")
            else f"cannot {command_type.value} job {job.id}: {reason}"
        )

    def submit_command(
        self, job_id: int, command_type: CommandType | str, *, requested_by: str | None = None
    ) -> int:
        """Queue a command for the runner after checking it is legal now."""
        command = CommandType(command_type)
        job = self.require_job(job_id)
        self.validate_command(job, command)
        with self._connection() as conn:
            return int(
                conn.execute(
                    "INSERT INTO job_commands (job_run_id, command_type, requested_by, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (job.id, command.value, requested_by, clock.now_text()),
                ).lastrowid
                or 0
            )

    def list_pending_commands(self) -> list[dict[str, Any]]:
        return [
            dict(row)
            for row in self._fetchall(
                "SELECT * FROM job_commands WHERE status = 'pending' ORDER BY id"
            )
        ]

    def get_command(self, command_id: int) -> dict[str, Any] | None:
        row = self._fetchone("SELECT * FROM job_commands WHERE id = ?", (int(command_id),))
        return dict(row) if row is not None else None

    def apply_command(self, command_id: int) -> CommandOutcome:
        """Apply one pending command as a state transition, in one transaction."""
        with self._connection() as conn:
            cmd = conn.execute(
                "SELECT * FROM job_commands WHERE id = ?", (int(command_id),)
            ).fetchone()
            if cmd is None or cmd["status"] != CommandStatus.PENDING.value:
                return CommandOutcome(int(command_id), 0, "", False, "not pending")
            job_id = int(cmd["job_run_id"])
            kind = CommandType(cmd["command_type"])
            row = conn.execute("SELECT * FROM job_runs WHERE id = ?", (job_id,)).fetchone()
            job = JobRun.from_row(row)
            applied, message, new_status = self._transition(conn, job, kind)
            conn.execute(
                "UPDATE job_commands SET status = ?, message = ?, applied_at = ? WHERE id = ?",
                (
                    (CommandStatus.APPLIED if applied else CommandStatus.REJECTED).value,
                    message,
                    clock.now_text(),
                    int(command_id),
                ),
            )
            insert_event(
                conn,
                job_id,
                f"command_{kind.value}" if applied else "command_rejected",
                message,
                "info" if applied else "warning",
            )
        return CommandOutcome(int(command_id), job_id, kind.value, applied, message, new_status)

    def _transition(
        self, conn: sqlite3.Connection, job: JobRun, kind: CommandType
    ) -> tuple[bool, str, JobStatus | None]:
        status = job.status

        def move(to: JobStatus, message: str) -> tuple[bool, str, JobStatus]:
            sets = "status = ?"
            params: list[Any] = [to.value]
            if to.is_finished:
                sets += ", ended_at = ?"
                params.append(clock.now_text())
            if to == JobStatus.PAUSED:
                sets += ", pause_reason = 'paused by operator'"
            conn.execute(f"UPDATE job_runs SET {sets} WHERE id = ?", (*params, job.id))
            return True, message, to

        try:
            self.validate_command(job, kind)
        except InvalidTransitionError as exc:
            return False, str(exc), status
        if kind == CommandType.PAUSE:
            if status == JobStatus.QUEUED:
                return move(JobStatus.PAUSED, f"job {job.id} paused while queued")
            return move(JobStatus.PAUSE_REQUESTED, f"job {job.id} pausing")
        if kind == CommandType.RESUME:
            if status == JobStatus.PAUSE_REQUESTED:
                return move(JobStatus.RUNNING, f"job {job.id} resumed before it paused")
            return move(JobStatus.QUEUED, f"job {job.id} resumed; back in its place in the queue")
        if kind == CommandType.CANCEL:
            if status in ACTIVE_JOB_STATUSES:
                return move(JobStatus.CANCELED, f"job {job.id} canceling")
            cancel_unfinished(conn, job.id)
            return move(JobStatus.CANCELED, f"job {job.id} canceled")
        # RETRY
        count = retry_failed_items(conn, job.id)
        if status == JobStatus.PAUSED:
            return True, f"job {job.id}: {count} failed items will be retried on resume", status
        conn.execute("UPDATE job_runs SET ended_at = NULL, error = NULL WHERE id = ?", (job.id,))
        return move(JobStatus.QUEUED, f"job {job.id}: retrying {count} failed items")
