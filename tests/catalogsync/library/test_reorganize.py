"""`library reorganize`: files follow the template, crash-safe under SIGKILL; v2 upgrades."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from catalogsync import db
from catalogsync.providers.manifest import ManifestProvider
from catalogsync.service import Catalogsync
from tests.catalogsync.library.library_support import (
    build_library,
    digests,
    run_cli,
    song_files,
    write_config,
)
from tests.support.audio import mp3_body

V2 = '[library]\ntemplate = "{platform}/{artist}/{title}"\n'


def test_reorganize_moves_files_to_the_template_without_downloading(tmp_path, http_server):
    home = tmp_path / "home"
    write_config(home, V2)
    service = build_library(home, http_server, 3)
    root = service.settings.library_root
    service.close()
    assert song_files(root) == [f"manifest/Band/Song {n}.mp3" for n in range(3)]
    before, requests = digests(root), len(http_server.requests())

    write_config(home, "")  # back to the default template
    code, out, _ = run_cli(home, "library", "reorganize", "--dry-run", "--json")
    assert code == 0, out
    plan = json.loads(out)
    assert sorted((m["from"], m["to"]) for m in plan["moves"]) == [
        (f"manifest/Band/Song {n}.mp3", f"Band/Album/{n + 1:02} Song {n}.mp3") for n in range(3)
    ]
    assert song_files(root)[0].startswith("manifest/"), "a dry run moves nothing"

    code, out, _ = run_cli(home, "library", "reorganize")
    assert code == 0, out
    assert "reorganize: moved 3 files, 0 already in place" in out
    assert song_files(root) == [f"Band/Album/{n + 1:02} Song {n}.mp3" for n in range(3)]
    assert not (root / "manifest").exists(), "emptied folders are removed"
    assert digests(root) == before and len(http_server.requests()) == requests
    service = Catalogsync.open(home=str(home))
    assert service.catalog.library_invariant_violations() == []
    content = ManifestProvider().fetch_playlist(str(root / "Playlists" / "Mix.m3u8"))
    assert [t.download_url.rsplit("/", 1)[1] for t in content.tracks] == [
        f"{n + 1:02}%20Song%20{n}.mp3" for n in range(3)
    ], "the playlist file follows the move"
    service.close()
    code, out, _ = run_cli(home, "library", "reorganize")
    assert "moved 0 files, 3 already in place" in out


def test_two_songs_that_render_to_one_path_get_a_numbered_name(tmp_path, http_server):
    home = tmp_path / "home"
    write_config(home, V2)
    service = build_library(home, http_server, 2)
    service.close()
    write_config(home, '[library]\ntemplate = "{artist}"\n')
    code, out, _ = run_cli(home, "library", "reorganize", "--json")
    assert code == 0, out
    assert sorted(m["to"] for m in json.loads(out)["moves"]) == ["Band (2).mp3", "Band.mp3"]


def test_reorganize_refuses_while_a_job_runs(tmp_path, http_server):
    home = tmp_path / "home"
    service = build_library(home, http_server, 1)
    job = service.submit_job("sync_only").id
    service.repository._conn().execute(
        "UPDATE job_runs SET status = 'running' WHERE id = ?", (job,)
    )
    service.close()
    code, _, err = run_cli(home, "library", "reorganize")
    assert code == 1 and "job(s) are running" in err and len(err.strip().splitlines()) == 1


_KILLED_AFTER_RENAME = textwrap.dedent(
    """
    import os, signal, sys
    from catalogsync.library import reorganize
    renames, kill_at, before = 0, int(sys.argv[2]), sys.argv[3] == "before"
    real_rename = os.rename

    def rename_then_die(src, dst):
        global renames
        renames += 1
        if before and renames == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # journaled, not renamed yet
        real_rename(src, dst)
        if renames == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # after the rename, before the record moves

    reorganize.os.rename = rename_then_die
    from catalogsync.cli import main
    sys.argv = ["catalogsync", "--home", sys.argv[1], "library", "reorganize"]
    main()
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("when", ["after", "before"])
def test_sigkill_in_the_middle_then_a_rerun_finishes_and_nothing_is_lost(
    tmp_path, http_server, when
):
    home = tmp_path / "home"
    write_config(home, V2)
    service = build_library(home, http_server, 6)
    root = service.settings.library_root
    service.close()
    before = digests(root)
    write_config(home, "")
    script = tmp_path / "killed.py"
    script.write_text(_KILLED_AFTER_RENAME)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    result = subprocess.run(
        [sys.executable, str(script), str(home), "4", when],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr

    # Mid-way: every song is findable, by its record or by the journal of the move.
    conn = db.connect_database(home / "catalogsync.db")
    records = conn.execute("SELECT song_id, relative_path FROM local_files").fetchall()
    moves = conn.execute("SELECT song_id, new_path FROM library_moves").fetchall()
    conn.close()
    assert len(moves) == 1, "the fourth move was journaled, renamed, not yet recorded"
    journal = {int(m[0]): m[1] for m in moves}
    for song_id, rel in records:
        assert (root / rel).is_file() or (root / journal[int(song_id)]).is_file()
    assert sum(p.startswith("Band/") for p in song_files(root)) == (4 if when == "after" else 3)

    code, out, _ = run_cli(home, "library", "reorganize")
    assert code == 0, out
    assert "1 interrupted moves finished first" in out
    assert song_files(root) == [f"Band/Album/{n + 1:02} Song {n}.mp3" for n in range(6)]
    assert digests(root) == before
    service = Catalogsync.open(home=str(home))
    assert service.catalog.library_invariant_violations() == []
    assert service.catalog.journaled_moves() == [] and service.catalog.reservations() == []
    service.close()


def test_a_v2_database_and_library_upgraded_in_place(tmp_path, http_server):
    """A library made before issue 11: files stay put until `library reorganize`."""
    home, root = tmp_path / "home", tmp_path / "home" / "library"
    bodies = [mp3_body(9_000 + n, seed=40 + n) for n in range(2)]
    tracks = []
    conn = (
        db.connect_database(home / "catalogsync.db") if home.mkdir(parents=True) is None else None
    )
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    for migrate in db.MIGRATIONS[:2]:
        migrate(conn)
    conn.execute("PRAGMA user_version = 2")
    conn.execute(
        "INSERT INTO storage_backends (name, kind, target, is_default) "
        "VALUES ('library', 'local', ?, 1)",
        (str(root),),
    )
    playlist = tmp_path / "old.json"
    conn.execute(
        "INSERT INTO playlists (platform, remote_id, ref, name) VALUES ('manifest', ?, ?, 'Old')",
        (str(playlist), str(playlist)),
    )
    for n, body in enumerate(bodies):
        url = http_server.route(f"/old{n}.mp3", body=body)
        tracks.append(
            {
                "id": f"old{n}",
                "url": url,
                "title": f"Tune {n}",
                "artist": "Old Band",
                "album": "Past",
                "track": n + 1,
            }
        )
        rel = f"manifest/Old Band/Tune {n}.mp3"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
        conn.execute(
            "INSERT INTO songs (platform, remote_id, name, singers) VALUES "
            "('manifest', ?, ?, 'Old Band')",
            (f"old{n}", f"Tune {n}"),
        )
        conn.execute(
            "INSERT INTO playlist_songs (playlist_id, song_id, position) VALUES (1, ?, ?)",
            (n + 1, n + 1),
        )
        conn.execute(
            "INSERT INTO local_files (song_id, backend_id, relative_path, "
            "file_size_bytes, sha256) VALUES (?, 1, ?, ?, ?)",
            (n + 1, rel, len(body), hashlib.sha256(body).hexdigest()),
        )
    conn.execute("COMMIT")
    conn.close()
    playlist.write_text(json.dumps({"name": "Old", "tracks": tracks}))

    code, out, _ = run_cli(home, "jobs", "submit", "sync_download", "--wait")
    assert code == 0, out
    assert http_server.requests() == [], "recorded songs are not downloaded again"
    assert song_files(root) == ["manifest/Old Band/Tune 0.mp3", "manifest/Old Band/Tune 1.mp3"]
    assert [(root / p).read_bytes() for p in song_files(root)] == bodies, "kept as they were"
    assert (root / "Playlists" / "Old.m3u8").is_file()
    code, out, _ = run_cli(home, "library", "verify")
    assert code == 0, out

    code, out, _ = run_cli(home, "library", "reorganize")
    assert code == 0, out
    assert song_files(root) == ["Old Band/Past/01 Tune 0.mp3", "Old Band/Past/02 Tune 1.mp3"]
    code, out, _ = run_cli(home, "library", "verify")
    assert code == 0 and "2 files checked, 2 ok" in out
    content = ManifestProvider().fetch_playlist(str(root / "Playlists" / "Old.m3u8"))
    assert [t.name for t in content.tracks] == ["Tune 0", "Tune 1"]


def test_a_file_two_songs_share_moves_once_and_both_records_follow(tmp_path, http_server):
    home = tmp_path / "home"
    body = mp3_body(12_000, seed=7)
    first = http_server.route("/first.mp3", body=body)
    second = http_server.route("/second.mp3", body=body)
    playlist = tmp_path / "twins.json"
    playlist.write_text(
        json.dumps(
            {
                "name": "Twins",
                "tracks": [
                    {"url": first, "title": "One", "artist": "A"},
                    {"url": second, "title": "Two", "artist": "B"},
                ],
            }
        )
    )
    write_config(home, "[library]\nwrite_tags = false\n[download]\nworkers = 1\n")
    service = Catalogsync.open(home=str(home))
    service.add_playlists([str(playlist)])
    service.submit_job("sync_download")
    service.run_headless(until_idle=True)
    rows = service.catalog._fetchall("SELECT DISTINCT relative_path FROM local_files")
    assert len(rows) == 1, "one file serves both songs"
    service.close()
    write_config(home, '[library]\ntemplate = "{title}"\nwrite_tags = false\n')
    code, out, _ = run_cli(home, "library", "reorganize", "--json")
    assert code == 0, out
    assert [m["to"] for m in json.loads(out)["moves"]] == ["One.mp3"]
    service = Catalogsync.open(home=str(home))
    paths = [r[0] for r in service.catalog._fetchall("SELECT relative_path FROM local_files")]
    assert paths == ["One.mp3", "One.mp3"]
    assert service.catalog.library_invariant_violations() == []
    service.close()
    code, out, _ = run_cli(home, "library", "reorganize")
    assert "moved 0 files, 1 already in place" in out


def test_a_move_that_fails_is_one_line_and_the_record_stays(tmp_path, http_server):
    home = tmp_path / "home"
    write_config(home, V2)
    service = build_library(home, http_server, 1)
    root = service.settings.library_root
    service.close()
    (root / "Band").write_text("a file where the artist folder would go")
    write_config(home, '[library]\ntemplate = "{artist}/{title}"\n')
    code, _, err = run_cli(home, "library", "reorganize")
    assert code == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    service = Catalogsync.open(home=str(home))
    assert service.catalog.library_invariant_violations() == []
    assert service.catalog.journaled_moves() == [] and service.catalog.reservations() == []
    assert song_files(root) == ["manifest/Band/Song 0.mp3"]
    service.close()
