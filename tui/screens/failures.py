"""Every failed item of one job: song, playlist, error code, message, attempts; `R` retries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from catalogsync.ops.readmodels import FailedItems, FailedItemView, TaskRow
from tui.formatting import plain, relative_time
from tui.widgets.footer import FittedFooter
from tui.widgets.keyed_table import Cells, ColumnSpec, KeyedTable

if TYPE_CHECKING:
    from tui.app import CatalogsyncApp


def failure_cells(item: FailedItemView) -> Cells:
    """The cells of one failed item."""
    return {
        "id": Text(str(item.item_id), style="bold"),
        "song": plain(item.song or item.stage_type),
        "playlist": plain(item.playlist),
        "code": Text(str(item.error_code or "-"), style="red"),
        "error": plain(item.error),
        "tries": Text(str(item.attempts or 0), justify="right"),
        "when": plain(relative_time(item.ended_at, never="-")),
    }


class FailureTable(KeyedTable):
    """Failed items by item id."""

    COLUMNS: ClassVar[tuple[ColumnSpec, ...]] = (
        ColumnSpec("id", "Item", 5, 5, 4),
        ColumnSpec("song", "Song", 28, 20, 16),
        ColumnSpec("playlist", "Playlist", 16, 12, None),
        ColumnSpec("code", "Code", 12, 10, 9),
        ColumnSpec("error", "Error", 34, 16, 18),
        ColumnSpec("tries", "Tries", 5, 5),
        ColumnSpec("when", "When", 11, None),
    )
    NARROW_BELOW: ClassVar[int] = 115


class FailuresScreen(Screen[None]):
    """The failures view of one job (the detail pane shows only the first few)."""

    @dataclass
    class ItemsRequested(Message):
        """Read every failed item of the job; the app answers with ``show_items``."""

        screen: FailuresScreen
        job_id: int

    @dataclass
    class RetryRequested(Message):
        """Retry the job's failed items, then read them again."""

        screen: FailuresScreen
        job_id: int

    BINDINGS = [
        Binding(
            "R,shift+r",
            "retry",
            "Retry all",
            id="failures.retry",
            key_display="R",
            tooltip="Retry every failed item of this job",
        ),
        Binding(
            "escape,f",
            "back",
            "Back",
            id="failures.back",
            key_display="Esc",
            tooltip="Back to the task center",
        ),
    ]

    def __init__(self, job: TaskRow) -> None:
        super().__init__(id="failures")
        self.job = job
        self.items: list[FailedItemView] = []
        self.total = 0

    @property
    def capp(self) -> CatalogsyncApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="failures-title")
        yield FailureTable(id="failure-table")
        yield Static(id="failures-empty")
        yield FittedFooter()

    def on_mount(self) -> None:
        self.query_one(FailureTable).focus()
        self.reload()

    def reload(self) -> None:
        """Read every failed item of the job."""
        self.post_message(self.ItemsRequested(self, self.job.id))

    def show_items(self, failed: FailedItems) -> None:
        """Show a ``job_failed_items`` read."""
        self.items, self.total = list(failed.items), failed.total
        title = Text.assemble(
            (f"Job {self.job.id}", "bold"),
            f" · {self.job.display_name} · ",
            (f"{self.total} failed item{'s' if self.total != 1 else ''}", "bold red"),
            ("  R retries them · Esc back", "dim"),
        )
        self.query_one("#failures-title", Static).update(title)
        self.query_one(FailureTable).sync_rows(
            [(str(item.item_id), failure_cells(item)) for item in self.items]
        )
        empty = self.query_one("#failures-empty", Static)
        empty.display = not self.items
        empty.update(Text("No failed items: nothing to retry.", style="dim"))

    def action_retry(self) -> None:
        """Retry the job's failed items, then read them again."""
        self.post_message(self.RetryRequested(self, self.job.id))

    def action_back(self) -> None:
        """Back to the task center."""
        self.dismiss(None)
