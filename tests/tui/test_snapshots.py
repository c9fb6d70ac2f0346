"""Snapshots of the task center, detail pane, failures and log views, picker and dialogs.

Deterministic: a seeded database, a frozen clock, fixed speed samples, no timer, no
runner, no animation. Regenerate with `pytest tests/tui --snapshot-update`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from textual.pilot import Pilot

from tests.tui.conftest import Seeded, make_app, settle
from tui.widgets.job_table import JobTable
from tui.widgets.playlist_table import PlaylistTable


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Clock times (the log view) in UTC whatever the machine's zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


SIZES = [
    pytest.param((60, 20), id="60x20"),
    pytest.param((80, 24), id="80x24"),
    pytest.param((120, 40), id="120x40"),
]
SnapCompare = Callable[..., bool]


@pytest.mark.parametrize("size", SIZES)
def test_task_center(snap_compare: SnapCompare, seeded: Seeded, size: tuple[int, int]) -> None:
    """Running, queued #1 and #2, paused, failed and completed jobs."""
    app = make_app(seeded.service)

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_detail_pane_with_two_workers(
    snap_compare: SnapCompare, seeded: Seeded, size: tuple[int, int]
) -> None:
    """The running job expanded: stages, two workers with sparklines, playlists, events."""
    app = make_app(seeded.service)

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, app)  # the first read is in before Enter acts on its rows
        await pilot.press("enter")
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_playlist_picker_filtered_with_selection(
    snap_compare: SnapCompare, seeded: Seeded, size: tuple[int, int]
) -> None:
    """Three selected (one hidden by the filter), filtered on "o", cursor on a selected row."""
    app = make_app(seeded.service)

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, app)
        await pilot.press("2")
        await settle(pilot, app)
        table = app.screen.query_one(PlaylistTable)
        for playlist_id in (seeded.playlists[4], seeded.playlists[2], seeded.playlists[1]):
            table.highlight(str(playlist_id))
            await pilot.press("space")
        await pilot.press("slash", *"o", "enter")
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_cancel_confirm(snap_compare: SnapCompare, seeded: Seeded, size: tuple[int, int]) -> None:
    """`c` on the running job asks before canceling."""
    app = make_app(seeded.service)

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, app)
        await pilot.press("c")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_failures_view(snap_compare: SnapCompare, seeded: Seeded, size: tuple[int, int]) -> None:
    """`f` on the failed sync: every failed item with code, masked message and tries."""
    app = make_app(seeded.service)

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, app)
        app.task_center.highlight_job(seeded.failed)
        await pilot.press("f")
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_detail_pane_of_a_failed_job(
    snap_compare: SnapCompare, seeded: Seeded, size: tuple[int, int]
) -> None:
    """The failed job expanded: its failed items under the stages."""
    app = make_app(seeded.service)

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, app)
        app.task_center.query_one(JobTable).highlight(str(seeded.failed))
        await pilot.press("enter")
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_log_view(snap_compare: SnapCompare, seeded: Seeded, size: tuple[int, int]) -> None:
    """`l`: the notifications of this session and the newest job events."""
    app = make_app(seeded.service)

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, app)
        app.notify("Job 4: pause sent to the runner")
        app.notify("Job 2 failed: 2 playlists failed to sync", severity="error")
        await pilot.press("l")
        await settle(pilot, app)
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_quit_dialog(
    snap_compare: SnapCompare,
    seeded: Seeded,
    size: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`q` with this app's runner running a job: Stop / Quit when they finish / Stay."""
    monkeypatch.setattr(seeded.service, "start_runner_thread", lambda on_event=None: True)
    monkeypatch.setattr(seeded.service, "stop_runner", lambda *a, **k: None)
    app = make_app(seeded.service, embed_runner=True)

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, app)
        await pilot.press("q")
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_new_job_dialog(snap_compare: SnapCompare, seeded: Seeded, size: tuple[int, int]) -> None:
    """`n` with two playlists checked: `[x]` marks, not colour alone."""
    app = make_app(seeded.service)

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, app)
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("tab", "space", "down", "down", "space")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_pause_all_dialog(snap_compare: SnapCompare, seeded: Seeded, size: tuple[int, int]) -> None:
    """`P`: pause every queued and running job, after a confirm."""
    app = make_app(seeded.service)

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, app)
        await pilot.press("P")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
