"""Read models: what the task center, the playlist picker and `--json` output show.

Every function here runs a fixed number of queries, however many jobs exist, and
returns the frozen dataclasses of ``ops/readmodels.py`` the TUI and the CLI both use.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from catalogsync import clock
from catalogsync.catalog.repository import CatalogRepository
from catalogsync.records import assemble
from catalogsync.redact import mask_secrets
from catalogsync.transfer.meter import format_bytes_progress, format_speed

from .commands_policy import allowed_commands
from .jobdefs import (
    STAGE_ORDER,
    STAGE_UNITS,
    display_name,
    job_lane_type,
    primary_stage_type,
    scoped_display_name,
)
from .models import ACTIVE_JOB_STATUSES, CommandType, JobRun, JobStage, JobStatus, StageStatus
from .readmodels import (
    DashboardSummary,
    DashboardView,
    DownloadStats,
    EventView,
    FailedItems,
    FailedItemView,
    JobDetailView,
    JobFacts,
    PlaylistProgressView,
    PlaylistRow,
    PlaylistSourceView,
    RunnerView,
    RunningItemView,
    ScheduleView,
    StageView,
    TaskRow,
    WorkerView,
)
from .repository import OpsRepository
from .schedules import next_schedule

if TYPE_CHECKING:
    from catalogsync.config import ScheduleConfig


def _progress_percent(done: int, total: int) -> float:
    if total <= 0:
        return 0.0
    return round(done * 100.0 / total, 1)


def scope_summary(job: JobRun) -> str:
    return _scope_text(len(job.playlist_ids), len(job.sources))


def _scope_text(playlists: int, sources: int) -> str:
    """``3 playlists``, ``1 source`` or ``All sources``, from how many the job names."""
    if playlists:
        return f"{playlists} playlist" if playlists == 1 else f"{playlists} playlists"
    if sources:
        return f"{sources} source" if sources == 1 else f"{sources} sources"
    return "All sources"


def build_task_row(
    job: JobRun,
    stages: list[JobStage],
    queue_position: int | None,
    workers: tuple[int, float | None],
) -> TaskRow:
    """One task-center row, in the seed's fields plus what the TUI needs."""
    stage_by_type = {s.stage_type: s for s in stages}
    primary = primary_stage_type(job.job_type)
    target = stage_by_type.get(primary or "")
    done = target.done_items if target else 0
    total = target.total_items if target else 0
    failed = sum(s.failed_items for s in stages)
    unit = STAGE_UNITS.get(primary or "", "items")
    active_workers, speed = workers
    if job.status not in ACTIVE_JOB_STATUSES:
        speed = None
    lane = job_lane_type(job.job_type)
    if job.status == JobStatus.QUEUED and queue_position is not None:
        queue_label = f"queued #{queue_position}"
    elif job.status == JobStatus.RUNNING:
        queue_label = "running"
    else:
        queue_label = lane
    progress_text = f"{done} / {total} {unit}"
    if speed:
        progress_text = f"{progress_text} | {format_speed(speed)}"
    current_stage = next(
        (s.stage_type for s in stages if s.status == StageStatus.RUNNING),
        None,
    )
    allowed = allowed_commands(job.status, failed)
    return assemble(
        TaskRow,
        {
            "id": job.id,
            "job_type": job.job_type,
            "display_name": display_name(job.job_type, job.playlist_scope),
            "status": job.status,
            "lane_type": lane,
            "queue_label": queue_label,
            "queue_position": queue_position,
            "priority": job.priority,
            "scope_summary": scope_summary(job),
            "playlist_scope": job.playlist_scope,
            "primary_stage": primary,
            "current_stage": current_stage,
            "primary_progress_text": progress_text,
            "primary_progress_percent": _progress_percent(done, total),
            "done_items": done,
            "total_items": total,
            "failed_items": failed,
            "active_worker_count": active_workers,
            "speed_bytes_per_sec": speed,
            "speed_text": format_speed(speed),
            "can_pause": CommandType.PAUSE in allowed,
            "can_resume": CommandType.RESUME in allowed,
            "can_cancel": CommandType.CANCEL in allowed,
            "can_retry": CommandType.RETRY in allowed,
            "pause_reason": job.pause_reason,
            "error": job.error,
            "backend_name": job.backend_name,
            "created_at": job.created_at,
            "started_at": job.started_at,
            "ended_at": job.ended_at,
        },
    )


def task_center_rows(repo: OpsRepository, limit: int = 50) -> list[TaskRow]:
    """Jobs for the task table: running, then queued in queue order, paused, then newest."""
    with repo.snapshot():
        return _task_rows_of(repo, repo.task_center_jobs(int(limit)))


def task_rows_matching(
    repo: OpsRepository, matches: Callable[[JobFacts], bool], limit: int = 50
) -> list[TaskRow]:
    """Task rows of the jobs ``matches`` accepts, among every job ever run, in task-table
    order (the table itself shows only the first ``limit`` jobs).

    ``matches`` sees what a filter looks at, as the table shows it: ``display_name``,
    ``job_type``, ``lane_type``, ``status`` and ``scope_summary``. It is asked once per distinct combination, not once
    per job; full rows are built for the first ``limit`` jobs it accepts. Three queries.
    """
    with repo.snapshot():
        light = repo.job_filter_facts()
        verdicts: dict[tuple[Any, ...], bool] = {}
        found: list[tuple[tuple[Any, ...], int]] = []
        for job_id, job_type, status, priority, rank, playlists, sources in light:
            key = (job_type, status, playlists, sources)
            accepted = verdicts.get(key)
            if accepted is None:
                accepted = verdicts[key] = bool(
                    matches(
                        JobFacts(
                            display_name=scoped_display_name(job_type, playlists > 0),
                            job_type=job_type,
                            lane_type=job_lane_type(job_type),
                            status=status,
                            scope_summary=_scope_text(playlists, sources),
                        )
                    )
                )
            if accepted:
                found.append((_table_order(job_id, status, priority, rank), job_id))
        ids = [job_id for _, job_id in heapq.nsmallest(int(limit), found)]
        if not ids:
            return []
        by_id = repo.jobs_by_id(ids)
        return _task_rows_of(repo, [by_id[i] for i in ids if i in by_id])


_TABLE_GROUPS = {"running": 0, "pause_requested": 0, "queued": 1, "paused": 2}


def _table_order(job_id: int, status: str, priority: Any, rank: Any) -> tuple[Any, ...]:
    """Sort key matching ``task_center_rows``: running, queued, paused, then newest."""
    group = _TABLE_GROUPS.get(status, 3)
    if group == 0:
        return (0, 0, 0.0, job_id)
    if group == 1:
        return (1, int(priority if priority is not None else 100), float(rank or 0), job_id)
    return (group, 0, 0.0, -job_id)


def _task_rows_of(repo: OpsRepository, jobs: list[JobRun]) -> list[TaskRow]:
    ids = [j.id for j in jobs]
    positions = repo.queue_positions(ids)
    stages = repo.stages_by_job(ids)
    workers = repo.worker_totals(ids)
    return [
        build_task_row(j, stages[j.id], positions.get(j.id), workers.get(j.id, (0, None)))
        for j in jobs
    ]


def dashboard_summary(repo: OpsRepository) -> DashboardSummary:
    counts = repo.job_status_counts()
    queued_download = counts.pop("queued_download")
    running_items = counts.pop("running_song_items")
    return DashboardSummary(
        total_jobs=sum(counts.values()),
        queued_jobs=counts.get("queued", 0),
        queued_download_jobs=queued_download,
        running_jobs=counts.get("running", 0) + counts.get("pause_requested", 0),
        paused_jobs=counts.get("paused", 0) + counts.get("pause_requested", 0),
        failed_jobs=counts.get("failed", 0) + counts.get("completed_with_errors", 0),
        completed_jobs=counts.get("completed", 0),
        canceled_jobs=counts.get("canceled", 0),
        running_song_items=running_items,
    )


def serialize_worker(row: dict[str, Any], samples: list[float] | None = None) -> WorkerView:
    """A worker row with its display texts (`3.0 MB/s`, `10.0 / 20.0 MB`)."""
    display = str(row.get("current_display_text") or "").strip()
    fallback = str(row.get("song_name") or row.get("playlist_name") or row.get("item_key") or "")
    speed = row.get("speed_bytes_per_sec")
    done = row.get("downloaded_bytes")
    total = row.get("total_bytes")
    percent = row.get("progress_percent")
    return assemble(
        WorkerView,
        {
            "id": int(row["id"]),
            "job_run_id": row.get("job_run_id"),
            "job_stage_id": row.get("job_stage_id"),
            "worker_name": row["worker_name"],
            "status": row["status"],
            "current_job_item_id": row.get("current_job_item_id"),
            "current_song_id": row.get("current_song_id"),
            "current_playlist_id": row.get("current_playlist_id"),
            "display_text": display or fallback.strip(),
            "stage_type": row.get("stage_type"),
            "item_type": row.get("item_type"),
            "downloaded_bytes": int(done) if done is not None else None,
            "total_bytes": int(total) if total is not None else None,
            "speed_bytes_per_sec": float(speed) if speed is not None else None,
            "speed_text": format_speed(speed),
            "bytes_text": format_bytes_progress(done, total),
            "progress_percent": float(percent) if percent is not None else None,
            "processed_count": int(row.get("processed_count") or 0),
            "error_count": int(row.get("error_count") or 0),
            "heartbeat_at": row.get("heartbeat_at"),
            "speed_samples": tuple(samples or ()),
        },
    )


def event_view(row: dict[str, Any]) -> EventView:
    """A ``job_events`` row."""
    return EventView(
        id=int(row["id"]),
        job_run_id=row["job_run_id"],
        event_type=row["event_type"],
        level=row["level"],
        message=row["message"],
        created_at=row["created_at"],
    )


def dashboard_payload(
    repo: OpsRepository, *, task_limit: int = 50, schedules: Sequence[ScheduleConfig] = ()
) -> DashboardView:
    """Everything `status --json` prints and the task center's header shows."""
    catalog = CatalogRepository(repo.db_path, share_with=repo)
    with repo.snapshot():
        summary = dashboard_summary(repo)
        workers = tuple(
            serialize_worker(w) for w in repo.list_job_workers(None, active_only=True, limit=50)
        )
        total_speed = sum(w.speed_bytes_per_sec or 0.0 for w in workers) or None
        stats = catalog.library_stats()
        running_items = repo.running_items(limit=20)
        events = repo.list_events(limit=5)
        lease = repo.get_lease()
        sources = catalog.playlist_source_stats()
        task_rows = tuple(task_center_rows(repo, limit=task_limit))
    upcoming = next_schedule(schedules)
    return DashboardView(
        summary=summary,
        download_stats=DownloadStats(
            total_songs=int(stats.get("total_songs") or 0),
            downloaded_songs=int(stats.get("downloaded_songs") or 0),
            library_bytes=int(stats.get("library_bytes") or 0),
            running_song_items=summary.running_song_items,
            speed_bytes_per_sec=total_speed,
            speed_text=format_speed(total_speed),
        ),
        playlist_sources=tuple(
            PlaylistSourceView(
                pool_kind=r["pool_kind"],
                platform=r["platform"],
                playlists=int(r["playlists"] or 0),
                wanted=int(r["wanted"] or 0),
                songs=int(r["songs"] or 0),
                never_synced=int(r["never_synced"] or 0),
            )
            for r in sources
        ),
        task_rows=task_rows,
        workers=workers,
        running_items=tuple(RunningItemView(**r) for r in running_items),
        recent_events=tuple(event_view(e) for e in events),
        runner=lease_view(lease),
        next_schedule=ScheduleView(**upcoming) if upcoming else None,
    )


def lease_view(lease: dict[str, Any] | None) -> RunnerView | None:
    """The runner lease's holder, with how long ago it last beat."""
    if lease is None:
        return None
    age = clock.now() - float(lease["heartbeat_epoch"])
    return RunnerView(
        owner=lease["owner"],
        pid=int(lease["pid"]),
        host=lease["host"],
        started_at=lease["started_at"],
        heartbeat_age_seconds=round(age, 1),
    )


def job_detail(repo: OpsRepository, job_id: int) -> JobDetailView:
    """A job with its stages, workers (with speed samples), playlist progress and events."""
    catalog = CatalogRepository(repo.db_path, share_with=repo)
    with repo.snapshot():
        job = repo.require_job(job_id)
        stages = repo.stages_by_job([job.id])[job.id]
        position = repo.queue_positions([job.id]).get(job.id)
        totals = repo.worker_totals([job.id]).get(job.id, (0, None))
        worker_rows = repo.list_job_workers(job.id)
        samples = repo.list_speed_samples([int(w["id"]) for w in worker_rows])
        if job.playlist_ids:
            playlist_ids = job.playlist_ids
        else:
            playlist_ids = [p["id"] for p in catalog.list_playlists(wanted_only=True)][:50]
        progress = catalog.playlist_progress(playlist_ids)
        events = repo.list_events(job.id, limit=20)
        failed_items = job_failed_items(repo, job.id, limit=20)
    row = build_task_row(job, stages, position, totals)
    order = {s: n for n, s in enumerate(STAGE_ORDER)}
    return JobDetailView(
        job=row,
        stages=tuple(
            StageView(
                id=s.id,
                stage_type=s.stage_type,
                seq_no=s.seq_no,
                status=s.status,
                total_items=s.total_items,
                success_items=s.success_items,
                failed_items=s.failed_items,
                skipped_items=s.skipped_items,
                progress_text=f"{s.done_items} / {s.total_items} "
                f"{STAGE_UNITS.get(s.stage_type, 'items')}",
                progress_percent=_progress_percent(s.done_items, s.total_items),
            )
            for s in sorted(stages, key=lambda s: (order.get(s.stage_type, 9), s.seq_no))
        ),
        workers=tuple(serialize_worker(w, samples.get(int(w["id"]))) for w in worker_rows),
        playlist_progress=tuple(
            PlaylistProgressView(
                playlist_id=int(p["playlist_id"]),
                playlist_name=p["playlist_name"],
                total_songs=int(p["total_songs"]),
                downloaded_songs=int(p["downloaded_songs"]),
                progress_text=f"{p['downloaded_songs']} / {p['total_songs']}",
                progress_percent=_progress_percent(
                    int(p["downloaded_songs"]), int(p["total_songs"])
                ),
            )
            for p in progress
        ),
        events=tuple(event_view(e) for e in events),
        failed_items=failed_items,
    )


def job_failed_items(
    repo: OpsRepository, job_id: int, *, limit: int | None = 20, offset: int = 0
) -> FailedItems:
    """A job's failed items, by item id, and how many there are (two queries).

    ``limit=None`` lists them all. The error text has URL credentials masked.
    """
    total, rows = repo.failed_items(int(job_id), limit=limit, offset=offset)
    items = []
    for row in rows:
        name, singers = row["song_name"], str(row["song_singers"] or "").strip()
        song = None if name is None else (f"{name} / {singers}" if singers else str(name))
        items.append(
            FailedItemView(
                item_id=row["item_id"],
                stage_type=row["stage_type"],
                song_id=row["song_id"],
                song=song,
                playlist_id=row["playlist_id"],
                playlist=row["playlist"],
                error_code=row["error_code"],
                error=mask_secrets(row["error"]) if row["error"] else row["error"],
                attempts=int(row["attempts"] or 0),
                ended_at=row["ended_at"],
            )
        )
    return FailedItems(total=int(total), items=tuple(items))


def playlist_hint(row: dict[str, Any]) -> str:
    if int(row.get("song_count") or 0) == 0:
        return "0 songs, sync recommended"
    running = int(row.get("running_download_song_count") or 0)
    if running:
        return f"Running {running}"
    return "Idle"


def drift_text(row: dict[str, Any]) -> str:
    added, removed = row.get("drift_added"), row.get("drift_removed")
    if added is None and removed is None:
        return "-"
    return f"+{int(added or 0)} / -{int(removed or 0)}"


def playlist_rows(catalog: CatalogRepository) -> list[PlaylistRow]:
    """Every playlist for the picker and `playlists list`, with hint and drift text."""
    rows = catalog.playlist_picker_rows()
    return [
        PlaylistRow(
            id=int(r["id"]),
            name=r["name"],
            platform=r["platform"],
            pool_kind=r["pool_kind"],
            source_name=r["source_name"],
            ref=r["ref"],
            song_count=int(r["song_count"] or 0),
            downloaded_song_count=int(r["downloaded_song_count"] or 0),
            wanted=bool(r["wanted"]),
            last_synced_at=r["last_synced_at"],
            last_error=r["last_error"],
            drift_added=r["drift_added"],
            drift_removed=r["drift_removed"],
            drift=drift_text(r),
            running_download_song_count=int(r["running_download_song_count"] or 0),
            hint=playlist_hint(r),
            sync_policy=r.get("sync_policy") or "add",
        )
        for r in rows
    ]
