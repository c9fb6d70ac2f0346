"""The playlist picker: filter, selection that survives it, bulk jobs and wanted flags."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from tests.tui.conftest import Seeded, make_app, settle
from tui.app import CatalogsyncApp
from tui.screens.playlists import PlaylistsScreen
from tui.screens.task_center import TaskCenterScreen
from tui.widgets.job_table import JobTable
from tui.widgets.playlist_table import PlaylistTable

SIZE = (120, 40)


async def open_picker(pilot: Pilot, app: CatalogsyncApp) -> PlaylistsScreen:
    await pilot.press("2")
    await settle(pilot, app)
    assert isinstance(app.screen, PlaylistsScreen)
    return app.screen


async def go_to(pilot: Pilot, screen: PlaylistsScreen, playlist_id: int) -> None:
    assert screen.query_one(PlaylistTable).highlight(str(playlist_id))
    await pilot.pause()


def markers(screen: PlaylistsScreen) -> dict[str, str]:
    table = screen.query_one(PlaylistTable)
    return {key: table.get_cell(key, "sel").plain for key in table.row_keys()}


def title(screen: PlaylistsScreen) -> str:
    return str(screen.query_one("#playlists-title").render())


async def test_picker_shows_every_playlist_with_hint_and_drift(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_picker(pilot, app)
        table = screen.query_one(PlaylistTable)
        assert table.row_keys() == [str(i) for i in seeded.playlists]
        hints = [table.get_cell(str(i), "hint").plain for i in seeded.playlists]
        assert hints == ["Idle", "Idle", "0 songs, sync recommended", "Idle", "Running 2"]
        assert table.get_cell(str(seeded.playlists[3]), "drift").plain == "+2 / -1"
        assert table.get_cell(str(seeded.playlists[3]), "wanted").plain == "no"
        assert table.get_cell(str(seeded.playlists[1]), "synced").plain == "45 min ago"
        assert table.get_cell(str(seeded.playlists[2]), "synced").plain == "never"
        assert "0 selected" in title(screen)


async def test_space_and_a_select_and_the_selection_survives_filtering(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_picker(pilot, app)
        p = seeded.playlists
        await go_to(pilot, screen, p[3])
        await pilot.press("space")
        await pilot.press("up", "up", "space")
        await pilot.pause()
        assert screen.selected == [p[3], p[1]]
        assert markers(screen)[str(p[3])] == "[1]"
        assert markers(screen)[str(p[1])] == "[2]"
        assert markers(screen)[str(p[0])] == "[ ]"
        assert "2 selected" in title(screen)
        # Filter down to "Lo-fi Study Beats": the selection is kept while hidden.
        await pilot.press("slash", *"lo", "enter")
        await pilot.pause()
        table = screen.query_one(PlaylistTable)
        assert table.row_keys() == [str(p[4])]
        assert screen.selected == [p[3], p[1]]
        await pilot.press("a")
        await pilot.pause()
        assert screen.selected == [p[3], p[1], p[4]]
        assert markers(screen) == {str(p[4]): "[3]"}
        assert "3 selected" in title(screen)
        await pilot.press("slash", "backspace", "backspace", "enter")
        await pilot.pause()
        assert len(table.row_keys()) == 5
        assert markers(screen)[str(p[3])] == "[1]"
        # Space on a selected row unselects it; the others close ranks.
        await go_to(pilot, screen, p[3])
        await pilot.press("space")
        await pilot.pause()
        assert screen.selected == [p[1], p[4]]
        assert markers(screen)[str(p[1])] == "[1]"


@pytest.mark.parametrize(
    ("key", "job_type", "display"),
    [
        ("s", "sync_only", "Sync Selected Playlists"),
        ("d", "download_only", "Download Selected Playlists"),
        ("b", "sync_download", "Sync Then Download"),
    ],
)
async def test_bulk_keys_launch_a_scoped_job_and_highlight_it(
    seeded: Seeded, key: str, job_type: str, display: str
) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_picker(pilot, app)
        p = seeded.playlists
        for playlist_id in (p[4], p[0], p[2]):
            await go_to(pilot, screen, playlist_id)
            await pilot.press("space")
        await pilot.press(key)
        await settle(pilot, app)
        newest = max(job.id for job in seeded.service.repository.list_jobs())
        job = seeded.service.repository.require_job(newest)
        assert job.job_type == job_type
        assert job.playlist_scope == {"playlist_ids": [p[4], p[0], p[2]]}
        assert isinstance(app.screen, TaskCenterScreen)
        table = app.task_center.query_one(JobTable)
        assert table.highlighted_job_id == newest
        assert table.get_cell(str(newest), "task").plain == display
        assert screen.selected == []


async def test_buttons_do_what_their_keys_do(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_picker(pilot, app)
        await go_to(pilot, screen, seeded.playlists[2])
        await pilot.press("space")
        await pilot.click("#bulk-sync")
        await settle(pilot, app)
        newest = max(job.id for job in seeded.service.repository.list_jobs())
        assert seeded.service.repository.require_job(newest).job_type == "sync_only"
        assert isinstance(app.screen, TaskCenterScreen)


async def test_w_and_u_mark_and_unmark_wanted(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_picker(pilot, app)
        p = seeded.playlists
        table = screen.query_one(PlaylistTable)
        await go_to(pilot, screen, p[3])
        await pilot.press("space", "w")
        await settle(pilot, app)
        assert seeded.service.catalog.get_playlist(p[3])["wanted"] == 1
        assert table.get_cell(str(p[3]), "wanted").plain == "yes"
        assert isinstance(app.screen, PlaylistsScreen)
        await go_to(pilot, screen, p[0])
        await pilot.press("space", "u")
        await settle(pilot, app)
        assert seeded.service.catalog.get_playlist(p[3])["wanted"] == 0
        assert seeded.service.catalog.get_playlist(p[0])["wanted"] == 0
        assert seeded.service.catalog.get_playlist(p[1])["wanted"] == 1
        assert ("information", "2 playlists unmarked") in app.notified


async def test_actions_without_a_selection_only_warn(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        await open_picker(pilot, app)
        count = len(seeded.service.repository.list_jobs())
        await pilot.press("s", "w")
        await settle(pilot, app)
        assert len(seeded.service.repository.list_jobs()) == count
        assert [s for s, _ in app.notified[-2:]] == ["warning", "warning"]
        assert isinstance(app.screen, PlaylistsScreen)


async def test_selection_and_filter_are_kept_between_visits(seeded: Seeded) -> None:
    app = make_app(seeded.service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_picker(pilot, app)
        await pilot.press("space", "slash", *"jazz", "enter", "1")
        await pilot.pause()
        assert isinstance(app.screen, TaskCenterScreen)
        again = await open_picker(pilot, app)
        assert again is screen
        assert screen.selected == [seeded.playlists[0]]
        assert screen.query_one(PlaylistTable).row_keys() == [str(seeded.playlists[1])]


async def test_v_shows_the_plan_and_b_launches_it(empty_service, tmp_path) -> None:
    from tests.catalogsync.pipeline_support import write_m3u
    from tui.screens.plan import PlanScreen

    path = write_m3u(
        tmp_path / "trip.m3u",
        [("A", "One", "http://127.0.0.1:9/1.mp3"), ("A", "Two", "http://127.0.0.1:9/2.mp3")],
        name="Trip",
    )
    playlist = empty_service.add_playlists([str(path)], wanted=True)[0].id
    app = make_app(empty_service)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_picker(pilot, app)
        await go_to(pilot, screen, playlist)
        await pilot.press("space", "v")
        await settle(pilot, app)
        assert isinstance(app.screen, PlanScreen)
        text = str(app.screen.query_one("#plan-text").render())
        assert "Trip (add)" in text and "+2 / -0 tracks, 2 to download" in text
        assert empty_service.repository.list_jobs() == [], "the plan launches nothing by itself"
        await pilot.press("b")
        await settle(pilot, app)
        job = empty_service.repository.list_jobs()[0]
        assert (job.job_type, job.playlist_scope) == ("sync_download", {"playlist_ids": [playlist]})


async def test_escape_leaves_the_plan_without_launching(empty_service, tmp_path) -> None:
    from tests.catalogsync.pipeline_support import write_m3u
    from tui.screens.plan import PlanScreen

    path = write_m3u(tmp_path / "p.m3u", [("A", "One", "http://127.0.0.1:9/1.mp3")], name="P")
    playlist = empty_service.add_playlists([str(path)])[0].id
    app = make_app(empty_service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_picker(pilot, app)
        await go_to(pilot, screen, playlist)
        await pilot.press("space", "v")
        await settle(pilot, app)
        assert isinstance(app.screen, PlanScreen)
        await pilot.press("escape")
        await settle(pilot, app)
        assert isinstance(app.screen, PlaylistsScreen)
        assert empty_service.repository.list_jobs() == []
