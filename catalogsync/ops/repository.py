"""OpsRepository: the SQL of the job system (jobs, stages, items, workers, commands, events)."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalogsync import clock
from catalogsync.db import SqliteStore
from catalogsync.errors import CatalogsyncError, InvalidTransitionError, NotFoundError
from catalogsync.redact import mask_secrets

from .jobdefs import JOB_STAGE_SEQUENCES, JOB_TYPES, job_lane_type
from .models import (
    ACTIVE_JOB_STATUSES,
    CommandStatus,
    CommandType,
    ItemStatus,
    JobItem,
    JobRun,
    JobStage,
    JobStatus,
    StageStatus,
)

SPEED_SAMPLES_KEPT = 120
WORKER_STATE_FIELDS = (
    "status",
    "job_stage_id",
    "current_job_item_id",
    "current_song_id",
    "current_playlist_id",
    "current_display_text",
    "last_progress_text",
    "downloaded_bytes",
    "total_bytes",
    "speed_bytes_per_sec",
    "progress_percent",
)
_WORKER_IDLE_SET = """
    status = 'idle', current_job_item_id = NULL, current_song_id = NULL,
    current_playlist_id = NULL, current_display_text = NULL, downloaded_bytes = NULL,
    total_bytes = NULL, speed_bytes_per_sec = NULL, progress_percent = NULL
"""
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CLAIM_NEXT_SQL = """
    UPDATE job_items SET status = 'running', attempts = attempts + 1,
        started_at = ?, ended_at = NULL"""
_CLAIM_NEXT_WHERE = """
    WHERE id = (
        SELECT id FROM job_items
        WHERE job_stage_id = ? AND status = 'pending'
          AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
        ORDER BY id LIMIT 1
    ) AND status = 'pending'
    RETURNING *"""


def _display_text(row: sqlite3.Row) -> str:
    """What a worker shows for the item in ``row``."""
    payload = _json_loads(row["payload_json"])
    return str(
        payload.get("display_text") or (payload.get("row") or {}).get("name") or row["item_key"]
    )


_ITEM_COUNTER = {
    ItemStatus.SUCCEEDED: "success_items",
    ItemStatus.FAILED: "failed_items",
    ItemStatus.SKIPPED: "skipped_items",
}


def _json_dumps(value: Any) -> str:
    return json.dumps(value if value is not None else {}, ensure_ascii=False, sort_keys=True)


def _json_loads(value: str | None, default: Any = None) -> Any:
    if not value:
        return {} if default is None else default
    try:
        return json.loads(value)
    except ValueError:
        return {} if default is None else default


@dataclass
class CommandOutcome:
    """What applying one command did; the runner uses it to set or clear stop flags."""

    command_id: int
    job_id: int
    command_type: str
    applied: bool
    message: str
    job_status: JobStatus | None = None


@dataclass
class RecoveryReport:
    jobs_requeued: int = 0
    jobs_paused: int = 0
    items_reset: int = 0
    workers_reset: int = 0

    @property
    def anything(self) -> bool:
        return bool(self.jobs_requeued or self.jobs_paused or self.items_reset)


class OpsRepository(SqliteStore):
    """All reads and writes of the job tables; safe to share between threads."""

    def __init__(self, db_path: str | Path, *, share_with: SqliteStore | None = None) -> None:
        super().__init__(db_path, share_with=share_with)
        self._worker_ids: dict[tuple[str, int], int] = {}

    # -- rows -> records ---------------------------------------------------

    @staticmethod
    def _row_to_job(row: sqlite3.Row) -> JobRun:
        keys = row.keys()
        return JobRun(
            id=int(row["id"]),
            job_type=str(row["job_type"]),
            status=JobStatus(str(row["status"])),
            priority=int(row["priority"] if row["priority"] is not None else 100),
            queue_rank=float(row["queue_rank"] or 0) if "queue_rank" in keys else 0.0,
            requested_by=row["requested_by"],
            config_snapshot=_json_loads(row["config_snapshot"]),
            sources=list(_json_loads(row["sources"], [])),
            download_sources=list(_json_loads(row["download_sources"], [])),
            playlist_scope=_json_loads(row["playlist_scope"]),
            backend_name=row["backend_name"] if "backend_name" in keys else None,
            pause_reason=row["pause_reason"] if "pause_reason" in keys else None,
            created_at=row["created_at"],
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            error=row["error"],
        )

    @staticmethod
    def _row_to_stage(row: sqlite3.Row) -> JobStage:
        return JobStage(
            id=int(row["id"]),
            job_run_id=int(row["job_run_id"]),
            stage_type=str(row["stage_type"]),
            seq_no=int(row["seq_no"]),
            status=StageStatus(str(row["status"])),
            total_items=int(row["total_items"]),
            success_items=int(row["success_items"]),
            failed_items=int(row["failed_items"]),
            skipped_items=int(row["skipped_items"]),
            planned=bool(row["planned"]),
            started_at=row["started_at"],
            ended_at=row["ended_at"],
        )

    @staticmethod
    def _row_to_item(row: sqlite3.Row) -> JobItem:
        return JobItem(
            id=int(row["id"]),
            job_stage_id=int(row["job_stage_id"]),
            job_run_id=row["job_run_id"],
            item_type=str(row["item_type"]),
            item_key=str(row["item_key"]),
            status=ItemStatus(str(row["status"])),
            song_id=row["song_id"],
            playlist_id=row["playlist_id"],
            worker_id=row["worker_id"],
            attempts=int(row["attempts"]),
            payload=_json_loads(row["payload_json"]),
            last_error=row["last_error"],
            last_error_code=row["last_error_code"],
        )

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
        download_sources: list[str] | None = None,
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
                        config_snapshot, sources, download_sources, playlist_scope,
                        backend_name, created_at, started_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                    (
                        job_type,
                        JobStatus(status).value,
                        int(priority),
                        requested_by,
                        _json_dumps(config_snapshot or {}),
                        json.dumps(list(sources or [])),
                        json.dumps(list(download_sources or [])),
                        _json_dumps(playlist_scope or {}),
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
        return self._row_to_job(row) if row is not None else None

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
        return [self._row_to_job(row) for row in rows]

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
        return [self._row_to_job(row) for row in rows]

    def list_queued_jobs(self, limit: int = 100) -> list[JobRun]:
        """Queued jobs in queue order: priority, then place (queue_rank), then id."""
        rows = self._fetchall(
            """
            SELECT * FROM job_runs WHERE status = ?
            ORDER BY priority ASC, queue_rank ASC, id ASC LIMIT ?
            """,
            (JobStatus.QUEUED.value, int(limit)),
        )
        return [self._row_to_job(row) for row in rows]

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
        return self._row_to_job(row)

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
            job = self._row_to_job(row)
            if job.status != JobStatus.QUEUED:
                raise InvalidTransitionError(
                    f"job {job_id} is {job.status.value}; only queued jobs can be reordered"
                )
            lane = job_lane_type(job.job_type)
            queue = [
                self._row_to_job(r)
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

    # -- stages ------------------------------------------------------------

    def create_stage(
        self,
        job_run_id: int,
        stage_type: str,
        seq_no: int,
        status: StageStatus = StageStatus.PENDING,
    ) -> int:
        with self._connection() as conn:
            return int(
                conn.execute(
                    "INSERT INTO job_stages (job_run_id, stage_type, seq_no, status) "
                    "VALUES (?, ?, ?, ?)",
                    (int(job_run_id), stage_type, int(seq_no), StageStatus(status).value),
                ).lastrowid
                or 0
            )

    def list_job_stages(self, job_id: int) -> list[JobStage]:
        """A job's stages in the order its job type runs them."""
        rows = self._fetchall(
            "SELECT * FROM job_stages WHERE job_run_id = ? ORDER BY seq_no, id", (int(job_id),)
        )
        stages = [self._row_to_stage(row) for row in rows]
        job = self.get_job(job_id)
        order = JOB_STAGE_SEQUENCES.get(job.job_type, []) if job else []
        return sorted(
            stages,
            key=lambda s: (order.index(s.stage_type) if s.stage_type in order else 99, s.seq_no),
        )

    def get_stage(self, stage_id: int) -> JobStage | None:
        row = self._fetchone("SELECT * FROM job_stages WHERE id = ?", (int(stage_id),))
        return self._row_to_stage(row) if row is not None else None

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

    # -- items -------------------------------------------------------------

    def create_item(
        self,
        job_stage_id: int,
        item_type: str,
        item_key: str,
        *,
        song_id: int | None = None,
        playlist_id: int | None = None,
        status: ItemStatus = ItemStatus.PENDING,
        payload: dict[str, Any] | None = None,
    ) -> int:
        """Add an item to a stage (its counters move in the same transaction)."""
        ids = self.create_items(
            job_stage_id,
            [
                {
                    "item_type": item_type,
                    "item_key": item_key,
                    "song_id": song_id,
                    "playlist_id": playlist_id,
                    "status": status,
                    "payload": payload,
                }
            ],
        )
        return ids[0]

    def create_items(self, job_stage_id: int, items: list[dict[str, Any]]) -> list[int]:
        """Add many items at once; an item_key already in the stage is left as it is."""
        with self._connection() as conn:
            stage = conn.execute(
                "SELECT job_run_id FROM job_stages WHERE id = ?", (int(job_stage_id),)
            ).fetchone()
            if stage is None:
                raise NotFoundError(f"stage {job_stage_id} does not exist")
            ids: list[int] = []
            counts = {"total_items": 0, "success_items": 0, "failed_items": 0, "skipped_items": 0}
            for item in items:
                status = ItemStatus(item.get("status") or ItemStatus.PENDING)
                cursor = conn.execute(
                    """
                    INSERT INTO job_items (job_stage_id, job_run_id, item_type, item_key,
                        song_id, playlist_id, status, payload_json)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (job_stage_id, item_key) DO NOTHING
                    """,
                    (
                        int(job_stage_id),
                        int(stage["job_run_id"]),
                        item["item_type"],
                        item["item_key"],
                        item.get("song_id"),
                        item.get("playlist_id"),
                        status.value,
                        _json_dumps(item.get("payload") or {}),
                    ),
                )
                if cursor.rowcount == 1:
                    ids.append(int(cursor.lastrowid or 0))
                    counts["total_items"] += 1
                    if status in _ITEM_COUNTER:
                        counts[_ITEM_COUNTER[status]] += 1
                else:
                    found = conn.execute(
                        "SELECT id FROM job_items WHERE job_stage_id = ? AND item_key = ?",
                        (int(job_stage_id), item["item_key"]),
                    ).fetchone()
                    ids.append(int(found["id"]))
            conn.execute(
                """
                UPDATE job_stages SET total_items = total_items + ?,
                    success_items = success_items + ?, failed_items = failed_items + ?,
                    skipped_items = skipped_items + ?
                WHERE id = ?
                """,
                (
                    counts["total_items"],
                    counts["success_items"],
                    counts["failed_items"],
                    counts["skipped_items"],
                    int(job_stage_id),
                ),
            )
        return ids

    def get_item(self, item_id: int) -> JobItem | None:
        row = self._fetchone("SELECT * FROM job_items WHERE id = ?", (int(item_id),))
        return self._row_to_item(row) if row is not None else None

    def update_item_payload(self, item_id: int, updates: dict[str, Any]) -> None:
        """Merge ``updates`` into an item's payload (what a retry needs to know)."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT payload_json FROM job_items WHERE id = ?", (int(item_id),)
            ).fetchone()
            if row is None:
                return
            payload = _json_loads(row["payload_json"])
            payload.update(updates)
            conn.execute(
                "UPDATE job_items SET payload_json = ? WHERE id = ?",
                (_json_dumps(payload), int(item_id)),
            )

    def list_stage_items(
        self, stage_id: int, status: ItemStatus | None = None, limit: int = 1000
    ) -> list[JobItem]:
        if status is None:
            rows = self._fetchall(
                "SELECT * FROM job_items WHERE job_stage_id = ? ORDER BY id LIMIT ?",
                (int(stage_id), int(limit)),
            )
        else:
            rows = self._fetchall(
                "SELECT * FROM job_items WHERE job_stage_id = ? AND status = ? ORDER BY id LIMIT ?",
                (int(stage_id), ItemStatus(status).value, int(limit)),
            )
        return [self._row_to_item(row) for row in rows]

    def _ensure_worker_row(
        self, conn: sqlite3.Connection, worker_name: str, job_run_id: int | None, stage_id: int | None
    ) -> int:
        row = conn.execute(
            "SELECT id FROM job_workers WHERE worker_name = ? AND job_run_id IS ? "
            "ORDER BY id DESC LIMIT 1",
            (worker_name, job_run_id),
        ).fetchone()
        if row is not None:
            conn.execute(
                "UPDATE job_workers SET job_stage_id = COALESCE(?, job_stage_id) WHERE id = ?",
                (stage_id, int(row["id"])),
            )
            return int(row["id"])
        return int(
            conn.execute(
                "INSERT INTO job_workers (worker_name, job_run_id, job_stage_id, status, "
                "heartbeat_at) VALUES (?, ?, ?, 'idle', ?)",
                (worker_name, job_run_id, stage_id, clock.now_text()),
            ).lastrowid
            or 0
        )

    def _mark_claimed(
        self, conn: sqlite3.Connection, row: sqlite3.Row, worker_name: str
    ) -> None:
        worker_id = self._ensure_worker_row(
            conn, worker_name, row["job_run_id"], int(row["job_stage_id"])
        )
        display = _display_text(row)
        conn.execute("UPDATE job_items SET worker_id = ? WHERE id = ?", (worker_id, row["id"]))
        conn.execute(
            f"""
            UPDATE job_workers SET {_WORKER_IDLE_SET}, status = 'running',
                current_job_item_id = ?, current_song_id = ?, current_playlist_id = ?,
                current_display_text = ?, heartbeat_at = ?
            WHERE id = ?
            """,
            (
                row["id"],
                row["song_id"],
                row["playlist_id"],
                display,
                clock.now_text(),
                worker_id,
            ),
        )

    def claim_item(self, item_id: int, worker_name: str) -> bool:
        """Compare-and-set pending -> running for one item, binding it to a worker."""
        with self._connection() as conn:
            row = conn.execute(
                """
                UPDATE job_items SET status = 'running', attempts = attempts + 1,
                    started_at = ?, ended_at = NULL
                WHERE id = ? AND status = 'pending' RETURNING *
                """,
                (clock.now_text(), int(item_id)),
            ).fetchone()
            if row is None:
                return False
            self._mark_claimed(conn, row, worker_name)
        return True

    def claim_next_item(self, stage_id: int, worker_name: str) -> JobItem | None:
        """Claim the stage's next eligible pending item (retries wait for next_attempt_at)."""
        with self._connection() as conn:
            return self._claim_next(conn, stage_id, worker_name)

    def succeed_and_claim_next(
        self,
        item_id: int,
        result_payload: dict[str, Any] | None,
        stage_id: int,
        worker_name: str,
    ) -> JobItem | None:
        """``mark_item_succeeded`` and ``claim_next_item`` in one transaction.

        A worker that finishes an item and goes on to the next pays for one write
        instead of two; on a small-file download that is a tenth of the item's time.
        """
        patch = result_payload or {}
        if not all(isinstance(key, str) and _PLAIN_KEY.match(key) for key in patch):
            with self._connection() as conn:  # keys a JSON path can't name plainly
                row = self._finish_item(conn, item_id, ItemStatus.SUCCEEDED, payload_update=patch)
                if row is not None:
                    self._worker_done(conn, row["worker_id"], failed=False)
                return self._claim_next(conn, stage_id, worker_name)
        paths = "".join(", ?, json(?)" for _ in patch)
        args: list[Any] = []
        for key, value in patch.items():
            args += [f"$.{key}", json.dumps(value, ensure_ascii=False)]
        now = clock.now_text()
        with self._connection() as conn:
            done = conn.execute(
                f"""
                UPDATE job_items SET status = 'succeeded',
                    payload_json = json_set(COALESCE(payload_json, '{{}}'){paths}),
                    worker_id = NULL, ended_at = ?, last_error = NULL, last_error_code = NULL,
                    next_attempt_at = NULL
                WHERE id = ? AND status = 'running' RETURNING job_run_id
                """,
                (*args, now, int(item_id)),
            ).fetchone()
            if done is None:  # paused, canceled or reset meanwhile: just claim
                return self._claim_next(conn, stage_id, worker_name)
            conn.execute(
                "UPDATE job_stages SET success_items = success_items + 1 WHERE id = ?",
                (int(stage_id),),
            )
            worker_id = self._worker_id(conn, worker_name, done["job_run_id"])
            row = conn.execute(
                f"{_CLAIM_NEXT_SQL} , worker_id = ? {_CLAIM_NEXT_WHERE}",
                (now, worker_id, int(stage_id), clock.now()),
            ).fetchone()
            if row is None:
                conn.execute(
                    f"UPDATE job_workers SET {_WORKER_IDLE_SET}, "
                    "processed_count = processed_count + 1, heartbeat_at = ? WHERE id = ?",
                    (now, worker_id),
                )
                return None
            conn.execute(
                f"""
                UPDATE job_workers SET {_WORKER_IDLE_SET}, status = 'running',
                    processed_count = processed_count + 1, job_stage_id = ?,
                    current_job_item_id = ?, current_song_id = ?, current_playlist_id = ?,
                    current_display_text = ?, heartbeat_at = ?
                WHERE id = ?
                """,
                (
                    int(stage_id),
                    row["id"],
                    row["song_id"],
                    row["playlist_id"],
                    _display_text(row),
                    now,
                    worker_id,
                ),
            )
            return self._row_to_item(row)

    def _worker_id(self, conn: sqlite3.Connection, worker_name: str, job_run_id: int) -> int:
        """The worker's row for a job, remembered: rows are never deleted."""
        key = (worker_name, int(job_run_id))
        worker_id = self._worker_ids.get(key)
        if worker_id is None:
            worker_id = self._worker_ids[key] = self._ensure_worker_row(
                conn, worker_name, int(job_run_id), None
            )
        return worker_id

    def _claim_next(
        self, conn: sqlite3.Connection, stage_id: int, worker_name: str
    ) -> JobItem | None:
        row = conn.execute(
            f"{_CLAIM_NEXT_SQL} {_CLAIM_NEXT_WHERE}",
            (clock.now_text(), int(stage_id), clock.now()),
        ).fetchone()
        if row is None:
            return None
        self._mark_claimed(conn, row, worker_name)
        return self._row_to_item(row)

    def _finish_item(
        self,
        conn: sqlite3.Connection,
        item_id: int,
        to_status: ItemStatus,
        *,
        from_statuses: tuple[ItemStatus, ...] = (ItemStatus.RUNNING,),
        payload_update: dict[str, Any] | None = None,
        error: str | None = None,
        error_code: str | None = None,
    ) -> sqlite3.Row | None:
        row = conn.execute(
            "SELECT * FROM job_items WHERE id = ?", (int(item_id),)
        ).fetchone()
        if row is None or ItemStatus(row["status"]) not in from_statuses:
            return None
        payload = _json_loads(row["payload_json"])
        if payload_update:
            payload.update(payload_update)
        values = [s.value for s in from_statuses]
        cursor = conn.execute(
            f"""
            UPDATE job_items SET status = ?, payload_json = ?, worker_id = NULL, ended_at = ?,
                last_error = ?, last_error_code = ?, next_attempt_at = NULL
            WHERE id = ? AND status IN ({",".join("?" * len(values))})
            """,
            (
                to_status.value,
                _json_dumps(payload),
                clock.now_text(),
                error,
                error_code,
                int(item_id),
                *values,
            ),
        )
        if cursor.rowcount != 1:
            return None
        if to_status in _ITEM_COUNTER:
            conn.execute(
                f"UPDATE job_stages SET {_ITEM_COUNTER[to_status]} = "
                f"{_ITEM_COUNTER[to_status]} + 1 WHERE id = ?",
                (row["job_stage_id"],),
            )
        return row

    def _worker_done(
        self, conn: sqlite3.Connection, worker_id: int | None, *, failed: bool
    ) -> None:
        if worker_id is None:
            return
        counter = "error_count = error_count + 1" if failed else "processed_count = processed_count + 1"
        conn.execute(
            f"UPDATE job_workers SET {_WORKER_IDLE_SET}, {counter}, heartbeat_at = ? WHERE id = ?",
            (clock.now_text(), int(worker_id)),
        )

    def mark_item_succeeded(
        self, item_id: int, result_payload: dict[str, Any] | None = None
    ) -> bool:
        with self._connection() as conn:
            row = self._finish_item(
                conn, item_id, ItemStatus.SUCCEEDED, payload_update=result_payload
            )
            if row is None:
                return False
            self._worker_done(conn, row["worker_id"], failed=False)
        return True

    def mark_item_skipped(self, item_id: int, reason: str = "") -> bool:
        with self._connection() as conn:
            row = self._finish_item(
                conn,
                item_id,
                ItemStatus.SKIPPED,
                from_statuses=(ItemStatus.RUNNING, ItemStatus.PENDING),
                payload_update={"skip_reason": reason} if reason else None,
            )
            if row is None:
                return False
            self._worker_done(conn, row["worker_id"], failed=False)
        return True

    def mark_item_failed(
        self,
        item_id: int,
        error_message: str,
        *,
        error_code: str | None = None,
        retry_delay: float | None = None,
        max_attempts: int = 1,
    ) -> bool:
        """Fail an item; with ``retry_delay`` and attempts left it goes back to pending instead."""
        error_message = mask_secrets(error_message)
        with self._connection() as conn:
            row = conn.execute("SELECT * FROM job_items WHERE id = ?", (int(item_id),)).fetchone()
            if row is None or row["status"] != ItemStatus.RUNNING.value:
                return False
            if retry_delay is not None and int(row["attempts"]) < int(max_attempts):
                conn.execute(
                    """
                    UPDATE job_items SET status = 'pending', worker_id = NULL, last_error = ?,
                        last_error_code = ?, next_attempt_at = ?
                    WHERE id = ? AND status = 'running'
                    """,
                    (error_message, error_code, clock.now() + float(retry_delay), int(item_id)),
                )
                self._worker_done(conn, row["worker_id"], failed=True)
                return True
            finished = self._finish_item(
                conn, item_id, ItemStatus.FAILED, error=error_message, error_code=error_code
            )
            if finished is None:
                return False
            self._worker_done(conn, row["worker_id"], failed=True)
        return True

    def running_items_of_workers(self, stage_id: int, worker_names: list[str]) -> list[JobItem]:
        """A stage's running items held by these workers (a helper process that died)."""
        if not worker_names:
            return []
        marks = ", ".join("?" * len(worker_names))
        rows = self._fetchall(
            f"""
            SELECT i.* FROM job_items i
            JOIN job_workers w ON w.id = i.worker_id
            WHERE i.job_stage_id = ? AND i.status = 'running' AND w.worker_name IN ({marks})
            ORDER BY i.id
            """,
            (int(stage_id), *worker_names),
        )
        return [self._row_to_item(row) for row in rows]

    def release_item(self, item_id: int) -> bool:
        """Running -> pending without charging an attempt (the job was paused or stopped)."""
        with self._connection() as conn:
            row = conn.execute(
                """
                UPDATE job_items SET status = 'pending', worker_id = NULL,
                    attempts = MAX(attempts - 1, 0)
                WHERE id = ? AND status = 'running' RETURNING worker_id
                """,
                (int(item_id),),
            ).fetchone()
            if row is None:
                return False
        return True

    def cancel_pending_items(self, job_id: int) -> int:
        """Every unfinished item of a job -> canceled; returns how many."""
        with self._connection() as conn:
            cursor = conn.execute(
                "UPDATE job_items SET status = 'canceled', worker_id = NULL, ended_at = ? "
                "WHERE job_run_id = ? AND status IN ('pending', 'running')",
                (clock.now_text(), int(job_id)),
            )
            conn.execute(
                "UPDATE job_stages SET status = 'canceled', ended_at = ? "
                "WHERE job_run_id = ? AND status IN ('pending', 'running')",
                (clock.now_text(), int(job_id)),
            )
            return cursor.rowcount

    def _retry_failed_items(self, conn: sqlite3.Connection, job_id: int) -> int:
        per_stage = conn.execute(
            "SELECT job_stage_id, COUNT(*) AS n FROM job_items "
            "WHERE job_run_id = ? AND status = 'failed' GROUP BY job_stage_id",
            (job_id,),
        ).fetchall()
        total = 0
        for row in per_stage:
            conn.execute(
                "UPDATE job_items SET status = 'pending', attempts = 0, next_attempt_at = NULL, "
                "ended_at = NULL WHERE job_stage_id = ? AND status = 'failed'",
                (row["job_stage_id"],),
            )
            conn.execute(
                "UPDATE job_stages SET failed_items = MAX(failed_items - ?, 0), "
                "status = 'pending', ended_at = NULL WHERE id = ?",
                (int(row["n"]), row["job_stage_id"]),
            )
            total += int(row["n"])
        return total

    # -- workers -----------------------------------------------------------

    def update_worker_state(
        self, worker_name: str, *, job_run_id: int | None = None, **state: Any
    ) -> int:
        """Write a worker's live state; a ``speed_bytes_per_sec`` also appends a sparkline sample.

        The worker row is the newest one with this name (for ``job_run_id`` when given).
        Returns the worker row id.
        """
        name = str(worker_name).strip() or "worker"
        now_text = clock.now_text()
        with self._connection() as conn:
            if job_run_id is not None:
                worker_id = self._ensure_worker_row(conn, name, int(job_run_id), None)
            else:
                row = conn.execute(
                    "SELECT id FROM job_workers WHERE worker_name = ? ORDER BY id DESC LIMIT 1",
                    (name,),
                ).fetchone()
                if row is None:
                    worker_id = int(
                        conn.execute(
                            "INSERT INTO job_workers (worker_name, status, heartbeat_at) "
                            "VALUES (?, ?, ?)",
                            (name, str(state.get("status") or "running"), now_text),
                        ).lastrowid
                        or 0
                    )
                else:
                    worker_id = int(row["id"])
            updates = ["heartbeat_at = ?"]
            params: list[Any] = [now_text]
            for field_name in WORKER_STATE_FIELDS:
                if field_name in state:
                    updates.append(f"{field_name} = ?")
                    params.append(state[field_name])
            if state.get("processed_increment"):
                updates.append("processed_count = processed_count + ?")
                params.append(int(state["processed_increment"]))
            if state.get("error_increment"):
                updates.append("error_count = error_count + ?")
                params.append(int(state["error_increment"]))
            params.append(worker_id)
            conn.execute(f"UPDATE job_workers SET {', '.join(updates)} WHERE id = ?", params)
            # A sparkline sample is a measurement: "nothing measured" is not a zero.
            if state.get("speed_bytes_per_sec") is not None:
                conn.execute(
                    "INSERT INTO worker_speed_samples (worker_id, at, speed_bytes_per_sec) "
                    "VALUES (?, ?, ?)",
                    (worker_id, clock.now(), state["speed_bytes_per_sec"]),
                )
                conn.execute(
                    """
                    DELETE FROM worker_speed_samples WHERE worker_id = ? AND id <= (
                        SELECT id FROM worker_speed_samples WHERE worker_id = ?
                        ORDER BY id DESC LIMIT 1 OFFSET ?)
                    """,
                    (worker_id, worker_id, SPEED_SAMPLES_KEPT),
                )
        return worker_id

    def stop_job_workers(self, job_id: int) -> None:
        """A job's workers leave: idle, no live speed (their counters and samples stay)."""
        with self._connection() as conn:
            conn.execute(
                f"UPDATE job_workers SET {_WORKER_IDLE_SET}, status = 'stopped' "
                "WHERE job_run_id = ?",
                (int(job_id),),
            )

    def list_job_workers(
        self, job_id: int | None, *, active_only: bool = False, limit: int = 100
    ) -> list[dict[str, Any]]:
        """A job's workers (every job's when ``job_id`` is None) with what they work on."""
        where, params = ["1 = 1"], []
        if job_id is not None:
            where.append("w.job_run_id = ?")
            params.append(int(job_id))
        if active_only:
            where.append("w.status = 'running'")
        rows = self._fetchall(
            f"""
            SELECT w.*, s.stage_type, i.item_type, i.item_key, so.name AS song_name,
                   p.name AS playlist_name
            FROM job_workers w
            LEFT JOIN job_stages s ON s.id = w.job_stage_id
            LEFT JOIN job_items i ON i.id = w.current_job_item_id
            LEFT JOIN songs so ON so.id = w.current_song_id
            LEFT JOIN playlists p ON p.id = w.current_playlist_id
            WHERE {" AND ".join(where)}
            ORDER BY w.job_run_id, w.worker_name LIMIT ?
            """,
            (*params, int(limit)),
        )
        return [dict(row) for row in rows]

    def list_speed_samples(self, worker_ids: list[int]) -> dict[int, list[float]]:
        """Recent speed samples per worker, oldest first (missing speeds read as 0)."""
        if not worker_ids:
            return {}
        marks = ",".join("?" * len(worker_ids))
        rows = self._fetchall(
            f"SELECT worker_id, speed_bytes_per_sec FROM worker_speed_samples "
            f"WHERE worker_id IN ({marks}) ORDER BY worker_id, id",
            worker_ids,
        )
        samples: dict[int, list[float]] = {int(w): [] for w in worker_ids}
        for row in rows:
            samples[int(row["worker_id"])].append(float(row["speed_bytes_per_sec"] or 0.0))
        return samples

    # -- commands ----------------------------------------------------------

    def validate_command(self, job: JobRun, command_type: CommandType) -> None:
        """Raise InvalidTransitionError when ``command_type`` makes no sense for ``job`` now."""
        status = job.status
        reason: str | None = None
        if command_type == CommandType.PAUSE:
            if status not in (JobStatus.QUEUED, JobStatus.RUNNING):
                reason = "only queued or running jobs can be paused"
        elif command_type == CommandType.RESUME:
            if status not in (JobStatus.PAUSED, JobStatus.PAUSE_REQUESTED):
                reason = "only paused jobs can be resumed"
        elif command_type == CommandType.CANCEL:
            if status.is_finished:
                reason = "it has already finished"
        elif command_type == CommandType.RETRY:
            if status in ACTIVE_JOB_STATUSES:
                reason = "pause it or let it finish before retrying its failed items"
            elif status == JobStatus.CANCELED:
                reason = "a canceled job cannot be retried; submit a new one"
            else:
                row = self._fetchone(
                    "SELECT COUNT(*) AS n FROM job_items WHERE job_run_id = ? AND status = 'failed'",
                    (job.id,),
                )
                if not row or not int(row["n"]):
                    reason = "it has no failed items"
        if reason is not None:
            raise InvalidTransitionError(
                f"cannot {command_type.value} job {job.id}: it is {status.value}; {reason}"
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
            job = self._row_to_job(row)
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
            conn.execute(
                "INSERT INTO job_events (job_run_id, event_type, level, message, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    job_id,
                    f"command_{kind.value}" if applied else "command_rejected",
                    "info" if applied else "warning",
                    message,
                    clock.now_text(),
                ),
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
            conn.execute(
                "UPDATE job_items SET status = 'canceled', ended_at = ? "
                "WHERE job_run_id = ? AND status IN ('pending', 'running')",
                (clock.now_text(), job.id),
            )
            conn.execute(
                "UPDATE job_stages SET status = 'canceled', ended_at = ? "
                "WHERE job_run_id = ? AND status IN ('pending', 'running')",
                (clock.now_text(), job.id),
            )
            return move(JobStatus.CANCELED, f"job {job.id} canceled")
        # RETRY
        count = self._retry_failed_items(conn, job.id)
        if status == JobStatus.PAUSED:
            return True, f"job {job.id}: {count} failed items will be retried on resume", status
        conn.execute(
            "UPDATE job_runs SET ended_at = NULL, error = NULL WHERE id = ?", (job.id,)
        )
        return move(JobStatus.QUEUED, f"job {job.id}: retrying {count} failed items")

    # -- events ------------------------------------------------------------

    def add_event(
        self, job_id: int | None, event_type: str, message: str, *, level: str = "info"
    ) -> int:
        with self._connection() as conn:
            return int(
                conn.execute(
                    "INSERT INTO job_events (job_run_id, event_type, level, message, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (job_id, event_type, level, mask_secrets(message), clock.now_text()),
                ).lastrowid
                or 0
            )

    def failed_items(
        self, job_id: int, *, limit: int | None = 20, offset: int = 0
    ) -> tuple[int, list[dict[str, Any]]]:
        """(count, rows) of a job's failed items with their song and playlist, by item id."""
        stages = "SELECT id FROM job_stages WHERE job_run_id = ?"
        total = self._fetchone(
            f"SELECT COUNT(*) FROM job_items WHERE job_stage_id IN ({stages}) "
            "AND status = 'failed'",
            (int(job_id),),
        )
        rows = self._fetchall(
            f"""
            SELECT ji.id AS item_id, st.stage_type, ji.song_id, s.name AS song_name,
                s.singers AS song_singers, ji.playlist_id, p.name AS playlist,
                ji.last_error_code AS error_code, ji.last_error AS error, ji.attempts,
                ji.ended_at
            FROM job_items ji
            JOIN job_stages st ON st.id = ji.job_stage_id
            LEFT JOIN songs s ON s.id = ji.song_id
            LEFT JOIN playlists p ON p.id = ji.playlist_id
            WHERE ji.job_stage_id IN ({stages}) AND ji.status = 'failed'
            ORDER BY ji.id LIMIT ? OFFSET ?
            """,
            (int(job_id), -1 if limit is None else int(limit), int(offset)),
        )
        return int(total[0]) if total else 0, [dict(row) for row in rows]

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
                fresh = clock.now() - float(row["heartbeat_at"]) < stale_after
                if fresh and holder_alive(dict(row)):
                    return dict(row)
            conn.execute(
                """
                INSERT INTO runner_lease (id, owner, pid, host, started_at, heartbeat_at)
                VALUES (1, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, pid = excluded.pid,
                    host = excluded.host, started_at = excluded.started_at,
                    heartbeat_at = excluded.heartbeat_at
                """,
                (owner, int(pid), host, clock.now_text(), clock.now()),
            )
        return None

    def heartbeat_lease(self, owner: str) -> bool:
        """Refresh our lease; False when someone else holds it now."""
        with self._connection() as conn:
            cursor = conn.execute(
                "UPDATE runner_lease SET heartbeat_at = ? WHERE id = 1 AND owner = ?",
                (clock.now(), owner),
            )
            return cursor.rowcount == 1

    def release_lease(self, owner: str) -> None:
        with self._connection() as conn:
            conn.execute("DELETE FROM runner_lease WHERE id = 1 AND owner = ?", (owner,))

    def recover_interrupted(self) -> RecoveryReport:
        """After an unclean stop: items back to pending, workers reset, jobs re-queued first."""
        report = RecoveryReport()
        now_text = clock.now_text()
        with self._connection() as conn:
            report.items_reset = conn.execute(
                "UPDATE job_items SET status = 'pending', worker_id = NULL "
                "WHERE status = 'running'"
            ).rowcount
            report.workers_reset = conn.execute(
                f"UPDATE job_workers SET {_WORKER_IDLE_SET}, status = 'stopped' "
                "WHERE status IN ('running', 'idle')"
            ).rowcount
            interrupted = conn.execute(
                "SELECT * FROM job_runs WHERE status IN ('running', 'pause_requested') "
                "ORDER BY COALESCE(started_at, created_at), id"
            ).fetchall()
            low = conn.execute(
                "SELECT MIN(queue_rank) AS r FROM job_runs WHERE status = 'queued'"
            ).fetchone()["r"]
            base = min(float(low) if low is not None else 0.0, 0.0) - len(interrupted) - 1
            for offset, row in enumerate(interrupted):
                job = self._row_to_job(row)
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
                conn.execute(
                    "INSERT INTO job_events (job_run_id, event_type, level, message, created_at) "
                    "VALUES (?, 'recovered', 'warning', ?, ?)",
                    (job.id, message, now_text),
                )
            conn.execute(
                "UPDATE job_stages SET status = 'pending' WHERE status = 'running' "
                "AND job_run_id IN (SELECT id FROM job_runs WHERE status IN ('queued', 'paused'))"
            )
        return report

    def requeue_job(self, job_id: int, *, ahead: bool = True) -> bool:
        """A running job stopped by a runner shutdown goes back to the front of its queue."""
        with self._connection() as conn:
            rank = None
            if ahead:
                low = conn.execute(
                    "SELECT MIN(queue_rank) AS r FROM job_runs WHERE status = 'queued'"
                ).fetchone()["r"]
                rank = min(float(low) if low is not None else 0.0, 0.0) - 1
            cursor = conn.execute(
                "UPDATE job_runs SET status = 'queued', queue_rank = COALESCE(?, queue_rank) "
                "WHERE id = ? AND status IN ('running', 'pause_requested')",
                (rank, int(job_id)),
            )
            return cursor.rowcount == 1

    # -- read models (assembled in views.py) ------------------------------

    def list_task_center_rows(self, limit: int = 50) -> list[dict[str, Any]]:
        from . import views

        return views.task_center_rows(self, limit=limit)

    # -- unattended operation: schedules, notifications (issue 14) -------------

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
            (job_type, json.dumps(list(sources)), _json_dumps(playlist_scope or {})),
        )
        return int(row["id"]) if row is not None else None

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
                (name, cron, job_type, last_slot_at, last_run_at, last_result, last_job_id,
                 last_message, clock.now_text()),
            )

    def job_outcome_facts(self, job_id: int, top: int = 3) -> dict[str, Any]:
        """Songs added, bytes written, failed count and the most common failure reasons."""
        added = self._fetchone(
            """
            SELECT COUNT(*) AS n, COALESCE(SUM(json_extract(i.payload_json, '$.bytes')), 0) AS b
            FROM job_items i JOIN job_stages s ON s.id = i.job_stage_id
            WHERE i.job_run_id = ? AND s.stage_type = 'download' AND i.status = 'succeeded'
            """,
            (int(job_id),),
        )
        reasons = self._fetchall(
            """
            SELECT COALESCE(last_error_code, 'error') AS code, COUNT(*) AS n FROM job_items
            WHERE job_run_id = ? AND status = 'failed' GROUP BY 1 ORDER BY n DESC, code LIMIT ?
            """,
            (int(job_id), int(top)),
        )
        failed = self._fetchone(
            "SELECT COUNT(*) AS n FROM job_items WHERE job_run_id = ? AND status = 'failed'",
            (int(job_id),),
        )
        return {
            "songs_added": int(added["n"]) if added else 0,
            "bytes": int(added["b"] or 0) if added else 0,
            "failed": int(failed["n"]) if failed else 0,
            "reasons": [(str(r["code"]), int(r["n"])) for r in reasons],
        }

    def recent_download_speed(self, stages: int = 5) -> float | None:
        """Bytes per second over the last finished download stages (None: nothing to go by)."""
        rows = self._fetchall(
            """
            SELECT st.started_at, st.ended_at,
                   SUM(COALESCE(json_extract(i.payload_json, '$.bytes'), 0)) AS bytes
            FROM job_stages st JOIN job_items i ON i.job_stage_id = st.id
            WHERE st.stage_type = 'download' AND st.ended_at IS NOT NULL
              AND i.status = 'succeeded'
            GROUP BY st.id ORDER BY st.id DESC LIMIT ?
            """,
            (int(stages),),
        )
        total_bytes, total_seconds = 0, 0.0
        for row in rows:
            start, end = clock.parse_text(row["started_at"]), clock.parse_text(row["ended_at"])
            if start is None or end is None or end <= start or not row["bytes"]:
                continue
            total_bytes += int(row["bytes"])
            total_seconds += end - start
        return total_bytes / total_seconds if total_seconds > 0 else None
