"""Plain-terminal renderings of the read models for the CLI (the TUI has its own)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from catalogsync.ops.readmodels import (
    DashboardView,
    JobDetailView,
    PlaylistRow,
    TaskRow,
    WorkerView,
)

STATUS_STYLES = {
    "running": "green",
    "pause_requested": "yellow",
    "queued": "cyan",
    "paused": "yellow",
    "completed": "dim",
    "completed_with_errors": "red",
    "failed": "bold red",
    "canceled": "dim",
}


def local_time(value: str | None, default: str = "") -> str:
    """A stored UTC timestamp shown in this machine's local time (JSON keeps UTC)."""
    if not value:
        return default
    try:
        at = datetime.strptime(value[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return value
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def status_text(status: str, queue_label: str = "") -> Text:
    """A job's status; a queued one with its place in its lane (`queued #2`)."""
    shown = queue_label if status == "queued" and queue_label.startswith("queued") else status
    return Text(shown, style=STATUS_STYLES.get(status, ""))


def render_jobs(console: Console, rows: Sequence[TaskRow]) -> None:
    if not rows:
        console.print("no jobs yet: `catalogsync jobs submit catalog_sync` queues one")
        return
    table = Table("ID", "Task", "Status", "Scope", "Primary Progress", "Workers", "Lane")
    for row in rows:
        table.add_row(
            str(row.id),
            Text(row.display_name),
            status_text(row.status, row.queue_label),
            Text(row.scope_summary),
            Text(row.primary_progress_text),
            str(row.active_worker_count),
            Text(row.lane_type),
        )
    console.print(table)


def render_status(console: Console, payload: DashboardView) -> None:
    s = payload.summary
    stats = payload.download_stats
    runner = payload.runner
    console.print(
        Text(
            f"running {s.running_jobs} | queued downloads {s.queued_download_jobs} | "
            f"queued {s.queued_jobs} | paused {s.paused_jobs} | failed {s.failed_jobs} | "
            f"speed {stats.speed_text}"
        )
    )
    console.print(
        Text(
            f"library: {stats.downloaded_songs} of {stats.total_songs} songs "
            f"downloaded | runner: "
            + (f"pid {runner.pid} on {runner.host}" if runner else "not running")
        )
    )
    render_jobs(console, payload.task_rows)
    render_workers(console, payload.workers)


def render_workers(console: Console, workers: Sequence[WorkerView]) -> None:
    if not workers:
        return
    table = Table("Job", "Worker", "Now", "Bytes", "Speed", "%")
    for w in workers:
        percent = w.progress_percent
        table.add_row(
            str(w.job_run_id or ""),
            w.worker_name,
            Text(w.display_text or "-"),
            w.bytes_text,
            w.speed_text,
            f"{percent:.0f}" if percent is not None else "-",
        )
    console.print(table)


def render_job_detail(console: Console, detail: JobDetailView) -> None:
    job = detail.job
    console.print(
        Text.assemble(
            (f"job {job.id} {job.display_name} ", "bold"),
            status_text(job.status, job.queue_label),
            f"  {job.scope_summary}  {job.primary_progress_text}  {job.lane_type} lane",
        )
    )
    if job.pause_reason and job.status == "paused":
        console.print(Text(f"paused: {job.pause_reason}", style="yellow"))
    if job.error:
        console.print(Text(job.error, style="red"))
    table = Table("Stage", "Status", "Progress", "Failed", "Skipped")
    for stage in detail.stages:
        table.add_row(
            stage.stage_type,
            status_text(stage.status),
            stage.progress_text,
            str(stage.failed_items),
            str(stage.skipped_items),
        )
    console.print(table)
    render_workers(console, [w for w in detail.workers if w.status == "running"])
    failed = detail.failed_items
    if failed.total:
        table = Table("Item", "Song", "Playlist", "Code", "Error", title=f"{failed.total} failed")
        for item in failed.items:
            table.add_row(
                str(item.item_id),
                Text(item.song or "-"),
                Text(item.playlist or "-"),
                item.error_code or "-",
                Text(item.error or ""),
            )
        console.print(table)
        hidden = failed.total - len(failed.items)
        if hidden > 0:
            console.print(f"... and {hidden} more: catalogsync jobs show {job.id} --failed")
    if detail.playlist_progress:
        table = Table("Playlist", "Downloaded", "%")
        for p in detail.playlist_progress:
            table.add_row(Text(p.playlist_name), p.progress_text, f"{p.progress_percent:.0f}")
        console.print(table)
    for event in detail.events[:10]:
        console.print(Text(f"{local_time(event.created_at)}  {event.message}", style="dim"))


def render_playlists(console: Console, rows: Sequence[PlaylistRow]) -> None:
    if not rows:
        console.print("no playlists yet: `catalogsync playlists add FILE_OR_URL` adds one")
        return
    table = Table("ID", "Name", "Platform", "Songs", "Wanted", "Last synced", "Drift", "Hint")
    for row in rows:
        table.add_row(
            str(row.id),
            Text(row.name),
            row.platform,
            str(row.song_count),
            "yes" if row.wanted else "no",
            local_time(row.last_synced_at, "never"),
            row.drift,
            Text(row.hint),
        )
    console.print(table)
