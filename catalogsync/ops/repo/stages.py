"""Stages: a job's steps in its type's order, their status and item counts."""

from __future__ import annotations

from catalogsync import clock

from ..jobdefs import JOB_STAGE_SEQUENCES
from ..models import JobStage, StageStatus
from .jobs import JobsRepository


class StagesRepository(JobsRepository):
    # -- stages ------------------------------------------------------------

    def create_stage(
        self,
        job_id: int,
        stage_type: str,
        seq_no: int,
        status: StageStatus = StageStatus.PENDING,
    ) -> int:
        with self._connection() as conn:
            return int(
                conn.execute(
                    "INSERT INTO job_stages (job_run_id, stage_type, seq_no, status) "
                    "VALUES (?, ?, ?, ?)",
                    (int(job_id), stage_type, int(seq_no), StageStatus(status).value),
                ).lastrowid
                or 0
            )

    def list_job_stages(self, job_id: int) -> list[JobStage]:
        """A job's stages in the order its job type runs them."""
        rows = self._fetchall(
            "SELECT * FROM job_stages WHERE job_run_id = ? ORDER BY seq_no, id", (int(job_id),)
        )
        stages = [JobStage.from_row(row) for row in rows]
        job = self.get_job(job_id)
        order = JOB_STAGE_SEQUENCES.get(job.job_type, []) if job else []
        return sorted(
            stages,
            key=lambda s: (order.index(s.stage_type) if s.stage_type in order else 99, s.seq_no),
        )

    def get_stage(self, stage_id: int) -> JobStage | None:
        row = self._fetchone("SELECT * FROM job_stages WHERE id = ?", (int(stage_id),))
        return JobStage.from_row(row) if row is not None else None

    def ensure_job_stages(self, job_id: int) -> list[JobStage]:
        """Create the stages a job's type needs that do not exist yet."""
        job = self.require_job(job_id)
        existing = {s.stage_type for s in self.list_job_stages(job_id)}
        with self._connection() as conn:
            for seq_no, stage_type in enumerate(JOB_STAGE_SEQUENCES[job.job_type], start=1):
                if stage_type not in existing:
                    conn.execute(
                        "INSERT INTO job_stages (job_run_id, stage_type, seq_no) VALUES (?, ?, ?)",
                        (job_id, stage_type, seq_no),
                    )
        return self.list_job_stages(job_id)

    def set_stage_status(self, stage_id: int, status: StageStatus) -> None:
        status = StageStatus(status)
        now = clock.now_text()
        with self._connection() as conn:
            if status == StageStatus.RUNNING:
                conn.execute(
                    "UPDATE job_stages SET status = ?, started_at = COALESCE(started_at, ?), "
                    "ended_at = NULL WHERE id = ?",
                    (status.value, now, int(stage_id)),
                )
            elif status == StageStatus.PENDING:
                conn.execute(
                    "UPDATE job_stages SET status = ?, ended_at = NULL WHERE id = ?",
                    (status.value, int(stage_id)),
                )
            else:
                conn.execute(
                    "UPDATE job_stages SET status = ?, ended_at = ? WHERE id = ?",
                    (status.value, now, int(stage_id)),
                )

    def mark_stage_planned(self, stage_id: int) -> None:
        with self._connection() as conn:
            conn.execute("UPDATE job_stages SET planned = 1 WHERE id = ?", (int(stage_id),))

    def stage_item_counts(self, stage_id: int) -> dict[str, int]:
        rows = self._fetchall(
            "SELECT status, COUNT(*) AS n FROM job_items WHERE job_stage_id = ? GROUP BY status",
            (int(stage_id),),
        )
        return {str(row["status"]): int(row["n"]) for row in rows}

    def next_retry_at(self, stage_id: int) -> float | None:
        """When the earliest pending item waiting for a retry becomes eligible."""
        row = self._fetchone(
            "SELECT MIN(next_attempt_at) AS t FROM job_items "
            "WHERE job_stage_id = ? AND status = 'pending'",
            (int(stage_id),),
        )
        return float(row["t"]) if row is not None and row["t"] is not None else None
