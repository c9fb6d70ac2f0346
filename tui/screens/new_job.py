"""The new-job dialog: job type, playlists or sources, upload target, priority."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static
from textual.widgets.selection_list import Selection

from catalogsync.ops.jobdefs import JOB_TYPES, job_inputs, scoped_display_name
from catalogsync.ops.readmodels import PlaylistRow, TaskRow
from tui.widgets.pick_list import PickList

if TYPE_CHECKING:
    from tui.app import CatalogsyncApp


@dataclass
class NewJobChoices:
    """What the dialog offers: playlists, configured sources and upload backends."""

    playlists: list[PlaylistRow] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=list)
    job_type: str = "sync_download"


NO_BACKEND = (
    "No upload backend yet: add one with `catalogsync backends add NAME "
    "--kind local --target DIR` (or webdav / rclone), then choose it here."
)


def job_type_label(job_type: str) -> str:
    """`Sync Then Download (sync_download)`: the type's name, whatever its scope (the
    table says `... All` for a job without playlists, `Sync Selected Playlists`...)."""
    return f"{scoped_display_name(job_type, False).removesuffix(' All')} ({job_type})"


class NewJobScreen(ModalScreen[TaskRow | None]):
    """Submit a job through the app; dismisses with the new job's row."""

    @dataclass
    class SubmitRequested(Message):
        """Queue this job; the app dismisses ``dialog`` with it (an error keeps it open)."""

        dialog: NewJobScreen
        job_type: str
        playlist_ids: list[int] | None
        sources: list[str] | None
        backend: str | None
        priority: int

    BINDINGS = [Binding("escape", "close", "Close", id="new_job.close")]

    def __init__(self, choices: NewJobChoices) -> None:
        super().__init__(classes="dialog-screen")
        self.choices = choices

    @property
    def capp(self) -> CatalogsyncApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="new-job-dialog"):
            yield Static("New job", classes="dialog-title")
            yield Label("Job type")
            yield Select(
                [(job_type_label(t), t) for t in JOB_TYPES],
                value=self.choices.job_type,
                allow_blank=False,
                id="job-type",
                compact=True,
            )
            yield Label(
                "Playlists (space selects; none = every wanted playlist)", id="playlists-label"
            )
            yield PickList[int](
                *(
                    Selection(Text(f"{p.name}  ({p.song_count} songs)"), p.id)
                    for p in self.choices.playlists
                ),
                id="job-playlists",
            )
            yield Label("Sources (none = all sources)", id="sources-label")
            yield PickList[str](
                *(Selection(Text(name), name) for name in self.choices.sources),
                id="job-sources",
            )
            yield Label(
                "Upload to backend" if self.choices.backends else NO_BACKEND, id="backend-label"
            )
            yield Select(
                [(name, name) for name in self.choices.backends],
                prompt="choose a backend" if self.choices.backends else "no backend configured",
                id="job-backend",
                compact=True,
                disabled=not self.choices.backends,
            )
            with Horizontal(id="priority-row"):
                yield Label("Priority (lower runs first) ")
                yield Input("100", type="integer", id="job-priority", compact=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Submit", variant="primary", id="submit", compact=True)
                yield Button("Cancel (Esc)", id="close", compact=True)

    def on_mount(self) -> None:
        self._show_fields(self.choices.job_type)
        self.query_one("#job-type", Select).focus()

    @on(Select.Changed, "#job-type")
    def _type_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self._show_fields(event.value)

    def _show_fields(self, job_type: str) -> None:
        """Show only what the job type uses: playlists, sources, an upload target."""
        inputs = job_inputs(job_type)
        wants_playlists = "playlists" in inputs and bool(self.choices.playlists)
        wants_sources = "sources" in inputs and bool(self.choices.sources)
        wants_backend = "backend" in inputs
        for selector, shown in (
            ("#playlists-label", wants_playlists),
            ("#job-playlists", wants_playlists),
            ("#sources-label", wants_sources),
            ("#job-sources", wants_sources),
            ("#backend-label", wants_backend),
            ("#job-backend", wants_backend),
        ):
            self.query_one(selector).display = shown

    @on(Input.Submitted, "#job-priority")
    @on(Button.Pressed, "#submit")
    def submit(self) -> None:
        """Queue the job; errors show as a notification and the dialog stays."""
        job_type = str(self.query_one("#job-type", Select).value)
        playlists = self.query_one("#job-playlists", PickList)
        sources = self.query_one("#job-sources", PickList)
        backend = self.query_one("#job-backend", Select).value
        priority_text = self.query_one("#job-priority", Input).value.strip() or "100"
        try:
            priority = int(priority_text)
        except ValueError:
            self.notify(
                f"Priority must be a whole number, not {priority_text!r}.", severity="error"
            )
            return
        if self.query_one("#job-backend").display and not isinstance(backend, str):
            self.notify(
                NO_BACKEND if not self.choices.backends else "Choose the backend to upload to.",
                severity="error",
            )
            return
        self.post_message(
            self.SubmitRequested(
                self,
                job_type,
                playlist_ids=list(playlists.selected) if playlists.display else None,
                sources=list(sources.selected) if sources.display else None,
                backend=backend if isinstance(backend, str) else None,
                priority=priority,
            )
        )

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        """Close without submitting."""
        self.dismiss(None)
