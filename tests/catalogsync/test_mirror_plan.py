"""Sync policies (add, mirror and its quarantine) and `playlists plan`, end to end."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalogsync import cli, clock
from catalogsync.catalog import quarantine
from catalogsync.ops.models import JobStatus
from tests.catalogsync.pipeline_support import open_service, write_m3u
from tests.support.audio import mp3_body

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def service(tmp_path):
    svc = open_service(tmp_path / "home")
    yield svc
    svc.close()


def _songs(server, names):
    return {
        n: server.route(f"/{n}.mp3", body=mp3_body(30_000 + i * 101, seed=i))
        for i, n in enumerate(names)
    }


def _entries(urls, names):
    return [("Band", name, urls[name]) for name in names]


def _path_of(service, title: str) -> Path:
    song = next(s for s in _all_songs(service) if s["name"] == title)
    row = next(f for f in service.catalog.files_for_song(song["id"]) if f["in_library"])
    return service.settings.library_root / row["relative_path"]


def _all_songs(service):
    return [dict(r) for r in service.catalog._fetchall("SELECT * FROM songs ORDER BY id")]


def _synced_pair(service, http_server, tmp_path, policy: str):
    """Playlist A (``policy``) with S0 S1 S2 and playlist B (add) with S2, both downloaded."""
    urls = _songs(http_server, ["S0", "S1", "S2", "S3"])
    a_path = write_m3u(tmp_path / "a.m3u", _entries(urls, ["S0", "S1", "S2"]), name="A")
    b_path = write_m3u(tmp_path / "b.m3u", _entries(urls, ["S2"]), name="B")
    a = service.add_playlists([str(a_path)], wanted=True)[0].id
    b = service.add_playlists([str(b_path)], wanted=True)[0].id
    service.catalog.set_sync_policy(a, policy)
    service.submit_job("sync_download", playlist_ids=[a, b])
    service.run_headless(until_idle=True)
    return urls, a_path, a, b


def test_mirror_moves_a_removed_tracks_file_to_the_trash_and_keeps_everything_else(
    service, http_server, tmp_path
):
    urls, a_path, a, _b = _synced_pair(service, http_server, tmp_path, "mirror")
    root = service.settings.library_root
    s0, s2 = _path_of(service, "S0"), _path_of(service, "S2")
    s0_bytes = s0.read_bytes()
    mine = s0.parent / "my own recording.mp3"  # a file catalogsync did not write
    mine.write_bytes(b"ID3 mine")
    # Upstream, S0 and S2 leave A; S2 is still in B (wanted), S0 in no wanted playlist.
    write_m3u(a_path, _entries(urls, ["S1"]), name="A")
    job = service.submit_job("sync_only", playlist_ids=[a]).id
    service.run_headless(until_idle=True)

    assert service.job_row(job).status == JobStatus.COMPLETED
    rel = s0.relative_to(root).as_posix()
    trashed = list((root / quarantine.TRASH_DIR).glob(f"*/{rel}"))
    assert len(trashed) == 1 and trashed[0].read_bytes() == s0_bytes, "moved, not deleted"
    row = service.catalog.trashed_files()[0]
    assert (row["state"], row["relative_path"]) == ("trashed", rel)
    assert (
        trashed[0].parent.relative_to(root / quarantine.TRASH_DIR).parts[0]
        == (row["trashed_at"][:10])
    )
    assert not s0.exists()
    assert s2.exists(), "another wanted playlist still lists S2"
    assert mine.read_bytes() == b"ID3 mine", "a file catalogsync did not write is never moved"
    song = next(s for s in _all_songs(service) if s["name"] == "S0")
    assert service.catalog.files_for_song(song["id"]) == [], "no record left to chase"
    events = service.repository.list_events(job)
    assert any(e["event_type"] == "quarantined" and rel in e["message"] for e in events)
    playlist = next(p for p in service.playlists() if p.id == a)
    assert (playlist.song_count, playlist.sync_policy) == (1, "mirror")


def test_add_never_moves_anything(service, http_server, tmp_path):
    urls, a_path, a, _b = _synced_pair(service, http_server, tmp_path, "add")
    s0 = _path_of(service, "S0")
    write_m3u(a_path, _entries(urls, ["S1"]), name="A")
    service.submit_job("sync_only", playlist_ids=[a])
    service.run_headless(until_idle=True)
    assert s0.exists()
    assert not (service.settings.library_root / quarantine.TRASH_DIR).exists()
    assert next(p for p in service.playlists() if p.id == a).song_count == 1


def test_a_file_changed_since_it_was_written_stays_and_says_why(service, http_server, tmp_path):
    urls, a_path, a, _b = _synced_pair(service, http_server, tmp_path, "mirror")
    s0 = _path_of(service, "S0")
    s0.write_bytes(b"edited by the user")
    write_m3u(a_path, _entries(urls, ["S1", "S2"]), name="A")
    job = service.submit_job("sync_only", playlist_ids=[a]).id
    service.run_headless(until_idle=True)
    assert s0.read_bytes() == b"edited by the user"
    kept = [e for e in service.repository.list_events(job) if e["event_type"] == "quarantine_kept"]
    assert kept and "changed on disk since catalogsync wrote it" in kept[0]["message"]


def test_a_move_cut_short_by_a_crash_is_finished_at_the_next_start(service, http_server, tmp_path):
    urls, a_path, a, _b = _synced_pair(service, http_server, tmp_path, "mirror")
    root = service.settings.library_root
    s0 = _path_of(service, "S0")
    service.catalog.sync_playlist_tracks(a, "manifest", [])  # the sync part, without a runner
    rel = s0.relative_to(root).as_posix()
    candidate = [c for c in service.catalog.quarantine_candidates() if c["relative_path"] == rel]
    # The record went to trashed_files as "moving"; the process died before the rename.
    trash_rel = quarantine.trash_path_for(rel, date(2026, 1, 2))
    service.catalog.begin_trash(candidate, trash_rel)
    assert s0.exists() and rel not in [
        c["relative_path"] for c in service.catalog.quarantine_candidates()
    ]
    service.run_headless(until_idle=True)  # a runner starts: it finishes the move
    assert not s0.exists() and (root / trash_rel).is_file()
    states = {r["relative_path"]: r["state"] for r in service.catalog.trashed_files()}
    assert states[rel] == "trashed"
    assert any(e["event_type"] == "quarantine_recovered" for e in service.repository.list_events())


def test_the_trash_is_purged_after_trash_days_and_only_unchanged_files(
    service, http_server, tmp_path
):
    urls, a_path, a, b = _synced_pair(service, http_server, tmp_path, "mirror")
    root = service.settings.library_root
    write_m3u(a_path, [], name="A")
    service.catalog.set_wanted([b], False)  # so S0 S1 S2 all qualify
    service.catalog.sync_playlist_tracks(a, "manifest", [])
    report = quarantine.quarantine_unreferenced(service.catalog)
    assert len(report.moved) == 3
    rows = service.catalog.trashed_files()
    edited = root / rows[0]["trash_path"]
    edited.write_bytes(b"changed in the trash")
    clock.freeze(clock.now() + 29 * 86400)
    assert quarantine.purge(service.catalog, 30) == 0
    clock.freeze(clock.now() + 2 * 86400)
    assert quarantine.purge(service.catalog, 30) == 2
    assert edited.read_bytes() == b"changed in the trash"
    assert [r["id"] for r in service.catalog.trashed_files()] == [rows[0]["id"]]


def _cli(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.app, ["--home", str(home), *args])
    service = cli._state.pop("service", None)
    if service is not None:
        service.close()
    return result.exit_code, result.stdout, result.stderr


def test_playlists_policy_sets_it_and_refuses_anything_else(service, tmp_path):
    path = write_m3u(tmp_path / "p.m3u", [("A", "S", "http://127.0.0.1:9/s.mp3")], name="P")
    playlist = service.add_playlists([str(path)])[0].id
    home = tmp_path / "home"
    assert _cli(home, "playlists", "policy", str(playlist), "mirror")[0] == 0
    assert next(p for p in service.playlists() if p.id == playlist).sync_policy == "mirror"
    code, _out, err = _cli(home, "playlists", "policy", str(playlist), "delete")
    # A choice on the command line (issue 15): a usage error, exit 2, naming the choices.
    assert code == 2 and "'delete' is not one of" in err and "mirror" in err
    code, _out, err = _cli(home, "playlists", "policy", "99", "add")
    assert code == 1 and err.startswith("error: no playlist with id 99")


def test_plan_says_what_would_change_and_leaves_the_database_byte_identical(tmp_path, http_server):
    home = tmp_path / "home"
    service = open_service(home)
    try:
        urls, a_path, a, b = _synced_pair(service, http_server, tmp_path, "mirror")
        s0_rel = _path_of(service, "S0").relative_to(service.settings.library_root).as_posix()
        # One finished download stage to take the recent speed from: 2 MB in 4 s.
        with service.repository._connection() as conn:
            conn.execute("UPDATE job_stages SET ended_at = NULL WHERE stage_type = 'download'")
        job = service.repository.create_job("download_only", {})
        stage = service.repository.create_stage(job_id=job, stage_type="download", seq_no=1)
        item = service.repository.create_item(
            job_stage_id=stage, item_type="song_download", item_key="song:x"
        )
        service.repository.claim_item(item, "download-1")
        service.repository.mark_item_succeeded(item, {"bytes": 2_000_000})
        with service.repository._connection() as conn:
            conn.execute(
                "UPDATE job_stages SET started_at = '2026-01-01 10:00:00', "
                "ended_at = '2026-01-01 10:00:04' WHERE id = ?",
                (stage,),
            )
    finally:
        service.close()
    write_m3u(a_path, _entries(urls, ["S1", "S2", "S3"]), name="A")  # -S0 +S3
    db = home / "catalogsync.db"
    conn = sqlite3.connect(db)  # everything written so far into the main file
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = db.read_bytes()
    wal = Path(f"{db}-wal")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "catalogsync.cli",
            "--home",
            str(home),
            "playlists",
            "plan",
            "--json",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("CATALOGSYNC")},
    )
    assert result.returncode == 0, result.stderr
    assert db.read_bytes() == before, "plan wrote to the database"
    assert not wal.exists() or wal.stat().st_size == 0, "plan wrote to the write-ahead log"
    plan = json.loads(result.stdout)
    first = next(p for p in plan["playlists"] if p["id"] == a)
    assert (first["tracks_to_add"], first["tracks_to_remove"]) == (1, 1)
    assert (first["add"], first["remove"]) == (["S3 / Band"], ["S0 / Band"])
    assert first["songs_to_download"] == 1
    assert first["files_to_quarantine"] == [s0_rel]
    other = next(p for p in plan["playlists"] if p["id"] == b)
    assert (other["tracks_to_add"], other["tracks_to_remove"], other["songs_to_download"]) == (
        0,
        0,
        0,
    )
    totals = plan["totals"]
    assert totals["recent_speed_bytes_per_sec"] == 500_000.0
    assert totals["songs_to_download"] == 1 and totals["files_to_quarantine"] == 1
    # An M3U gives no sizes: S3's is unknown until it is downloaded, and so is the ETA.
    assert (totals["download_bytes"], totals["songs_of_unknown_size"]) == (None, 1)
    assert totals["eta_seconds"] is None
    text = subprocess.run(
        [sys.executable, "-m", "catalogsync.cli", "--home", str(home), "playlists", "plan"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "1 songs to download" in text and f"to trash (A): {s0_rel}" in text
    assert db.read_bytes() == before


def test_plan_without_a_database_is_one_line(tmp_path):
    code, _out, err = _cli(tmp_path / "nowhere", "playlists", "plan")
    assert code == 1 and err.startswith("error: no database at ") and err.count("\n") == 1


def test_a_file_two_songs_share_stays_while_either_is_wanted(service, http_server, tmp_path):
    body = mp3_body(40_000, seed=99)
    one = http_server.route("/one.mp3", body=body)
    same = http_server.route("/same.mp3", body=body)  # another song, the same bytes
    a_path = write_m3u(tmp_path / "a.m3u", [("Band", "One", one)], name="A")
    b_path = write_m3u(tmp_path / "b.m3u", [("Other", "Same", same)], name="B")
    a = service.add_playlists([str(a_path)], wanted=True)[0].id
    b = service.add_playlists([str(b_path)], wanted=True)[0].id
    service.catalog.set_sync_policy(a, "mirror")
    service.submit_job("sync_download", playlist_ids=[a, b])
    service.run_headless(until_idle=True)
    rows = service.catalog._fetchall("SELECT song_id, relative_path FROM local_files")
    paths = {r["relative_path"] for r in rows}
    assert len(rows) == 2 and len(paths) == 1, "the same bytes are stored once"
    shared = service.settings.library_root / paths.pop()
    write_m3u(a_path, [], name="A")
    service.submit_job("sync_only", playlist_ids=[a])
    service.run_headless(until_idle=True)
    assert shared.is_file(), "B still lists a song that is this file"
    assert not (service.settings.library_root / quarantine.TRASH_DIR).exists()
    service.catalog.set_wanted([b], False)
    job = service.submit_job("sync_only", playlist_ids=[a]).id
    service.run_headless(until_idle=True)
    assert shared.is_file(), "a file another song's record names is never moved from under it"
    kept = [e for e in service.repository.list_events(job) if e["event_type"] == "quarantine_kept"]
    assert kept and "shares this file" in kept[0]["message"]


def _speed_stage(service, nbytes: int, seconds: int) -> None:
    """One finished download stage of ``nbytes`` in ``seconds``: the plan's recent speed."""
    with service.repository._connection() as conn:
        conn.execute("UPDATE job_stages SET ended_at = NULL WHERE stage_type = 'download'")
    job = service.repository.create_job("download_only", {})
    stage = service.repository.create_stage(job_id=job, stage_type="download", seq_no=1)
    item = service.repository.create_item(
        job_stage_id=stage, item_type="song_download", item_key="x"
    )
    service.repository.claim_item(item, "download-1")
    service.repository.mark_item_succeeded(item, {"bytes": nbytes})
    with service.repository._connection() as conn:
        conn.execute(
            "UPDATE job_stages SET started_at = '2026-01-01 10:00:00', "
            f"ended_at = '2026-01-01 10:00:{seconds:02d}' WHERE id = ?",
            (stage,),
        )


def test_plan_counts_a_shared_song_once_and_estimates_unknown_sizes_at_the_average(
    service, tmp_path
):
    tracks = [
        {"id": "a", "title": "A", "url": "http://127.0.0.1:9/a.mp3", "size": 1_000_000},
        {"id": "b", "title": "B", "url": "http://127.0.0.1:9/b.mp3", "size": 2_000_000},
        {"id": "c", "title": "C", "url": "http://127.0.0.1:9/c.mp3"},
    ]
    first = tmp_path / "first.json"
    first.write_text(json.dumps({"name": "First", "tracks": tracks}), encoding="utf-8")
    second = tmp_path / "second.json"
    second.write_text(json.dumps({"name": "Second", "tracks": tracks[:1]}), encoding="utf-8")
    ids = [p.id for p in service.add_playlists([str(first), str(second)], wanted=True)]
    _speed_stage(service, 1_000_000, 2)
    plan = service.plan(ids)
    assert [p["songs_to_download"] for p in plan["playlists"]] == [3, 1]
    assert [p["download_bytes"] for p in plan["playlists"]] == [3_000_000, 1_000_000]
    totals = plan["totals"]
    assert (totals["songs_to_download"], totals["download_bytes"]) == (3, 3_000_000)
    assert totals["songs_of_unknown_size"] == 1
    # 3 MB known + one song at the 1.5 MB average, at 500 kB/s.
    assert totals["eta_seconds"] == 9


def test_plan_reports_a_playlist_it_cannot_read_and_goes_on(service, tmp_path):
    gone = write_m3u(tmp_path / "gone.m3u", [("A", "S", "http://127.0.0.1:9/s.mp3")], name="G")
    kept = write_m3u(tmp_path / "kept.m3u", [("A", "T", "http://127.0.0.1:9/t.mp3")], name="K")
    ids = [p.id for p in service.add_playlists([str(gone), str(kept)], wanted=True)]
    gone.unlink()
    plan = service.plan(ids)
    assert plan["playlists"][0]["error"] and "gone.m3u" in plan["playlists"][0]["error"]
    assert plan["playlists"][1]["tracks_to_add"] == 1
    assert service.repository.list_jobs() == [], "a plan submits nothing"


def test_plan_refuses_an_older_or_broken_database_in_one_line(tmp_path):
    home = tmp_path / "home"
    open_service(home).close()
    db = home / "catalogsync.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    code, _out, err = _cli(home, "playlists", "plan")
    assert code == 1 and "from an older catalogsync; run `catalogsync status`" in err
    assert err.count("\n") == 1
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 100)
    code, _out, err = _cli(home, "playlists", "plan")
    assert code == 1 and err.startswith(f"error: {db}: ") and err.count("\n") == 1
