"""SQLite connection and schema: WAL, busy timeout, foreign keys, ordered migrations."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_MS = 10_000

# Each entry upgrades the schema from version i to i + 1. Never edit a shipped
# entry: append a new one. Statements must be safe on databases created by an
# older catalogsync (or by the musicdl console the project grew from), so
# table creation is IF NOT EXISTS and columns are added by _ensure_columns.
_V1_TABLES = [
    """
    CREATE TABLE IF NOT EXISTS storage_backends (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        options_json TEXT NOT NULL DEFAULT '{}',
        is_default INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS playlists (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        platform TEXT NOT NULL,
        pool_kind TEXT NOT NULL DEFAULT 'url',
        source_name TEXT,
        remote_id TEXT NOT NULL,
        ref TEXT,
        name TEXT NOT NULL,
        song_count INTEGER NOT NULL DEFAULT 0,
        wanted INTEGER NOT NULL DEFAULT 1,
        last_synced_at TEXT,
        last_error TEXT,
        drift_added INTEGER,
        drift_removed INTEGER,
        created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
        updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
        UNIQUE (platform, remote_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS songs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        platform TEXT NOT NULL,
        remote_id TEXT NOT NULL,
        name TEXT NOT NULL,
        singers TEXT NOT NULL DEFAULT '',
        album TEXT NOT NULL DEFAULT '',
        duration_seconds REAL,
        ext TEXT NOT NULL DEFAULT '',
        file_size_bytes INTEGER,
        quality_label TEXT,
        sha256 TEXT,
        download_url TEXT,
        metadata_json TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
        updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
        UNIQUE (platform, remote_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS playlist_songs (
        playlist_id INTEGER NOT NULL REFERENCES playlists(id) ON DELETE CASCADE,
        song_id INTEGER NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        added_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
        removed_at TEXT,
        PRIMARY KEY (playlist_id, song_id)
    )
    """,
    "CREATE INDEX IF NOT EXISTS idx_playlist_songs_song ON playlist_songs(song_id)",
    """
    CREATE TABLE IF NOT EXISTS local_files (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        song_id INTEGER NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
        backend_id INTEGER NOT NULL REFERENCES storage_backends(id) ON DELETE CASCADE,
        relative_path TEXT NOT NULL,
        file_size_bytes INTEGER,
        ext TEXT,
        quality_label TEXT,
        sha256 TEXT,
        created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
        UNIQUE (backend_id, relative_path)
    )
    """,
    "CREATE INDEX IF NOT EXISTS idx_local_files_song ON local_files(song_id, backend_id)",
    """
    CREATE TABLE IF NOT EXISTS job_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_type TEXT NOT NULL,
        status TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 100,
        requested_by TEXT,
        config_snapshot TEXT NOT NULL DEFAULT '{}',
        sources TEXT NOT NULL DEFAULT '[]',
        download_sources TEXT NOT NULL DEFAULT '[]',
        playlist_scope TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
        started_at TEXT,
        ended_at TEXT,
        error TEXT
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS job_stages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_run_id INTEGER NOT NULL REFERENCES job_runs(id) ON DELETE CASCADE,
        stage_type TEXT NOT NULL,
        seq_no INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        total_items INTEGER NOT NULL DEFAULT 0,
        success_items INTEGER NOT NULL DEFAULT 0,
        failed_items INTEGER NOT NULL DEFAULT 0,
        skipped_items INTEGER NOT NULL DEFAULT 0,
        started_at TEXT,
        ended_at TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS idx_job_stages_job ON job_stages(job_run_id, seq_no)",
    """
    CREATE TABLE IF NOT EXISTS job_items (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_stage_id INTEGER NOT NULL REFERENCES job_stages(id) ON DELETE CASCADE,
        item_type TEXT NOT NULL,
        item_key TEXT NOT NULL,
        song_id INTEGER,
        playlist_id INTEGER,
        status TEXT NOT NULL DEFAULT 'pending',
        worker_id INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        payload_json TEXT NOT NULL DEFAULT '{}',
        last_error TEXT,
        last_error_code TEXT,
        created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
        started_at TEXT,
        ended_at TEXT,
        UNIQUE (job_stage_id, item_key)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS job_workers (
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
    """,
    """
    CREATE TABLE IF NOT EXISTS worker_speed_samples (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        worker_id INTEGER NOT NULL REFERENCES job_workers(id) ON DELETE CASCADE,
        at REAL NOT NULL,
        speed_bytes_per_sec REAL
    )
    """,
    "CREATE INDEX IF NOT EXISTS idx_speed_samples_worker ON worker_speed_samples(worker_id, id)",
    """
    CREATE TABLE IF NOT EXISTS job_commands (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_run_id INTEGER NOT NULL REFERENCES job_runs(id) ON DELETE CASCADE,
        command_type TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        payload_json TEXT NOT NULL DEFAULT '{}',
        message TEXT,
        requested_by TEXT,
        created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
        applied_at TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS idx_job_commands_status ON job_commands(status, id)",
    """
    CREATE TABLE IF NOT EXISTS job_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_run_id INTEGER REFERENCES job_runs(id) ON DELETE CASCADE,
        event_type TEXT NOT NULL,
        level TEXT NOT NULL DEFAULT 'info',
        message TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
    )
    """,
    "CREATE INDEX IF NOT EXISTS idx_job_events_job ON job_events(job_run_id, id)",
    """
    CREATE TABLE IF NOT EXISTS runner_lease (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        owner TEXT NOT NULL,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        started_at TEXT NOT NULL,
        heartbeat_at REAL NOT NULL
    )
    """,
]

# Columns added after the first schema (or missing from databases made by the
# musicdl console): added in place when absent.
_V1_COLUMNS: dict[str, dict[str, str]] = {
    "job_workers": {
        "downloaded_bytes": "INTEGER",
        "total_bytes": "INTEGER",
        "speed_bytes_per_sec": "REAL",
        "progress_percent": "REAL",
    },
    "job_runs": {
        "queue_rank": "REAL",
        "backend_name": "TEXT",
        "pause_reason": "TEXT",
    },
    "job_stages": {"planned": "INTEGER NOT NULL DEFAULT 0"},
    "job_items": {
        "job_run_id": "INTEGER",
        "next_attempt_at": "REAL",
        "bytes_done": "INTEGER",
    },
}

_V1_INDEXES = [
    "CREATE INDEX IF NOT EXISTS idx_job_runs_status ON job_runs(status, priority, queue_rank, id)",
    "CREATE INDEX IF NOT EXISTS idx_job_items_stage_status ON job_items(job_stage_id, status, id)",
    "CREATE INDEX IF NOT EXISTS idx_job_items_status ON job_items(status)",
    "CREATE INDEX IF NOT EXISTS idx_job_items_job ON job_items(job_run_id, status)",
    "CREATE INDEX IF NOT EXISTS idx_job_workers_job ON job_workers(job_run_id, status)",
    "CREATE INDEX IF NOT EXISTS idx_job_workers_name ON job_workers(worker_name, id)",
]


def _ensure_columns(conn: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    existing = {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}
    for name, decl in columns.items():
        if name not in existing:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")


def _migrate_v1(conn: sqlite3.Connection) -> None:
    for statement in _V1_TABLES:
        conn.execute(statement)
    for table, columns in _V1_COLUMNS.items():
        _ensure_columns(conn, table, columns)
    for statement in _V1_INDEXES:
        conn.execute(statement)
    conn.execute("UPDATE job_runs SET queue_rank = id WHERE queue_rank IS NULL")


# A local backend that receives downloads (see catalog.repository.LIBRARY_SQL).
_IS_LIBRARY = (
    "(SELECT kind = 'local' AND (is_default = 1 OR json_extract(options_json, '$.library') "
    "IN (1, 'true', 'yes')) FROM storage_backends WHERE id = {row}.backend_id)"
)


_LIBRARY_ADD = """
    INSERT INTO library_totals (song_id, files, bytes) VALUES (NEW.song_id, 1,
        COALESCE(NEW.file_size_bytes, 0))
    ON CONFLICT (song_id) DO UPDATE SET files = files + 1,
        bytes = bytes + COALESCE(NEW.file_size_bytes, 0);
    UPDATE library_summary SET
        songs = songs + (SELECT files = 1 FROM library_totals WHERE song_id = NEW.song_id),
        bytes = bytes + COALESCE(NEW.file_size_bytes, 0);
"""
_LIBRARY_REMOVE = """
    UPDATE library_totals SET files = files - 1,
        bytes = bytes - COALESCE(OLD.file_size_bytes, 0) WHERE song_id = OLD.song_id;
    UPDATE library_summary SET
        songs = songs - (SELECT files = 0 FROM library_totals WHERE song_id = OLD.song_id),
        bytes = bytes - COALESCE(OLD.file_size_bytes, 0);
    DELETE FROM library_totals WHERE song_id = OLD.song_id AND files <= 0;
"""


def _migrate_v2(conn: sqlite3.Connection) -> None:
    """Library totals kept by triggers, so the dashboard never scans local_files."""
    conn.execute(
        "CREATE INDEX IF NOT EXISTS idx_job_workers_status "
        "ON job_workers(status, job_run_id, worker_name)"
    )
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS library_totals (
            song_id INTEGER PRIMARY KEY,
            files INTEGER NOT NULL,
            bytes INTEGER NOT NULL
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS library_summary (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            songs INTEGER NOT NULL DEFAULT 0,
            bytes INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    conn.execute("INSERT OR IGNORE INTO library_summary (id) VALUES (1)")
    new_lib, old_lib = _IS_LIBRARY.format(row="NEW"), _IS_LIBRARY.format(row="OLD")
    conn.execute(
        f"CREATE TRIGGER IF NOT EXISTS library_file_added AFTER INSERT ON local_files "
        f"WHEN {new_lib} BEGIN {_LIBRARY_ADD} END"
    )
    conn.execute(
        f"CREATE TRIGGER IF NOT EXISTS library_file_removed AFTER DELETE ON local_files "
        f"WHEN {old_lib} BEGIN {_LIBRARY_REMOVE} END"
    )
    conn.execute(
        f"CREATE TRIGGER IF NOT EXISTS library_file_changed_old AFTER UPDATE ON local_files "
        f"WHEN {old_lib} BEGIN {_LIBRARY_REMOVE} END"
    )
    conn.execute(
        f"CREATE TRIGGER IF NOT EXISTS library_file_changed_new AFTER UPDATE ON local_files "
        f"WHEN {new_lib} BEGIN {_LIBRARY_ADD} END"
    )
    rebuild_library_totals(conn)


def rebuild_library_totals(conn: sqlite3.Connection) -> None:
    """Recount the library totals from local_files (after a migration or a backend change)."""
    conn.execute("DELETE FROM library_totals")
    conn.execute(
        """
        INSERT INTO library_totals (song_id, files, bytes)
        SELECT lf.song_id, COUNT(*), COALESCE(SUM(lf.file_size_bytes), 0)
        FROM local_files lf JOIN storage_backends b ON b.id = lf.backend_id
        WHERE b.kind = 'local' AND (b.is_default = 1
            OR json_extract(b.options_json, '$.library') IN (1, 'true', 'yes'))
        GROUP BY lf.song_id
        """
    )
    conn.execute(
        "UPDATE library_summary SET songs = (SELECT COUNT(*) FROM library_totals), "
        "bytes = (SELECT COALESCE(SUM(bytes), 0) FROM library_totals)"
    )


def _migrate_v3(conn: sqlite3.Connection) -> None:
    """``local_files.synced_at``: when the file's bytes were known to be on disk.

    Downloads are recorded as soon as they are verified and renamed; a background
    flusher fsyncs them moments later and stamps ``synced_at``. A row still NULL at the
    next start is checked against its size and SHA-256 before it is trusted. Files
    recorded before this version were fsynced before they were recorded.
    """
    columns = {row[1] for row in conn.execute("PRAGMA table_info(local_files)")}
    if "synced_at" not in columns:
        conn.execute("ALTER TABLE local_files ADD COLUMN synced_at TEXT")
    conn.execute("UPDATE local_files SET synced_at = created_at WHERE synced_at IS NULL")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS idx_local_files_unsynced ON local_files(id) "
        "WHERE synced_at IS NULL"
    )
    # The totals only depend on these columns: stamping synced_at must not recount them.
    new_lib, old_lib = _IS_LIBRARY.format(row="NEW"), _IS_LIBRARY.format(row="OLD")
    watched = "song_id, backend_id, file_size_bytes"
    for name, when, body in (
        ("library_file_changed_old", old_lib, _LIBRARY_REMOVE),
        ("library_file_changed_new", new_lib, _LIBRARY_ADD),
    ):
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        conn.execute(
            f"CREATE TRIGGER {name} AFTER UPDATE OF {watched} ON local_files "
            f"WHEN {when} BEGIN {body} END"
        )


def library_path_key(relative_path: str) -> str:
    """What two library paths must not share: the path without its extension, case-folded.

    Case-folded because the NAS share a library lives on is often case-insensitive
    (SMB, APFS); without the extension so a song can change format (a FLAC served
    as `.mp3`) under the name it reserved.
    """
    import unicodedata
    from pathlib import PurePosixPath

    text = unicodedata.normalize("NFC", relative_path)
    rel = PurePosixPath(text)
    return str(rel.with_suffix("") if rel.suffix else rel).casefold()


def _migrate_v4(conn: sqlite3.Connection) -> None:
    """Library paths reserved before a byte is written; one file may serve several songs.

    ``path_reservations`` holds the paths downloads are writing: a path is taken by a
    reservation or by a recorded file, and both are checked in one write transaction,
    so no two workers, processes or runners ever write one path. ``local_files`` is
    rebuilt with ``UNIQUE (backend_id, relative_path, song_id)``: two songs whose bytes
    are the same (``source_sha256``, the bytes as served, before tags) share one file.
    """
    conn.execute(
        """
        CREATE TABLE local_files_v4 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            song_id INTEGER NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
            backend_id INTEGER NOT NULL REFERENCES storage_backends(id) ON DELETE CASCADE,
            relative_path TEXT NOT NULL,
            file_size_bytes INTEGER,
            ext TEXT,
            quality_label TEXT,
            sha256 TEXT,
            created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
            synced_at TEXT,
            path_key TEXT,
            source_sha256 TEXT,
            UNIQUE (backend_id, relative_path, song_id)
        )
        """
    )
    columns = (
        "id, song_id, backend_id, relative_path, file_size_bytes, ext, quality_label, "
        "sha256, created_at, synced_at"
    )
    # A row of a song or backend deleted while foreign keys were off (the sqlite3 shell,
    # the musicdl console) names nothing: copying it would fail the whole upgrade.
    conn.execute(
        f"INSERT INTO local_files_v4 ({columns}, source_sha256) "
        f"SELECT {columns}, sha256 FROM local_files lf "
        "WHERE EXISTS (SELECT 1 FROM songs s WHERE s.id = lf.song_id) "
        "AND EXISTS (SELECT 1 FROM storage_backends b WHERE b.id = lf.backend_id)"
    )
    conn.execute("DROP TABLE local_files")  # its indexes and triggers go with it
    conn.execute("ALTER TABLE local_files_v4 RENAME TO local_files")
    conn.executemany(
        "UPDATE local_files SET path_key = ? WHERE id = ?",
        [
            (library_path_key(str(rel)), int(file_id))
            for file_id, rel in conn.execute("SELECT id, relative_path FROM local_files")
        ],
    )
    for statement in (
        "CREATE INDEX idx_local_files_song ON local_files(song_id, backend_id)",
        "CREATE INDEX idx_local_files_unsynced ON local_files(id) WHERE synced_at IS NULL",
        "CREATE INDEX idx_local_files_path_key ON local_files(backend_id, path_key)",
        "CREATE INDEX idx_local_files_source ON local_files(backend_id, source_sha256)",
    ):
        conn.execute(statement)
    new_lib, old_lib = _IS_LIBRARY.format(row="NEW"), _IS_LIBRARY.format(row="OLD")
    watched = "song_id, backend_id, file_size_bytes"
    for name, event, when, body in (
        ("library_file_added", "INSERT", new_lib, _LIBRARY_ADD),
        ("library_file_removed", "DELETE", old_lib, _LIBRARY_REMOVE),
        ("library_file_changed_old", f"UPDATE OF {watched}", old_lib, _LIBRARY_REMOVE),
        ("library_file_changed_new", f"UPDATE OF {watched}", new_lib, _LIBRARY_ADD),
    ):
        conn.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON local_files WHEN {when} BEGIN {body} END"
        )
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS path_reservations (
            backend_id INTEGER NOT NULL REFERENCES storage_backends(id) ON DELETE CASCADE,
            path_key TEXT NOT NULL,
            relative_path TEXT NOT NULL,
            song_id INTEGER NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
            PRIMARY KEY (backend_id, path_key)
        )
        """
    )
    conn.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS idx_path_reservations_song "
        "ON path_reservations(backend_id, song_id)"
    )
    rebuild_library_totals(conn)  # the rows left out no longer count


def _migrate_library(conn: sqlite3.Connection) -> None:
    """The library (issue 11): song fields for layout and tags, playlist files, move journal.

    ``playlist_files`` records every .m3u8 catalogsync wrote (with the SHA-256 of what
    it wrote), so files it did not write, or that someone edited since, are never
    touched. ``library_moves`` journals each rename of `library reorganize` and
    `library relocate --move` before it happens, so a rerun finishes or rolls it back.
    """
    _ensure_columns(
        conn,
        "songs",
        {
            "albumartist": "TEXT NOT NULL DEFAULT ''",
            "track_number": "INTEGER",
            "disc_number": "INTEGER",
            "year": "INTEGER",
            "cover_url": "TEXT",
            "lyrics": "TEXT",
        },
    )
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS playlist_files (
            playlist_id INTEGER PRIMARY KEY,
            backend_id INTEGER NOT NULL REFERENCES storage_backends(id) ON DELETE CASCADE,
            relative_path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            entries INTEGER NOT NULL DEFAULT 0,
            written_at TEXT NOT NULL,
            UNIQUE (backend_id, relative_path)
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS library_moves (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL DEFAULT 'reorganize',
            local_file_id INTEGER NOT NULL,
            song_id INTEGER NOT NULL,
            backend_id INTEGER NOT NULL,
            old_root TEXT NOT NULL,
            old_path TEXT NOT NULL,
            new_root TEXT NOT NULL,
            new_path TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """
    )


def _migrate_schedule_runs(conn: sqlite3.Connection) -> None:
    """``schedule_runs``: what each `[[schedules]]` entry last did, so catch-up survives downtime.

    ``last_slot_at`` is the epoch of the last cron slot handled (run, skipped or missed).
    """
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS schedule_runs (
            name TEXT PRIMARY KEY,
            cron TEXT NOT NULL,
            job_type TEXT NOT NULL,
            last_slot_at REAL,
            last_run_at REAL,
            last_result TEXT,
            last_job_id INTEGER,
            last_message TEXT,
            updated_at TEXT
        )
        """
    )


def _migrate_sync_policy(conn: sqlite3.Connection) -> None:
    """``playlists.sync_policy`` (add | mirror) and ``trashed_files``, the quarantine's records.

    A file moved to ``<root>/.catalogsync-trash/<date>/`` leaves ``local_files`` in the
    same transaction that records it here as ``moving``, before the rename; the rename
    then marks it ``trashed``. A runner that died in between finishes the move at start.
    """
    _ensure_columns(conn, "playlists", {"sync_policy": "TEXT NOT NULL DEFAULT 'add'"})
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS trashed_files (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            song_id INTEGER,
            backend_id INTEGER NOT NULL REFERENCES storage_backends(id) ON DELETE CASCADE,
            relative_path TEXT NOT NULL,
            trash_path TEXT NOT NULL,
            file_size_bytes INTEGER,
            ext TEXT,
            quality_label TEXT,
            sha256 TEXT,
            source_sha256 TEXT,
            file_created_at TEXT,
            state TEXT NOT NULL,
            trashed_at TEXT NOT NULL
        )
        """
    )
    # One row per file record: songs sharing one file (same content) move together.
    conn.execute(
        "CREATE INDEX IF NOT EXISTS idx_trashed_files_path ON trashed_files(backend_id, trash_path)"
    )


def _migrate_download_claims(conn: sqlite3.Connection) -> None:
    """``download_claims``: the job item downloading a song right now.

    Two download jobs at once (``download_lane_concurrency`` > 1) may both hold one song;
    its reserved path and `.part` belong to the song, so only the item holding the claim
    writes them. A claim whose item is no longer running is stale and taken over.
    """
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS download_claims (
            song_id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL,
            claimed_at TEXT NOT NULL
        )
        """
    )


def _migrate_part_validators(conn: sqlite3.Connection) -> None:
    """``path_reservations.validator``: the ETag or Last-Modified of the bytes a song's
    `.part` holds, sent as If-Range on the resume so a file changed on the server is
    fetched whole instead of spliced onto the old bytes."""
    _ensure_columns(conn, "path_reservations", {"validator": "TEXT"})


_DROPPED = frozenset(
    {
        ("job_runs", "download_sources"),
        ("job_items", "bytes_done"),
        ("job_workers", "last_progress_text"),
    }
)


def _migrate_drop_dead_columns(conn: sqlite3.Connection) -> None:
    """Columns nothing reads or writes any more (issue 16): ``job_runs.download_sources``,
    ``job_items.bytes_done`` and ``job_workers.last_progress_text``."""
    for table, column in sorted(_DROPPED):
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column in columns:
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")


def _migrate_flushed_at(conn: sqlite3.Connection) -> None:
    """``local_files.synced_at`` -> ``flushed_at``: it says when an fsync put the file's
    bytes on disk, and "synced" already names the stage that reads playlists."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(local_files)")}
    if "synced_at" in columns:
        conn.execute("ALTER TABLE local_files RENAME COLUMN synced_at TO flushed_at")
    conn.execute("DROP INDEX IF EXISTS idx_local_files_unsynced")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS idx_local_files_unflushed ON local_files(id) "
        "WHERE flushed_at IS NULL"
    )


def _migrate_lease_epoch(conn: sqlite3.Connection) -> None:
    """``runner_lease.heartbeat_at`` (REAL seconds) -> ``heartbeat_epoch``: every other
    ``*_at`` column of ours the engine shows is ISO-8601 text (``job_workers.heartbeat_at``
    among them); the lease's is a number the staleness check computes with."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runner_lease)")}
    if "heartbeat_at" in columns:
        conn.execute("ALTER TABLE runner_lease RENAME COLUMN heartbeat_at TO heartbeat_epoch")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _migrate_v1,
    _migrate_v2,
    _migrate_v3,
    _migrate_v4,
    _migrate_library,
    _migrate_schedule_runs,
    _migrate_sync_policy,
    _migrate_download_claims,
    _migrate_part_validators,
    _migrate_drop_dead_columns,
    _migrate_flushed_at,
    _migrate_lease_epoch,
]
SCHEMA_VERSION = len(MIGRATIONS)


def connect_database(db_path: str | Path) -> sqlite3.Connection:
    """Open a connection with the settings every catalogsync connection uses."""
    conn = sqlite3.connect(
        str(db_path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def initialize_database(
    db_path: str | Path, default_library_root: str | Path | None = None
) -> sqlite3.Connection:
    """Create or upgrade the database in place (idempotent) and return a connection.

    Args:
        db_path: the SQLite file; its folder is created when missing.
        default_library_root: when given and no default local backend exists yet, the
            `library` backend is created pointing here (an existing one is never
            re-pointed: that is `library relocate`).

    Raises:
        StorageError: the file is not a regular file, not SQLite, corrupt, of another
            schema, read-only or on a full disk; or the library folder cannot be made.
    """
    path = Path(db_path)
    check_database_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _os_storage_error(path.parent, "cannot create the database folder", exc) from None
    try:
        return _initialize(path, default_library_root)
    except sqlite3.Error as exc:
        raise database_error(path, exc) from exc


def _initialize(path: Path, default_library_root: str | Path | None) -> sqlite3.Connection:
    conn = connect_database(path)
    try:
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
    except BaseException:
        conn.close()
        raise
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        for index in range(version, SCHEMA_VERSION):
            MIGRATIONS[index](conn)
        if version > SCHEMA_VERSION:
            raise_newer(path, version)
        if version < SCHEMA_VERSION:  # writing it unchanged would dirty the header page
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if version == SCHEMA_VERSION:
            # A database stamped current by us can still lack columns if an
            # older tool recreated a table: the column pass is cheap and safe.
            for table, columns in _V1_COLUMNS.items():
                _ensure_columns(
                    conn, table, {c: t for c, t in columns.items() if (table, c) not in _DROPPED}
                )
        _require_tables(conn, path)
        if default_library_root is not None:
            root = Path(default_library_root)
            backend_id = ensure_default_local_backend(conn, root, repoint=False)
            target = conn.execute(
                "SELECT target FROM storage_backends WHERE id = ?", (backend_id,)
            ).fetchone()
            # A root that differs from the records is refused later (check_library_location);
            # no folder is made for it meanwhile.
            if target is None or Path(target[0]) == root.resolve():
                try:
                    root.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise _os_storage_error(root, "cannot create the library folder", exc) from None
        conn.execute("COMMIT")
    except BaseException:
        try:
            conn.execute("ROLLBACK")
        finally:
            conn.close()
        raise
    return conn


def _table_names(statements: Iterable[str]) -> list[str]:
    import re

    return [
        m.group(1)
        for m in (re.search(r"CREATE TABLE IF NOT EXISTS (\w+)", s) for s in statements)
        if m
    ]


REQUIRED_TABLES = tuple(_table_names(_V1_TABLES)) + ("library_totals", "library_summary")


def _require_tables(conn: sqlite3.Connection, path: Path) -> None:
    """A file stamped with our schema version but lacking a table is refused at open."""
    present = {
        str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    missing = [name for name in REQUIRED_TABLES if name not in present]
    if missing:
        from catalogsync.errors import StorageError

        raise StorageError(
            path,
            f"not a catalogsync database of this version: no table {missing[0]}",
            "point --db at the right file, or move this one away and run `catalogsync init`",
        )


def check_database_path(path: Path) -> None:
    """Refuse a database path that is a folder, FIFO, device or a broken symlink loop."""
    import stat

    from catalogsync.errors import StorageError

    try:
        info = path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _os_storage_error(path, "cannot open the database", exc) from None
    if not stat.S_ISREG(info.st_mode):
        from catalogsync.files import file_kind

        raise StorageError(
            path,
            f"the database path is {file_kind(info.st_mode)}, not a database file",
            "point --db at an SQLite file, or at a new path to create one",
        )


def _os_storage_error(path: Path, what: str, exc: OSError) -> Exception:
    from catalogsync.errors import StorageError

    reason = exc.strerror or str(exc)
    return StorageError(
        path, f"{what}: {reason}", "check that it exists and this user can write it"
    )


# sqlite_errorname (or its family) -> (what happened, what to do). {path} is filled in.
_SQLITE_FAULTS: dict[str, tuple[str, str]] = {
    "SQLITE_NOTADB": (
        "not an SQLite database (file is not a database)",
        "point --db at the right file, or move this one away and run `catalogsync init`",
    ),
    "SQLITE_CORRUPT": (
        "the database is corrupt (database disk image is malformed)",
        "stop catalogsync and restore a backup, or salvage it with: sqlite3 {path} .recover",
    ),
    "SQLITE_FULL": (
        "the disk holding the database is full",
        "free some space on it, then run the command again",
    ),
    "SQLITE_READONLY": (
        "the database is read-only",
        "make the file and its folder writable for this user",
    ),
    "SQLITE_CANTOPEN": (
        "cannot open the database",
        "check that the file and its folder exist and this user can write them",
    ),
    "SQLITE_IOERR": (
        "an I/O error reading or writing the database",
        "check the disk (dmesg), then run the command again",
    ),
    "SQLITE_PERM": (
        "permission denied on the database",
        "make the file and its folder writable for this user",
    ),
    "SQLITE_BUSY": (
        "the database stayed locked by another process",
        "try again; if it persists, look for a stuck catalogsync process",
    ),
}


def database_error(path: str | Path, exc: sqlite3.Error) -> Exception:
    """One ``StorageError`` line for any SQLite failure on the database at ``path``."""
    from catalogsync.errors import StorageError

    if isinstance(exc, StorageError):
        return exc
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    family = name.split("_")[0] + "_" + name.split("_")[1] if name.count("_") >= 1 else name
    text = str(exc)
    if "no such table" in text or "no such column" in text:
        return StorageError(
            path,
            f"not a catalogsync database of this version ({text})",
            "point --db at the right file, or move this one away and run `catalogsync init`",
        )
    if "disk image is malformed" in text:
        family = "SQLITE_CORRUPT"
    elif "file is not a database" in text:
        family = "SQLITE_NOTADB"
    elif "disk is full" in text:
        family = "SQLITE_FULL"
    elif "readonly" in text:
        family = "SQLITE_READONLY"
    if family in ("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_FULL"):
        # SQLite's code often hides the cause (a full disk reads as an I/O error, a
        # read-only folder as "cannot open"): ask the file system.
        folder = Path(path).parent
        if _disk_full(folder):
            family = "SQLITE_FULL"
        elif not os.access(folder, os.W_OK) or (
            Path(path).exists() and not os.access(path, os.W_OK)
        ):
            return StorageError(
                path,
                "the database (or its folder) is read-only",
                "make the file and its folder writable for this user, or use --db elsewhere",
            )
    what, hint = _SQLITE_FAULTS.get(
        family, (f"database error: {text}", "run again with -v for details")
    )
    return StorageError(path, what, hint.format(path=path))


def _disk_full(folder: Path) -> bool:
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 64 * 1024


def is_storage_fault(exc: BaseException) -> bool:
    """True for SQLite errors that mean the database itself is unusable (not a bug)."""
    if not isinstance(exc, sqlite3.Error):
        return False
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    text = str(exc)
    return name.startswith(
        (
            "SQLITE_NOTADB",
            "SQLITE_CORRUPT",
            "SQLITE_FULL",
            "SQLITE_READONLY",
            "SQLITE_IOERR",
            "SQLITE_CANTOPEN",
        )
    ) or any(
        marker in text
        for marker in ("malformed", "not a database", "disk is full", "readonly", "no such table")
    )


def raise_newer(path: Path, version: int) -> None:
    from catalogsync.errors import CatalogsyncError

    raise CatalogsyncError(
        f"{path}: database schema version {version} is newer than this catalogsync "
        f"understands ({SCHEMA_VERSION}); upgrade catalogsync"
    )


def ensure_default_local_backend(
    conn: sqlite3.Connection, root: Path, *, repoint: bool = True
) -> int:
    """Make the `library` local backend (the default) point at ``root``; return its id.

    With ``repoint=False`` an existing default backend is left as it is (opening a
    database never moves the library; ``library relocate`` does, with repoint=True).
    """
    target = str(root.resolve())
    row = conn.execute("SELECT id FROM storage_backends WHERE is_default = 1").fetchone()
    if row is not None and not repoint:
        return int(row[0])
    if row is not None:
        # Only when it changed: an open that writes nothing leaves no WAL frames, so a
        # read-only command (`status`) does not checkpoint (and fsync) when it closes.
        conn.execute(
            "UPDATE storage_backends SET target = ?, kind = 'local' "
            "WHERE id = ? AND (target IS NOT ? OR kind IS NOT 'local')",
            (target, row[0], target),
        )
        return int(row[0])
    cursor = conn.execute(
        """
        INSERT INTO storage_backends (name, kind, target, is_default)
        VALUES ('library', 'local', ?, 1)
        ON CONFLICT(name) DO UPDATE SET target = excluded.target, is_default = 1
        """,
        (target,),
    )
    found = conn.execute("SELECT id FROM storage_backends WHERE name = 'library'").fetchone()
    return int(found[0]) if found else int(cursor.lastrowid or 0)


class SqliteStore:
    """Per-thread connections to one database file; repositories build on it.

    ``share_with`` makes two repositories use the same per-thread connections, so a
    read model can read both inside one snapshot.
    """

    def __init__(self, db_path: str | Path, *, share_with: SqliteStore | None = None) -> None:
        self.db_path = Path(db_path)
        self._local: threading.local = (
            share_with._local if share_with is not None else threading.local()
        )

    def adopt(self, conn: sqlite3.Connection) -> None:
        """Use ``conn`` (from ``connect_database`` or ``initialize_database``, on this
        database, outside a transaction) as this thread's connection: the service opens
        the database once, not once to check it and again to read it."""
        if getattr(self._local, "conn", None) is not None:
            raise RuntimeError("this thread already has a connection")
        self._local.conn = conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect_database(self.db_path)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken with BEGIN IMMEDIATE, so it never deadlocks on upgrade.

        Inside an outer ``transaction()`` of this thread (on this store or one it shares
        connections with) the block joins it: it commits or rolls back with the outer one.

        Writers of one process are not queued on a Python lock first: measured with four
        download workers, a lock made the hand-over slower (2,188 against 3,217 items/s
        in ``bench/engine_overhead.py``), since SQLite's busy handler lets a colliding
        thread sleep briefly and the others carry on.
        """
        conn = self._conn()
        if getattr(self._local, "depth", 0):
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        for attempt in range(20):
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                # busy_timeout already waited; still locked means a very long writer
                # elsewhere. Keep trying for a bounded time rather than fail a user.
                name = getattr(exc, "sqlite_errorname", "")
                if not name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or attempt == 19:
                    raise
                time.sleep(0.05 * (attempt + 1))
        self._local.depth = 1
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
        finally:
            self._local.depth = 0

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction that the writes of this store (and of the stores sharing
        its connections, ``share_with``) made inside it join: all of them or none."""
        return self._connection()

    def shares_connections_with(self, other: SqliteStore) -> bool:
        """True when both stores use one connection per thread (``share_with``)."""
        return self._local is other._local

    def _fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return self._conn().execute(sql, tuple(params)).fetchall()

    def _fetchone(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._conn().execute(sql, tuple(params)).fetchone()
        return row

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Run several reads in one read transaction, so a read model is consistent."""
        conn = self._conn()
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")
