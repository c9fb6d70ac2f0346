"""Job system states and records."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import field
from enum import StrEnum
from typing import Any

from catalogsync.records import assemble, record


def json_loads(value: str | None, default: Any = None) -> Any:
    """A JSON column's value; an empty or unreadable one reads as ``default`` (``{}``)."""
    if not value:
        return {} if default is None else default
    try:
        return json.loads(value)
    except ValueError:
        return {} if default is None else default


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSE_REQUESTED = "pause_requested"
    PAUSED = "paused"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_finished(self) -> bool:
        return self in FINISHED_JOB_STATUSES


FINISHED_JOB_STATUSES = frozenset(
    {
        JobStatus.COMPLETED,
        JobStatus.COMPLETED_WITH_ERRORS,
        JobStatus.FAILED,
        JobStatus.CANCELED,
    }
)
ACTIVE_JOB_STATUSES = frozenset({JobStatus.RUNNING, JobStatus.PAUSE_REQUESTED})


class StageStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELED = "canceled"


class ItemStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELED = "canceled"


class CommandType(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    RETRY = "retry"


class CommandStatus(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"


@record
class JobRun:
    id: int
    job_type: str
    status: JobStatus
    priority: int = 100
    queue_rank: float = 0.0
    requested_by: str | None = None
    config_snapshot: dict[str, Any] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    playlist_scope: dict[str, Any] = field(default_factory=dict)
    backend_name: str | None = None
    pause_reason: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    error: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> JobRun:
        keys = row.keys()
        return assemble(
            cls,
            dict(
                id=int(row["id"]),
                job_type=str(row["job_type"]),
                status=JobStatus(str(row["status"])),
                priority=int(row["priority"] if row["priority"] is not None else 100),
                queue_rank=float(row["queue_rank"] or 0) if "queue_rank" in keys else 0.0,
                requested_by=row["requested_by"],
                config_snapshot=json_loads(row["config_snapshot"]),
                sources=list(json_loads(row["sources"], [])),
                playlist_scope=json_loads(row["playlist_scope"]),
                backend_name=row["backend_name"] if "backend_name" in keys else None,
                pause_reason=row["pause_reason"] if "pause_reason" in keys else None,
                created_at=row["created_at"],
                started_at=row["started_at"],
                ended_at=row["ended_at"],
                error=row["error"],
            ),
        )

    @property
    def playlist_ids(self) -> list[int]:
        ids = self.playlist_scope.get("playlist_ids")
        return [int(i) for i in ids] if isinstance(ids, list) else []


@record
class JobStage:
    id: int
    job_id: int
    stage_type: str
    seq_no: int
    status: StageStatus
    total_items: int = 0
    success_items: int = 0
    failed_items: int = 0
    skipped_items: int = 0
    planned: bool = False
    started_at: str | None = None
    ended_at: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> JobStage:
        return assemble(
            cls,
            dict(
                id=int(row["id"]),
                job_id=int(row["job_run_id"]),
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
            ),
        )

    @property
    def done_items(self) -> int:
        return self.success_items + self.skipped_items


@record
class JobItem:
    id: int
    job_stage_id: int
    job_id: int | None
    item_type: str
    item_key: str
    status: ItemStatus
    song_id: int | None = None
    playlist_id: int | None = None
    worker_id: int | None = None
    attempts: int = 0
    payload: dict[str, Any] = field(default_factory=dict)
    last_error: str | None = None
    last_error_code: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> JobItem:
        return assemble(
            cls,
            dict(
                id=int(row["id"]),
                job_stage_id=int(row["job_stage_id"]),
                job_id=row["job_run_id"],
                item_type=str(row["item_type"]),
                item_key=str(row["item_key"]),
                status=ItemStatus(str(row["status"])),
                song_id=row["song_id"],
                playlist_id=row["playlist_id"],
                worker_id=row["worker_id"],
                attempts=int(row["attempts"]),
                payload=json_loads(row["payload_json"]),
                last_error=row["last_error"],
                last_error_code=row["last_error_code"],
            ),
        )
