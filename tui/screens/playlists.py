"""The playlist picker: filter, select, and launch bulk sync / download or flag wanted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Input, Static

from catalogsync.ops.readmodels import PlaylistRow
from tui.widgets.footer import FittedFooter
from tui.widgets.playlist_table import PlaylistTable, playlist_matches

if TYPE_CHECKING:
    from tui.app import CatalogsyncApp

# action -> job type
BULK_JOBS = {"sync": "sync_only", "download": "download_only", "sync_download": "sync_download"}
# button id -> (key, label, narrow label); the seed's wording for the bulk actions.
BUTTONS = {
    "bulk-sync": ("s", "Sync Selected Playlists", "Sync"),
    "bulk-download": ("d", "Download Selected Playlists", "Download"),
    "bulk-sync_download": ("b", "Sync Then Download", "Sync+Download"),
    "wanted-yes": ("w", "Mark Wanted", "Mark Wanted"),
    "wanted-no": ("u", "Unmark Wanted", "Unmark Wanted"),
}


class PlaylistsScreen(Screen[None]):
    """Every playlist; the selection (kept in the order made) survives filtering and refresh.

    Jobs, wanted flags and plans are asked of the app with messages.
    """

    @dataclass
    class JobRequested(Message):
        """Queue a job of this type scoped to these playlists (in this order)."""

        job_type: str
        playlist_ids: tuple[int, ...]

    @dataclass
    class WantedRequested(Message):
        """Mark (or unmark) these playlists wanted."""

        playlist_ids: tuple[int, ...]
        wanted: bool

    @dataclass
    class PlanRequested(Message):
        """Show what syncing and downloading these playlists would do."""

        playlist_ids: tuple[int, ...]

    BINDINGS = [
        Binding(
            "space",
            "toggle_selection",
            "Select",
            id="playlists.toggle",
            tooltip="Select or unselect the highlighted playlist",
        ),
        Binding(
            "a",
            "select_shown",
            "All",
            id="playlists.all",
            tooltip="Select every playlist shown (again: unselect them)",
        ),
        # Shown on the action buttons, not in the footer (no room at 80 columns).
        Binding(
            "s",
            "bulk('sync')",
            "Sync Selected Playlists",
            show=False,
            id="playlists.sync",
            tooltip="Sync Selected Playlists (sync_only), in selection order",
        ),
        Binding(
            "d",
            "bulk('download')",
            "Download Selected Playlists",
            show=False,
            id="playlists.download",
            tooltip="Download Selected Playlists (download_only), in selection order",
        ),
        Binding(
            "b",
            "bulk('sync_download')",
            "Sync Then Download",
            show=False,
            id="playlists.sync_download",
            tooltip="Sync Then Download the selection (sync_download)",
        ),
        Binding(
            "w",
            "set_wanted(True)",
            "Mark Wanted",
            show=False,
            id="playlists.wanted",
            tooltip="Mark Wanted: their songs get downloaded",
        ),
        Binding(
            "u",
            "set_wanted(False)",
            "Unmark Wanted",
            show=False,
            id="playlists.unwanted",
            tooltip="Unmark Wanted (files already downloaded are kept)",
        ),
        Binding(
            "v",
            "plan",
            "Plan",
            id="playlists.plan",
            tooltip="What syncing and downloading the selection would do (changes nothing)",
        ),
        Binding(
            "slash",
            "filter",
            "Filter",
            id="playlists.filter",
            key_display="/",
            tooltip="Type to filter playlists (Enter or Esc back to the table)",
        ),
        Binding(
            "escape",
            "back",
            "Back",
            id="playlists.back",
            key_display="Esc",
            tooltip="Filter box: back to the table; table: clear the filter, then back",
        ),
        Binding(
            "1",
            "tasks",
            "Tasks",
            id="playlists.tasks",
            show=False,
            tooltip="Back to the task center (the filter is kept)",
        ),
    ]

    def __init__(self) -> None:
        super().__init__(id="playlists")
        self.rows: list[PlaylistRow] = []
        self.selected: list[int] = []
        self.filter_text = ""
        self._ready = False

    @property
    def capp(self) -> CatalogsyncApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="playlists-title")
        yield Input(
            placeholder="/ filter playlists by name, platform or hint",
            id="playlist-filter",
            compact=True,
        )
        yield PlaylistTable(id="playlist-table")
        # The buttons name their keys, so the footer keeps to selection and navigation.
        with Horizontal(id="playlist-actions"):
            for button_id, (key, label, _) in BUTTONS.items():
                yield Button(f"{key} {label}", id=button_id, compact=True)
        yield FittedFooter()

    def on_resize(self) -> None:
        narrow = self.size.width < 120
        for button_id, (key, label, short) in BUTTONS.items():
            self.query_one(f"#{button_id}", Button).label = f"{key} {short if narrow else label}"

    def on_mount(self) -> None:
        self._ready = True
        self._show_rows()
        self.query_one(PlaylistTable).focus()

    # -- data -------------------------------------------------------------

    def show_playlists(self, rows: list[PlaylistRow]) -> None:
        """Take a fresh read of every playlist."""
        self.rows = rows
        known = {r.id for r in rows}
        self.selected = [i for i in self.selected if i in known]
        self._show_rows()

    def shown_rows(self) -> list[PlaylistRow]:
        """The playlists the filter lets through."""
        return [r for r in self.rows if playlist_matches(r, self.filter_text)]

    def _show_rows(self) -> None:
        if self._ready:
            self.query_one(PlaylistTable).show_playlists(self.shown_rows(), self.selected)
            self._show_title()

    def _show_title(self) -> None:
        shown = len(self.shown_rows())
        text = Text.assemble(("Playlists", "bold"), f"  {shown} of {len(self.rows)} shown  ·  ")
        text.append(
            f"{len(self.selected)} selected", style="bold reverse" if self.selected else "bold"
        )
        if self.filter_text:
            text.append(f"  ·  filter: {self.filter_text}", style="dim")
        self.query_one("#playlists-title", Static).update(text)

    # -- selection ----------------------------------------------------------

    def action_toggle_selection(self) -> None:
        """Select or unselect the highlighted playlist."""
        playlist_id = self.query_one(PlaylistTable).highlighted_playlist_id
        if playlist_id is None:
            return
        if playlist_id in self.selected:
            self.selected.remove(playlist_id)
        else:
            self.selected.append(playlist_id)
        self._show_rows()

    def action_select_shown(self) -> None:
        """Select every playlist shown; when all already are, unselect them."""
        shown = [r.id for r in self.shown_rows()]
        if shown and all(i in self.selected for i in shown):
            self.selected = [i for i in self.selected if i not in shown]
        else:
            self.selected += [i for i in shown if i not in self.selected]
        self._show_rows()

    # -- filter -------------------------------------------------------------

    def action_filter(self) -> None:
        """Type into the filter."""
        self.query_one("#playlist-filter", Input).focus()

    @on(Input.Changed, "#playlist-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._show_rows()

    @on(Input.Submitted, "#playlist-filter")
    def _filter_submitted(self) -> None:
        self.query_one(PlaylistTable).focus()

    def action_back(self) -> None:
        """Esc as in the task center: in the filter back to the table (keeping it); on the
        table it clears the filter first, then returns to the task center."""
        box = self.query_one("#playlist-filter", Input)
        if box.has_focus:
            self.query_one(PlaylistTable).focus()
            return
        if self.filter_text:
            box.value = ""
            self.filter_text = ""
            self._show_rows()
            return
        self.capp.show_tasks()

    def action_tasks(self) -> None:
        """Back to the task center, keeping filter and selection."""
        self.capp.show_tasks()

    def on_key(self, event: events.Key) -> None:
        """A letter that is no key here says how to filter (typing alone does not)."""
        if (
            event.is_printable
            and event.character
            and event.character.isalpha()
            and self.query_one(PlaylistTable).has_focus
            and event.key not in self._bound_keys()
        ):
            self.notify(
                f"{event.character!r} is not a key here: / filters the playlists.", timeout=3
            )

    def _bound_keys(self) -> set[str]:
        return {
            key.strip()
            for binding in self.BINDINGS
            if isinstance(binding, Binding)
            for key in binding.key.split(",")
        } | {"j", "k", "g", "G", "l", "q"}

    # -- actions ------------------------------------------------------------

    @on(Button.Pressed, "#playlist-actions Button")
    def _button(self, event: Button.Pressed) -> None:
        button_id = str(event.button.id)
        if button_id.startswith("bulk-"):
            self.action_bulk(button_id.removeprefix("bulk-"))
        else:
            self.action_set_wanted(button_id == "wanted-yes")

    def _require_selection(self) -> list[int] | None:
        if not self.selected:
            self.notify(
                "Select playlists first: space selects, a selects all shown.", severity="warning"
            )
            return None
        return list(self.selected)

    def action_bulk(self, action: str) -> None:
        """Queue a sync / download / sync-then-download job scoped to the selection."""
        ids = self._require_selection()
        if ids is not None:
            self.post_message(self.JobRequested(BULK_JOBS[action], tuple(ids)))

    def unselect_all(self) -> None:
        """Unselect everything (after the selection's job was queued)."""
        self.selected = []
        self._show_rows()

    def action_set_wanted(self, wanted: bool) -> None:
        """Mark or unmark the selected playlists wanted."""
        ids = self._require_selection()
        if ids is not None:
            self.post_message(self.WantedRequested(tuple(ids), wanted))

    def action_plan(self) -> None:
        """Show the plan for the selection, and launch it from there if wanted."""
        ids = self._require_selection()
        if ids is not None:
            self.post_message(self.PlanRequested(tuple(ids)))
