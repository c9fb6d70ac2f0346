"""CatalogsyncApp: the task center over SSH, one client of the catalogsync engine."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import (
    Worker,
    WorkerCancelled,
    WorkerFailed,
    WorkerState,
    get_current_worker,
)

from catalogsync import clock
from catalogsync.errors import CatalogsyncError
from catalogsync.ops.models import ACTIVE_JOB_STATUSES
from catalogsync.ops.readmodels import RunnerView, TaskRow
from catalogsync.service import Catalogsync
from tui.messages import JobsRefreshed, RunnerEventReceived
from tui.reads import RefreshRequest, read_models
from tui.requests import ScreenRequests
from tui.screens.confirm import ConfirmScreen, quit_dialog, running_text
from tui.screens.log_view import LogScreen
from tui.screens.playlists import PlaylistsScreen
from tui.screens.task_center import TaskCenterScreen
from tui.widgets.job_table import filter_key

if TYPE_CHECKING:  # imported when first used, like the screens themselves
    from tui.screens.failures import FailuresScreen
    from tui.screens.new_job import NewJobScreen

# Toasts on screen at once (older ones go to the log view, `l`) and how long they stay.
MAX_TOASTS = 2
TOAST_SECONDS = {"information": 4.0, "warning": 6.0, "error": 8.0}
HISTORY = 500
HANG_UP_GRACE = 1.0  # seconds the app gets to exit by itself after a hang-up

T = TypeVar("T")
log = logging.getLogger("catalogsync.tui")


class CatalogsyncApp(App[None]):
    """The task center and the playlist picker, refreshed from the read models about 1 Hz."""

    CSS_PATH = "app.tcss"
    TITLE = "catalogsync"
    BINDINGS = [
        Binding(
            "question_mark",
            "help",
            "Help",
            id="app.help",
            key_display="?",
            tooltip="Show every key",
        ),
        Binding(
            "q",
            "quit",
            "Quit",
            id="app.quit",
            tooltip="Quit (asks when this app's runner has jobs running)",
        ),
    ]

    def __init__(
        self,
        service: Catalogsync,
        *,
        embed_runner: bool = True,
        refresh_interval: float | None = -1.0,
        demo: bool = False,
        keymap: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.service = service
        self.requests = ScreenRequests(self)
        self.embed_runner = embed_runner
        # -1: the configured `[tui] refresh_seconds`; None: no timer (tests).
        tui_settings = getattr(service.settings, "tui", None)
        if refresh_interval is not None and refresh_interval < 0:
            refresh_interval = tui_settings.refresh_seconds if tui_settings else 1.0
        self.refresh_interval = refresh_interval
        self.keys = dict(
            keymap if keymap is not None else (tui_settings.keys if tui_settings else {})
        )
        self.demo = demo
        self.embedded = False
        self.task_center = TaskCenterScreen()
        self.playlists_screen = PlaylistsScreen()
        self.log_screen = LogScreen()
        self.task_limit = 50
        # Every notification of this session, for the log view: (time, severity, text).
        self.history: list[tuple[float, str, str]] = []
        self._last_refresh_error: str | None = None
        self._quit_after: set[int] | None = None
        self._statuses: dict[int, str] = {}
        self._holder: RunnerView | None = None
        self._holder_seen = False
        self._playlists_open = False
        self._log_open = False
        self._highlight_next: int | None = None  # a new job, put under the cursor
        self.hung_up = False

    def get_default_screen(self) -> Screen:
        return self.task_center

    async def on_mount(self) -> None:
        if self.console.color_system in ("standard", "windows"):
            # 16 colours: the terminal's own ANSI palette keeps yellow yellow and red red
            # (converted RGB theme colours land on the wrong hues).
            self.theme = "ansi-dark"
        self.install_screen(self.playlists_screen, "playlists")
        self.install_screen(self.log_screen, "log")
        self.task_center.demo = self.demo
        self._apply_keymap()
        try:
            # Closing the SSH session or the tmux pane: stop the embedded runner cleanly.
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.hang_up)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (tests) or no signals here
        if self.embed_runner:
            started = await self.engine_result(
                partial(self.service.start_runner_thread, on_event=self._runner_event_in_thread)
            )
            self.embedded = bool(started)
        # The first read runs on the loop, not in a thread worker: it takes a few
        # milliseconds, but in a thread beside the screen's compose it took about 80 ms,
        # since each SQLite call hands the GIL over and waits a switch interval to get it
        # back (the database is in WAL mode: a read never waits for the runner's writes).
        try:
            first = read_models(self.service, self.refresh_request())
        except Exception:  # the worker reads again and reports it (_worker_failed)
            await self.refresh_now()
        else:
            self._apply(first)
        if self.refresh_interval:
            self.set_interval(self.refresh_interval, self.request_refresh)
        if self.demo:
            self.notify(
                "Demo: songs come from a built-in loopback server. "
                "Press ? for keys, 2 for playlists.",
                timeout=8,
            )

    def _apply_keymap(self) -> None:
        """`[tui.keys]`: binding id -> key; an unknown id is named once."""
        if not self.keys:
            return
        from tui.screens.failures import FailuresScreen

        known = {
            b.id
            for owner in (self, TaskCenterScreen, PlaylistsScreen, FailuresScreen, LogScreen)
            for b in owner.BINDINGS
            if isinstance(b, Binding) and b.id
        } | {"table.down", "table.up", "table.first", "table.last"}
        unknown = sorted(set(self.keys) - known)
        if unknown:
            self.notify(
                f"[tui.keys]: unknown binding id {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})",
                severity="error",
            )
        self.set_keymap({k: v for k, v in self.keys.items() if k in known})

    # -- notifications ------------------------------------------------------

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: Any = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """A toast (short, at most two at once) that the log view (`l`) keeps."""
        self.history.append((clock.now(), str(severity), str(message)))
        del self.history[:-HISTORY]
        limit = TOAST_SECONDS.get(str(severity), 4.0)
        timeout = limit if timeout is None else min(timeout, limit)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def _on_notify(self, event: Any) -> None:
        super()._on_notify(event)
        # Older toasts give way: at 80x24 a stack of them covered the detail pane.
        while len(self._notifications) > MAX_TOASTS:
            self._unnotify(next(iter(self._notifications)), refresh=False)
        self._refresh_notifications()

    # -- reading the engine -------------------------------------------------

    def refresh_request(self) -> RefreshRequest:
        """What the next read needs, taken from the screens (on the event loop)."""
        return RefreshRequest(
            task_limit=self.task_limit,
            detail_job_id=self.task_center.expanded_job_id,
            filter_text=filter_key(self.task_center.filter_text),
            playlists=self._playlists_open,
            events=self._log_open,
            attached=not self.embedded,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="refresh")
    def _refresh_worker(self, request: RefreshRequest, post: bool = True) -> JobsRefreshed:
        message = read_models(self.service, request)
        if post and not get_current_worker().is_cancelled:
            self.post_message(message)
        return message

    def request_refresh(self) -> None:
        """Read the models in a thread worker; a JobsRefreshed follows."""
        if self.is_running and not self._exit:
            self._refresh_worker(self.refresh_request())

    async def refresh_now(self) -> None:
        """Read and apply at once (tests call this instead of waiting for the timer)."""
        message = await self._result_of(self._refresh_worker(self.refresh_request(), post=False))
        if message is not None:
            self._apply(message)

    @on(JobsRefreshed)
    def _jobs_refreshed(self, message: JobsRefreshed) -> None:
        self._apply(message)

    def _apply(self, message: JobsRefreshed) -> None:
        # One frame per refresh, however many widgets it touches.
        with self.batch_update():
            self._apply_refresh(message)

    def _apply_refresh(self, message: JobsRefreshed) -> None:
        if self._exit or not self.is_running:
            # A read that finished while the app closes (run_test and App._shutdown stop
            # `is_running` before pruning the screens): its widgets are going or gone.
            return
        self._last_refresh_error = None
        self._watch_runner(message.runner_holder)
        self.task_center.runner_text = self._runner_text(message.runner_holder)
        self.task_center.show_refresh(message)
        if self._highlight_next is not None:
            self.task_center.highlight_job(self._highlight_next)
            self._highlight_next = None
        if message.playlists is not None:
            self.playlists_screen.show_playlists(message.playlists)
        if message.events is not None and self.log_screen.is_attached:
            self.log_screen.show_log(self.history, message.events)
        rows = message.dashboard.task_rows
        if not self.embedded:
            self._notify_transitions(rows)
        running = sum(1 for r in rows if r.status in ACTIVE_JOB_STATUSES)
        if isinstance(self.screen, ConfirmScreen) and self.screen.id == "quit-dialog":
            self.screen.set_message(running_text(running))
        if self._quit_after is not None:
            active = {r.id for r in rows if r.status in ACTIVE_JOB_STATUSES}
            if not self._quit_after & active:
                self._quit_after = None
                self.notify("The jobs finished: quitting.")
                self._stop_runner_and_exit()

    def _runner_text(self, holder: RunnerView | None) -> str:
        if self.embedded:
            pid = self.service.runner_pid()
            text = f"runner: this app (pid {pid})" if pid is not None else "runner: this app"
            if self._quit_after is not None:
                text = f"quitting when jobs finish · {text}"
            return text
        if holder:
            return f"attached to runner pid {holder.pid} on {holder.host}"
        return "no runner: jobs wait · t runs them"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`t` (take over) is offered only when no runner is live."""
        if action == "take_over":
            return self.can_take_over
        return True

    @property
    def can_take_over(self) -> bool:
        """No runner is live and this app could run the queue itself."""
        return not self.embedded and self._holder_seen and self._holder is None

    def _watch_runner(self, holder: RunnerView | None) -> None:
        """Attached: say so when the runner goes away, and offer to take over (`t`)."""
        before, seen = self._holder, self._holder_seen
        self._holder, self._holder_seen = (None if self.embedded else holder), True
        if self.embedded:
            return
        if before is not None and holder is None:
            self.notify(
                f"The runner (pid {before.pid} on {before.host}) stopped: "
                "queued jobs wait. Press t to run them in this app.",
                severity="warning",
                timeout=8,
            )
        if seen != self._holder_seen or (before is None) != (holder is None):
            self.task_center.refresh_bindings()

    async def action_take_over(self) -> None:
        """Start an embedded runner in place of a dead one."""
        if self.embedded:
            self.notify("This app already runs the queue.", timeout=3)
            return
        started = await self.engine_result(
            partial(self.service.start_runner_thread, on_event=self._runner_event_in_thread)
        )
        if started:
            self.embedded = True
            self.notify("This app now runs the queue.", timeout=4)
        else:
            self.notify(
                "Another runner holds the lease: staying attached to it.", severity="warning"
            )
        await self.refresh_now()
        self.task_center.refresh_bindings()

    # -- calling the engine ---------------------------------------------------
    #
    # Every engine call runs in a thread worker: the refresh in the exclusive "refresh"
    # group, everything else through ``run_engine`` in the "engine" group, the last stop
    # in "shutdown". A worker that fails lands in ``_worker_failed``, the one error path.

    def run_engine(
        self, call: Callable[[], T], done: Callable[[T], Awaitable[None] | None] | None = None
    ) -> Worker[T]:
        """Run one engine call off the event loop; ``done`` gets its result on the loop,
        then the screens are read again. A failure is one notification (``_worker_failed``).
        """
        return self._engine_worker(call, done)

    @work(thread=True, exit_on_error=False, group="engine")
    def _engine_worker(
        self, call: Callable[[], T], done: Callable[[T], Awaitable[None] | None] | None
    ) -> T:
        result = call()
        if done is not None and self.is_running and not self._exit:
            self.call_from_thread(done, result)
        if self.is_running and not self._exit:
            self.call_from_thread(self.request_refresh)
        return result

    async def engine_result(self, call: Callable[[], T]) -> T | None:
        """``run_engine`` awaited: the call's result, or None when it failed (notified)."""
        return await self._result_of(self.run_engine(call))

    @staticmethod
    async def _result_of(worker: Worker[T]) -> T | None:
        try:
            return await worker.wait()
        except (WorkerFailed, WorkerCancelled):
            return None  # a failure was notified by _worker_failed; a cancel was superseded

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """One handler for worker failures: one notification line, logged; no traceback."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        ours = isinstance(error, CatalogsyncError)
        text = str(error) if ours else f"{type(error).__name__}: {error}"
        if ours:
            log.warning("%s failed: %s", event.worker.name, text)
        else:
            log.error("%s failed", event.worker.name, exc_info=error)
        if event.worker.group == "refresh":
            # The refresh fails again every second while the database is unreadable: say
            # it once.
            if text != self._last_refresh_error:
                self._last_refresh_error = text
                self.notify(f"Could not read the task center: {text}", severity="error", timeout=10)
            return
        self.notify(text, severity="error", timeout=6)

    # -- what the screens ask for (run by tui/requests.py) ---------------------

    @on(TaskCenterScreen.CommandRequested)
    def _command_requested(self, message: TaskCenterScreen.CommandRequested) -> None:
        self.requests.command(message.job_id, message.command)

    @on(TaskCenterScreen.BulkCommandRequested)
    def _bulk_command_requested(self, message: TaskCenterScreen.BulkCommandRequested) -> None:
        self.requests.bulk_command(message.job_ids, message.command)

    @on(TaskCenterScreen.MoveRequested)
    def _move_requested(self, message: TaskCenterScreen.MoveRequested) -> None:
        self.requests.move(message.job_id, message.direction, message.lane)

    @on(PlaylistsScreen.JobRequested)
    def _playlist_job_requested(self, message: PlaylistsScreen.JobRequested) -> None:
        self.requests.playlist_job(message.job_type, message.playlist_ids)

    @on(PlaylistsScreen.WantedRequested)
    def _wanted_requested(self, message: PlaylistsScreen.WantedRequested) -> None:
        self.requests.wanted(message.playlist_ids, message.wanted)

    @on(PlaylistsScreen.PlanRequested)
    def _plan_requested(self, message: PlaylistsScreen.PlanRequested) -> None:
        self.requests.plan(message.playlist_ids)

    # By handler name: FailuresScreen and NewJobScreen load only when first opened.

    def on_failures_screen_items_requested(self, message: FailuresScreen.ItemsRequested) -> None:
        self.requests.failed_items(message.screen, message.job_id)

    def on_failures_screen_retry_requested(self, message: FailuresScreen.RetryRequested) -> None:
        self.requests.retry_failed(message.screen, message.job_id)

    def on_new_job_screen_submit_requested(self, message: NewJobScreen.SubmitRequested) -> None:
        self.requests.submit(message)

    # -- runner events ------------------------------------------------------

    def _runner_event_in_thread(self, kind: str, data: dict[str, Any]) -> None:
        # Runner threads must never block on the UI (not even at shutdown), so this
        # posts a message (thread-safe, non-blocking) rather than call_from_thread.
        self.post_message(RunnerEventReceived(kind, dict(data)))

    @on(RunnerEventReceived)
    def _runner_event(self, event: RunnerEventReceived) -> None:
        job_id = event.data.get("job_id")
        message = event.data.get("message")
        if event.kind == "exit":
            self.exit()
            return
        if event.kind == "job_finished":
            self._notify_finished(job_id, str(event.data.get("status")), message)
        elif event.kind == "job_paused":
            self._notify_paused(job_id, message)
        elif event.kind == "command" and not event.data.get("applied"):
            self.notify(str(message), severity="warning")
        self.request_refresh()

    def _job_name(self, job_id: Any) -> str:
        row = self.task_center.job_row(int(job_id)) if job_id is not None else None
        return f"Job {job_id}" + (f" ({row.display_name})" if row else "")

    def _notify_finished(self, job_id: Any, status: str, message: Any) -> None:
        name = self._job_name(job_id)
        if status == "completed":
            self.notify(f"{name} completed.")
        elif status == "canceled":
            self.notify(f"{name} canceled.", severity="warning")
        elif status == "completed_with_errors":
            self.notify(
                f"{name} completed with errors" + (f": {message}" if message else "."),
                severity="warning",
                timeout=8,
            )
        else:
            self.notify(
                f"{name} {status}" + (f": {message}" if message else "."),
                severity="error",
                timeout=10,
            )

    def _notify_paused(self, job_id: Any, message: Any) -> None:
        if not message or message == "paused by operator":
            self.notify(f"{self._job_name(job_id)} paused.", timeout=3)
        else:
            self.notify(
                f"{self._job_name(job_id)} paused itself: {message}", severity="error", timeout=15
            )

    def _notify_transitions(self, rows: Iterable[TaskRow]) -> None:
        """Attached to another runner: tell finished and self-paused jobs from the rows.

        A job may go from queued to failed between two reads, or be submitted and fail
        between them: any change to an end state counts, and so does a job newer than
        every job of the last read that is already at its end."""
        first = not self._statuses
        rows = list(rows)
        previous, self._statuses = self._statuses, {r.id: str(r.status) for r in rows}
        if first:
            return
        newest_before = max(previous, default=0)
        by_id = {r.id: r for r in rows}
        for job_id, status in self._statuses.items():
            before = previous.get(job_id)
            if status == before or (before is None and job_id <= newest_before):
                continue
            if status == "paused" and before not in ACTIVE_JOB_STATUSES:
                continue
            if status == "paused":
                self._notify_paused(job_id, by_id[job_id].pause_reason)
            elif status not in ACTIVE_JOB_STATUSES and status != "queued":
                self._notify_finished(job_id, status, by_id[job_id].error)

    # -- screens and commands -----------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every binding of the screen below the palette, plus the app's, by name."""
        yield from super().get_system_commands(screen)
        owned = [(screen, b) for b in screen.BINDINGS] + [(self, b) for b in self.BINDINGS]
        for owner, binding in owned:
            if not isinstance(binding, Binding) or binding.action in ("quit", "escape"):
                continue
            target = self if binding.action.startswith("app.") else owner
            action = binding.action.removeprefix("app.")
            yield SystemCommand(
                f"{binding.description} ({binding.key_display or binding.key.split(',')[0]})",
                binding.tooltip or binding.description,
                partial(target.run_action, action),
            )

    async def action_show_playlists(self) -> None:
        """Open the playlist picker (its selection and filter are kept between visits)."""
        if self.screen is not self.task_center:
            return
        self._playlists_open = True
        await self.push_screen("playlists")
        await self.refresh_now()

    async def action_show_log(self) -> None:
        """The log view: notification history and the newest events of every job."""
        if self.screen is not self.task_center:
            return
        self._log_open = True
        await self.push_screen("log")
        await self.refresh_now()

    def show_failures(self, job: TaskRow) -> None:
        """The failures view of one job."""
        from tui.screens.failures import FailuresScreen  # imported when first used

        self.push_screen(FailuresScreen(job), lambda _: self.request_refresh())

    def show_tasks(self) -> None:
        """Back to the task center."""
        self._playlists_open = False
        self._log_open = False
        while self.screen is not self.task_center and len(self.screen_stack) > 1:
            self.pop_screen()

    async def show_new_job(self, job: TaskRow) -> None:
        """After a launch: back to the task center with the new job highlighted."""
        self.notify(f"Job {job.id} queued: {job.display_name} ({job.queue_label})", timeout=4)
        self.show_tasks()
        # Highlighted by the first read that lands, this one or a newer one superseding it.
        self._highlight_next = job.id
        await self.refresh_now()

    async def open_new_job(self) -> None:
        """The new-job dialog; a submitted job gets highlighted."""
        from tui.screens.new_job import NewJobChoices, NewJobScreen  # imported when used

        playlists = await self.engine_result(self.service.playlists)
        backends = await self.engine_result(self.service.backends)
        if playlists is None or backends is None:
            return
        choices = NewJobChoices(
            playlists=playlists,
            sources=self.service.source_names(),
            backends=[b["name"] for b in backends if not b.get("is_default")],
        )

        async def submitted(job: TaskRow | None) -> None:
            if job is not None:
                await self.show_new_job(job)

        self.push_screen(NewJobScreen(choices), submitted)

    def action_help(self) -> None:
        """The key card."""
        from tui.screens.failures import FailuresScreen
        from tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(
            HelpScreen(
                [
                    (
                        "Task center",
                        [
                            b
                            for b in TaskCenterScreen.BINDINGS
                            if isinstance(b, Binding) and b.action not in ("app.help", "app.quit")
                        ],
                    ),
                    ("Failures", FailuresScreen.BINDINGS),
                    ("Playlists", PlaylistsScreen.BINDINGS),
                    ("Everywhere", self.BINDINGS),
                ]
            )
        )

    # -- quitting -------------------------------------------------------------

    async def action_quit(self) -> None:
        """Quit; when this app's runner has jobs running, ask what to do with them."""
        if not self.embedded:
            self.exit()
            return
        running = await self.engine_result(self.service.active_job_count)
        if running is None:
            return  # could not tell (notified): stay
        if not running:
            self._stop_runner_and_exit()
            return

        def answered(choice: str | None) -> None:
            if choice == "stop":
                self.notify("Stopping the runner: running jobs resume at the next start…")
                self._stop_runner_and_exit()
            elif choice == "wait":
                # Queued jobs stay queued: they would otherwise start while we wait.
                self.service.hold_new_jobs(True)
                self._quit_after = {
                    r.id for r in self.task_center.rows if r.status in ACTIVE_JOB_STATUSES
                }
                self.notify(
                    "Quitting when the running jobs finish (q again to choose again).", timeout=6
                )
                self.task_center.runner_text = self._runner_text(None)
                self.request_refresh()
            else:
                self._quit_after = None
                self.service.hold_new_jobs(False)

        self.push_screen(quit_dialog(running), answered)

    def hang_up(self) -> None:
        """SIGHUP (the SSH session or tmux pane closed): stop the runner, then exit."""
        if self.hung_up:
            return
        self.hung_up = True
        self._stop_runner_and_exit("terminal hung up")

    @work(thread=True, exit_on_error=False, group="shutdown")
    def _stop_runner_and_exit(self, reason: str | None = None) -> None:
        try:
            if self.embedded:
                # A hang-up leaves a few seconds before the terminal's side gives up.
                self.service.stop_runner(3.5 if reason else 30.0, reason=reason)
                self.embedded = False
        finally:
            if reason:
                self.post_message(RunnerEventReceived("exit"))  # the loop may be busy
                # The terminal is gone: Textual's writes to it can block its shutdown for
                # good. The database is at rest by now, so a last resort is safe.
                timer = threading.Timer(HANG_UP_GRACE, _exit_after_hang_up)
                timer.daemon = True
                timer.start()
            else:
                self.call_from_thread(self.exit)


def _exit_after_hang_up() -> None:
    logging.shutdown()
    os._exit(128 + signal.SIGHUP)


def run_tui(service: Catalogsync, *, demo: bool = False, log_file: Path | None = None) -> None:
    """Run the task center in this terminal until the operator quits.

    Log records go to Textual's log and ``log_file`` (never to the terminal the app
    draws on); SIGHUP stops the embedded runner cleanly before the app exits.
    """
    from tui.logsetup import default_log_file, tui_logging

    app = CatalogsyncApp(service, demo=demo)
    with tui_logging(log_file or default_log_file(service.settings)):
        try:
            app.run()
        finally:
            if app.embedded:
                service.stop_runner(reason="terminal hung up" if app.hung_up else None)
