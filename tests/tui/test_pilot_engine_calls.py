"""The app's one way to call the engine: screens post messages, thread workers run the
calls, one handler turns a failure into one notification (and a log line)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from catalogsync.errors import CatalogsyncError
from catalogsync.ops.models import CommandType, JobStatus
from tests.tui.conftest import Seeded, make_app, settle
from tui.app import CatalogsyncApp
from tui.reads import RefreshRequest, read_models
from tui.screens.task_center import TaskCenterScreen

SIZE = (120, 40)


def _raising(error: Exception) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        raise error

    return call


async def test_an_unexpected_engine_failure_is_one_notification_and_a_log_line(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(seeded.service, "command", _raising(RuntimeError("disk on fire")))
    app = make_app(seeded.service)
    with caplog.at_level(logging.ERROR, logger="catalogsync.tui"):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("p")
            await settle(pilot, app)
            assert app.is_running, "a failed engine call must not end the app"
            errors = [text for severity, text in app.notified if severity == "error"]
            assert errors == ["RuntimeError: disk on fire"]
            assert isinstance(app.screen, TaskCenterScreen)
    records = [r for r in caplog.records if r.name == "catalogsync.tui"]
    assert len(records) == 1 and records[0].exc_info is not None, "logged with its traceback"


async def test_our_own_error_is_its_message_alone(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        seeded.service, "move_job", _raising(CatalogsyncError("job 5 is locked by the librarian"))
    )
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.task_center.highlight_job(seeded.queued_1)
        await pilot.press("right_square_bracket")
        await settle(pilot, app)
        assert ("error", "job 5 is locked by the librarian") in app.notified
        assert app.is_running


async def test_a_screen_asks_the_app_by_message_and_the_result_is_told(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.task_center.post_message(
            TaskCenterScreen.CommandRequested(seeded.queued_2, CommandType.PAUSE)
        )
        await settle(pilot, app)
        assert seeded.service.repository.require_job(seeded.queued_2).status == JobStatus.PAUSED
        assert ("information", f"Job {seeded.queued_2} paused while queued") in app.notified
        assert not [w for w in app.workers if w.group == "engine" and not w.is_finished]


async def test_bulk_commands_report_each_refusal_and_the_count(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = seeded.service.command

    def refuse_one(job_id: int, kind: Any, **kwargs: Any) -> Any:
        if job_id == seeded.queued_1:
            raise CatalogsyncError(f"cannot pause job {job_id}: it is busy")
        return command(job_id, kind, **kwargs)

    monkeypatch.setattr(seeded.service, "command", refuse_one)
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.task_center.post_message(
            TaskCenterScreen.BulkCommandRequested(
                (seeded.queued_1, seeded.queued_2), CommandType.PAUSE
            )
        )
        await settle(pilot, app)
        assert ("error", f"cannot pause job {seeded.queued_1}: it is busy") in app.notified
        assert ("information", "Pause sent to 1 of 2 jobs.") in app.notified


def test_a_read_takes_what_it_needs_from_its_request(seeded: Seeded) -> None:
    """The refresh thread reads the request it was given, never the screens."""
    service = seeded.service
    bare = read_models(service, RefreshRequest(attached=False))
    assert bare.detail is None and bare.playlists is None and bare.events is None
    assert bare.matches is None and bare.runner_holder is None
    full = read_models(
        service,
        RefreshRequest(
            task_limit=2,
            detail_job_id=seeded.failed,
            filter_text="status:failed",
            playlists=True,
            events=True,
        ),
    )
    assert len(full.dashboard.task_rows) == 2
    assert full.detail is not None and full.detail.job.id == seeded.failed
    assert full.detail_job_id == seeded.failed
    assert full.playlists is not None and len(full.playlists) == 5
    assert full.events is not None and full.events
    assert [r.id for r in full.matches or []] == [seeded.failed]
    assert full.match_text == "status:failed"
    gone = read_models(service, RefreshRequest(detail_job_id=999))
    assert gone.detail is None and gone.detail_job_id == 999


async def test_the_refresh_request_follows_the_screens(seeded: Seeded) -> None:
    app: CatalogsyncApp = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.refresh_request() == RefreshRequest(attached=True)
        app.task_center.toggle_detail(seeded.running)
        app.task_center.set_filter("  Sync ")
        app.task_limit = 100
        await pilot.pause()
        assert app.refresh_request() == RefreshRequest(
            task_limit=100, detail_job_id=seeded.running, filter_text="sync", attached=True
        )
