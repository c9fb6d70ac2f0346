"""Playlist files: read back with the project's own manifest parser after real sync jobs."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from catalogsync.config import LibrarySettings
from catalogsync.library.playlists import refresh_playlist_files
from catalogsync.providers.manifest import ManifestProvider
from tests.catalogsync.pipeline_support import open_service, write_m3u
from tests.support.audio import mp3_body


@pytest.fixture
def service(tmp_path):
    svc = open_service(tmp_path / "home")
    yield svc
    svc.close()


def _songs(server, names):
    return {
        name: server.route(f"/{name}.mp3", body=mp3_body(20_000 + n * 417, seed=n))
        for n, name in enumerate(names)
    }


def _read(path: Path):
    content = ManifestProvider().fetch_playlist(str(path))
    files = [Path(unquote(urlsplit(t.download_url).path)) for t in content.tracks]
    return content, files


def _sync(service):
    service.submit_job("sync_download")
    service.run_headless(until_idle=True)


def test_each_wanted_playlist_gets_an_ordered_m3u8_that_follows_syncs(
    service, http_server, tmp_path
):
    urls = _songs(http_server, ["a", "b", "c", "d"])
    source = tmp_path / "Road Trip.m3u"
    write_m3u(source, [("Band", t.upper(), urls[t]) for t in "cab"], name="Road Trip")
    service.add_playlists([str(source)])
    _sync(service)
    m3u8 = service.settings.library_root / "Playlists" / "Road Trip.m3u8"
    content, files = _read(m3u8)
    assert content.name == "Road Trip"
    assert [t.name for t in content.tracks] == ["C", "A", "B"]
    assert [t.singers for t in content.tracks] == ["Band"] * 3
    assert all(f.is_file() and f.is_relative_to(service.settings.library_root) for f in files)
    text = m3u8.read_text()
    assert text.startswith("#EXTM3U\n") and "\n../" in text and "\\" not in text
    assert "#EXTINF:200,Band - C" in text

    # the source drops A, adds D and reorders: the file follows after the next sync
    write_m3u(source, [("Band", t.upper(), urls[t]) for t in "dbc"], name="Road Trip")
    _sync(service)
    content, files = _read(m3u8)
    assert [t.name for t in content.tracks] == ["D", "B", "C"]
    assert all(f.is_file() for f in files)
    events = [e.message for e in service.job_detail(2).events]
    assert any("playlist files: wrote 1" in m for m in events)


def test_same_name_playlists_unwanted_ones_and_files_we_did_not_write(
    service, http_server, tmp_path
):
    urls = _songs(http_server, ["x", "y"])
    folder = service.settings.library_root / "Playlists"
    folder.mkdir(parents=True)
    foreign = folder / "Gym.m3u8"
    foreign.write_text("#EXTM3U\nmine.mp3\n")
    ids = []
    for n, (name, title) in enumerate([("Mix", "x"), ("Mix", "y"), ("Gym", "x")]):
        path = write_m3u(tmp_path / f"{n}.m3u", [("A", title, urls[title])], name=name)
        ids.append(service.add_playlists([str(path)])[0].id)
    _sync(service)
    assert [t.name for t in _read(folder / "Mix.m3u8")[0].tracks] == ["x"]
    assert [t.name for t in _read(folder / "Mix (2).m3u8")[0].tracks] == ["y"]
    assert [t.name for t in _read(folder / "Gym (2).m3u8")[0].tracks] == ["x"]
    assert foreign.read_text() == "#EXTM3U\nmine.mp3\n"

    # names are stable: the first Mix going away does not rename the second
    service.set_wanted([ids[0]], False)
    (folder / "Gym (2).m3u8").write_text("#EXTM3U\n# my edit\n")
    result = refresh_playlist_files(service.catalog, LibrarySettings())
    assert not (folder / "Mix.m3u8").exists()
    assert (folder / "Mix (2).m3u8").exists()
    assert (folder / "Gym (2).m3u8").read_text() == "#EXTM3U\n# my edit\n", "edited: left alone"
    assert any("edited" in note for note in result.notes)
    assert foreign.read_text() == "#EXTM3U\nmine.mp3\n"

    # playlists = "" removes what we wrote and nothing else
    refresh_playlist_files(service.catalog, LibrarySettings(playlists=""))
    assert sorted(p.name for p in folder.iterdir()) == ["Gym (2).m3u8", "Gym.m3u8"]
    assert service.catalog.playlist_file_records() == []


def test_a_rerun_without_changes_rewrites_nothing(service, http_server, tmp_path):
    urls = _songs(http_server, ["a"])
    service.add_playlists([str(write_m3u(tmp_path / "p.m3u", [("A", "a", urls["a"])], name="P"))])
    _sync(service)
    path = service.settings.library_root / "Playlists" / "P.m3u8"
    before = path.stat().st_mtime_ns, path.stat().st_ino
    result = refresh_playlist_files(service.catalog, LibrarySettings())
    assert (result.written, result.unchanged) == ([], 1)
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == before


def test_only_songs_in_the_library_are_listed_and_names_are_sanitised(
    service, http_server, tmp_path
):
    urls = _songs(http_server, ["a"])
    missing = http_server.route("/gone.mp3", status=404)
    path = write_m3u(
        tmp_path / "p.m3u",
        [("A", "a", urls["a"]), ("A", "gone", missing)],
        name="../Evil/\u202eName",
    )
    service.add_playlists([str(path)])
    _sync(service)
    written = list((service.settings.library_root / "Playlists").iterdir())
    assert [p.name for p in written] == ["_Evil_Name.m3u8"]
    assert [t.name for t in _read(written[0])[0].tracks] == ["a"]


def test_a_renamed_playlist_moves_to_its_new_name(service, http_server, tmp_path):
    urls = _songs(http_server, ["a"])
    path = write_m3u(tmp_path / "p.m3u", [("A", "a", urls["a"])], name="Old Name")
    playlist = service.add_playlists([str(path)])[0]
    _sync(service)
    folder = service.settings.library_root / "Playlists"
    assert [p.name for p in folder.iterdir()] == ["Old Name.m3u8"]
    service.catalog.upsert_playlist(
        platform=playlist.platform, remote_id=str(path), name="New Name"
    )
    result = refresh_playlist_files(service.catalog, LibrarySettings())
    assert [p.name for p in folder.iterdir()] == ["New Name.m3u8"]
    assert result.removed == ["Playlists/Old Name.m3u8"]
    assert _read(folder / "New Name.m3u8")[0].name == "New Name"


def test_a_playlist_file_that_cannot_be_written_is_an_event_not_a_failed_job(
    service, http_server, tmp_path
):
    urls = _songs(http_server, ["a"])
    service.add_playlists([str(write_m3u(tmp_path / "p.m3u", [("A", "a", urls["a"])], name="P"))])
    root = service.settings.library_root
    root.mkdir(parents=True, exist_ok=True)
    (root / "Playlists").write_text("a file where the folder should be")
    job = service.submit_job("sync_download").id
    service.run_headless(until_idle=True)
    detail = service.job_detail(job)
    assert detail.job.status == "completed"
    assert any(e.message.startswith("playlist files not written:") for e in detail.events)
    assert (root / "Playlists").read_text() == "a file where the folder should be"


def test_an_unreachable_library_root_is_a_note_and_nothing_is_created(service):
    root = service.settings.library_root
    root.rmdir()
    result = refresh_playlist_files(service.catalog, LibrarySettings())
    assert not root.exists()
    assert result.notes and "not reachable" in result.notes[0]
