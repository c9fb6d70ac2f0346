"""The log view (`l`): every notification this session showed and the newest job events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from catalogsync import clock
from catalogsync.ops.readmodels import EventView
from tui.formatting import plain
from tui.widgets.footer import FittedFooter
from tui.widgets.keyed_table import Cells, ColumnSpec, KeyedTable

if TYPE_CHECKING:
    from tui.app import CatalogsyncApp

LEVEL_STYLES = {"error": "bold red", "warning": "yellow", "information": "", "info": ""}


def clock_text(at: float | None) -> str:
    """`12:03:07` in local time."""
    import time

    return time.strftime("%H:%M:%S", time.localtime(at)) if at is not None else "-"


def log_entries(
    notices: list[tuple[float, str, str]], events: Sequence[EventView]
) -> list[tuple[str, Cells]]:
    """Notifications and events in one list, newest first."""
    merged: list[tuple[float, str, Cells]] = []
    for n, (at, severity, message) in enumerate(notices):
        merged.append(
            (
                at,
                f"n{n}",
                {
                    "when": Text(clock_text(at), style="dim"),
                    "kind": Text("notice", style="bold"),
                    "job": Text("-"),
                    "level": Text(
                        severity.replace("information", "info"),
                        style=LEVEL_STYLES.get(severity, ""),
                    ),
                    "message": plain(message),
                },
            )
        )
    for event in events:
        at = clock.parse_text(event.created_at) or 0.0
        level = str(event.level or "info")
        merged.append(
            (
                at,
                f"e{event.id}",
                {
                    "when": Text(clock_text(at), style="dim"),
                    "kind": Text("event"),
                    "job": Text(str(event.job_run_id or "-")),
                    "level": Text(level, style=LEVEL_STYLES.get(level, "")),
                    "message": plain(event.message),
                },
            )
        )
    merged.sort(key=lambda entry: (-entry[0], entry[1]))
    return [(key, cells) for _, key, cells in merged]


class LogTable(KeyedTable):
    """Newest first."""

    KEY_COLUMN: ClassVar[str] = "key"
    COLUMNS: ClassVar[tuple[ColumnSpec, ...]] = (
        ColumnSpec("when", "When", 8, 8),
        ColumnSpec("kind", "Kind", 6, 6, None),
        ColumnSpec("job", "Job", 4, 4),
        ColumnSpec("level", "Level", 7, 7, 5),
        ColumnSpec("message", "Message", 80, 47, 33),
    )
    NARROW_BELOW: ClassVar[int] = 110

    def sync_entries(self, entries: list[tuple[str, Cells]]) -> None:
        """Rows keyed by notice / event id; the order is the list's."""
        self.sync_rows(entries)

    def _apply(self, rows: list[tuple[str, Cells]], *, keep: str | None) -> None:
        # The log only grows at the top: rebuilding is cheap and keeps the order right.
        if [k for k, _ in rows] != self.row_keys():
            self.clear()
            self._shown.clear()
        super()._apply(rows, keep=keep)


class LogScreen(Screen[None]):
    """Notification history and job events, refreshed with the task center."""

    BINDINGS = [
        Binding(
            "escape,l,1",
            "back",
            "Back",
            id="log.back",
            key_display="Esc",
            tooltip="Back to the task center",
        ),
    ]

    def __init__(self) -> None:
        super().__init__(id="log")

    @property
    def capp(self) -> CatalogsyncApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(
            Text.assemble(
                ("Log", "bold"),
                (" · notifications of this session and the newest job events · Esc back", "dim"),
            ),
            id="log-title",
        )
        yield LogTable(id="log-table")
        yield FittedFooter()

    def on_mount(self) -> None:
        self.query_one(LogTable).focus()

    def show_log(self, notices: list[tuple[float, str, str]], events: Sequence[EventView]) -> None:
        """Take the app's notification history and a fresh read of the events."""
        self.query_one(LogTable).sync_entries(log_entries(notices, events))

    def action_back(self) -> None:
        """Back to the task center."""
        self.capp.show_tasks()
