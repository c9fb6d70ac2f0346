"""Schema creation and in-place upgrades (the seed's Task 1 test, and more)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from catalogsync.db import SCHEMA_VERSION, connect_database, initialize_database
from catalogsync.errors import CatalogsyncError

OLD_JOB_WORKERS = """
CREATE TABLE job_workers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_run_id INTEGER,
    job_stage_id INTEGER,
    worker_name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'idle',
    current_job_item_id INTEGER,
    current_song_id INTEGER,
    current_playlist_id INTEGER,
    current_display_text TEXT,
    heartbeat_at TEXT,
    last_progress_text TEXT,
    processed_count INTEGER NOT NULL DEFAULT 0,
    error_count INTEGER NOT NULL DEFAULT 0
)
"""

ALL_TABLES = {
    "storage_backends",
    "playlists",
    "songs",
    "playlist_songs",
    "local_files",
    "job_runs",
    "job_stages",
    "job_items",
    "job_workers",
    "worker_speed_samples",
    "job_commands",
    "job_events",
    "runner_lease",
}


def _columns(db_path: Path, table: str) -> set[str]:
    with closing(sqlite3.connect(db_path)) as conn:
        return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def test_initialize_database_upgrades_job_workers_with_throughput_columns(tmp_path):
    db_path = tmp_path / "catalogsync.db"
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute(OLD_JOB_WORKERS)
        conn.execute(
            "INSERT INTO job_workers (worker_name, processed_count) VALUES ('download-1', 7)"
        )
        conn.commit()

    initialize_database(db_path).close()

    columns = _columns(db_path, "job_workers")
    for name in ("downloaded_bytes", "total_bytes", "speed_bytes_per_sec", "progress_percent"):
        assert name in columns
    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("SELECT processed_count FROM job_workers").fetchone()[0] == 7


def test_initialize_database_is_idempotent_and_versioned(tmp_path):
    db_path = tmp_path / "catalogsync.db"
    initialize_database(db_path, tmp_path / "lib").close()
    initialize_database(db_path, tmp_path / "lib").close()
    with closing(sqlite3.connect(db_path)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables >= ALL_TABLES
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        backends = conn.execute("SELECT name, kind, is_default FROM storage_backends").fetchall()
    assert backends == [("library", "local", 1)]


def test_connections_use_wal_busy_timeout_and_foreign_keys(db_path):
    conn = connect_database(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        conn.close()


def test_newer_schema_is_refused_with_a_clear_message(tmp_path):
    db_path = tmp_path / "future.db"
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(CatalogsyncError, match="newer than this catalogsync"):
        initialize_database(db_path)


def test_v2_library_files_count_as_synced_and_stamping_keeps_totals(tmp_path):
    """Files from before v3 were fsynced before they were recorded; totals don't move."""
    from catalogsync.db import MIGRATIONS

    db_path = tmp_path / "v2.db"
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        MIGRATIONS[0](conn)
        MIGRATIONS[1](conn)
        conn.execute(
            "INSERT INTO storage_backends (name, kind, target, is_default) "
            "VALUES ('library', 'local', ?, 1)",
            (str(tmp_path / "lib"),),
        )
        conn.execute("INSERT INTO songs (platform, remote_id, name) VALUES ('manifest', 'a', 'A')")
        conn.execute(
            "INSERT INTO local_files (song_id, backend_id, relative_path, file_size_bytes, "
            "created_at) VALUES (1, 1, 'a.mp3', 10, '2026-01-02T03:04:05Z')"
        )
        conn.execute("PRAGMA user_version = 2")
        conn.commit()

    initialize_database(db_path).close()

    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("SELECT flushed_at FROM local_files").fetchone()[0] == (
            "2026-01-02T03:04:05Z"
        )
        conn.execute("UPDATE local_files SET flushed_at = NULL")
        conn.execute("UPDATE local_files SET flushed_at = 'now'")
        conn.commit()
        assert conn.execute("SELECT songs, bytes FROM library_summary").fetchone() == (1, 10)
        assert conn.execute("SELECT files, bytes FROM library_totals").fetchone() == (1, 10)
        triggers = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    for name in ("library_file_changed_old", "library_file_changed_new"):
        assert "AFTER UPDATE OF song_id, backend_id, file_size_bytes" in triggers[name]


def test_a_file_record_of_a_deleted_song_does_not_block_the_v4_upgrade(tmp_path):
    """A song deleted with foreign keys off (the sqlite3 shell, the musicdl console)
    leaves its local_files row behind: the rebuild of local_files must not refuse it."""
    from catalogsync.db import MIGRATIONS

    db_path = tmp_path / "v3.db"
    with closing(sqlite3.connect(db_path)) as conn:
        for migrate in MIGRATIONS[:3]:
            migrate(conn)
        conn.execute(
            "INSERT INTO storage_backends (name, kind, target, is_default) "
            "VALUES ('library', 'local', ?, 1)",
            (str(tmp_path / "lib"),),
        )
        conn.execute("INSERT INTO songs (platform, remote_id, name) VALUES ('manifest', 'a', 'A')")
        conn.execute("INSERT INTO songs (platform, remote_id, name) VALUES ('manifest', 'b', 'B')")
        for song_id, rel in ((1, "a.mp3"), (2, "b.mp3")):
            conn.execute(
                "INSERT INTO local_files (song_id, backend_id, relative_path, file_size_bytes, "
                "created_at) VALUES (?, 1, ?, 10, '2026-01-02T03:04:05Z')",
                (song_id, rel),
            )
        conn.execute("DELETE FROM songs WHERE id = 2")  # foreign keys are off here
        conn.execute("PRAGMA user_version = 3")
        conn.commit()

    initialize_database(db_path).close()

    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT song_id, relative_path FROM local_files").fetchall() == [
            (1, "a.mp3")
        ]
        assert conn.execute("SELECT songs, bytes FROM library_summary").fetchone() == (1, 10)
