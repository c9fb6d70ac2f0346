"""The read models: what the task center, the playlist picker and `--json` show, typed.

Frozen dataclasses built by ``ops/views.py`` and handed out by the service facade
(``catalogsync/service.py``): ``@record(frozen=True)`` (``catalogsync/records.py``), so
creating them costs a `catalogsync` start no generated code, and the per-row ones are
built with ``records.assemble``. The TUI and the CLI read them by attribute; `--json`
prints ``dataclasses.asdict`` of them (``cli_json.jsonable``), so a field's name and
place here are its key and place in the JSON (docs/json.md; pinned by
tests/catalogsync/test_json_golden.py). ``job_run_id`` keeps the JSON's name.
"""

from __future__ import annotations

from typing import Any

from catalogsync.records import record

from .models import CommandType, JobStatus, StageStatus


@record(frozen=True)
class JobFacts:
    """What a job filter looks at, as the table shows it (``views.task_rows_matching``)."""

    display_name: str
    job_type: str
    lane_type: str
    status: str
    scope_summary: str


@record(frozen=True)
class TaskRow:
    """One task-center row: the seed's fields plus what the TUI needs."""

    id: int
    job_type: str
    display_name: str
    status: JobStatus
    lane_type: str
    queue_label: str  # `queued #N`, `running`, else the lane
    queue_position: int | None
    priority: int
    scope_summary: str  # `N playlists` | `N sources` | `All sources`
    playlist_scope: dict[str, Any]
    primary_stage: str | None
    current_stage: str | None
    primary_progress_text: str  # `done / total songs`, ` | 3.0 MB/s` while a speed exists
    primary_progress_percent: float
    done_items: int
    total_items: int
    failed_items: int
    active_worker_count: int
    speed_bytes_per_sec: float | None
    speed_text: str
    can_pause: bool
    can_resume: bool
    can_cancel: bool
    can_retry: bool
    pause_reason: str | None
    error: str | None
    backend_name: str | None
    created_at: str | None
    started_at: str | None
    ended_at: str | None


@record(frozen=True)
class WorkerView:
    """A worker with its display texts (`3.0 MB/s`, `10.0 / 20.0 MB`) and speed samples."""

    id: int
    job_run_id: int | None
    job_stage_id: int | None
    worker_name: str
    status: str
    current_job_item_id: int | None
    current_song_id: int | None
    current_playlist_id: int | None
    display_text: str
    stage_type: str | None
    item_type: str | None
    downloaded_bytes: int | None
    total_bytes: int | None
    speed_bytes_per_sec: float | None
    speed_text: str
    bytes_text: str
    progress_percent: float | None
    processed_count: int
    error_count: int
    heartbeat_at: str | None
    speed_samples: tuple[float, ...] = ()


@record(frozen=True)
class StageView:
    """A stage of a job with its counters and `done / total unit` text."""

    id: int
    stage_type: str
    seq_no: int
    status: StageStatus
    total_items: int
    success_items: int
    failed_items: int
    skipped_items: int
    progress_text: str
    progress_percent: float


@record(frozen=True)
class PlaylistProgressView:
    """A playlist in a job's scope: songs in it and how many have a library file."""

    playlist_id: int
    playlist_name: str
    total_songs: int
    downloaded_songs: int
    progress_text: str  # `downloaded / total`
    progress_percent: float


@record(frozen=True)
class EventView:
    """A job event (or a runner-wide one, without a job)."""

    id: int
    job_run_id: int | None
    event_type: str
    level: str
    message: str
    created_at: str | None


@record(frozen=True)
class FailedItemView:
    """A failed item: the song (`Name / Singers`), its playlist, the error and attempts."""

    item_id: int
    stage_type: str | None
    song_id: int | None
    song: str | None
    playlist_id: int | None
    playlist: str | None
    error_code: str | None
    error: str | None  # URL credentials masked
    attempts: int
    ended_at: str | None


@record(frozen=True)
class FailedItems:
    """A page of a job's failed items and how many there are in all."""

    total: int
    items: tuple[FailedItemView, ...] = ()


@record(frozen=True)
class JobDetailView:
    """A job with its stages, workers, playlist progress, recent events and failures."""

    job: TaskRow
    stages: tuple[StageView, ...]
    workers: tuple[WorkerView, ...]
    playlist_progress: tuple[PlaylistProgressView, ...]
    events: tuple[EventView, ...]
    failed_items: FailedItems


@record(frozen=True)
class DashboardSummary:
    """Job counts for the header (a pause_requested job counts as running and paused)."""

    total_jobs: int
    queued_jobs: int
    queued_download_jobs: int
    running_jobs: int
    paused_jobs: int
    failed_jobs: int
    completed_jobs: int
    canceled_jobs: int
    running_song_items: int


@record(frozen=True)
class DownloadStats:
    """Library totals and the speed of every active worker together."""

    total_songs: int
    downloaded_songs: int
    library_bytes: int
    running_song_items: int
    speed_bytes_per_sec: float | None
    speed_text: str


@record(frozen=True)
class PlaylistSourceView:
    """Playlists per (pool kind, platform)."""

    pool_kind: str
    platform: str
    playlists: int
    wanted: int
    songs: int
    never_synced: int


@record(frozen=True)
class RunningItemView:
    """An item a worker holds right now."""

    id: int
    job_run_id: int
    item_type: str
    item_key: str
    song_id: int | None
    playlist_id: int | None
    attempts: int
    song_name: str | None


@record(frozen=True)
class RunnerView:
    """The runner that holds the lease."""

    owner: str
    pid: int
    host: str
    started_at: str | None
    heartbeat_age_seconds: float


@record(frozen=True)
class ScheduleView:
    """The soonest `[[schedules]]` entry."""

    name: str
    job_type: str
    next_run_at: str


@record(frozen=True)
class DashboardView:
    """Everything `status --json` prints and the task center's header shows."""

    summary: DashboardSummary
    download_stats: DownloadStats
    playlist_sources: tuple[PlaylistSourceView, ...]
    task_rows: tuple[TaskRow, ...]
    workers: tuple[WorkerView, ...]
    running_items: tuple[RunningItemView, ...]
    recent_events: tuple[EventView, ...]
    runner: RunnerView | None
    next_schedule: ScheduleView | None


@record(frozen=True)
class PlaylistRow:
    """A playlist for the picker and `playlists list`, with hint and drift text."""

    id: int
    name: str
    platform: str
    pool_kind: str
    source_name: str | None
    ref: str | None
    song_count: int
    downloaded_song_count: int
    wanted: bool
    last_synced_at: str | None
    last_error: str | None
    drift_added: int | None
    drift_removed: int | None
    drift: str  # `+2 / -1`, `-` before a second sync
    running_download_song_count: int
    hint: str  # `0 songs, sync recommended` | `Running N` | `Idle`
    sync_policy: str


@record(frozen=True)
class CommandResult:
    """What became of a pause / resume / cancel / retry (a refusal raises instead).

    ``applied`` is False when a live runner has not answered yet: the command is sent
    and the runner applies it when it can; ``message`` says which.
    """

    job_id: int
    command: CommandType
    command_id: int
    applied: bool
    message: str
