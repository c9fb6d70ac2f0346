"""Refreshes update widgets in place: cursor, scroll, filter and expanded job survive them."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import Input

from catalogsync import clock
from catalogsync.ops.models import JobStatus
from tests.tui.conftest import FROZEN_AT, MB, Seeded, make_app, settle
from tui.widgets.job_detail import JobDetail
from tui.widgets.job_table import JobTable
from tui.widgets.keyed_table import KeyedTable
from tui.widgets.worker_row import WorkerRow

SIZE = (120, 40)


@pytest.fixture
def no_clear(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record any DataTable.clear(): a refresh must never rebuild a table."""
    calls: list[bool] = []
    original = KeyedTable.clear

    def clear(self: KeyedTable, columns: bool = False) -> KeyedTable:
        calls.append(columns)
        return original(self, columns)

    monkeypatch.setattr(KeyedTable, "clear", clear)
    return calls


async def test_cursor_expanded_job_and_filter_survive_changing_data(
    seeded: Seeded, no_clear: list[bool]
) -> None:
    service = seeded.service
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        table = app.task_center.query_one(JobTable)
        await pilot.press("slash", *"download", "enter")
        await pilot.pause()
        assert table.highlight(str(seeded.queued_2))
        await pilot.press("enter")
        await settle(pilot, app)
        layout_clears = len(no_clear)
        for tick in range(1, 5):
            clock.freeze(FROZEN_AT + tick)
            # New jobs arrive (one ahead of the cursor in the queue), speeds change.
            service.submit_job("download_only", priority=10, requested_by="test")
            service.submit_job("sync_only", requested_by="test")
            service.repository.update_worker_state(
                "download-1",
                job_id=seeded.running,
                speed_bytes_per_sec=tick * MB,
                downloaded_bytes=(16 + tick) * MB // 2,
                total_bytes=20 * MB,
            )
            await app.refresh_now()
            await pilot.pause()
            assert table.highlighted_job_id == seeded.queued_2
            assert app.task_center.expanded_job_id == seeded.queued_2
            assert app.task_center.query_one(JobDetail).job_id == seeded.queued_2
            assert app.task_center.filter_text == "download"
            assert app.task_center.query_one("#job-filter", Input).value == "download"
            # Four jobs have "download" in their name; each tick adds one (sync_only does not).
            assert len(table.row_keys()) == 4 + tick
        assert len(no_clear) == layout_clears
        assert table.get_cell(str(seeded.running), "progress").plain == "6 / 22 songs"
        assert table.get_cell(str(seeded.running), "speed").plain == "6.8 MB/s"


async def test_cursor_stays_on_its_job_when_rows_above_it_go(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        table = app.task_center.query_one(JobTable)
        table.highlight(str(seeded.failed))
        seeded.service.repository.set_job_status(seeded.running, JobStatus.COMPLETED)
        seeded.service.repository.set_job_status(seeded.queued_1, JobStatus.CANCELED)
        await settle(pilot, app)
        assert table.highlighted_job_id == seeded.failed


async def test_scroll_position_survives_refresh(seeded: Seeded) -> None:
    for _ in range(40):
        seeded.service.submit_job("sync_only", requested_by="test")
    app = make_app(seeded.service)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.task_center.query_one(JobTable)
        await pilot.press(*["down"] * 30)
        await pilot.pause()
        scroll, cursor = table.scroll_y, table.highlighted_job_id
        assert scroll > 0
        for _ in range(3):
            seeded.service.repository.update_worker_state(
                "download-2", job_id=seeded.running, speed_bytes_per_sec=5 * MB
            )
            await app.refresh_now()
            await pilot.pause()
        assert (table.scroll_y, table.highlighted_job_id) == (scroll, cursor)


async def test_sparklines_get_a_new_list_each_tick(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await settle(pilot, app)
        row = app.task_center.query_one(WorkerRow)
        before = row.samples
        seeded.service.repository.update_worker_state(
            "download-1", job_id=seeded.running, speed_bytes_per_sec=9 * MB
        )
        await app.refresh_now()
        await pilot.pause()
        assert row.samples is not before
        assert row.samples[-1] == 9 * MB
        assert app.task_center.query_one(WorkerRow) is row  # updated in place, not remounted
        assert "9.0 MB/s" in str(row.query_one(".worker-stats").render())


async def test_workers_that_finish_leave_the_detail(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await settle(pilot, app)
        seeded.service.repository.stop_job_workers(seeded.running)
        await settle(pilot, app)
        detail = app.task_center.query_one(JobDetail)
        assert list(detail.query(WorkerRow)) == []
        assert "none active" in str(detail.query_one("#detail-workers-title").render())


async def test_the_timer_refreshes_by_itself(seeded: Seeded) -> None:
    app = make_app(seeded.service, refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        table = app.task_center.query_one(JobTable)
        job = seeded.service.submit_job("collect_only", requested_by="test")
        for _ in range(100):
            await asyncio.sleep(0.02)
            await pilot.pause()
            if str(job.id) in table.row_keys():
                break
        assert str(job.id) in table.row_keys()
