"""End-to-end: playlists on a real HTTP server on 127.0.0.1 through sync and download jobs."""

from __future__ import annotations

import errno
import json
import statistics
import time
from pathlib import Path
from unittest.mock import patch

import pytest

from catalogsync.ops.models import CommandType, ItemStatus, JobStatus
from catalogsync.transfer.http import HttpDownloader
from tests.catalogsync.pipeline_support import (
    library_files,
    open_service,
    serve_songs,
    wait_for,
    write_m3u,
)

# Transfer tests: byte-identical files in the v2 layout (see pipeline_support).
pytestmark = pytest.mark.usefixtures("v2_layout")


@pytest.fixture
def service(tmp_path):
    svc = open_service(tmp_path / "home")
    yield svc
    svc.close()


def _playlist(service, tmp_path, name, entries):
    path = write_m3u(tmp_path / f"{name}.m3u", entries, name=name)
    return service.add_playlists([str(path)])[0].id


def test_sync_download_of_an_m3u_playlist_lands_byte_identical_files(
    service, http_server, tmp_path
):
    songs = serve_songs(http_server, 3)
    entries = [("Artist A", f"Song {n}", url) for n, url in enumerate(songs)]
    playlist = _playlist(service, tmp_path, "Road Trip", entries)

    job = service.submit_job("sync_download", playlist_ids=[playlist]).id
    service.run_headless(until_idle=True)

    row = service.job_row(job)
    assert row.status == "completed"
    assert row.primary_progress_text == "3 / 3 songs"
    files = library_files(service)
    for n, body in enumerate(songs.values()):
        assert files[f"manifest/Artist A/Song {n}.mp3"] == body
    assert not [p for p in files if p.endswith(".part")]
    listed = service.playlists()[0]
    assert (listed.song_count, listed.drift, listed.hint) == (3, "+3 / -0", "Idle")
    assert listed.last_synced_at


def test_a_song_shared_by_two_playlists_downloads_once_and_reruns_download_nothing(
    service, http_server, tmp_path
):
    songs = list(serve_songs(http_server, 3))
    first = _playlist(service, tmp_path, "One", [("A", "Shared", songs[0]), ("A", "B", songs[1])])
    second = _playlist(service, tmp_path, "Two", [("A", "Shared", songs[0]), ("A", "C", songs[2])])
    service.submit_job("sync_download", playlist_ids=[first, second])
    service.run_headless(until_idle=True)
    assert len(http_server.requests("/song0.mp3")) == 1
    assert len(library_files(service)) == 3

    again = service.submit_job("sync_download").id
    service.run_headless(until_idle=True)
    detail = service.job_detail(again)
    download = next(s for s in detail.stages if s.stage_type == "download")
    assert detail.job.status == "completed"
    assert download.total_items == 0, "songs with a local file are not downloaded again"
    assert len(http_server.requests()) == 3


def test_resync_records_drift_and_keeps_removed_songs_on_disk(service, http_server, tmp_path):
    songs = list(serve_songs(http_server, 3))
    path = write_m3u(tmp_path / "mix.m3u", [("A", "S0", songs[0]), ("A", "S1", songs[1])])
    playlist = service.add_playlists([str(path)])[0].id
    service.submit_job("sync_download", playlist_ids=[playlist])
    service.run_headless(until_idle=True)

    write_m3u(path, [("A", "S1", songs[1]), ("A", "S2", songs[2])])
    service.submit_job("sync_only", playlist_ids=[playlist])
    service.run_headless(until_idle=True)
    row = service.playlists()[0]
    assert (row.song_count, row.drift) == (2, "+1 / -1")
    assert "manifest/A/S0.mp3" in library_files(service), "a removed track is never deleted"


def test_one_malformed_playlist_fails_its_item_not_the_job(service, http_server, tmp_path):
    songs = list(serve_songs(http_server, 1))
    good = _playlist(service, tmp_path, "Good", [("A", "S", songs[0])])
    bad_path = write_m3u(tmp_path / "bad.m3u", [("A", "S", songs[0])])
    bad = service.add_playlists([str(bad_path)])[0].id
    bad_path.write_text("#EXTM3U\n#EXTINF:abc,A - S\nhttp://127.0.0.1:9/x.mp3\n")

    job = service.submit_job("sync_only", playlist_ids=[good, bad]).id
    service.run_headless(until_idle=True)

    assert service.job_row(job).status == "completed_with_errors"
    rows = {r.id: r for r in service.playlists()}
    assert rows[good].song_count == 1
    assert f"{bad_path}:2" in rows[bad].last_error
    item = service.repository.list_stage_items(service.job_detail(job).stages[0].id)
    failed = [i for i in item if i.status == ItemStatus.FAILED]
    assert len(failed) == 1 and f"{bad_path}:2" in failed[0].last_error


def test_hostile_names_stay_inside_the_library(service, http_server, tmp_path):
    hostile = [
        ("../../..", "../../x"),
        ("CON", "con"),
        ("A", "é" * 150),
        ("A\x00B", "ti\x07tle\nnext"),
        ("/etc", "passwd"),
        ("..", ".."),
    ]
    songs = list(serve_songs(http_server, len(hostile)))
    # JSON carries control characters (NUL, newline) that an M3U line cannot.
    manifest = tmp_path / "hostile.json"
    manifest.write_text(
        json.dumps(
            {
                "name": "Hostile",
                "tracks": [
                    {"url": u, "artist": a, "title": t}
                    for (a, t), u in zip(hostile, songs, strict=True)
                ],
            }
        )
    )
    playlist = service.add_playlists([str(manifest)])[0].id
    job = service.submit_job("sync_download", playlist_ids=[playlist]).id
    service.run_headless(until_idle=True)

    assert service.job_row(job).status == "completed"
    root = service.settings.library_root.resolve()
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) == len(hostile)
    for path in files:
        assert path.resolve().is_relative_to(root)
        assert len(path.name.encode()) <= 255
        assert not any(ord(c) < 32 for c in str(path))
    assert not list(tmp_path.glob("x*")), "nothing was written next to the home"


def test_pause_in_the_middle_of_a_file_then_resume_with_range(service, http_server, tmp_path):
    body_url = list(serve_songs(http_server, 1, size=600_000, rate_bps=150_000))[0]
    playlist = _playlist(service, tmp_path, "Slow", [("A", "Slow", body_url)])
    job = service.submit_job("sync_download", playlist_ids=[playlist]).id
    assert service.start_runner_thread()
    try:
        assert wait_for(
            lambda: any(
                (w.downloaded_bytes or 0) > 100_000 for w in service.job_detail(job).workers
            )
        )
        service.command(job, CommandType.PAUSE)
        assert wait_for(lambda: service.job_row(job).status == "paused", timeout=5)
        parts = list(service.settings.library_root.rglob("*.part"))
        assert len(parts) == 1 and 0 < parts[0].stat().st_size < 600_000
        service.command(job, CommandType.RESUME)
        assert wait_for(lambda: service.job_row(job).status == "completed", timeout=30)
    finally:
        service.stop_runner()
    assert any(r.range for r in http_server.requests("/song0.mp3")), "resume used HTTP Range"
    files = library_files(service)
    assert list(files) == ["manifest/A/Slow.mp3"]


def test_reported_speed_matches_a_throttled_server_within_ten_percent(
    service, http_server, tmp_path
):
    rate = 400_000
    url = list(serve_songs(http_server, 1, size=1_600_000, rate_bps=rate))[0]
    playlist = _playlist(service, tmp_path, "Throttled", [("A", "T", url)])
    job = service.submit_job("sync_download", playlist_ids=[playlist]).id
    started = time.monotonic()
    service.run_headless(until_idle=True)
    elapsed = time.monotonic() - started
    assert service.job_row(job).status == "completed"
    # Three workers race for the only song: check the one that downloaded it.
    worker = next(w for w in service.job_detail(job).workers if w.processed_count == 1)
    # Samples after the first second, when the meter's window is full of real traffic.
    samples = [s for s in worker.speed_samples[2:] if s]
    assert len(samples) >= 3
    real = 1_600_000 / max(elapsed - 0.3, 0.1)  # the job's own set-up is not transfer time
    measured = statistics.median(samples)
    assert abs(measured - rate) / rate < 0.10, (measured, rate, real)


def test_disk_full_mid_write_pauses_the_job_and_records_nothing(service, http_server, tmp_path):
    url = list(serve_songs(http_server, 1, size=300_000))[0]
    playlist = _playlist(service, tmp_path, "Full", [("A", "Full", url)])
    job = service.submit_job("sync_download", playlist_ids=[playlist]).id

    def no_space(self, fh, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    with patch.object(HttpDownloader, "_write_chunk", no_space):
        service.run_headless(until_idle=True)

    row = service.job_row(job)
    assert row.status == "paused"
    assert "no space left" in row.pause_reason
    assert not list(service.settings.library_root.rglob("*.part")), "the .part was removed"
    assert service.catalog.list_library_files(service.catalog.default_backend()["id"]) == []
    events = [e.message for e in service.job_detail(job).events]
    assert any("no space left" in m for m in events)
    service.command(job, CommandType.RESUME)
    service.run_headless(until_idle=True)
    assert service.job_row(job).status == "completed", "resume after freeing space finishes"


def test_no_room_for_the_expected_size_pauses_before_writing(service, http_server, tmp_path):
    url = list(serve_songs(http_server, 1))[0]
    playlist = _playlist(service, tmp_path, "Huge", [("A", "Huge", url)])
    service.settings.download.reserve_mb = 1 << 40  # more than any disk has
    job = service.submit_job("sync_download", playlist_ids=[playlist]).id
    service.run_headless(until_idle=True)
    row = service.job_row(job)
    assert row.status == "paused"
    assert "no local backend has room" in row.pause_reason
    assert http_server.requests("/song0.mp3") == []


def test_missing_song_fails_permanently_while_others_complete(service, http_server, tmp_path):
    songs = list(serve_songs(http_server, 1))
    gone = http_server.route("/gone.mp3", status=404)
    playlist = _playlist(service, tmp_path, "Mixed", [("A", "Ok", songs[0]), ("A", "Gone", gone)])
    job = service.submit_job("sync_download", playlist_ids=[playlist]).id
    service.run_headless(until_idle=True)
    assert service.job_row(job).status == "completed_with_errors"
    assert len(http_server.requests("/gone.mp3")) == 1, "a 404 is not retried"
    stage = next(s for s in service.job_detail(job).stages if s.stage_type == "download")
    items = service.repository.list_stage_items(stage.id)
    assert {i.last_error_code for i in items if i.status == ItemStatus.FAILED} == {"http_404"}


def test_a_download_job_with_nothing_wanted_completes_empty(service):
    job = service.submit_job("download_only").id
    service.run_headless(until_idle=True)
    assert service.job_row(job).status == JobStatus.COMPLETED


def test_upload_job_without_a_backend_is_refused_at_submit(service):
    from catalogsync.errors import CatalogsyncError

    with pytest.raises(CatalogsyncError, match="--backend"):
        service.submit_job("upload_only")


def test_library_path_layout(service, http_server, tmp_path):
    url = list(serve_songs(http_server, 1))[0]
    playlist = _playlist(service, tmp_path, "Layout", [("Björk", "Jóga", url)])
    service.submit_job("sync_download", playlist_ids=[playlist])
    service.run_headless(until_idle=True)
    assert list(library_files(service)) == ["manifest/Björk/Jóga.mp3"]
    assert (service.settings.library_root / Path("manifest/Björk/Jóga.mp3")).exists()


def _unflushed(service):
    return service.catalog._fetchall("SELECT * FROM local_files WHERE flushed_at IS NULL")


def _download_never_flushed(service, http_server, tmp_path, name, count):
    """A sync_download whose files are recorded but never fsynced (a power cut after)."""
    from catalogsync.transfer.durability import Flusher

    songs = serve_songs(http_server, count)
    playlist = _playlist(
        service, tmp_path, name, [("A", f"{name}{n}", u) for n, u in enumerate(songs)]
    )
    service.submit_job("sync_download", playlist_ids=[playlist])
    with patch.object(Flusher, "add", lambda self, file_id, path: None):
        service.run_headless(until_idle=True)
    assert len(_unflushed(service)) == count
    return playlist, list(songs.values())


def _download_with_record_dying_once(service, tmp_path, url: str, title: str) -> int:
    """Run one song's download whose first record fails as if the process died there."""
    from catalogsync.catalog.repository import CatalogRepository

    playlist = _playlist(service, tmp_path, "Crash", [("A", title, url)])
    job = service.submit_job("sync_download", playlist_ids=[playlist]).id
    real_record = CatalogRepository.record_download
    calls = {"n": 0}

    def dies_once(self, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("killed between verifying and recording")
        return real_record(self, **kwargs)

    with (
        patch.object(CatalogRepository, "record_download", dies_once),
        patch("catalogsync.ops.workers.retry_delay", return_value=0.05),
    ):
        service.run_headless(until_idle=True)
    return int(job)


def test_a_download_that_dies_before_its_record_finishes_from_its_part(
    service, http_server, tmp_path
):
    """The record comes before the rename: a crash there leaves a complete .part only.

    Untagged: the `.part` is still the server's bytes, so the retry resumes it. (Tagged
    files leave the `.part` name before tagging; see the next test.)
    """
    service.settings.library.write_tags = False
    url = list(serve_songs(http_server, 1))[0]
    job = _download_with_record_dying_once(service, tmp_path, url, "Window")
    assert service.job_row(job).status == "completed"
    assert list(library_files(service)) == ["manifest/A/Window.mp3"]
    requests = http_server.requests("/song0.mp3")
    assert [r.range for r in requests] == [None, "bytes=150000-"], "no byte fetched twice"


def test_a_tagged_download_that_dies_before_its_record_starts_over(service, http_server, tmp_path):
    """A tagged file is no prefix of the server's bytes: the retry fetches it whole."""
    service.settings.library.write_tags = True
    url = list(serve_songs(http_server, 1))[0]
    job = _download_with_record_dying_once(service, tmp_path, url, "Tagged")
    assert service.job_row(job).status == "completed"
    files = library_files(service)
    assert list(files) == ["manifest/A/Tagged.mp3"]
    assert [r.range for r in http_server.requests("/song0.mp3")] == [None, None]
    assert not list(service.settings.library_root.rglob("*.ready"))
    assert not list(service.settings.library_root.rglob("*.part"))


def test_a_download_that_dies_after_its_rename_counts_as_succeeded_not_skipped(
    service, http_server, tmp_path
):
    """Killed between the rename and marking the item: the restart finds the file in place."""
    url = list(serve_songs(http_server, 1))[0]
    playlist = _playlist(service, tmp_path, "Late", [("A", "Late", url)])
    job = service.submit_job("sync_download", playlist_ids=[playlist]).id
    service.run_headless(until_idle=True)
    stage = next(s for s in service.job_detail(job).stages if s.stage_type == "download")
    # The database as a SIGKILL leaves it in that window: file recorded and renamed, the
    # item still running, the stage and job too.
    conn = service.repository._conn()
    conn.execute(
        "UPDATE job_items SET status = 'running', ended_at = NULL WHERE job_stage_id = ?",
        (stage.id,),
    )
    conn.execute(
        "UPDATE job_stages SET status = 'running', success_items = 0 WHERE id = ?", (stage.id,)
    )
    conn.execute("UPDATE job_runs SET status = 'running', ended_at = NULL WHERE id = ?", (job,))

    service.run_headless(until_idle=True)

    assert service.job_row(job).status == "completed"
    [item] = service.repository.list_stage_items(stage.id)
    assert item.status == ItemStatus.SUCCEEDED and item.attempts == 2
    stage = next(s for s in service.job_detail(job).stages if s.stage_type == "download")
    assert (stage.success_items, stage.skipped_items) == (1, 0)
    assert len(http_server.requests("/song0.mp3")) == 1, "not downloaded again"
    assert list(library_files(service)) == ["manifest/A/Late.mp3"]


def test_a_rename_that_fails_after_the_record_takes_the_record_back(service, http_server, tmp_path):
    url = list(serve_songs(http_server, 1))[0]
    playlist = _playlist(service, tmp_path, "Rename", [("A", "Rename", url)])
    job = service.submit_job("sync_download", playlist_ids=[playlist]).id
    real_replace = __import__("os").replace
    calls = {"n": 0}

    def fails_once(src, dst):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("killed between recording and renaming")
        return real_replace(src, dst)

    with (
        patch("catalogsync.transfer.http.os.replace", fails_once),
        patch("catalogsync.ops.workers.retry_delay", return_value=0.05),
    ):
        service.run_headless(until_idle=True)

    assert service.job_row(job).status == "completed"
    rows = service.catalog._fetchall("SELECT relative_path FROM local_files")
    assert [r["relative_path"] for r in rows] == ["manifest/A/Rename.mp3"]
    assert list(library_files(service)) == ["manifest/A/Rename.mp3"]


def test_downloads_are_flushed_and_stamped_synced_by_the_end_of_a_run(
    service, http_server, tmp_path
):
    songs = serve_songs(http_server, 4)
    playlist = _playlist(
        service, tmp_path, "Flush", [("A", f"F{n}", u) for n, u in enumerate(songs)]
    )
    service.submit_job("sync_download", playlist_ids=[playlist])
    service.run_headless(until_idle=True)
    rows = service.catalog._fetchall("SELECT flushed_at FROM local_files")
    assert len(rows) == 4 and all(r["flushed_at"] for r in rows)


def test_files_never_flushed_are_checked_at_the_next_start(service, http_server, tmp_path):
    """A power cut after the record: the next runner keeps sound files, refetches the rest."""
    playlist, bodies = _download_never_flushed(service, http_server, tmp_path, "P", 3)
    root = service.settings.library_root
    # What a power cut can leave: a short file, a right-sized file of zeros, no file.
    (root / "manifest/A/P0.mp3").write_bytes(bodies[0][:1000])
    (root / "manifest/A/P1.mp3").write_bytes(bytes(len(bodies[1])))
    (root / "manifest/A/P2.mp3").unlink()

    service.submit_job("sync_download", playlist_ids=[playlist])
    service.run_headless(until_idle=True)

    events = [
        e for e in service.repository.list_events(limit=50) if e["event_type"] == "files_dropped"
    ]
    assert len(events) == 1 and events[0]["message"].startswith("3 downloaded files")
    assert "expected" in events[0]["message"] and "SHA-256" in events[0]["message"]
    assert _unflushed(service) == []
    files = library_files(service)
    for n, body in enumerate(bodies):
        assert files[f"manifest/A/P{n}.mp3"] == body
    assert sorted(files) == [f"manifest/A/P{n}.mp3" for n in range(3)]


def test_a_file_the_disk_refuses_to_flush_is_reported_and_left_unflushed(
    service, http_server, tmp_path
):
    import errno

    url = list(serve_songs(http_server, 1))[0]
    playlist = _playlist(service, tmp_path, "EIO", [("A", "Eio", url)])
    service.submit_job("sync_download", playlist_ids=[playlist])

    def broken_disk(path):
        raise OSError(errno.EIO, "Input/output error")

    with patch("catalogsync.transfer.durability.fsync_file", broken_disk):
        service.run_headless(until_idle=True)
    events = [
        e for e in service.repository.list_events(limit=50) if e["event_type"] == "flush_failed"
    ]
    assert len(events) == 1 and events[0]["level"] == "error"
    assert "Eio.mp3" in events[0]["message"] and "Input/output error" in events[0]["message"]
    assert len(_unflushed(service)) == 1, "checked again at the next start"

    # Next start: the bytes match but the disk still refuses: kept, reported, not deleted.
    with patch("catalogsync.transfer.durability.fsync_file", broken_disk):
        service.submit_job("sync_download", playlist_ids=[playlist])
        service.run_headless(until_idle=True)
    assert (service.settings.library_root / "manifest/A/Eio.mp3").exists()
    assert len(_unflushed(service)) == 1
    assert len(http_server.requests("/song0.mp3")) == 1
    messages = [e["message"] for e in service.repository.list_events(limit=50)]
    assert any(m.startswith("1 downloaded files are intact") for m in messages)
    # A disk that works again: the file is confirmed, nothing downloaded again.
    service.submit_job("sync_download", playlist_ids=[playlist])
    service.run_headless(until_idle=True)
    assert _unflushed(service) == []
    assert len(http_server.requests("/song0.mp3")) == 1


def test_a_sound_unflushed_file_is_kept_without_a_new_download(service, http_server, tmp_path):
    playlist, _ = _download_never_flushed(service, http_server, tmp_path, "Sound", 1)
    service.submit_job("sync_download", playlist_ids=[playlist])
    service.run_headless(until_idle=True)
    assert _unflushed(service) == []
    assert len(http_server.requests("/song0.mp3")) == 1
    assert not [
        e for e in service.repository.list_events(limit=50) if e["event_type"] == "files_dropped"
    ]


def test_an_unmounted_library_is_not_taken_for_lost_files(service, http_server, tmp_path):
    from catalogsync.transfer.durability import verify_unflushed_files

    _download_never_flushed(service, http_server, tmp_path, "Mount", 1)
    root = service.settings.library_root
    moved = root.with_name("library-unmounted")
    root.rename(moved)
    try:
        report = verify_unflushed_files(service.catalog)
    finally:
        moved.rename(root)
    assert (report.kept, report.dropped) == (0, [])
    assert len(_unflushed(service)) == 1


def test_download_upload_job_ends_with_identical_bytes_on_a_local_share(
    service, http_server, tmp_path
):
    share = tmp_path / "share"
    share.mkdir()
    service.catalog.add_backend("nas", "local", str(share))
    songs = serve_songs(http_server, 3)
    playlist = _playlist(
        service, tmp_path, "Copy", [("A", f"S{n}", u) for n, u in enumerate(songs)]
    )
    service.submit_job("sync_only", playlist_ids=[playlist])  # download_upload does not sync
    service.run_headless(until_idle=True)  # lanes run side by side: finish the sync first
    job = service.submit_job("download_upload", playlist_ids=[playlist], backend="nas")
    assert job.display_name == "Download Then Upload"
    service.run_headless(until_idle=True)

    detail = service.job_detail(job.id)
    assert detail.job.status == "completed"
    upload = next(s for s in detail.stages if s.stage_type == "upload")
    assert (upload.success_items, upload.total_items) == (3, 3)
    for n, body in enumerate(songs.values()):
        assert (share / "manifest" / "A" / f"S{n}.mp3").read_bytes() == body
    assert not list(service.settings.library_root.rglob("*.part"))

    again = service.submit_job("upload_only", backend="nas").id
    service.run_headless(until_idle=True)
    stage = service.job_detail(again).stages[0]
    assert service.job_row(again).status == "completed"
    assert stage.total_items == 0, "copies are recorded, so a second run uploads nothing"
    assert len(http_server.requests()) == 3, "the upload target never receives downloads"


def test_upload_skips_a_file_already_on_the_target(service, http_server, tmp_path):
    share = tmp_path / "share"
    service.catalog.add_backend("nas", "local", str(share))
    url = list(serve_songs(http_server, 1))[0]
    playlist = _playlist(service, tmp_path, "Skip", [("A", "Same", url)])
    service.submit_job("sync_download", playlist_ids=[playlist])
    service.run_headless(until_idle=True)
    (share / "manifest" / "A").mkdir(parents=True)
    (share / "manifest" / "A" / "Same.mp3").write_bytes(
        (service.settings.library_root / "manifest" / "A" / "Same.mp3").read_bytes()
    )
    job = service.submit_job("upload_only", backend="nas").id
    service.run_headless(until_idle=True)
    stage = service.job_detail(job).stages[0]
    assert (stage.skipped_items, stage.success_items) == (1, 0)
    assert service.job_row(job).status == "completed"
