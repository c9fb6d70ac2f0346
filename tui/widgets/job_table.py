"""The task table: one row per job, keyed by job id."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding

from tui.formatting import plain, status_label, status_text
from tui.widgets.keyed_table import Cells, ColumnSpec, KeyedTable

LANE_STYLES = {"running": "green", "download": "dim", "general": "dim"}


def job_cells(row: dict[str, Any]) -> Cells:
    """The cells of one task-center row (rich Text, never markup)."""
    queue_label = str(row.get("queue_label") or row.get("lane_type") or "-")
    workers = int(row.get("active_worker_count") or 0)
    return {
        "id": Text(str(row["id"]), style="bold"),
        "task": plain(row.get("display_name") or row.get("job_type")),
        "status": status_text(str(row.get("status"))),
        "scope": plain(row.get("scope_summary")),
        "progress": plain(row.get("primary_progress_text")),
        "workers": Text(str(workers) if workers else "-", justify="right"),
        "lane": Text(queue_label, style=LANE_STYLES.get(queue_label, "yellow")),
    }


def filter_key(text: str) -> str:
    """The filter text as it is matched: trimmed, any case."""
    return text.strip().lower()


def job_matches(row: dict[str, Any], text: str) -> bool:
    """Whether the filter text occurs in the job's name, status or scope (any case)."""
    needle = filter_key(text)
    if not needle:
        return True
    status = str(row.get("status") or "")
    haystack = " ".join(
        (str(row.get("display_name") or ""), status, status_label(status),
         str(row.get("scope_summary") or ""))
    )
    return needle in haystack.lower()


class JobTable(KeyedTable):
    """Jobs in task-center order; Enter (RowSelected) toggles the detail pane."""

    COLUMNS: ClassVar[tuple[ColumnSpec, ...]] = (
        ColumnSpec("id", "ID", 4, 3),
        ColumnSpec("task", "Task", 27, 21),
        ColumnSpec("status", "Status", 12, 12),
        ColumnSpec("scope", "Scope", 12, None),
        ColumnSpec("progress", "Primary Progress", 26, 23),
        ColumnSpec("workers", "Workers", 7, None),
        ColumnSpec("lane", "Lane", 10, 9),
    )
    NARROW_BELOW: ClassVar[int] = 110
    # Not in the footer (no room at 80 columns): the header shows the hint instead.
    BINDINGS = [Binding("enter", "select_cursor", "Detail", id="task.detail", show=False,
                        tooltip="Expand or collapse the highlighted job's detail")]

    def show_jobs(self, rows: Iterable[dict[str, Any]]) -> None:
        """Show these task rows in this order."""
        self.sync_rows([(str(row["id"]), job_cells(row)) for row in rows])

    @property
    def highlighted_job_id(self) -> int | None:
        """The id of the job under the cursor."""
        key = self.highlighted_key
        return int(key) if key is not None else None
