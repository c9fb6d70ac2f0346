"""The task table: one row per job, keyed by job id; filter facets and a cycling sort."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Protocol

from rich.text import Text
from textual.binding import Binding

from catalogsync.ops.readmodels import TaskRow
from tui.formatting import plain, status_label, status_text
from tui.widgets.keyed_table import Cells, ColumnSpec, KeyedTable

LANE_STYLES = {"download": "cyan", "general": "magenta"}
FINISHED = ("completed", "completed_with_errors", "failed", "canceled")


def progress_text(row: TaskRow) -> str:
    """`17 / 18 songs`; `nothing to do` for a finished job that had no items; `-` before
    a queued job is planned."""
    if row.total_items == 0:
        return "nothing to do" if row.status in FINISHED else "-"
    return (row.primary_progress_text or "-").split(" | ")[0]


def status_cell(row: TaskRow) -> Text:
    """The status, with the job's place in its lane's queue when queued (`queued #2`)."""
    text = status_text(str(row.status))
    if row.status == "queued" and row.queue_position:
        text.append(f" #{row.queue_position}")
    return text


def job_cells(row: TaskRow) -> Cells:
    """The cells of one task-center row (rich Text, never markup)."""
    workers = row.active_worker_count
    lane = row.lane_type or "-"
    speed = row.speed_text if row.speed_bytes_per_sec else "-"
    return {
        "id": Text(str(row.id), style="bold"),
        "task": plain(row.display_name or row.job_type),
        "status": status_cell(row),
        "scope": plain(row.scope_summary),
        "progress": Text(progress_text(row)),
        "speed": Text(str(speed), justify="right", style="bold" if speed != "-" else "dim"),
        "workers": Text(str(workers) if workers else "-", justify="right"),
        "lane": Text(lane, style=LANE_STYLES.get(lane, "")),
    }


def filter_key(text: str) -> str:
    """The filter text as it is matched: trimmed, any case."""
    return text.strip().lower()


# facet -> the row fields it looks at (prefix match)
FACETS = {
    "status": ("status", "status_label"),
    "type": ("job_type",),
    "lane": ("lane_type",),
}


class Filterable(Protocol):
    """What a job filter looks at: a task row, or the engine's ``JobFacts`` of any job."""

    @property
    def display_name(self) -> str: ...
    @property
    def job_type(self) -> str: ...
    @property
    def lane_type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def scope_summary(self) -> str: ...


def job_matches(row: Filterable, text: str) -> bool:
    """Whether every word of the filter matches the job: `status:failed`, `type:sync`,
    `lane:download` look at one field (by prefix); other words at the name, status or
    scope (any case)."""
    needle = filter_key(text)
    if not needle:
        return True
    status = str(row.status or "")
    fields = {
        "status": status,
        "status_label": status_label(status),
        "job_type": str(row.job_type or ""),
        "lane_type": str(row.lane_type or ""),
    }
    haystack = " ".join(
        (str(row.display_name or ""), status, status_label(status), str(row.scope_summary or ""))
    ).lower()
    for word in needle.split():
        facet, _, value = word.partition(":")
        if value and facet in FACETS:
            if not any(fields[f].lower().startswith(value) for f in FACETS[facet]):
                return False
        elif word not in haystack:
            return False
    return True


def _progress_key(row: TaskRow) -> tuple[float, int]:
    return (-float(row.primary_progress_percent or 0.0), row.id)


# name, column marked, key (None: the task center's own order: running, queued, paused, newest)
SORTS: tuple[tuple[str, str, Callable[[TaskRow], Any] | None], ...] = (
    ("queue", "id", None),
    ("newest", "id", lambda r: -r.id),
    ("status", "status", lambda r: (str(r.status), r.id)),
    ("task", "task", lambda r: ((r.display_name or "").lower(), r.id)),
    ("progress", "progress", _progress_key),
    ("speed", "speed", lambda r: (-float(r.speed_bytes_per_sec or 0.0), r.id)),
)


class JobTable(KeyedTable):
    """Jobs in task-center order (or sorted by a column); Enter toggles the detail pane."""

    COLUMNS: ClassVar[tuple[ColumnSpec, ...]] = (
        ColumnSpec("id", "ID", 4, 3),
        ColumnSpec("task", "Task", 27, 19, 11),
        ColumnSpec("status", "Status", 12, 12, 10),
        ColumnSpec("scope", "Scope", 12, None),
        ColumnSpec("progress", "Progress", 17, 15),
        ColumnSpec("speed", "Speed", 9, 9),
        ColumnSpec("workers", "Workers", 7, None),
        ColumnSpec("lane", "Lane", 8, 8, None),
    )
    NARROW_BELOW: ClassVar[int] = 110
    # Not in the footer (no room at 80 columns): the header shows the hint instead.
    BINDINGS = [
        Binding(
            "enter",
            "select_cursor",
            "Detail",
            id="task.detail",
            show=False,
            tooltip="Expand or collapse the highlighted job's detail",
        )
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.sort_index = 0

    @property
    def sort_name(self) -> str:
        """`queue` (the task center's order), `newest`, `status`, `task`, `progress`..."""
        return SORTS[self.sort_index][0]

    def cycle_sort(self) -> str:
        """Next sort; the sorted column's header gets a ▼."""
        old_column = SORTS[self.sort_index][1]
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        name, column, _ = SORTS[self.sort_index]
        self.set_column_label(
            old_column, next(c.label for c in self.COLUMNS if c.key == old_column)
        )
        if name != "queue":
            label = next(c.label for c in self.COLUMNS if c.key == column)
            self.set_column_label(column, f"{label} ▼")
        return name

    def show_jobs(self, rows: Iterable[TaskRow]) -> None:
        """Show these task rows in this order (or the chosen sort's)."""
        ordered = list(rows)
        key = SORTS[self.sort_index][2]
        if key is not None:
            ordered.sort(key=key)
        self.sync_rows([(str(row.id), job_cells(row)) for row in ordered])

    @property
    def highlighted_job_id(self) -> int | None:
        """The id of the job under the cursor."""
        key = self.highlighted_key
        return int(key) if key is not None else None
