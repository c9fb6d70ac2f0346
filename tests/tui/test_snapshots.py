"""Snapshots of the task center, the detail pane, the playlist picker and the cancel dialog.

Deterministic: a seeded database, a frozen clock, fixed speed samples, no timer, no
runner, no animation. Regenerate with `pytest tests/tui --snapshot-update`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.pilot import Pilot

from tests.tui.conftest import Seeded, make_app, settle
from tui.widgets.playlist_table import PlaylistTable

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
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
