"""The task center: summary header, the job table, an optional filter and the detail pane."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input

from catalogsync.ops.models import CommandType
from tui.messages import JobsRefreshed
from tui.screens.confirm import cancel_job_dialog
from tui.widgets.job_detail import JobDetail
from tui.widgets.job_table import JobTable, filter_key, job_matches
from tui.widgets.summary_header import SummaryHeader

if TYPE_CHECKING:
    from tui.app import CatalogsyncApp


MOVE = Binding.Group("Move", compact=True)


class TaskCenterScreen(Screen[None]):
    """One table of jobs; Enter expands the highlighted job's detail."""

    BINDINGS = [
        Binding("p", "toggle_pause", "Pause", id="task.pause",
                tooltip="Pause the highlighted job, or resume it when paused"),
        Binding("c", "cancel_job", "Cancel", id="task.cancel",
                tooltip="Cancel the highlighted job (asks first)"),
        Binding("n", "new_job", "New", id="task.new", tooltip="Submit a new job"),
        Binding("left_square_bracket", "move_job(-1)", "Move up", id="task.up", key_display="[",
                tooltip="Move the highlighted queued job up in its lane", group=MOVE),
        Binding("right_square_bracket", "move_job(1)", "Move down", id="task.down",
                key_display="]", tooltip="Move the highlighted queued job down in its lane",
                group=MOVE),
        Binding("R,shift+r", "retry_job", "Retry", id="task.retry", key_display="R",
                tooltip="Retry the failed items of the highlighted job"),
        Binding("slash", "filter", "Filter", id="task.filter", key_display="/",
                tooltip="Filter all jobs by name, status or scope (Esc clears)"),
        Binding("2,l", "app.show_playlists", "Playlists", id="task.playlists",
                tooltip="Open the playlist picker"),
        Binding("escape", "escape", "Clear", show=False, id="task.escape",
                tooltip="Clear the filter, then collapse the detail"),
    ]

    def __init__(self) -> None:
        super().__init__(id="task-center")
        self.rows: list[dict[str, Any]] = []
        self.expanded_job_id: int | None = None
        self.filter_text = ""
        # Rows the filter matched among every job (the table's rows are only the first
        # 50), from the last read, and the filter text that read searched for.
        self.matches: list[dict[str, Any]] | None = None
        self.matches_for = ""
        self.runner_text = ""
        self.demo = False
        self._last: JobsRefreshed | None = None
        self._ready = False

    @property
    def capp(self) -> CatalogsyncApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield SummaryHeader(id="summary")
        yield Input(placeholder="filter all jobs: name, status or scope · Enter keeps · Esc clears",
                    id="job-filter", compact=True)
        yield JobTable(id="jobs")
        yield JobDetail(id="detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#job-filter").display = False
        self.query_one("#detail").display = False
        self.query_one(JobTable).focus()
        self._ready = True
        if self._last is not None:
            self.show_refresh(self._last)

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "-narrow")
        # The palette key only fits in the footer of a wide terminal; the header names it.
        self.query_one(Footer).show_command_palette = self.size.width >= 100

    # -- data -------------------------------------------------------------

    def show_refresh(self, message: JobsRefreshed) -> None:
        """Apply a fresh read: header, rows (filtered), and the expanded job's detail."""
        self._last = message
        self.rows = list(message.dashboard.get("task_rows") or [])
        self.matches, self.matches_for = message.matches, message.match_text
        if not self._ready:
            return  # the app read before this screen was composed: on_mount applies it
        if not self.query(SummaryHeader):
            return  # a read that lands while the app shuts down: nothing left to show
        header = self.query_one(SummaryHeader)
        header.runner_text = self.runner_text
        header.demo = self.demo
        header.show_dashboard(message.dashboard)
        self._show_rows()
        if self.expanded_job_id is not None and message.detail_job_id == self.expanded_job_id:
            if message.detail is None:
                self.collapse()
            else:
                self.query_one(JobDetail).show(message.detail)

    def _show_rows(self) -> None:
        """The table's rows, or with a filter the jobs it matches among all of them (the
        rows in hand are filtered until the read for this text arrives)."""
        text = filter_key(self.filter_text)
        if text and self.matches is not None and self.matches_for == text:
            rows = self.matches
        else:
            rows = [r for r in self.rows if job_matches(r, text)]
        self.query_one(JobTable).show_jobs(rows)

    def job_row(self, job_id: int | None) -> dict[str, Any] | None:
        """The latest task row of a job (one the filter found among older jobs too)."""
        for row in (*self.rows, *(self.matches or ())):
            if int(row["id"]) == job_id:
                return row
        return None

    def highlighted_job(self) -> dict[str, Any] | None:
        """The task row under the cursor; notifies when there is none."""
        row = self.job_row(self.query_one(JobTable).highlighted_job_id)
        if row is None:
            self.notify("No job is highlighted.", severity="warning")
        return row

    def highlight_job(self, job_id: int) -> bool:
        """Put the cursor on a job (clearing a filter that hides it)."""
        table = self.query_one(JobTable)
        if not table.highlight(str(job_id)) and self.filter_text:
            self.set_filter("")
        table.focus()
        return table.highlight(str(job_id))

    # -- detail -----------------------------------------------------------

    @on(DataTable.RowSelected, "#jobs")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.toggle_detail(int(str(event.row_key.value)))

    def toggle_detail(self, job_id: int) -> None:
        """Expand a job's detail, or collapse it when it is the one shown."""
        if self.expanded_job_id == job_id:
            self.collapse()
            return
        self.expanded_job_id = job_id
        detail = self.query_one(JobDetail)
        detail.display = True
        detail.show_loading(job_id)
        self.capp.request_refresh()

    def collapse(self) -> None:
        """Hide the detail pane."""
        self.expanded_job_id = None
        self.query_one(JobDetail).display = False

    # -- filter -----------------------------------------------------------

    def action_filter(self) -> None:
        """Show the filter input and type into it."""
        box = self.query_one("#job-filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#job-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._show_rows()
        if filter_key(event.value) and self._ready:
            self.capp.request_refresh()  # search every job, not only the rows in hand

    @on(Input.Submitted, "#job-filter")
    def _filter_submitted(self) -> None:
        self.query_one(JobTable).focus()

    def set_filter(self, text: str) -> None:
        """Set the filter text (empty hides the input)."""
        box = self.query_one("#job-filter", Input)
        box.value = text
        self.filter_text = text
        box.display = bool(text)
        self._show_rows()

    def action_escape(self) -> None:
        """Esc clears the filter first, then collapses the detail."""
        if self.filter_text or self.query_one("#job-filter").display:
            self.set_filter("")
            self.query_one(JobTable).focus()
        elif self.expanded_job_id is not None:
            self.collapse()

    # -- commands ---------------------------------------------------------

    async def action_toggle_pause(self) -> None:
        """Pause a queued/running job; resume a paused one."""
        job = self.highlighted_job()
        if job is None:
            return
        if job["can_resume"]:
            command = CommandType.RESUME
        elif job["can_pause"]:
            command = CommandType.PAUSE
        else:
            self.notify(f"Job {job['id']} is {job['status']}: nothing to pause or resume.",
                        severity="warning")
            return
        result = await self.capp.call_engine(self.capp.service.command, job["id"], command,
                                             requested_by="tui")
        self._told(job["id"], command, result)

    def action_cancel_job(self) -> None:
        """Ask, then cancel the highlighted job."""
        job = self.highlighted_job()
        if job is None:
            return
        if not job["can_cancel"]:
            self.notify(f"Job {job['id']} is {job['status']}: nothing to cancel.",
                        severity="warning")
            return

        async def answered(choice: str | None) -> None:
            if choice != "yes":
                return
            result = await self.capp.call_engine(
                self.capp.service.command, job["id"], CommandType.CANCEL, requested_by="tui"
            )
            self._told(job["id"], CommandType.CANCEL, result)

        self.app.push_screen(cancel_job_dialog(job), answered)

    async def action_move_job(self, direction: int) -> None:
        """Move a queued job one place up (-1) or down (+1) in its lane."""
        job = self.highlighted_job()
        if job is None:
            return
        if job["status"] != "queued":
            self.notify(f"Job {job['id']} is {job['status']}: only queued jobs can be moved.",
                        severity="warning")
            return
        moved = await self.capp.call_engine(self.capp.service.move_job, job["id"], direction)
        if moved is False:
            self.notify(f"Job {job['id']} is already {'first' if direction < 0 else 'last'} "
                        f"in the {job['lane_type']} lane.", timeout=3)

    async def action_retry_job(self) -> None:
        """Retry the highlighted job's failed items."""
        job = self.highlighted_job()
        if job is None:
            return
        result = await self.capp.call_engine(self.capp.service.command, job["id"],
                                             CommandType.RETRY, requested_by="tui")
        self._told(job["id"], CommandType.RETRY, result)

    async def action_new_job(self) -> None:
        """Open the new-job dialog."""
        await self.capp.open_new_job()

    def _told(self, job_id: int, command: CommandType, result: str | None) -> None:
        """Say what became of a command (nothing when it failed: the error was shown)."""
        if result is None:
            return
        if result.startswith("sent"):
            result = f"job {job_id}: {command.value} {result}"
        self.notify(result[:1].upper() + result[1:], timeout=3)
