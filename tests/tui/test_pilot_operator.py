"""Issue 13: what an SSH operator meets in the first minute and the hundredth hour."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Footer

from catalogsync import clock
from catalogsync.config import load_settings
from catalogsync.errors import ConfigError
from catalogsync.ops.lease import RunnerLease
from catalogsync.ops.models import JobStatus
from catalogsync.ops.readmodels import DashboardView, FailedItems, ScheduleView
from catalogsync.service import Catalogsync
from tests.tui.conftest import FROZEN_AT, MB, Seeded, make_app, settle
from tui.logsetup import default_log_file, tui_logging
from tui.messages import JobsRefreshed
from tui.screens.confirm import ConfirmScreen
from tui.screens.failures import FailuresScreen, FailureTable
from tui.screens.log_view import LogScreen, LogTable
from tui.screens.new_job import NewJobScreen
from tui.screens.playlists import PlaylistsScreen
from tui.screens.task_center import TaskCenterScreen
from tui.widgets.job_detail import JobDetail
from tui.widgets.job_table import JobTable
from tui.widgets.pick_list import PickList
from tui.widgets.summary_header import SummaryHeader
from tui.widgets.worker_row import WorkerRow

SIZE = (120, 40)


def header_lines(app: Any) -> list[str]:
    return str(app.task_center.query_one(SummaryHeader).render()).splitlines()


def footer_keys(screen: Any) -> list[str]:
    """The keys the footer shows, left to right."""
    footer = screen.query_one(Footer)
    return [str(key.key_display or key.key) for key in footer.query("FooterKey") if key.display]


def job_status(seeded: Seeded, job_id: int) -> JobStatus:
    job = seeded.service.repository.get_job(job_id)
    assert job is not None
    return job.status


# -- 2: failures are first-class -------------------------------------------------------


def test_failed_items_read_model_masks_credentials_and_pages(seeded: Seeded) -> None:
    failed = seeded.service.job_failed_items(seeded.failed)
    assert failed.total == 2
    first, second = failed.items
    assert first.playlist == "Late Night Jazz" and first.error_code == "http_404"
    assert first.error == "HTTP 404 from https://dj:***@lists.example/late-night-jazz.m3u"
    assert (second.attempts, second.stage_type) == (3, "sync")
    page = seeded.service.job_failed_items(seeded.failed, limit=1, offset=1)
    assert page == FailedItems(total=2, items=(second,))
    assert seeded.service.job_detail(seeded.failed).failed_items == failed


async def test_detail_lists_failed_items_and_f_opens_all_of_them_where_R_retries(
    seeded: Seeded,
) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        assert app.task_center.highlight_job(seeded.failed)
        await pilot.press("enter")
        await settle(pilot, app)
        text = str(app.task_center.query_one("#detail-failures").render())
        assert "Failed items  2" in text
        assert "Late Night Jazz · http_404 · HTTP 404 from https://dj:***@lists.ex" in text
        assert "s3cret" not in text
        assert "3 tries" in text
        await pilot.press("f")
        await settle(pilot, app)
        screen = app.screen
        assert isinstance(screen, FailuresScreen)
        table = screen.query_one(FailureTable)
        assert table.row_count == 2
        assert table.get_cell(table.row_keys()[0], "code").plain == "http_404"
        await pilot.press("R")
        await settle(pilot, app)
        assert job_status(seeded, seeded.failed) == JobStatus.QUEUED
        assert screen.total == 0
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, TaskCenterScreen)


async def test_header_says_n_of_m_jobs_m_lists_more_and_facets_find_old_jobs(
    seeded: Seeded,
) -> None:
    ops = seeded.service.repository
    for _ in range(55):
        ops.create_job("collect_only", {}, status=JobStatus.COMPLETED)
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        table = app.task_center.query_one(JobTable)
        assert "50 of 61 jobs · m: more" in header_lines(app)[2]
        await pilot.press("m")
        await settle(pilot, app)
        assert len(table.row_keys()) == 61
        assert "61 of 61 jobs" in header_lines(app)[2]
        await pilot.press("slash", *"status:fail", "enter")
        await settle(pilot, app)
        assert table.row_keys() == [str(seeded.failed)]
        assert "1 match" in header_lines(app)[2]
        await pilot.press("escape", "slash", *"type:sync_d lane:down", "enter")
        await settle(pilot, app)
        assert table.row_keys() == [str(seeded.queued_1), str(seeded.paused)]


async def test_attached_a_job_that_fails_between_two_reads_is_notified(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        # queued -> failed with no read in between, and a new job that failed at once.
        seeded.service.repository.set_job_status(seeded.queued_2, JobStatus.FAILED, error="boom")
        new = seeded.service.repository.create_job("collect_only", {}, status=JobStatus.FAILED)
        await settle(pilot, app)
        messages = [m for _, m in app.notified]
        assert f"Job {seeded.queued_2} (Download) failed: boom" in messages
        assert any(m.startswith(f"Job {new} (Collect) failed") for m in messages)


# -- 4: a runner dying while attached ---------------------------------------------------


async def test_a_dead_runner_is_notified_and_t_starts_one_here(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = RunnerLease(seeded.service.repository)
    other.acquire()
    started: list[bool] = []

    def start_runner_thread(on_event: Any = None) -> bool:
        started.append(True)
        return True

    # The real start finds the other runner's live lease: attached.
    app = make_app(seeded.service, embed_runner=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert not app.embedded
        monkeypatch.setattr(seeded.service, "start_runner_thread", start_runner_thread)
        assert "attached to runner pid" in header_lines(app)[0]
        assert "t" not in footer_keys(app.task_center)
        other.release()
        await settle(pilot, app)
        assert any("stopped: queued jobs wait. Press t" in m for _, m in app.notified)
        assert "t" in footer_keys(app.task_center)
        await pilot.press("t")
        await settle(pilot, app)
        assert started == [True] and app.embedded
        assert "runner: this app" in header_lines(app)[0]
        app.embedded = False  # the fake runner has nothing to stop


# -- 5, 10, 14: the new-job dialog --------------------------------------------------------


async def test_new_job_marks_selection_with_text_and_names_types_one_way(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, NewJobScreen)
        picks = app.screen.query_one("#job-playlists", PickList)
        picks.focus()
        await pilot.press("space")
        await pilot.pause()
        lines = [picks.render_line(y).text for y in range(2)]
        assert lines[0].startswith("[x] Morning Commute")
        assert lines[1].startswith("[ ] Late Night Jazz")
        labels = [str(prompt) for prompt, _ in app.screen.query_one("#job-type")._options]
        assert "Sync Then Download (sync_download)" in labels
        assert not any("All (" in label for label in labels)
        label = str(app.screen.query_one("#backend-label").render())
        assert "catalogsync backends add NAME" in label


# -- 6, 7: 80 and 60 columns ----------------------------------------------------------------


async def test_palette_key_stays_in_the_footer_after_resizes(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        assert "^p" in footer_keys(app.task_center)
        assert "^p commands" in header_lines(app)[0]
        for size in ((120, 40), (60, 20), (80, 24)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            assert "^p" in footer_keys(app.task_center)


async def test_60x20_keeps_header_lines_help_quit_and_whole_speeds(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(pilot, app)
        lines = header_lines(app)
        assert len(lines) == 3 and all(len(line) <= 60 for line in lines)
        assert lines[1].startswith("Run 1 │ Queued 2 │ Paused 1 │ Failed 1 │ ↓ 6.0 MB/s")
        keys = footer_keys(app.task_center)
        assert keys[:2] == ["?", "q"]
        table = app.task_center.query_one(JobTable)
        assert table.get_cell(str(seeded.running), "speed").plain == "6.0 MB/s"
        assert table.get_cell(str(seeded.running), "progress").plain == "6 / 22 songs"
        # Every visible column fits: no horizontal scrolling at 60 columns.
        assert table.virtual_size.width <= 60


async def test_80_columns_keep_two_digit_progress_and_speed_whole(seeded: Seeded) -> None:
    ops = seeded.service.repository
    stage = next(s for s in ops.list_job_stages(seeded.running) if s.stage_type == "download")
    with ops._connection() as conn:
        conn.execute(
            "UPDATE job_stages SET total_items = 18, success_items = 17 WHERE id = ?", (stage.id,)
        )
    seeded.service.repository.update_worker_state(
        "download-1", job_id=seeded.running, speed_bytes_per_sec=11.4 * MB
    )
    app = make_app(seeded.service)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        table = app.task_center.query_one(JobTable)
        assert table.get_cell(str(seeded.running), "progress").plain == "17 / 18 songs"
        assert table.get_cell(str(seeded.running), "speed").plain == "14.2 MB/s"
        assert table.virtual_size.width <= 80


# -- 8: the detail follows the cursor -------------------------------------------------------


async def test_detail_follows_the_cursor_and_p_acts_on_what_it_shows(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await settle(pilot, app)
        detail = app.task_center.query_one(JobDetail)
        assert detail.job_id == seeded.running
        await pilot.press("down")
        await settle(pilot, app)
        assert detail.job_id == seeded.queued_1 == app.task_center.expanded_job_id
        await pilot.press("p")
        await settle(pilot, app)
        assert job_status(seeded, seeded.queued_1) == JobStatus.PAUSED
        assert f"Job {seeded.queued_1}" in str(detail.query_one("#detail-title").render())


# -- 9: the quit dialog ---------------------------------------------------------------


class FakeRunner:
    def __init__(self, seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reasons: list[str | None] = []
        monkeypatch.setattr(seeded.service, "start_runner_thread", lambda on_event=None: True)
        monkeypatch.setattr(seeded.service, "stop_runner", self.stop)

    def stop(self, timeout: float = 30.0, *, reason: str | None = None) -> None:
        self.reasons.append(reason)


async def test_quit_dialog_follows_the_jobs_and_wait_shows_in_the_header(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeRunner(seeded, monkeypatch)
    app = make_app(seeded.service, embed_runner=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen)
        assert dialog.message == "1 job is running in this app's runner."
        seeded.service.repository.set_job_status(seeded.running, JobStatus.COMPLETED)
        await app.refresh_now()
        await pilot.pause()
        assert "No job is running any more" in str(dialog.query_one(".dialog-message").render())
        await pilot.press("escape")
        seeded.service.repository.set_job_status(seeded.queued_1, JobStatus.RUNNING)
        await settle(pilot, app)
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("w")
        await settle(pilot, app)
        assert "quitting when jobs finish" in header_lines(app)[0]
        app.embedded = False


# -- 11: one speed scale per job; the lane-wide graph ----------------------------------


async def test_worker_bars_share_one_scale_labelled_with_its_maximum(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await settle(pilot, app)
        rows = list(app.task_center.query(WorkerRow))
        assert len({row.scale for row in rows}) == 1
        assert rows[0].scale == max(*rows[0].samples, *rows[1].samples)
        title = str(app.task_center.query_one("#detail-workers-title").render())
        assert "one scale, full = 3.5 MB/s" in title
        # The slower worker's bars are lower: its peak (3.0) is under the shared 3.5.
        tops = [max(str(row.query_one(".worker-speed").render())) for row in rows]
        assert tops == ["█", "▇"]


async def test_header_graphs_lane_wide_speed_over_refreshes(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        for tick in (4, 5, 6):
            clock.freeze(FROZEN_AT + tick)  # one sample per second of the clock
            seeded.service.repository.update_worker_state(
                "download-1", job_id=seeded.running, speed_bytes_per_sec=tick * MB
            )
            await app.refresh_now()
            await pilot.pause()
        header = app.task_center.query_one(SummaryHeader)
        # download-2 stays at 2.8 MB/s: the graph is the sum over the lane's workers.
        assert [round(v / MB, 1) for v in header.speeds][-3:] == [6.8, 7.8, 8.8]
        assert "max 8.8 MB/s" in header_lines(app)[2]


# -- 12: toasts and their history ------------------------------------------------------------


async def test_at_most_two_toasts_and_l_shows_every_notification(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=(80, 24)) as pilot:
        for n in range(5):
            app.notify(f"message {n}", timeout=20)
        await pilot.pause()
        assert [n.message for n in app._notifications] == ["message 3", "message 4"]
        assert all(n.timeout <= 4 for n in app._notifications)
        await pilot.press("l")
        await settle(pilot, app)
        assert isinstance(app.screen, LogScreen)
        table = app.screen.query_one(LogTable)
        messages = [table.get_cell(k, "message").plain for k in table.row_keys()]
        assert all(f"message {n}" in messages for n in range(5))
        assert f"job {seeded.failed} failed: 2 playlists failed" in messages
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, TaskCenterScreen)


# -- 13: Esc and the filter -----------------------------------------------------------------


async def test_typing_a_filter_hides_job_actions_and_the_picker_says_how_to_filter(
    seeded: Seeded,
) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert "R" in footer_keys(app.task_center)
        await pilot.press("slash")
        await pilot.pause()
        assert "R" not in footer_keys(app.task_center) and "p" not in footer_keys(app.task_center)
        await pilot.press("enter")
        await pilot.pause()
        assert "R" in footer_keys(app.task_center)
        await pilot.press("2")
        await pilot.pause()
        await pilot.press("z")
        await pilot.pause()
        assert app.notified[-1][1] == "'z' is not a key here: / filters the playlists."
        await pilot.press("slash", *"jazz", "escape")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PlaylistsScreen) and screen.filter_text == "jazz"
        await pilot.press("escape")
        await pilot.pause()
        assert screen.filter_text == "" and isinstance(app.screen, PlaylistsScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, TaskCenterScreen)


# -- 14: labels --------------------------------------------------------------------------


async def test_labels_say_progress_nothing_to_do_and_an_empty_table_says_what_to_do(
    empty_service: Catalogsync,
) -> None:
    app = make_app(empty_service)
    async with app.run_test(size=SIZE) as pilot:
        table = app.task_center.query_one(JobTable)
        assert [str(c.label) for c in table.columns.values()][4] == "Progress"
        empty = app.task_center.query_one("#jobs-empty")
        assert empty.display and "No jobs yet: n submits one" in str(empty.render())
        job = empty_service.repository.create_job("download_only", {}, status=JobStatus.COMPLETED)
        empty_service.repository.ensure_job_stages(job)
        await settle(pilot, app)
        assert not empty.display
        assert table.get_cell(str(job), "progress").plain == "nothing to do"


# -- 15: logging goes to a file and Textual, never the terminal --------------------------


def test_log_records_go_to_the_file_not_stderr(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    logging.basicConfig(level=logging.WARNING, force=True)
    log_file = tmp_path / "logs" / "tui.log"
    with tui_logging(log_file):
        logging.getLogger("catalogsync.transfer").warning("disk almost full")
    assert capfd.readouterr().err == ""
    assert "WARNING catalogsync.transfer: disk almost full" in log_file.read_text()
    logging.getLogger("catalogsync").warning("after the TUI")
    assert "after the TUI" in capfd.readouterr().err
    logging.basicConfig(force=True)


def test_default_log_file_is_under_home(tmp_path: Path) -> None:
    settings = load_settings(str(tmp_path))
    assert default_log_file(settings) == tmp_path.resolve() / "logs" / "tui.log"


# -- 16: a refresh that lands while the app closes ------------------------------------------


async def test_a_refresh_arriving_after_the_screen_is_gone_is_dropped(seeded: Seeded) -> None:
    """Issue 13.16: `App._shutdown` stops `is_running`, then prunes the screens; a read
    from a refresh thread could land in between (NoMatches: SummaryHeader)."""
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        late = JobsRefreshed(seeded.service.dashboard())
        await app.task_center.query_one(SummaryHeader).remove()
        app._running = False
        try:
            app._apply(late)
            app.request_refresh()  # and no new read starts
            assert not [w for w in app.workers if w.group == "refresh" and not w.is_finished]
        finally:
            app._running = True
        app.task_center._ready = False  # the header is gone for good in this test


# -- k9s / htop / lazygit conventions -----------------------------------------------------


@pytest.mark.parametrize("where", ["tasks", "failures", "log", "playlists"])
async def test_j_k_g_G_home_end_move_in_every_table(seeded: Seeded, where: str) -> None:
    for _ in range(3):
        seeded.service.submit_job("sync_only", requested_by="test")
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        if where == "failures":
            app.task_center.highlight_job(seeded.failed)
            await pilot.press("f")
        elif where == "log":
            await pilot.press("l")
        elif where == "playlists":
            await pilot.press("2")
        await settle(pilot, app)
        table = app.screen.query(KeyedTableTypes).first()
        assert table.has_focus and table.row_count >= 2
        last = table.row_count - 1
        for key, row in (("j", 1), ("k", 0), ("G", last), ("g", 0), ("end", last), ("home", 0)):
            await pilot.press(key)
            await pilot.pause()
            assert table.cursor_row == row, key


async def test_s_cycles_the_sort_and_the_header_and_column_show_it(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        table = app.task_center.query_one(JobTable)
        assert "sort: queue (s)" in header_lines(app)[2]
        await pilot.press("s")
        await pilot.pause()
        assert "sort: newest (s)" in header_lines(app)[2]
        assert table.row_keys() == [str(i) for i in range(6, 0, -1)]
        assert str(table.columns["id"].label) == "ID ▼"  # type: ignore[index]
        await pilot.press("s")
        await pilot.pause()
        assert "sort: status (s)" in header_lines(app)[2]
        assert str(table.columns["status"].label) == "Status ▼"  # type: ignore[index]
        assert str(table.columns["id"].label) == "ID"  # type: ignore[index]
        assert table.get_cell(table.row_keys()[0], "status").plain == "completed"


async def test_pause_all_and_resume_all_ask_first(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("P")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.title_text == "Pause all (3 jobs)?"
        await pilot.press("n")
        await settle(pilot, app)
        assert job_status(seeded, seeded.queued_1) == JobStatus.QUEUED
        await pilot.press("P")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot, app)
        assert job_status(seeded, seeded.running) == JobStatus.PAUSE_REQUESTED
        for job_id in (seeded.queued_1, seeded.queued_2):
            assert job_status(seeded, job_id) == JobStatus.PAUSED
        await pilot.press("U")
        await pilot.pause()
        assert app.screen.title_text == "Resume all (4 jobs)?"  # type: ignore[attr-defined]
        await pilot.press("y")
        await settle(pilot, app)
        assert job_status(seeded, seeded.paused) == JobStatus.QUEUED


def write_config(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text, encoding="utf-8")


async def test_keys_and_refresh_interval_come_from_config(home: Path, seeded: Seeded) -> None:
    write_config(
        home, '[tui]\nrefresh_seconds = 2.5\n[tui.keys]\n"task.pause" = "z"\n"task.log" = "L"\n'
    )
    service = Catalogsync.open(home=str(home))
    try:
        app = make_app(service, refresh_interval=-1)
        assert app.refresh_interval == 2.5
        app.refresh_interval = None
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("z")
            await settle(pilot, app)
            assert job_status(seeded, seeded.running) == JobStatus.PAUSE_REQUESTED
            await pilot.press("L")
            await pilot.pause()
            assert isinstance(app.screen, LogScreen)
    finally:
        service.close()


async def test_an_unknown_binding_id_is_named(home: Path, seeded: Seeded) -> None:
    write_config(home, '[tui.keys]\n"task.paws" = "z"\n')
    service = Catalogsync.open(home=str(home))
    try:
        app = make_app(service)
        async with app.run_test(size=SIZE):
            severity, message = app.notified[0]
            assert severity == "error" and message.startswith(
                "[tui.keys]: unknown binding id task.paws (known: "
            )
    finally:
        service.close()


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[tui]\nrefresh_seconds = 0\n", "refresh_seconds"),
        ('[tui.keys]\n"task.pause" = 3\n', "task.pause"),
    ],
)
def test_bad_tui_config_is_one_line(home: Path, text: str, names: str) -> None:
    write_config(home, text)
    with pytest.raises(ConfigError) as raised:
        load_settings(str(home))
    message = str(raised.value)
    assert "\n" not in message and "[tui" in message and names in message


async def test_next_schedule_shows_in_the_header(seeded: Seeded, monkeypatch: Any) -> None:
    monkeypatch.setenv("TZ", "UTC")
    import time

    time.tzset()
    dashboard = seeded.service.dashboard

    def with_schedule(task_limit: int = 50) -> DashboardView:
        return replace(
            dashboard(task_limit),
            next_schedule=ScheduleView(
                name="nightly", job_type="catalog_sync", next_run_at="2024-05-02 03:00:00"
            ),
        )

    monkeypatch.setattr(seeded.service, "dashboard", with_schedule)
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert "next: nightly 03:00" in header_lines(app)[2]
    monkeypatch.delenv("TZ")
    time.tzset()


KeyedTableTypes = "JobTable, FailureTable, LogTable, PlaylistTable"


async def test_a_changed_cell_is_drawn_and_other_rows_keep_their_renders(seeded: Seeded) -> None:
    """The table repaints only the row whose cells changed (its speed), and draws it."""
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        table = app.task_center.query_one(JobTable)
        before = table.render_line(3).text  # a queued job's line
        cache = list(table._row_render_cache.keys())  # noqa: SIM118 (an LRUCache)
        kept = [k for k in cache if k[0] == str(seeded.queued_1)]
        seeded.service.repository.update_worker_state(
            "download-1", job_id=seeded.running, speed_bytes_per_sec=9 * MB
        )
        await app.refresh_now()
        await pilot.pause()
        assert "11.8 MB/s" in table.render_line(1).text  # 9.0 + 2.8
        assert table.render_line(3).text == before
        assert kept and all(k in table._row_render_cache.keys() for k in kept)  # noqa: SIM118
