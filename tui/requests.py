"""What the screens ask of the engine, each run in one of the app's engine workers.

A screen posts a message (``TaskCenterScreen.CommandRequested``...); the app's handler
calls the method of the same name here, which hands the engine call to
``CatalogsyncApp.run_engine`` with what to do with its result on the event loop. A
failure never reaches these callbacks: the app's one worker-failure handler shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from catalogsync.errors import CatalogsyncError
from catalogsync.ops.models import CommandType
from catalogsync.ops.readmodels import CommandResult, FailedItems, TaskRow
from catalogsync.service import Catalogsync

if TYPE_CHECKING:
    from tui.app import CatalogsyncApp
    from tui.screens.failures import FailuresScreen
    from tui.screens.new_job import NewJobScreen


class ScreenRequests:
    """The engine calls behind the screens' messages, for one app."""

    def __init__(self, app: CatalogsyncApp) -> None:
        self.app = app

    @property
    def service(self) -> Catalogsync:
        return self.app.service

    def command(self, job_id: int, command: CommandType) -> None:
        """Pause / resume / cancel / retry of one job: say what became of it."""

        def told(result: CommandResult) -> None:
            self.app.notify(result.message[:1].upper() + result.message[1:], timeout=3)

        self.app.run_engine(
            partial(self.service.command, job_id, command, requested_by="tui"), told
        )

    def bulk_command(self, job_ids: Sequence[int], command: CommandType) -> None:
        """Pause every queued and running job, or resume every paused one."""

        def send_all() -> list[str | None]:
            refusals: list[str | None] = []  # per job: None when sent, else why not
            for job_id in job_ids:
                try:
                    self.service.command(job_id, command, requested_by="tui")
                    refusals.append(None)
                except CatalogsyncError as exc:  # one job's refusal: the others still go
                    refusals.append(str(exc))
            return refusals

        def told(refusals: list[str | None]) -> None:
            for refusal in refusals:
                if refusal is not None:
                    self.app.notify(refusal, severity="error", timeout=6)
            sent = sum(1 for r in refusals if r is None)
            self.app.notify(
                f"{command.value.title()} sent to {sent} of {len(job_ids)} jobs.", timeout=3
            )

        self.app.run_engine(send_all, told)

    def move(self, job_id: int, direction: int, lane: str) -> None:
        """A queued job one place up (-1) or down (+1) in its lane."""

        def told(moved: bool) -> None:
            if not moved:
                self.app.notify(
                    f"Job {job_id} is already "
                    f"{'first' if direction < 0 else 'last'} in the {lane} lane.",
                    timeout=3,
                )

        self.app.run_engine(partial(self.service.move_job, job_id, direction), told)

    def playlist_job(self, job_type: str, playlist_ids: Sequence[int]) -> None:
        """A sync / download job scoped to the picker's selection."""

        async def submitted(job: TaskRow) -> None:
            self.app.playlists_screen.unselect_all()
            await self.app.show_new_job(job)

        self.app.run_engine(
            partial(
                self.service.submit_job,
                job_type,
                playlist_ids=list(playlist_ids),
                requested_by="tui",
            ),
            submitted,
        )

    def wanted(self, playlist_ids: Sequence[int], wanted: bool) -> None:
        """Mark or unmark the picker's selection wanted."""

        def told(count: int) -> None:
            self.app.notify(
                f"{count} playlist{'s' if count != 1 else ''} "
                f"{'marked wanted' if wanted else 'unmarked'}",
                timeout=3,
            )

        self.app.run_engine(partial(self.service.set_wanted, list(playlist_ids), wanted), told)

    def plan(self, playlist_ids: Sequence[int]) -> None:
        """The plan for the selection; launching it from there queues sync then download."""
        from tui.screens.plan import PlanScreen

        def answered(choice: str | None) -> None:
            if choice:
                self.app.playlists_screen.action_bulk("sync_download")

        def show(plan: dict[str, Any]) -> None:
            self.app.push_screen(PlanScreen(plan), answered)

        self.app.run_engine(partial(self.service.plan, list(playlist_ids)), show)

    def failed_items(self, screen: FailuresScreen, job_id: int) -> None:
        """Every failed item of the job the failures view shows."""

        def show(failed: FailedItems) -> None:
            if screen.is_attached:
                screen.show_items(failed)

        self.app.run_engine(partial(self.service.job_failed_items, job_id, limit=None), show)

    def retry_failed(self, screen: FailuresScreen, job_id: int) -> None:
        """Retry a job's failed items from the failures view, then read them again."""

        def told(result: CommandResult) -> None:
            self.app.notify(f"Job {job_id}: retry {result.message}", timeout=3)
            self.failed_items(screen, job_id)

        self.app.run_engine(
            partial(self.service.command, job_id, CommandType.RETRY, requested_by="tui"), told
        )

    def submit(self, message: NewJobScreen.SubmitRequested) -> None:
        """Queue the new-job dialog's job; it closes with the job (stays on an error)."""

        def submitted(job: TaskRow) -> None:
            if message.dialog.is_attached:
                message.dialog.dismiss(job)

        self.app.run_engine(
            partial(
                self.service.submit_job,
                message.job_type,
                playlist_ids=message.playlist_ids,
                sources=message.sources,
                backend=message.backend,
                priority=message.priority,
                requested_by="tui",
            ),
            submitted,
        )
