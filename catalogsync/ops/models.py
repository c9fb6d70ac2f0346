"""Job system states and records."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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


@dataclass
class JobRun:
    id: int
    job_type: str
    status: JobStatus
    priority: int = 100
    queue_rank: float = 0.0
    requested_by: str | None = None
    config_snapshot: dict[str, Any] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    download_sources: list[str] = field(default_factory=list)
    playlist_scope: dict[str, Any] = field(default_factory=dict)
    backend_name: str | None = None
    pause_reason: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    error: str | None = None

    @property
    def playlist_ids(self) -> list[int]:
        ids = self.playlist_scope.get("playlist_ids")
        return [int(i) for i in ids] if isinstance(ids, list) else []


@dataclass
class JobStage:
    id: int
    job_run_id: int
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

    @property
    def done_items(self) -> int:
        return self.success_items + self.skipped_items


@dataclass
class JobItem:
    id: int
    job_stage_id: int
    job_run_id: int | None
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
