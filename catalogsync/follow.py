"""Follow jobs to their end on a console: a rich progress bar, or plain lines when piped.

Event-driven rather than interval-polled: between refreshes the follower waits on the
database (``Catalogsync.wait_for_change``), and after every commit anyone makes it reads
the jobs' statuses (one small query), so it learns of the end within milliseconds. The
fuller rows behind the progress display are read at most every ``REFRESH_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.console import Console

from catalogsync.cli_render import status_text
from catalogsync.ops.models import JobStatus
from catalogsync.ops.readmodels import TaskRow
from catalogsync.service import Catalogsync

REFRESH_SECONDS = 0.5
PLAIN_EVERY_SECONDS = 2.0


def _line(row: TaskRow) -> str:
    return (
        f"job {row.id} {row.display_name}: {status_text(row.status, row.queue_label).plain}, "
        f"{row.primary_progress_text}, {row.lane_type} lane"
    )


def _settled(statuses: Iterable[JobStatus | str]) -> bool:
    return all(JobStatus(s).is_finished or s == JobStatus.PAUSED for s in statuses)


class _Watch:
    """The jobs being followed: cheap status checks, and full rows when it is time."""

    def __init__(self, service: Catalogsync, ids: list[int], timeout: float | None) -> None:
        self.service = service
        self.ids = ids
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.refresh_at = 0.0  # when the display's rows are due again

    def rows(self) -> dict[int, TaskRow]:
        self.refresh_at = time.monotonic() + REFRESH_SECONDS
        return {i: self.service.job_row(i) for i in self.ids}

    def statuses(self) -> dict[int, JobStatus]:
        found = self.service.job_statuses(self.ids)
        # A job that vanished (deleted underneath us) counts as failed, never as a hang.
        return {i: found.get(i, JobStatus.FAILED) for i in self.ids}

    def timed_out(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def next_change(self) -> bool:
        """Wait for a commit or the next refresh; True when the jobs have settled.

        A caller that reads no rows (``-q``) still waits a whole refresh interval each
        time: the due time moves on here too, or the wait would end at once, again and
        again (a quiet ``--wait`` once spun on the status query and took the GIL from
        the embedded runner's workers).
        """
        if self.refresh_at <= time.monotonic():
            self.refresh_at = time.monotonic() + REFRESH_SECONDS
        while True:
            remaining = self.refresh_at - time.monotonic()
            if self.deadline is not None:
                remaining = min(remaining, self.deadline - time.monotonic())
            if remaining <= 0:
                return _settled(self.statuses().values())
            if self.service.wait_for_change(remaining) and _settled(self.statuses().values()):
                return True


def follow_jobs(
    service: Catalogsync,
    job_ids: Iterable[int],
    console: Console,
    *,
    timeout: float | None = None,
    quiet: bool = False,
) -> dict[int, str]:
    """Show progress until every job has finished or paused; returns final statuses.

    ``quiet`` (or a quiet console) waits the same way but prints nothing (`-q`).
    """
    watch = _Watch(service, list(job_ids), timeout)
    current = watch.rows()
    done = _settled(r.status for r in current.values())
    if quiet or console.quiet:
        while not done and not watch.timed_out():
            done = watch.next_change()
        return {i: str(s.value) for i, s in watch.statuses().items()}
    if console.is_terminal:
        # Only here: a script's --wait (piped or -q) never loads the progress display.
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(
            TextColumn("[bold]{task.fields[label]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            tasks = {
                i: progress.add_task(
                    "", total=None, label=f"#{i} {r.display_name}", status=r.status, speed=""
                )
                for i, r in current.items()
            }
            while not done and not watch.timed_out():
                for i, r in current.items():
                    progress.update(
                        tasks[i],
                        total=max(r.total_items, 1),
                        completed=r.done_items,
                        status=f"{r.status} ({r.current_stage or r.queue_label})",
                        speed=r.speed_text if r.speed_text != "-" else "",
                    )
                done = watch.next_change()
                current = watch.rows()
            for i, r in current.items():
                progress.update(
                    tasks[i],
                    total=max(r.total_items, 1),
                    completed=r.done_items,
                    status=r.status,
                    speed="",
                )
    else:
        last_print = 0.0
        last_text: dict[int, str] = {}
        while not done and not watch.timed_out():
            now = time.monotonic()
            if now - last_print >= PLAIN_EVERY_SECONDS:
                for i, r in current.items():
                    text = _line(r)
                    if text != last_text.get(i):
                        console.print(text, highlight=False, markup=False)
                        last_text[i] = text
                last_print = now
            done = watch.next_change()
            current = watch.rows()
        for r in current.values():
            console.print(_line(r), highlight=False, markup=False)
    return {i: str(r.status) for i, r in current.items()}
