"""Follow jobs to their end on a console: a rich progress bar, or plain lines when piped."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from catalogsync.ops.models import JobStatus
from catalogsync.service import Catalogsync

POLL_SECONDS = 0.5
PLAIN_EVERY_SECONDS = 2.0


def _line(row: dict[str, Any]) -> str:
    return (
        f"job {row['id']} {row['display_name']}: {row['status']}, "
        f"{row['primary_progress_text']}, lane {row['queue_label']}"
    )


def follow_jobs(
    service: Catalogsync,
    job_ids: Iterable[int],
    console: Console,
    *,
    timeout: float | None = None,
) -> dict[int, str]:
    """Show progress until every job has finished or paused; returns final statuses."""
    ids = list(job_ids)
    deadline = None if timeout is None else time.monotonic() + timeout

    def rows() -> dict[int, dict[str, Any]]:
        return {i: service.job_row(i) for i in ids}

    def settled(current: dict[int, dict[str, Any]]) -> bool:
        return all(
            JobStatus(r["status"]).is_finished or r["status"] == JobStatus.PAUSED
            for r in current.values()
        )

    current = rows()
    if console.is_terminal:
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
                i: progress.add_task("", total=None, label=f"#{i} {r['display_name']}",
                                     status=r["status"], speed="")
                for i, r in current.items()
            }
            while not settled(current) and (deadline is None or time.monotonic() < deadline):
                for i, r in current.items():
                    progress.update(
                        tasks[i],
                        total=max(r["total_items"], 1),
                        completed=r["done_items"],
                        status=f"{r['status']} ({r['current_stage'] or r['queue_label']})",
                        speed=r["speed_text"] if r["speed_text"] != "-" else "",
                    )
                time.sleep(POLL_SECONDS)
                current = rows()
            for i, r in current.items():
                progress.update(
                    tasks[i], total=max(r["total_items"], 1), completed=r["done_items"],
                    status=r["status"], speed="",
                )
    else:
        last_print = 0.0
        last_text: dict[int, str] = {}
        while not settled(current) and (deadline is None or time.monotonic() < deadline):
            now = time.monotonic()
            for i, r in current.items():
                text = _line(r)
                if text != last_text.get(i) and now - last_print >= PLAIN_EVERY_SECONDS:
                    console.print(text, highlight=False, markup=False)
                    last_text[i] = text
            if now - last_print >= PLAIN_EVERY_SECONDS:
                last_print = now
            time.sleep(POLL_SECONDS)
            current = rows()
        for r in current.values():
            console.print(_line(r), highlight=False, markup=False)
    return {i: r["status"] for i, r in current.items()}
