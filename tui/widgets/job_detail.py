"""The expanded job: stages with counters, active workers, playlist progress, recent events."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from catalogsync.ops.readmodels import (
    EventView,
    FailedItems,
    FailedItemView,
    JobDetailView,
    PlaylistProgressView,
    StageView,
    TaskRow,
    WorkerView,
)
from catalogsync.transfer.meter import format_speed
from tui.formatting import percent_text, relative_time, status_text
from tui.widgets.updates import update_if_changed
from tui.widgets.worker_row import WorkerRow

EVENT_STYLES = {"error": "red", "warning": "yellow"}


def title_text(job: TaskRow) -> Text:
    """`Job 4 · Download Selected Playlists · running · 2 playlists` (+ pause reason, error)."""
    text = Text.assemble((f"Job {job.id}", "bold"), " · ", str(job.display_name), " · ")
    text.append_text(status_text(str(job.status)))
    text.append(f" · {job.scope_summary}", style="dim")
    if job.pause_reason and job.status == "paused":
        text.append(f"\nPaused: {job.pause_reason}", style="yellow")
    if job.error:
        text.append(f"\nError: {job.error}", style="red")
    return text


def stages_text(stages: Sequence[StageView]) -> Text:
    """One line per stage: type, status, `done / total unit`, percent, failed and skipped."""
    text = Text("Stages", style="bold")
    if not stages:
        text.append("\n  not planned yet", style="dim")
    for stage in stages:
        text.append(f"\n  {stage.stage_type:<10}")
        status = status_text(str(stage.status))
        status.pad_right(max(1, 13 - len(status)))
        text.append_text(status)
        total = stage.total_items
        if total == 0 and stage.status in ("completed", "skipped", "canceled"):
            text.append(f"{'nothing to do':<16}{'-':>5}", style="dim")
        else:
            percent = percent_text(stage.progress_percent) if total else "-"
            text.append(f"{stage.progress_text:<16}{percent:>5}")
        failed, skipped = stage.failed_items, stage.skipped_items
        text.append(f"  failed {failed}", style="red" if failed else "dim")
        text.append(f"  skipped {skipped}", style="dim")
    return text


def playlists_text(progress: Sequence[PlaylistProgressView]) -> Text:
    """`Morning Commute   6 / 12   50%` per playlist in scope."""
    text = Text("Playlists", style="bold")
    if not progress:
        text.append("\n  none in scope", style="dim")
    for row in progress:
        name = str(row.playlist_name or row.playlist_id)
        name = name if len(name) <= 28 else name[:27] + "…"
        text.append(f"\n  {name:<28} {row.progress_text:>9} ")
        text.append(f"{percent_text(row.progress_percent):>5}", style="bold")
    return text


def failed_line(item: FailedItemView) -> Text:
    """`Song / Artist · Playlist · http_404 · HTTP 404 from … · 3 tries` (one line)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    name = item.song or item.playlist or f"item {item.item_id}"
    text.append(str(name), style="bold")
    if item.song and item.playlist:
        text.append(f" · {item.playlist}", style="dim")
    text.append(f" · {item.error_code or 'error'}", style="red")
    text.append(f" · {item.error or '-'}")
    attempts = item.attempts
    text.append(f" · {attempts} {'try' if attempts == 1 else 'tries'}", style="dim")
    return text


def failures_text(failed: FailedItems | None, limit: int = 5) -> Text:
    """The first failed items, and how to see them all (`f`) and retry them (`R`)."""
    total = failed.total if failed else 0
    text = Text.assemble(("Failed items", "bold"), (f"  {total}", "bold red"))
    text.append("  f: all of them · R: retry them", style="dim")
    for item in (failed.items if failed else ())[:limit]:
        text.append("\n  ")
        text.append_text(failed_line(item))
    if total > limit:
        text.append(f"\n  … {total - limit} more (f)", style="dim")
    return text


def job_speed_scale(workers: Sequence[WorkerView]) -> float:
    """One scale for every worker of a job: the highest speed any of them shows."""
    peak = 0.0
    for worker in workers:
        for value in (*worker.speed_samples, worker.speed_bytes_per_sec):
            peak = max(peak, float(value or 0.0))
    return peak


def events_text(events: Sequence[EventView], limit: int = 6) -> Text:
    """The newest events with a relative time, one line each."""
    text = Text("Events", style="bold")
    if not events:
        text.append("\n  none yet", style="dim")
    for event in events[:limit]:
        text.append(f"\n  {relative_time(event.created_at):>11}  ", style="dim")
        text.append(str(event.message), style=EVENT_STYLES.get(str(event.level), ""))
    return text


class JobDetail(VerticalScroll):
    """The detail pane under the task table; ``show`` updates it in place each refresh."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.job_id: int | None = None
        self._rows: dict[int, WorkerRow] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        yield Static(id="detail-stages")
        yield Static(Text("Workers", style="bold"), id="detail-workers-title")
        yield Vertical(id="detail-workers")
        yield Static(id="detail-failures")
        yield Static(id="detail-playlists")
        yield Static(id="detail-events")

    def show_loading(self, job_id: int) -> None:
        """Point the pane at another job until its detail arrives."""
        self.job_id = job_id
        title = Text(f"Job {job_id} · loading…")
        update_if_changed(self.query_one("#detail-title", Static), title)
        self.query_one("#detail-failures").display = False
        for static_id in ("#detail-stages", "#detail-playlists", "#detail-events"):
            update_if_changed(self.query_one(static_id, Static), "")
        self._show_workers([])

    def show(self, detail: JobDetailView) -> None:
        """Take a job detail from the read model."""
        job = detail.job
        self.job_id = job.id
        update_if_changed(self.query_one("#detail-title", Static), title_text(job))
        stages = stages_text(detail.stages)
        update_if_changed(self.query_one("#detail-stages", Static), stages)
        update_if_changed(
            self.query_one("#detail-playlists", Static), playlists_text(detail.playlist_progress)
        )
        events = events_text(detail.events)
        update_if_changed(self.query_one("#detail-events", Static), events)
        failed = detail.failed_items
        box = self.query_one("#detail-failures", Static)
        box.display = bool(failed.total)
        if box.display:
            update_if_changed(box, failures_text(failed))
        self._show_workers([w for w in detail.workers if w.status == "running"])

    def _show_workers(self, workers: list[WorkerView]) -> None:
        scale = job_speed_scale(workers)
        box = self.query_one("#detail-workers", Vertical)
        wanted = {w.id for w in workers}
        for worker_id in [i for i in self._rows if i not in wanted]:
            self._rows.pop(worker_id).remove()
        for index, worker in enumerate(workers):
            row = self._rows.get(worker.id)
            if row is not None:
                row.show(worker, scale)
                continue
            # Keep the read model's order (by worker name) when a worker joins.
            later = next(
                (self._rows[i] for i in (w.id for w in workers[index + 1 :]) if i in self._rows),
                None,
            )
            row = self._rows[worker.id] = WorkerRow(worker, scale)
            if later is not None:
                box.mount(row, before=later)
            else:
                box.mount(row)
        box.set_class(not workers, "-empty")
        update_if_changed(
            self.query_one("#detail-workers-title", Static),
            Text.assemble(
                ("Workers", "bold"),
                (
                    f"  bars: one scale, full = {format_speed(scale)}"
                    if workers and scale
                    else ""
                    if workers
                    else "  none active",
                    "dim",
                ),
            ),
        )
