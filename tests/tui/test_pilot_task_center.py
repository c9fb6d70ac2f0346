"""Task center keys: every binding reaches the engine, errors become notifications."""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select, SelectionList

from catalogsync.ops.models import ItemStatus, JobStatus
from catalogsync.service import Catalogsync
from tests.tui.conftest import SPEEDS_1, SPEEDS_2, Seeded, drain_workers, make_app, settle
from tui.app import CatalogsyncApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.help import HelpScreen
from tui.screens.new_job import NO_BACKEND, NewJobScreen
from tui.screens.playlists import PlaylistsScreen
from tui.screens.task_center import TaskCenterScreen
from tui.widgets.job_detail import JobDetail
from tui.widgets.job_table import JobTable
from tui.widgets.summary_header import SummaryHeader
from tui.widgets.worker_row import WorkerRow

SIZE = (120, 40)


def status(seeded: Seeded, job_id: int) -> JobStatus:
    return seeded.service.repository.require_job(job_id).status


def commands(seeded: Seeded, job_id: int) -> list[dict[str, Any]]:
    """Every job_commands row of a job (the repository has no list call: read them by id)."""
    rows = []
    for command_id in range(1, 50):
        row = seeded.service.repository.get_command(command_id)
        if row is not None and row["job_run_id"] == job_id:
            rows.append(row)
    return rows


async def highlight(pilot: Pilot, app: CatalogsyncApp, job_id: int) -> None:
    assert app.task_center.highlight_job(job_id)
    await pilot.pause()


async def test_table_lists_jobs_in_task_center_order(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE):
        table = app.task_center.query_one(JobTable)
        assert table.row_keys() == [
            str(i)
            for i in (
                seeded.running,
                seeded.queued_1,
                seeded.queued_2,
                seeded.paused,
                seeded.failed,
                seeded.completed,
            )
        ]
        statuses = [
            table.get_cell(str(i), "status").plain
            for i in (seeded.running, seeded.queued_1, seeded.queued_2)
        ]
        assert statuses == ["running", "queued #1", "queued #2"]
        # The Lane column says the lane only (it used to mix in `running` and `queued #1`).
        lanes = [
            table.get_cell(str(i), "lane").plain
            for i in (seeded.running, seeded.queued_1, seeded.failed)
        ]
        assert lanes == ["download", "download", "general"]
        assert table.get_cell(str(seeded.running), "progress").plain == "6 / 22 songs"
        assert table.get_cell(str(seeded.running), "speed").plain == "6.0 MB/s"
        assert table.get_cell(str(seeded.running), "status").style == "bold green"
        assert table.get_cell(str(seeded.failed), "status").style == "bold red"
        header = str(app.task_center.query_one(SummaryHeader).render())
        assert "Running 1" in header and "Queued Download Jobs 2" in header
        assert "6.0 MB/s" in header
        assert "no runner" in header


async def test_arrow_down_then_p_pauses_the_queued_job(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "p")
        await settle(pilot, app)
        assert status(seeded, seeded.queued_1) == JobStatus.PAUSED
        [command] = commands(seeded, seeded.queued_1)
        assert (command["command_type"], command["status"]) == ("pause", "applied")
        assert app.task_center.query_one(JobTable).highlighted_job_id == seeded.queued_1


async def test_p_pauses_a_running_job(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        await settle(pilot, app)
        # No runner is live: the command is applied at once; the runner would finish the pause.
        assert status(seeded, seeded.running) == JobStatus.PAUSE_REQUESTED
        assert [c["command_type"] for c in commands(seeded, seeded.running)] == ["pause"]


async def test_p_resumes_a_paused_job(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await highlight(pilot, app, seeded.paused)
        await pilot.press("p")
        await settle(pilot, app)
        assert status(seeded, seeded.paused) == JobStatus.QUEUED
        assert [c["command_type"] for c in commands(seeded, seeded.paused)] == ["resume"]
        table = app.task_center.query_one(JobTable)
        assert table.get_cell(str(seeded.paused), "status").plain.startswith("queued #")
        assert table.highlighted_job_id == seeded.paused


async def test_c_asks_and_cancels_only_after_yes(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await highlight(pilot, app, seeded.queued_2)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert status(seeded, seeded.queued_2) == JobStatus.QUEUED
        await pilot.press("y")
        await settle(pilot, app)
        assert isinstance(app.screen, TaskCenterScreen)
        assert status(seeded, seeded.queued_2) == JobStatus.CANCELED
        assert [c["command_type"] for c in commands(seeded, seeded.queued_2)] == ["cancel"]


async def test_c_declined_changes_nothing(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        for decline in ("n", "escape", "enter"):
            await pilot.press("c")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press(decline)
            await settle(pilot, app)
            assert isinstance(app.screen, TaskCenterScreen)
        await pilot.press("c")
        await pilot.click("#choice-no")
        await settle(pilot, app)
        assert status(seeded, seeded.running) == JobStatus.RUNNING
        assert commands(seeded, seeded.running) == []


async def test_n_submits_a_job_of_the_chosen_type_and_highlights_it(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, NewJobScreen)
        dialog.query_one("#job-type", Select).value = "download_only"
        picks = dialog.query_one("#job-playlists", SelectionList)
        picks.select(seeded.playlists[4])
        picks.select(seeded.playlists[1])
        dialog.query_one("#job-priority", Input).value = "50"
        await pilot.click("#submit")
        await settle(pilot, app)
        assert isinstance(app.screen, TaskCenterScreen)
        newest = max(job.id for job in seeded.service.repository.list_jobs())
        job = seeded.service.repository.require_job(newest)
        assert job.job_type == "download_only"
        assert job.playlist_ids == [seeded.playlists[4], seeded.playlists[1]]
        assert job.priority == 50
        assert job.requested_by == "tui"
        assert app.task_center.query_one(JobTable).highlighted_job_id == newest


async def test_n_offers_library_verify_without_a_playlist_picker(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, NewJobScreen)
        dialog.query_one("#job-type", Select).value = "library_verify"
        await pilot.pause()
        assert not dialog.query_one("#job-playlists", SelectionList).display
        await pilot.click("#submit")
        await settle(pilot, app)
        newest = max(job.id for job in seeded.service.repository.list_jobs())
        job = seeded.service.repository.require_job(newest)
        assert (job.job_type, job.playlist_ids) == ("library_verify", [])


async def test_new_job_space_toggles_the_option_under_the_cursor_at_once(
    seeded: Seeded,
) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n", "tab")
        picks = app.screen.query_one("#job-playlists", SelectionList)
        assert picks.has_focus
        # Keys that arrive in one read over SSH: no pause between space and down.
        picks.action_select()
        picks.action_cursor_down()
        picks.action_cursor_down()
        picks.action_select()
        await pilot.pause()
        assert picks.selected == [seeded.playlists[0], seeded.playlists[2]]


async def test_new_job_errors_are_notifications_and_the_dialog_stays(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await pilot.pause()
        app.screen.query_one("#job-type", Select).value = "upload_only"
        await pilot.pause()
        count = len(seeded.service.repository.list_jobs())
        await pilot.click("#submit")
        await settle(pilot, app)
        assert isinstance(app.screen, NewJobScreen)
        assert len(seeded.service.repository.list_jobs()) == count
        # Said in the TUI's words, not the CLI's `--backend NAME`.
        assert ("error", NO_BACKEND) in app.notified
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, TaskCenterScreen)


async def test_brackets_move_a_queued_job_within_its_lane(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        table = app.task_center.query_one(JobTable)
        await highlight(pilot, app, seeded.queued_2)
        await pilot.press("left_square_bracket")
        await settle(pilot, app)
        rows = {r.id: r for r in seeded.service.task_rows()}
        assert rows[seeded.queued_2].queue_label == "queued #1"
        assert rows[seeded.queued_1].queue_label == "queued #2"
        assert table.get_cell(str(seeded.queued_2), "status").plain == "queued #1"
        assert table.row_keys()[1:3] == [str(seeded.queued_2), str(seeded.queued_1)]
        # The cursor follows the job it moved.
        assert table.highlighted_job_id == seeded.queued_2
        await pilot.press("right_square_bracket")
        await settle(pilot, app)
        rows = {r.id: r for r in seeded.service.task_rows()}
        assert rows[seeded.queued_2].queue_label == "queued #2"
        assert table.highlighted_job_id == seeded.queued_2


async def test_shift_r_retries_the_failed_items(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await highlight(pilot, app, seeded.failed)
        await pilot.press("R")
        await settle(pilot, app)
        assert status(seeded, seeded.failed) == JobStatus.QUEUED
        stage = seeded.service.repository.list_job_stages(seeded.failed)[0]
        pending = seeded.service.repository.list_stage_items(stage.id, ItemStatus.PENDING)
        assert len(pending) == 2
        assert [c["command_type"] for c in commands(seeded, seeded.failed)] == ["retry"]


async def test_refused_commands_are_notifications_not_tracebacks(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("R")  # the running job: the engine refuses
        await settle(pilot, app)
        severity, message = app.notified[-1]
        assert severity == "error"
        assert message.startswith(f"cannot retry job {seeded.running}")
        await highlight(pilot, app, seeded.completed)
        await pilot.press("p", "c")
        await settle(pilot, app)
        assert isinstance(app.screen, TaskCenterScreen)
        assert [s for s, _ in app.notified[-2:]] == ["warning", "warning"]
        assert status(seeded, seeded.completed) == JobStatus.COMPLETED


async def test_slash_filters_and_escape_clears(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        table = app.task_center.query_one(JobTable)
        await pilot.press("slash")
        await pilot.pause()
        box = app.task_center.query_one("#job-filter", Input)
        assert box.display and box.has_focus
        await pilot.press(*"paused")
        await pilot.pause()
        assert table.row_keys() == [str(seeded.paused)]
        # Esc in the box returns to the table keeping the filter (as in the picker) ...
        await pilot.press("escape")
        await pilot.pause()
        assert table.has_focus and box.display
        assert table.row_keys() == [str(seeded.paused)]
        # ... Esc on the table clears it.
        await pilot.press("escape")
        await pilot.pause()
        assert not box.display
        assert len(table.row_keys()) == 6
        await pilot.press("slash", *"2 playlists", "enter")
        await pilot.pause()
        assert table.has_focus
        assert table.row_keys() == [str(seeded.running), str(seeded.queued_1)]


async def test_filter_finds_jobs_older_than_the_tables_fifty_and_acts_on_them(
    seeded: Seeded,
) -> None:
    """With 55 newer finished jobs, the failed sync is no longer among the table's 50
    rows; typing a filter finds it anyway, and R retries it from there."""
    ops = seeded.service.repository
    for _ in range(55):
        ops.create_job("collect_only", {}, status=JobStatus.COMPLETED)
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        table = app.task_center.query_one(JobTable)
        assert str(seeded.failed) not in table.row_keys()
        assert len(table.row_keys()) == 50
        await pilot.press("slash", *"fail")
        await settle(pilot, app)
        assert table.row_keys() == [str(seeded.failed)]
        await pilot.press("enter")
        await pilot.pause()
        assert table.highlighted_job_id == seeded.failed
        await pilot.press("R")
        await settle(pilot, app)
        assert status(seeded, seeded.failed) == JobStatus.QUEUED
        assert table.row_keys() == []  # queued again, it no longer matches "fail"
        await pilot.press("escape")
        await settle(pilot, app)
        assert str(seeded.failed) in table.row_keys()


async def test_question_mark_opens_help(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, TaskCenterScreen)


async def test_2_opens_the_playlists_and_1_escape_return(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        for open_key, back_key in (("2", "escape"), ("2", "1")):
            await pilot.press(open_key)
            await pilot.pause()
            assert isinstance(app.screen, PlaylistsScreen)
            await pilot.press(back_key)
            await pilot.pause()
            assert isinstance(app.screen, TaskCenterScreen)


async def test_enter_expands_the_detail_with_workers_and_sparklines(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await settle(pilot, app)
        detail = app.task_center.query_one(JobDetail)
        assert detail.display and detail.job_id == seeded.running
        workers = list(detail.query(WorkerRow))
        assert [w.worker_id for w in workers] == seeded.worker_ids
        assert [w.samples for w in workers] == [SPEEDS_1, SPEEDS_2]
        stages = str(detail.query_one("#detail-stages").render())
        assert "6 / 22 songs" in stages
        playlists = str(detail.query_one("#detail-playlists").render())
        assert "Morning Commute" in playlists and "6 / 12" in playlists
        await pilot.press("enter")
        await pilot.pause()
        assert not detail.display
        assert app.task_center.expanded_job_id is None


async def test_command_palette_offers_every_action(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        names = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in (
            "Pause",
            "Cancel",
            "New",
            "Move up",
            "Move down",
            "Retry",
            "Filter",
            "Playlists",
            "Help",
            "Quit",
        ):
            assert any(n.startswith(wanted) for n in names), wanted
        await pilot.press("2")
        await pilot.pause()
        names = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in (
            "Sync Selected Playlists",
            "Download Selected Playlists",
            "Sync Then Download",
            "Mark Wanted",
            "Unmark Wanted",
            "Select",
            "All",
        ):
            assert any(n.startswith(wanted) for n in names), wanted
        pause = next(
            c for c in app.get_system_commands(app.task_center) if c.title.startswith("Pause")
        )
        await pilot.press("escape")
        await pilot.pause()
        await pause.callback()
        await settle(pilot, app)
        assert status(seeded, seeded.running) == JobStatus.PAUSE_REQUESTED


async def test_attached_to_another_runner_says_so(seeded: Seeded) -> None:
    # A live runner (this very process, so its pid is alive) holds the lease.
    seeded.service.repository.try_acquire_lease(
        "other", os.getpid(), socket.gethostname(), stale_after=60, holder_alive=lambda _: True
    )
    app = make_app(seeded.service, embed_runner=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert not app.embedded
        header = str(app.task_center.query_one(SummaryHeader).render())
        assert f"attached to runner pid {os.getpid()} on {socket.gethostname()}" in header
        # A client's commands go to the runner's queue.
        await pilot.press("p")
        await settle(pilot, app)
        [command] = commands(seeded, seeded.running)
        assert command["status"] == "pending"
        assert "pause sent; the runner has not answered" in app.notified[-1][1]


async def test_runner_events_become_notifications(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        events = [
            (
                "job_paused",
                {"job_id": seeded.paused, "message": "disk full: 150 MB free, 200 MB reserved"},
            ),
            ("job_finished", {"job_id": seeded.completed, "status": "completed"}),
            (
                "job_finished",
                {"job_id": seeded.failed, "status": "failed", "message": "no source named 'x'"},
            ),
        ]
        thread = threading.Thread(
            target=lambda: [app._runner_event_in_thread(k, d) for k, d in events]
        )
        thread.start()
        thread.join()
        await settle(pilot, app)
        assert app.notified[-3:] == [
            (
                "error",
                f"Job {seeded.paused} (Sync Then Download) paused itself: "
                "disk full: 150 MB free, 200 MB reserved",
            ),
            ("information", f"Job {seeded.completed} (Full Pipeline) completed."),
            ("error", f"Job {seeded.failed} (Sync Selected Playlists) failed: no source named 'x'"),
        ]


class FakeRunner:
    """Stands in for the embedded runner so quitting can be tested without threads."""

    def __init__(self, seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stopped = 0
        self.reasons: list[str | None] = []
        service = seeded.service
        monkeypatch.setattr(service, "start_runner_thread", lambda on_event=None: True)
        monkeypatch.setattr(service, "stop_runner", self.stop)

    def stop(self, timeout: float = 30.0, *, reason: str | None = None) -> None:
        self.stopped += 1
        self.reasons.append(reason)


async def test_quit_with_running_jobs_asks_and_stop_stops_the_runner(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = FakeRunner(seeded, monkeypatch)
    app = make_app(seeded.service, embed_runner=True)
    async with app.run_test(size=SIZE) as pilot:
        assert app.embedded
        header = str(app.task_center.query_one(SummaryHeader).render())
        assert "runner: this app" in header
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "Stop running jobs (they resume at next start)" in str(
            app.screen.query_one("#choice-stop").label
        )
        # "Stay" is Esc: `c` means cancel-job everywhere else.
        assert "Stay (Esc)" in str(app.screen.query_one("#choice-stay").label)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, TaskCenterScreen) and app.is_running
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("s")
        await drain_workers(app)
        await pilot.pause()
    assert runner.stopped == 1
    assert app.return_code == 0


async def test_quit_and_wait_exits_when_the_running_jobs_end(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = FakeRunner(seeded, monkeypatch)
    app = make_app(seeded.service, embed_runner=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("w")
        await settle(pilot, app)
        assert app.is_running and runner.stopped == 0
        seeded.service.repository.set_job_status(seeded.running, JobStatus.COMPLETED)
        await app.refresh_now()
        await drain_workers(app)
        await pilot.pause()
    assert runner.stopped == 1


async def test_quit_without_running_jobs_exits_at_once(empty_service: Catalogsync) -> None:
    app = make_app(empty_service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
