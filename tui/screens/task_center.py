"""The task center: summary header, the job table, an optional filter and the detail pane."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from catalogsync.ops.models import CommandType
from catalogsync.ops.readmodels import TaskRow
from tui.messages import JobsRefreshed
from tui.screens.confirm import all_jobs_dialog, cancel_job_dialog
from tui.widgets.footer import FittedFooter
from tui.widgets.job_detail import JobDetail
from tui.widgets.job_table import JobTable, filter_key, job_matches
from tui.widgets.summary_header import SummaryHeader

if TYPE_CHECKING:
    from tui.app import CatalogsyncApp


MOVE = Binding.Group("Move", compact=True)
# Actions on the highlighted job: hidden from the footer while typing into the filter.
JOB_ACTIONS = {"toggle_pause", "cancel_job", "retry_job", "move_job", "show_failures"}


class TaskCenterScreen(Screen[None]):
    """One table of jobs; Enter expands the highlighted job's detail.

    What the operator asks of the engine goes to the app as a message (the app runs it
    off the event loop and says what became of it).
    """

    @dataclass
    class CommandRequested(Message):
        """Pause, resume, cancel or retry one job."""

        job_id: int
        command: CommandType

    @dataclass
    class BulkCommandRequested(Message):
        """Pause (or resume) every one of these jobs."""

        job_ids: tuple[int, ...]
        command: CommandType

    @dataclass
    class MoveRequested(Message):
        """Move a queued job one place up (-1) or down (+1) in its lane."""

        job_id: int
        direction: int
        lane: str

    AUTO_FOCUS = "#jobs"
    # Help and Quit first: at 60 columns the footer cuts what does not fit on the right.
    BINDINGS = [
        Binding(
            "question_mark",
            "app.help",
            "Help",
            id="app.help",
            key_display="?",
            tooltip="Show every key",
        ),
        Binding(
            "q",
            "app.quit",
            "Quit",
            id="app.quit",
            tooltip="Quit (asks when this app's runner has jobs running)",
        ),
        Binding(
            "p",
            "toggle_pause",
            "Pause",
            id="task.pause",
            tooltip="Pause the highlighted job, or resume it when paused",
        ),
        Binding(
            "c",
            "cancel_job",
            "Cancel",
            id="task.cancel",
            tooltip="Cancel the highlighted job (asks first)",
        ),
        Binding("n", "new_job", "New", id="task.new", tooltip="Submit a new job"),
        Binding(
            "f",
            "show_failures",
            "Failures",
            id="task.failures",
            tooltip="Every failed item of the highlighted job (R retries them)",
        ),
        Binding(
            "R,shift+r",
            "retry_job",
            "Retry",
            id="task.retry",
            key_display="R",
            tooltip="Retry the failed items of the highlighted job",
        ),
        Binding(
            "slash",
            "filter",
            "Filter",
            id="task.filter",
            key_display="/",
            tooltip="Filter all jobs: words, status:failed, type:sync, lane:download",
        ),
        Binding(
            "l,3",
            "app.show_log",
            "Log",
            id="task.log",
            tooltip="The log: notification history and the newest job events",
        ),
        Binding(
            "2",
            "app.show_playlists",
            "Playlists",
            id="task.playlists",
            tooltip="Open the playlist picker",
        ),
        Binding(
            "s",
            "cycle_sort",
            "Sort",
            id="task.sort",
            tooltip="Sort by the next column: queue, newest, status, task, progress, speed",
        ),
        Binding(
            "t",
            "app.take_over",
            "Take over",
            id="task.take_over",
            tooltip="Start a runner in this app (when no runner is live)",
        ),
        Binding(
            "left_square_bracket",
            "move_job(-1)",
            "Move up",
            id="task.up",
            key_display="[",
            tooltip="Move the highlighted queued job up in its lane",
            group=MOVE,
        ),
        Binding(
            "right_square_bracket",
            "move_job(1)",
            "Move down",
            id="task.down",
            key_display="]",
            tooltip="Move the highlighted queued job down in its lane",
            group=MOVE,
        ),
        Binding(
            "m",
            "more_jobs",
            "More",
            id="task.more",
            tooltip="List 50 more (older) jobs",
            show=False,
        ),
        Binding(
            "P",
            "all_jobs('pause')",
            "Pause all",
            id="task.pause_all",
            show=False,
            tooltip="Pause every queued and running job (asks first)",
        ),
        Binding(
            "U",
            "all_jobs('resume')",
            "Resume all",
            id="task.resume_all",
            show=False,
            tooltip="Resume every paused job (asks first)",
        ),
        Binding(
            "escape",
            "escape",
            "Clear",
            show=False,
            id="task.escape",
            tooltip="Clear the filter, then collapse the detail",
        ),
    ]

    def __init__(self) -> None:
        super().__init__(id="task-center")
        self.rows: list[TaskRow] = []
        self.expanded_job_id: int | None = None
        self.filter_text = ""
        # Rows the filter matched among every job (the table's rows are only the first
        # 50), from the last read, and the filter text that read searched for.
        self.matches: list[TaskRow] | None = None
        self.matches_for = ""
        self.runner_text = ""
        self.demo = False
        self.total_jobs = 0
        self._last: JobsRefreshed | None = None
        self._ready = False

    @property
    def capp(self) -> CatalogsyncApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield SummaryHeader(id="summary")
        yield Input(
            placeholder="filter all jobs: words, status:failed, type:sync, lane:download"
            " · Enter keeps · Esc back",
            id="job-filter",
            compact=True,
        )
        yield JobTable(id="jobs")
        yield Static(id="jobs-empty")
        yield JobDetail(id="detail")
        yield FittedFooter()

    def on_mount(self) -> None:
        self.query_one("#detail").display = False
        self.query_one(JobTable).focus()
        self._ready = True
        if self._last is not None:
            self.show_refresh(self._last)

    def on_unmount(self) -> None:
        self._ready = False

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "-narrow")
        self.set_class(self.size.width < 76, "-tiny")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide job actions while typing a filter (`t` is checked by the app)."""
        typing = self._ready and self.query_one("#job-filter").has_focus
        return not (action in JOB_ACTIONS and typing)

    # -- data -------------------------------------------------------------

    def show_refresh(self, message: JobsRefreshed) -> None:
        """Apply a fresh read: header, rows (filtered), and the expanded job's detail."""
        self._last = message
        self.rows = list(message.dashboard.task_rows)
        self.total_jobs = message.dashboard.summary.total_jobs
        self.matches, self.matches_for = message.matches, message.match_text
        # Not composed yet (on_mount applies it) or already taken down (the app is closing).
        if not self._ready or not self.is_attached or not self.app.is_running:
            return
        if not self.query(SummaryHeader):
            return  # a read that lands while the app shuts down: nothing left to show
        header = self.query_one(SummaryHeader)
        header.runner_text = self.runner_text
        header.demo = self.demo
        shown = self._show_rows()
        header.show_dashboard(message.dashboard, self.jobs_text(shown))
        if self.expanded_job_id is not None and message.detail_job_id == self.expanded_job_id:
            if message.detail is None:
                self.collapse()
            else:
                self.query_one(JobDetail).show(message.detail)

    def jobs_text(self, shown: int) -> str:
        """`6 of 55 jobs · m: more · sort: queue (s)`."""
        text = f"{shown} of {self.total_jobs} jobs"
        if filter_key(self.filter_text):
            text = f"{shown} match · {self.total_jobs} jobs"
        elif shown < self.total_jobs:
            text += " · m: more · / finds any"
        table = self.query_one(JobTable)
        return f"{text} · sort: {table.sort_name} (s)"

    def _show_rows(self) -> int:
        """The table's rows, or with a filter the jobs it matches among all of them (the
        rows in hand are filtered until the read for this text arrives)."""
        text = filter_key(self.filter_text)
        if text and self.matches is not None and self.matches_for == text:
            rows = self.matches
        else:
            rows = [r for r in self.rows if job_matches(r, text)]
        self.query_one(JobTable).show_jobs(rows)
        empty = self.query_one("#jobs-empty", Static)
        empty.display = not rows
        if not rows:
            empty.update(
                Text(
                    f"No job matches {self.filter_text.strip()!r}: Esc clears the filter."
                    if text
                    else "No jobs yet: n submits one, 2 opens the playlist picker.",
                    style="dim",
                )
            )
        return len(rows)

    def job_row(self, job_id: int | None) -> TaskRow | None:
        """The latest task row of a job (one the filter found among older jobs too)."""
        for row in (*self.rows, *(self.matches or ())):
            if row.id == job_id:
                return row
        return None

    def highlighted_job(self) -> TaskRow | None:
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

    @on(DataTable.RowHighlighted, "#jobs")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """An open detail pane follows the cursor (what `p` acts on is what it shows)."""
        if event.row_key is None or event.row_key.value is None:
            return
        job_id = int(str(event.row_key.value))
        if self.expanded_job_id is not None and self.expanded_job_id != job_id:
            self.show_detail(job_id)

    def toggle_detail(self, job_id: int) -> None:
        """Expand a job's detail, or collapse it when it is the one shown."""
        if self.expanded_job_id == job_id:
            self.collapse()
            return
        self.show_detail(job_id)

    def show_detail(self, job_id: int) -> None:
        """Point the detail pane at a job and read it."""
        self.expanded_job_id = job_id
        detail = self.query_one(JobDetail)
        detail.display = True
        detail.show_loading(job_id)
        self.capp.request_refresh()

    def collapse(self) -> None:
        """Hide the detail pane."""
        self.expanded_job_id = None
        self.query_one(JobDetail).display = False

    # -- filter, sort, paging ----------------------------------------------

    def action_filter(self) -> None:
        """Show the filter input and type into it."""
        box = self.query_one("#job-filter", Input)
        box.add_class("-shown")
        box.focus()

    @on(Input.Changed, "#job-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._refresh_shown()
        if filter_key(event.value) and self._ready:
            self.capp.request_refresh()  # search every job, not only the rows in hand

    @on(Input.Submitted, "#job-filter")
    def _filter_submitted(self) -> None:
        self.query_one(JobTable).focus()

    def _refresh_shown(self) -> None:
        shown = self._show_rows()
        if self._last is not None:
            self.query_one(SummaryHeader).jobs_text = self.jobs_text(shown)
            self.query_one(SummaryHeader).refresh_text()

    def set_filter(self, text: str) -> None:
        """Set the filter text (empty hides the input)."""
        box = self.query_one("#job-filter", Input)
        box.value = text
        self.filter_text = text
        box.set_class(bool(text), "-shown")
        self._refresh_shown()

    def action_escape(self) -> None:
        """Esc in the filter returns to the table (keeping it, as in the playlist picker);
        on the table it clears the filter first, then collapses the detail."""
        box = self.query_one("#job-filter", Input)
        if box.has_focus:
            box.set_class(bool(self.filter_text), "-shown")
            self.query_one(JobTable).focus()
        elif self.filter_text or box.has_class("-shown"):
            self.set_filter("")
        elif self.expanded_job_id is not None:
            self.collapse()

    def action_cycle_sort(self) -> None:
        """Sort by the next column (the header names the sort; the column shows ▼)."""
        name = self.query_one(JobTable).cycle_sort()
        self._refresh_shown()
        self.notify(f"Sorted by {name}.", timeout=2)

    def action_more_jobs(self) -> None:
        """List 50 more jobs (older finished ones)."""
        if len(self.rows) >= self.total_jobs:
            self.notify(f"All {self.total_jobs} jobs are listed.", timeout=2)
            return
        self.capp.task_limit += 50
        self.capp.request_refresh()

    # -- commands ---------------------------------------------------------

    def action_toggle_pause(self) -> None:
        """Pause a queued/running job; resume a paused one."""
        job = self.highlighted_job()
        if job is None:
            return
        if job.can_resume:
            command = CommandType.RESUME
        elif job.can_pause:
            command = CommandType.PAUSE
        else:
            self.notify(
                f"Job {job.id} is {job.status}: nothing to pause or resume.", severity="warning"
            )
            return
        self.post_message(self.CommandRequested(job.id, command))

    def action_cancel_job(self) -> None:
        """Ask, then cancel the highlighted job."""
        job = self.highlighted_job()
        if job is None:
            return
        if not job.can_cancel:
            self.notify(f"Job {job.id} is {job.status}: nothing to cancel.", severity="warning")
            return

        def answered(choice: str | None) -> None:
            if choice == "yes":
                self.post_message(self.CommandRequested(job.id, CommandType.CANCEL))

        self.app.push_screen(cancel_job_dialog(job), answered)

    def action_all_jobs(self, what: str) -> None:
        """Pause every queued and running job, or resume every paused one (asks first)."""
        jobs = [r for r in self.rows if (r.can_pause if what == "pause" else r.can_resume)]
        if not jobs:
            self.notify(f"No job to {what}.", severity="warning", timeout=3)
            return

        def answered(choice: str | None) -> None:
            if choice == "yes":
                command = CommandType.PAUSE if what == "pause" else CommandType.RESUME
                self.post_message(self.BulkCommandRequested(tuple(j.id for j in jobs), command))

        self.app.push_screen(all_jobs_dialog(what, jobs), answered)

    def action_move_job(self, direction: int) -> None:
        """Move a queued job one place up (-1) or down (+1) in its lane."""
        job = self.highlighted_job()
        if job is None:
            return
        if job.status != "queued":
            self.notify(
                f"Job {job.id} is {job.status}: only queued jobs can be moved.", severity="warning"
            )
            return
        self.post_message(self.MoveRequested(job.id, direction, job.lane_type))

    def action_retry_job(self) -> None:
        """Retry the highlighted job's failed items."""
        job = self.highlighted_job()
        if job is not None:
            self.post_message(self.CommandRequested(job.id, CommandType.RETRY))

    def action_show_failures(self) -> None:
        """Every failed item of the highlighted job."""
        job = self.highlighted_job()
        if job is not None:
            self.capp.show_failures(job)

    async def action_new_job(self) -> None:
        """Open the new-job dialog."""
        await self.capp.open_new_job()
