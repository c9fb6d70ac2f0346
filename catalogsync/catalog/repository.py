"""CatalogRepository: the SQL of playlists, songs, local files and storage backends."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalogsync import clock
from catalogsync.db import SqliteStore, library_path_key
from catalogsync.errors import CatalogsyncError, NotFoundError
from catalogsync.providers.base import Track
from catalogsync.redact import mask_secrets
from catalogsync.transfer.paths import UnsafePathError, partial_paths, safe_join

BACKEND_KINDS = ("local", "webdav", "rclone")
_MAX_NUMBERED = 10_000
# A library backend receives downloads: the default one, and any local backend added
# with `-o library=true` (an overflow disk). Everything else is an upload target.
LIBRARY_SQL = (
    "(b.kind = 'local' AND (b.is_default = 1 "
    "OR json_extract(b.options_json, '$.library') IN (1, 'true', 'yes')))"
)


def numbered_path(relative_path: str, n: int) -> str:
    """``n`` = 1: the path itself; otherwise ``Title (n).ext`` (the rule beets and
    macOS Finder use for a second file of one name)."""
    if n <= 1:
        return relative_path
    head, sep, name = relative_path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    return f"{head}{sep}{stem} ({n}){'.' + ext if ext else ''}"


@dataclass
class SyncResult:
    """What one playlist sync changed."""

    playlist_id: int
    total: int
    added: int
    removed: int


class CatalogRepository(SqliteStore):
    """Reads and writes of the catalog tables; safe to share between threads."""

    # -- playlists ---------------------------------------------------------

    def upsert_playlist(
        self,
        *,
        platform: str,
        remote_id: str,
        name: str,
        ref: str | None = None,
        pool_kind: str = "url",
        source_name: str | None = None,
        wanted: bool | None = None,
    ) -> tuple[int, bool]:
        """Insert or update a playlist by (platform, remote_id); returns (id, created)."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT id FROM playlists WHERE platform = ? AND remote_id = ?",
                (platform, remote_id),
            ).fetchone()
            now = clock.now_text()
            if row is not None:
                conn.execute(
                    """
                    UPDATE playlists SET name = ?, ref = COALESCE(?, ref), pool_kind = ?,
                        source_name = COALESCE(?, source_name),
                        wanted = COALESCE(?, wanted), updated_at = ?
                    WHERE id = ?
                    """,
                    (
                        name,
                        ref,
                        pool_kind,
                        source_name,
                        None if wanted is None else int(wanted),
                        now,
                        row["id"],
                    ),
                )
                return int(row["id"]), False
            cursor = conn.execute(
                """
                INSERT INTO playlists (platform, pool_kind, source_name, remote_id, ref, name,
                    wanted, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                (
                    platform,
                    pool_kind,
                    source_name,
                    remote_id,
                    ref,
                    name,
                    1 if wanted is None else int(wanted),
                    now,
                    now,
                ),
            )
            return int(cursor.lastrowid or 0), True

    def get_playlist(self, playlist_id: int) -> dict[str, Any] | None:
        row = self._fetchone("SELECT * FROM playlists WHERE id = ?", (int(playlist_id),))
        return dict(row) if row is not None else None

    def require_playlists(self, playlist_ids: Iterable[int]) -> list[dict[str, Any]]:
        """The playlists in the order asked; NotFoundError names any that do not exist."""
        ids = [int(i) for i in playlist_ids]
        found = {p["id"]: p for p in self.list_playlists(ids=ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFoundError(
                "no playlist with id "
                + ", ".join(str(i) for i in missing)
                + " (see `catalogsync playlists list`)"
            )
        return [found[i] for i in ids]

    def list_playlists(
        self,
        *,
        ids: list[int] | None = None,
        wanted_only: bool = False,
        source_names: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        where, params = ["1 = 1"], list[Any]()
        if ids is not None:
            if not ids:
                return []
            where.append(f"id IN ({','.join('?' * len(ids))})")
            params.extend(int(i) for i in ids)
        if wanted_only:
            where.append("wanted = 1")
        if source_names:
            where.append(f"source_name IN ({','.join('?' * len(source_names))})")
            params.extend(source_names)
        rows = self._fetchall(
            f"SELECT * FROM playlists WHERE {' AND '.join(where)} ORDER BY id", params
        )
        return [dict(row) for row in rows]

    def set_wanted(self, playlist_ids: Iterable[int], wanted: bool) -> int:
        ids = [p["id"] for p in self.require_playlists(playlist_ids)]
        with self._connection() as conn:
            conn.execute(
                f"UPDATE playlists SET wanted = ?, updated_at = ? "
                f"WHERE id IN ({','.join('?' * len(ids))})",
                (int(wanted), clock.now_text(), *ids),
            )
        return len(ids)

    def set_playlist_error(self, playlist_id: int, message: str | None) -> None:
        with self._connection() as conn:
            conn.execute(
                "UPDATE playlists SET last_error = ?, updated_at = ? WHERE id = ?",
                (mask_secrets(message) if message else message, clock.now_text(), int(playlist_id)),
            )

    def sync_playlist_tracks(
        self, playlist_id: int, platform: str, tracks: list[Track]
    ) -> SyncResult:
        """Store a playlist's tracks in order; tracks that left are marked removed, never deleted."""
        now = clock.now_text()
        with self._connection() as conn:
            before = {
                int(r["song_id"])
                for r in conn.execute(
                    "SELECT song_id FROM playlist_songs WHERE playlist_id = ? AND removed_at IS NULL",
                    (int(playlist_id),),
                )
            }
            seen: list[int] = []
            seen_set: set[int] = set()
            for track in tracks:
                song_id = self._upsert_song(conn, platform, track, now)
                if song_id in seen_set:
                    continue  # a playlist listing the same song twice keeps its first place
                seen_set.add(song_id)
                seen.append(song_id)
            for position, song_id in enumerate(seen, start=1):
                conn.execute(
                    """
                    INSERT INTO playlist_songs (playlist_id, song_id, position, added_at)
                    VALUES (?, ?, ?, ?)
                    ON CONFLICT (playlist_id, song_id)
                    DO UPDATE SET position = excluded.position, removed_at = NULL
                    """,
                    (int(playlist_id), song_id, position, now),
                )
            removed = before - seen_set
            if removed:
                conn.execute(
                    f"UPDATE playlist_songs SET removed_at = ? WHERE playlist_id = ? "
                    f"AND song_id IN ({','.join('?' * len(removed))})",
                    (now, int(playlist_id), *removed),
                )
            added = len(seen_set - before)
            conn.execute(
                """
                UPDATE playlists SET song_count = ?, last_synced_at = ?, last_error = NULL,
                    drift_added = ?, drift_removed = ?, updated_at = ?
                WHERE id = ?
                """,
                (len(seen), now, added, len(removed), now, int(playlist_id)),
            )
        return SyncResult(int(playlist_id), len(seen), added, len(removed))

    @staticmethod
    def _upsert_song(conn: sqlite3.Connection, platform: str, track: Track, now: str) -> int:
        row = conn.execute(
            """
            INSERT INTO songs (platform, remote_id, name, singers, album, duration_seconds, ext,
                file_size_bytes, sha256, download_url, metadata_json, created_at, updated_at,
                albumartist, track_number, disc_number, year, cover_url, lyrics)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (platform, remote_id) DO UPDATE SET
                name = excluded.name, singers = excluded.singers, album = excluded.album,
                albumartist = excluded.albumartist, track_number = excluded.track_number,
                disc_number = excluded.disc_number, year = excluded.year,
                cover_url = excluded.cover_url, lyrics = excluded.lyrics,
                duration_seconds = COALESCE(excluded.duration_seconds, duration_seconds),
                ext = CASE WHEN excluded.ext != '' THEN excluded.ext ELSE ext END,
                file_size_bytes = COALESCE(excluded.file_size_bytes, file_size_bytes),
                sha256 = COALESCE(excluded.sha256, sha256),
                download_url = COALESCE(excluded.download_url, download_url),
                metadata_json = excluded.metadata_json, updated_at = excluded.updated_at
            RETURNING id
            """,
            (
                platform,
                track.remote_id,
                track.name,
                track.singers,
                track.album,
                track.duration_seconds,
                track.ext,
                track.file_size_bytes,
                track.sha256,
                track.download_url,
                json.dumps(track.metadata, ensure_ascii=False, default=str),
                now,
                now,
                track.albumartist,
                track.track_number,
                track.disc_number,
                track.year,
                track.cover_url,
                track.lyrics,
            ),
        ).fetchone()
        return int(row[0])

    # -- songs and files ---------------------------------------------------

    def get_song(self, song_id: int) -> dict[str, Any] | None:
        """A song row plus ``playlist``: the name of its first playlist (wanted first, by
        id), which the `{playlist}` field of the library template renders."""
        row = self._fetchone(
            "SELECT s.*, (SELECT p.name FROM playlist_songs ps JOIN playlists p "
            "ON p.id = ps.playlist_id WHERE ps.song_id = s.id AND ps.removed_at IS NULL "
            "ORDER BY p.wanted DESC, p.id LIMIT 1) AS playlist FROM songs s WHERE s.id = ?",
            (int(song_id),),
        )
        return dict(row) if row is not None else None

    def songs_to_download(self, playlist_ids: list[int]) -> list[dict[str, Any]]:
        """Songs of these playlists (in playlist order, each once) without a local file."""
        if not playlist_ids:
            return []
        rows = self._fetchall(
            f"""
            SELECT s.*, ps.playlist_id AS playlist_id, MIN(ps.position) AS position
            FROM playlist_songs ps
            JOIN songs s ON s.id = ps.song_id
            WHERE ps.playlist_id IN ({",".join("?" * len(playlist_ids))})
              AND ps.removed_at IS NULL
              AND NOT EXISTS (
                SELECT 1 FROM local_files lf JOIN storage_backends b ON b.id = lf.backend_id
                WHERE lf.song_id = s.id AND {LIBRARY_SQL})
            GROUP BY s.id
            """,
            [int(i) for i in playlist_ids],
        )
        order = {pid: n for n, pid in enumerate(playlist_ids)}
        songs = [dict(r) for r in rows]
        songs.sort(key=lambda s: (order.get(s["playlist_id"], 0), s["position"], s["id"]))
        return songs

    def record_local_file(
        self,
        *,
        song_id: int,
        backend_id: int,
        relative_path: str,
        file_size_bytes: int | None,
        ext: str | None = None,
        sha256: str | None = None,
        quality_label: str | None = None,
        flushed: bool = True,
        source_sha256: str | None = None,
    ) -> int:
        """Record the song's file at this path; the song's path reservation becomes the record.

        ``flushed=False`` when its bytes may still be only in the page cache: such a row is
        stamped by ``mark_files_flushed`` once a flusher has fsynced it, and checked by
        ``verify_unflushed_files`` at the next start if that never happened. A path another
        song's reservation holds is never recorded for this song (that was the bug where
        same-title songs overwrote each other); a file shared through ``share_same_content``
        is the one case where two songs are recorded on one path.
        """
        with self._connection() as conn:
            return self._record_in(
                conn,
                song_id,
                backend_id,
                relative_path,
                file_size_bytes,
                ext,
                sha256,
                quality_label,
                flushed,
                source_sha256,
            )

    @staticmethod
    def _record_in(
        conn: sqlite3.Connection,
        song_id: int,
        backend_id: int,
        relative_path: str,
        file_size_bytes: int | None,
        ext: str | None,
        sha256: str | None,
        quality_label: str | None,
        flushed: bool,
        source_sha256: str | None,
    ) -> int:
        now = clock.now_text()
        key = library_path_key(relative_path)
        holder = conn.execute(
            "SELECT song_id FROM path_reservations WHERE backend_id = ? AND path_key = ?",
            (int(backend_id), key),
        ).fetchone()
        if holder is not None and int(holder[0]) != int(song_id):
            raise CatalogsyncError(
                f"{relative_path}: reserved by song {holder[0]}, not song {song_id}"
            )
        row = conn.execute(
            """
            INSERT INTO local_files (song_id, backend_id, relative_path, file_size_bytes,
                ext, quality_label, sha256, created_at, flushed_at, path_key, source_sha256)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (backend_id, relative_path, song_id) DO UPDATE SET
                file_size_bytes = excluded.file_size_bytes, ext = excluded.ext,
                sha256 = excluded.sha256, flushed_at = excluded.flushed_at,
                source_sha256 = excluded.source_sha256
            RETURNING id
            """,
            (
                int(song_id),
                int(backend_id),
                relative_path,
                file_size_bytes,
                ext,
                quality_label,
                sha256,
                now,
                now if flushed else None,
                key,
                source_sha256 or sha256,
            ),
        ).fetchone()
        conn.execute(
            "DELETE FROM path_reservations WHERE backend_id = ? AND song_id = ?",
            (int(backend_id), int(song_id)),
        )
        return int(row[0])

    def has_same_content(
        self, backend_id: int, source_sha256: str, song_id: int, exists: Callable[[str], bool]
    ) -> bool:
        """True when another song's file on this backend, on disk, holds these bytes (a read)."""
        return any(
            exists(str(row[0]))
            for row in self._fetchall(
                "SELECT relative_path FROM local_files WHERE backend_id = ? "
                "AND source_sha256 = ? AND song_id != ? ORDER BY id",
                (int(backend_id), source_sha256, int(song_id)),
            )
        )

    def share_same_content(
        self,
        *,
        song_id: int,
        backend_id: int,
        source_sha256: str,
        exists: Callable[[str], bool],
    ) -> tuple[int, str, int | None] | None:
        """Record the song on a library file that already holds the same bytes.

        Returns ``(file_id, relative_path, size)`` of the new record, or None when no file of
        this backend has that content (``exists`` says whether a recorded path is on
        disk). The song's reservation is released either way it is recorded.
        """
        # Most songs have no twin: a plain read decides that without a write transaction.
        if (
            self._fetchone(
                "SELECT 1 FROM local_files WHERE backend_id = ? AND source_sha256 = ? "
                "AND song_id != ? LIMIT 1",
                (int(backend_id), source_sha256, int(song_id)),
            )
            is None
        ):
            return None
        with self._connection() as conn:
            return self._share_in(conn, song_id, backend_id, source_sha256, exists)

    @staticmethod
    def _share_in(
        conn: sqlite3.Connection,
        song_id: int,
        backend_id: int,
        source_sha256: str,
        exists: Callable[[str], bool],
    ) -> tuple[int, str, int | None] | None:
        """Inside a write transaction: record the song on a file with the same bytes.

        ``(file_id, relative_path, size)`` of the new record, or None.
        """
        for file_row in conn.execute(
            "SELECT relative_path, file_size_bytes, ext, quality_label, sha256, flushed_at "
            "FROM local_files WHERE backend_id = ? AND source_sha256 = ? "
            "AND song_id != ? ORDER BY id",
            (int(backend_id), source_sha256, int(song_id)),
        ).fetchall():
            rel = str(file_row["relative_path"])
            if not exists(rel):
                continue
            row = conn.execute(
                """
                INSERT INTO local_files (song_id, backend_id, relative_path,
                    file_size_bytes, ext, quality_label, sha256, created_at, flushed_at,
                    path_key, source_sha256)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (backend_id, relative_path, song_id) DO UPDATE SET
                    file_size_bytes = excluded.file_size_bytes, sha256 = excluded.sha256
                RETURNING id
                """,
                (
                    int(song_id),
                    int(backend_id),
                    rel,
                    file_row["file_size_bytes"],
                    file_row["ext"],
                    file_row["quality_label"],
                    file_row["sha256"],
                    clock.now_text(),
                    file_row["flushed_at"],
                    library_path_key(rel),
                    source_sha256,
                ),
            ).fetchone()
            conn.execute(
                "DELETE FROM path_reservations WHERE backend_id = ? AND song_id = ?",
                (int(backend_id), int(song_id)),
            )
            return int(row[0]), rel, file_row["file_size_bytes"]
        return None

    def record_download(
        self,
        *,
        song_id: int,
        backend_id: int,
        relative_path: str,
        file_size_bytes: int,
        ext: str,
        sha256: str,
        source_sha256: str,
        exists: Callable[[str], bool],
    ) -> tuple[int, str, int, bool]:
        """Record a finished download, or share a file with its bytes recorded meanwhile.

        ``(file_id, relative_path, size, shared)``. The check for a twin and the record are one
        write transaction, so two workers finishing the same bytes at once store one file:
        the second sees the first's record (a row not yet flushed counts, since its
        rename follows its record at once) and is recorded on it instead.
        """
        with self._connection() as conn:
            fresh = {
                str(r[0])
                for r in conn.execute(
                    "SELECT relative_path FROM local_files WHERE backend_id = ? "
                    "AND source_sha256 = ? AND song_id != ? AND flushed_at IS NULL",
                    (int(backend_id), source_sha256, int(song_id)),
                )
            }
            shared = self._share_in(
                conn, song_id, backend_id, source_sha256, lambda rel: rel in fresh or exists(rel)
            )
            if shared is not None:
                file_id, rel, size = shared
                return file_id, rel, int(size or 0), True
            file_id = self._record_in(
                conn,
                song_id,
                backend_id,
                relative_path,
                file_size_bytes,
                ext,
                sha256,
                None,
                False,
                source_sha256,
            )
            return file_id, relative_path, file_size_bytes, False

    # -- path reservations ---------------------------------------------------

    def reserve_path(
        self,
        backend_id: int,
        song_id: int,
        wanted: str,
        *,
        exists_on_disk: Callable[[str], bool],
        moving: str | None = None,
    ) -> str:
        """Reserve a library path for the song before any byte of it is written.

        The song keeps the path it already holds (so a retry finds its `.part` again).
        Otherwise the first of ``wanted``, ``wanted (2)``, ``wanted (3)``... that no
        other song's reservation or recorded file uses (compared by
        ``library_path_key``) and that is free on disk is taken, in one write
        transaction: two workers, processes or runners can never get one path.
        ``moving`` (reorganize) is the recorded path of the file being moved: the records
        of the songs sharing that file do not make a name taken.
        """
        with self._connection() as conn:
            held = conn.execute(
                "SELECT relative_path FROM path_reservations WHERE backend_id = ? AND song_id = ?",
                (int(backend_id), int(song_id)),
            ).fetchone()
            if held is not None:
                return str(held[0])
            candidate = self._free_path(
                conn, backend_id, song_id, wanted, exists_on_disk, moving=moving
            )
            return self._hold(conn, backend_id, song_id, candidate)

    def move_reservation(
        self,
        backend_id: int,
        song_id: int,
        wanted: str,
        *,
        exists_on_disk: Callable[[str], bool],
    ) -> str:
        """Change the song's reserved path (its format turned out to be another one).

        Keeps the reserved name when only the extension changes and the new name is
        free on disk; otherwise reserves the next free name as ``reserve_path`` does.
        """
        key = library_path_key(wanted)
        with self._connection() as conn:
            held = conn.execute(
                "SELECT path_key FROM path_reservations WHERE backend_id = ? AND song_id = ?",
                (int(backend_id), int(song_id)),
            ).fetchone()
            if held is not None and str(held[0]) == key and not exists_on_disk(wanted):
                conn.execute(
                    "UPDATE path_reservations SET relative_path = ? "
                    "WHERE backend_id = ? AND song_id = ?",
                    (wanted, int(backend_id), int(song_id)),
                )
                return wanted
            conn.execute(
                "DELETE FROM path_reservations WHERE backend_id = ? AND song_id = ?",
                (int(backend_id), int(song_id)),
            )
            candidate = self._free_path(conn, backend_id, song_id, wanted, exists_on_disk)
            return self._hold(conn, backend_id, song_id, candidate)

    @staticmethod
    def _hold(conn: sqlite3.Connection, backend_id: int, song_id: int, candidate: str) -> str:
        """Insert the reservation of a name ``_free_path`` found free; returns the name."""
        conn.execute(
            "INSERT INTO path_reservations (backend_id, path_key, relative_path, song_id, "
            "created_at) VALUES (?, ?, ?, ?, ?)",
            (
                int(backend_id),
                library_path_key(candidate),
                candidate,
                int(song_id),
                clock.now_text(),
            ),
        )
        return candidate

    @staticmethod
    def _free_path(
        conn: sqlite3.Connection,
        backend_id: int,
        song_id: int,
        wanted: str,
        exists_on_disk: Callable[[str], bool],
        *,
        moving: str | None = None,
    ) -> str:
        for n in range(1, _MAX_NUMBERED + 1):
            candidate = numbered_path(wanted, n)
            key = library_path_key(candidate)
            if conn.execute(
                "SELECT 1 FROM path_reservations WHERE backend_id = ? AND path_key = ?",
                (int(backend_id), key),
            ).fetchone():
                continue
            if conn.execute(
                "SELECT 1 FROM local_files WHERE backend_id = ? AND path_key = ? AND song_id != ? "
                "AND relative_path IS NOT ?",
                (int(backend_id), key, int(song_id), moving),
            ).fetchone():
                continue
            if exists_on_disk(candidate):
                continue
            return candidate
        raise CatalogsyncError(f"{wanted}: no free name after {_MAX_NUMBERED} tries")

    def claim_download(self, song_id: int, item_id: int) -> bool:
        """Let this job item write the song's reserved path and `.part`, unless another
        running item holds them (two download jobs at once); True when it may.

        One statement: a claim whose item no longer runs (finished, handed back, or of a
        process that died) is simply taken over, so claims need no release to be safe.
        """
        with self._connection() as conn:
            cursor = conn.execute(
                """
                INSERT INTO download_claims (song_id, item_id, claimed_at) VALUES (?, ?, ?)
                ON CONFLICT (song_id) DO UPDATE SET item_id = excluded.item_id,
                    claimed_at = excluded.claimed_at
                WHERE download_claims.item_id = excluded.item_id OR NOT EXISTS (
                    SELECT 1 FROM job_items ji
                    WHERE ji.id = download_claims.item_id AND ji.status = 'running')
                """,
                (int(song_id), int(item_id), clock.now_text()),
            )
            return cursor.rowcount == 1

    def release_download_claims(self, job_stage_id: int) -> None:
        """Drop the claims of a stage's items that no longer run (when the stage stops)."""
        with self._connection() as conn:
            conn.execute(
                "DELETE FROM download_claims WHERE item_id IN (SELECT id FROM job_items "
                "WHERE job_stage_id = ? AND status != 'running')",
                (int(job_stage_id),),
            )

    def holds_download(self, song_id: int, item_id: int) -> bool:
        """True when this job item holds the song's download claim (a read)."""
        row = self._fetchone(
            "SELECT item_id FROM download_claims WHERE song_id = ?", (int(song_id),)
        )
        return row is not None and int(row[0]) == int(item_id)

    def set_part_validator(self, backend_id: int, song_id: int, validator: str) -> None:
        """Remember the ETag / Last-Modified of the bytes in the song's `.part`."""
        with self._connection() as conn:
            conn.execute(
                "UPDATE path_reservations SET validator = ? WHERE backend_id = ? AND song_id = ?",
                (validator, int(backend_id), int(song_id)),
            )

    def part_validator(self, backend_id: int, song_id: int) -> str | None:
        row = self._fetchone(
            "SELECT validator FROM path_reservations WHERE backend_id = ? AND song_id = ?",
            (int(backend_id), int(song_id)),
        )
        return str(row[0]) if row is not None and row[0] else None

    def release_path(self, backend_id: int, song_id: int) -> None:
        """Give up the song's reservation on this backend (its download will not finish)."""
        with self._connection() as conn:
            conn.execute(
                "DELETE FROM path_reservations WHERE backend_id = ? AND song_id = ?",
                (int(backend_id), int(song_id)),
            )

    def reservations(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._fetchall("SELECT * FROM path_reservations ORDER BY rowid")]

    def release_stale_reservations(self) -> int:
        """Drop reservations of songs no unfinished job item is downloading (at runner start),
        and the ``.part`` / ``.ready`` files they held: no try will resume them."""
        with self._connection() as conn:
            released = conn.execute(
                """
                DELETE FROM path_reservations WHERE song_id NOT IN (
                    SELECT ji.song_id FROM job_items ji
                    WHERE ji.song_id IS NOT NULL AND ji.item_type = 'song_download'
                      AND ji.status IN ('pending', 'running'))
                RETURNING backend_id, relative_path, song_id
                """
            ).fetchall()
            roots = {
                int(r["id"]): r["target"]
                for r in conn.execute(
                    "SELECT id, target FROM storage_backends WHERE kind = 'local'"
                ).fetchall()
            }
        for row in released:
            root = roots.get(int(row["backend_id"]))
            if root is None:
                continue
            try:
                dest = safe_join(Path(root), str(row["relative_path"]))
            except UnsafePathError:
                continue
            for leftover in partial_paths(dest, int(row["song_id"])):
                with contextlib.suppress(OSError):
                    if leftover.is_file() and not leftover.is_symlink():
                        leftover.unlink()
        return len(released)

    def mark_files_flushed(self, file_ids: list[int]) -> None:
        """Stamp ``flushed_at`` on files whose bytes an fsync has put on disk.

        Every record of the same path is stamped too: a song that shared the file while
        it was still unflushed copied its NULL, and a record left NULL for good is skipped
        by verify and taken by ``record_download`` for a fresh file even once it is gone.
        """
        if not file_ids:
            return
        now = clock.now_text()
        with self._connection() as conn:
            conn.executemany(
                "UPDATE local_files SET flushed_at = ? WHERE flushed_at IS NULL AND "
                "(backend_id, relative_path) = "
                "(SELECT backend_id, relative_path FROM local_files WHERE id = ?)",
                [(now, int(file_id)) for file_id in file_ids],
            )

    def unflushed_files(self) -> list[dict[str, Any]]:
        """Local files recorded but never confirmed on disk, with their backend's root."""
        rows = self._fetchall(
            "SELECT lf.*, b.target AS target, b.name AS backend_name FROM local_files lf "
            "JOIN storage_backends b ON b.id = lf.backend_id "
            "WHERE lf.flushed_at IS NULL AND b.kind = 'local' ORDER BY lf.id"
        )
        return [dict(r) for r in rows]

    def forget_local_file(self, file_id: int, *, with_sharers: bool = False) -> None:
        """Drop a file's record (its song counts as missing again).

        ``with_sharers`` also drops the records of other songs that share its path
        (the file never reached it, so it serves none of them).
        """
        with self._connection() as conn:
            if with_sharers:
                conn.execute(
                    "DELETE FROM local_files WHERE id != ? AND (backend_id, relative_path) = "
                    "(SELECT backend_id, relative_path FROM local_files WHERE id = ?)",
                    (int(file_id), int(file_id)),
                )
            conn.execute("DELETE FROM local_files WHERE id = ?", (int(file_id),))

    def library_invariant_violations(self, *, check_hash: bool = True) -> list[str]:
        """Where records and disk disagree: every local file row must name an existing
        file of the recorded size (and SHA-256, when stored and ``check_hash``).

        An empty list is the invariant the tests hold the download path to.
        """
        from pathlib import Path

        from catalogsync.transfer.durability import sha256_of

        problems: list[str] = []
        rows = self._fetchall(
            "SELECT lf.*, b.target AS target FROM local_files lf "
            "JOIN storage_backends b ON b.id = lf.backend_id WHERE b.kind = 'local' "
            "ORDER BY lf.id"
        )
        for row in rows:
            path = Path(row["target"]) / row["relative_path"]
            where = f"file {row['id']} (song {row['song_id']}) {row['relative_path']}"
            if not path.is_file():
                problems.append(f"{where}: missing")
                continue
            size = path.stat().st_size
            if row["file_size_bytes"] is not None and size != int(row["file_size_bytes"]):
                problems.append(f"{where}: {size} bytes, recorded {row['file_size_bytes']}")
                continue
            if check_hash and row["sha256"] and sha256_of(path) != row["sha256"]:
                problems.append(f"{where}: SHA-256 differs from the record")
        return problems

    def files_for_song(self, song_id: int) -> list[dict[str, Any]]:
        rows = self._fetchall(
            f"SELECT lf.*, b.name AS backend_name, b.kind AS backend_kind, b.target AS target, "
            f"{LIBRARY_SQL} AS in_library "
            "FROM local_files lf JOIN storage_backends b ON b.id = lf.backend_id "
            "WHERE lf.song_id = ? ORDER BY lf.id",
            (int(song_id),),
        )
        return [dict(r) for r in rows]

    def files_to_upload(
        self, playlist_ids: list[int], target_backend_id: int
    ) -> list[dict[str, Any]]:
        """Library files of these playlists' songs with no recorded copy on the target yet."""
        if not playlist_ids:
            return []
        rows = self._fetchall(
            f"""
            SELECT lf.*, s.name AS song_name, s.singers AS singers, b.target AS source_root
            FROM local_files lf
            JOIN storage_backends b ON b.id = lf.backend_id AND {LIBRARY_SQL}
            JOIN songs s ON s.id = lf.song_id
            WHERE lf.song_id IN (
                SELECT song_id FROM playlist_songs
                WHERE playlist_id IN ({",".join("?" * len(playlist_ids))}) AND removed_at IS NULL)
              AND NOT EXISTS (
                SELECT 1 FROM local_files t WHERE t.song_id = lf.song_id AND t.backend_id = ?)
            ORDER BY lf.id
            """,
            [*(int(i) for i in playlist_ids), int(target_backend_id)],
        )
        return [dict(r) for r in rows]

    def list_library_files(self, backend_id: int) -> list[dict[str, Any]]:
        rows = self._fetchall(
            "SELECT lf.*, s.name AS song_name, s.singers AS singers FROM local_files lf "
            "JOIN songs s ON s.id = lf.song_id WHERE lf.backend_id = ? ORDER BY lf.id",
            (int(backend_id),),
        )
        return [dict(r) for r in rows]

    # -- the library: layout rows, playlist files, move journal (issue 11) ---

    def library_file_rows(self, backend_id: int) -> list[dict[str, Any]]:
        """Every file recorded on a backend with its song's layout fields (one query)."""
        rows = self._fetchall(
            "SELECT lf.id AS file_id, lf.relative_path, lf.file_size_bytes AS file_size, "
            "lf.sha256 AS file_sha256, lf.ext AS file_ext, s.*, "
            "(SELECT p.name FROM playlist_songs ps JOIN playlists p ON p.id = ps.playlist_id "
            " WHERE ps.song_id = s.id AND ps.removed_at IS NULL "
            " ORDER BY p.wanted DESC, p.id LIMIT 1) AS playlist "
            "FROM local_files lf JOIN songs s ON s.id = lf.song_id "
            "WHERE lf.backend_id = ? ORDER BY lf.id",
            (int(backend_id),),
        )
        return [dict(r) for r in rows]

    def playlist_entries(self, playlist_id: int) -> list[dict[str, Any]]:
        """A playlist's songs in order that have a library file: the file and its root."""
        rows = self._fetchall(
            f"""
            SELECT s.id AS song_id, s.name, s.singers, s.duration_seconds, ps.position,
                   lf.relative_path, b.target
            FROM playlist_songs ps
            JOIN songs s ON s.id = ps.song_id
            JOIN local_files lf ON lf.id = (
                SELECT lf2.id FROM local_files lf2 JOIN storage_backends b2 ON b2.id = lf2.backend_id
                WHERE lf2.song_id = s.id AND {LIBRARY_SQL.replace("b.", "b2.")}
                ORDER BY b2.is_default DESC, lf2.id LIMIT 1)
            JOIN storage_backends b ON b.id = lf.backend_id
            WHERE ps.playlist_id = ? AND ps.removed_at IS NULL
            ORDER BY ps.position, s.id
            """,
            (int(playlist_id),),
        )
        return [dict(r) for r in rows]

    def playlist_file_records(self) -> list[dict[str, Any]]:
        return [
            dict(r) for r in self._fetchall("SELECT * FROM playlist_files ORDER BY playlist_id")
        ]

    def record_playlist_file(
        self, playlist_id: int, backend_id: int, relative_path: str, sha256: str, entries: int
    ) -> None:
        with self._connection() as conn:
            conn.execute(
                "INSERT INTO playlist_files (playlist_id, backend_id, relative_path, sha256, "
                "entries, written_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (playlist_id) DO UPDATE "
                "SET backend_id = excluded.backend_id, relative_path = excluded.relative_path, "
                "sha256 = excluded.sha256, entries = excluded.entries, "
                "written_at = excluded.written_at",
                (
                    int(playlist_id),
                    int(backend_id),
                    relative_path,
                    sha256,
                    int(entries),
                    clock.now_text(),
                ),
            )

    def forget_playlist_file(self, playlist_id: int) -> None:
        with self._connection() as conn:
            conn.execute("DELETE FROM playlist_files WHERE playlist_id = ?", (int(playlist_id),))

    def journal_move(
        self,
        *,
        kind: str,
        file_id: int,
        song_id: int,
        backend_id: int,
        old_root: str,
        old_path: str,
        new_root: str,
        new_path: str,
    ) -> int:
        """Write down a rename before it happens, so a rerun can finish or undo it."""
        with self._connection() as conn:
            return int(
                conn.execute(
                    "INSERT INTO library_moves (kind, local_file_id, song_id, backend_id, old_root, "
                    "old_path, new_root, new_path, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        kind,
                        int(file_id),
                        int(song_id),
                        int(backend_id),
                        old_root,
                        old_path,
                        new_root,
                        new_path,
                        clock.now_text(),
                    ),
                ).lastrowid
                or 0
            )

    def journaled_moves(self, kind: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM library_moves", []
        if kind is not None:
            sql, params = sql + " WHERE kind = ?", [kind]
        return [dict(r) for r in self._fetchall(sql + " ORDER BY id", params)]

    def finish_move(self, move_id: int, *, new_path: str | None) -> None:
        """The rename is done (``new_path``: point the records there) or undone (None).

        Every song recorded on the old path moves with it (one file may serve several).
        """
        from catalogsync.db import library_path_key

        with self._connection() as conn:
            row = conn.execute(
                "SELECT backend_id, old_path FROM library_moves WHERE id = ?", (int(move_id),)
            ).fetchone()
            if row is not None and new_path is not None:
                conn.execute(
                    "UPDATE local_files SET relative_path = ?, path_key = ? "
                    "WHERE backend_id = ? AND relative_path = ?",
                    (new_path, library_path_key(new_path), int(row[0]), str(row[1])),
                )
            conn.execute("DELETE FROM library_moves WHERE id = ?", (int(move_id),))

    def switch_backend_root(
        self, backend_id: int, old_root: str, new_root: str, paths: list[str]
    ) -> None:
        """Point a backend at its new root and journal the old copies still to delete,
        in one transaction (`library relocate --move`)."""
        now = clock.now_text()
        with self._connection() as conn:
            conn.executemany(
                "INSERT INTO library_moves (kind, local_file_id, song_id, backend_id, old_root, "
                "old_path, new_root, new_path, created_at) "
                "VALUES ('relocate', 0, 0, ?, ?, ?, ?, ?, ?)",
                [(int(backend_id), old_root, rel, new_root, rel, now) for rel in paths],
            )
            conn.execute(
                "UPDATE storage_backends SET target = ? WHERE id = ?", (new_root, int(backend_id))
            )

    def path_is_taken(
        self, backend_id: int, relative_path: str, *, by_other_than: int, moving: str | None = None
    ) -> bool:
        """Whether a reservation or another song's record uses this path (case/ext-blind);
        records at ``moving`` (the file being moved, shared by several songs) do not count."""
        from catalogsync.db import library_path_key

        key = library_path_key(relative_path)
        return (
            self._fetchone(
                "SELECT 1 FROM path_reservations WHERE backend_id = ? AND path_key = ? "
                "UNION ALL SELECT 1 FROM local_files WHERE backend_id = ? AND path_key = ? "
                "AND song_id != ? AND relative_path IS NOT ? LIMIT 1",
                (int(backend_id), key, int(backend_id), key, int(by_other_than), moving),
            )
            is not None
        )

    def set_backend_target(self, backend_id: int, target: str) -> None:
        with self._connection() as conn:
            conn.execute(
                "UPDATE storage_backends SET target = ? WHERE id = ?", (target, int(backend_id))
            )

    def running_job_count(self) -> int:
        """Jobs running now (reorganize and relocate wait until none is)."""
        row = self._fetchone(
            "SELECT COUNT(*) FROM job_runs WHERE status IN ('running', 'pause_requested')"
        )
        return int(row[0]) if row is not None else 0

    # -- storage backends --------------------------------------------------

    def add_backend(
        self, name: str, kind: str, target: str, options: dict[str, Any] | None = None
    ) -> int:
        if kind not in BACKEND_KINDS:
            raise CatalogsyncError(
                f"unknown backend kind {kind!r}; choose one of: {', '.join(BACKEND_KINDS)}"
            )
        options = backend_options_without_secrets(target, options or {})
        with self._connection() as conn:
            if conn.execute("SELECT 1 FROM storage_backends WHERE name = ?", (name,)).fetchone():
                raise CatalogsyncError(f"a backend named {name!r} already exists")
            return int(
                conn.execute(
                    "INSERT INTO storage_backends (name, kind, target, options_json, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, kind, target, json.dumps(options or {}), clock.now_text()),
                ).lastrowid
                or 0
            )

    def list_backends(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._fetchall("SELECT * FROM storage_backends ORDER BY id")]

    def get_backend(self, name: str) -> dict[str, Any]:
        row = self._fetchone("SELECT * FROM storage_backends WHERE name = ?", (name,))
        if row is None:
            raise NotFoundError(
                f"no storage backend named {name!r} (see `catalogsync backends list`)"
            )
        return dict(row)

    def default_backend(self) -> dict[str, Any]:
        row = self._fetchone("SELECT * FROM storage_backends WHERE is_default = 1")
        if row is None:
            raise NotFoundError("no default library backend; run `catalogsync init`")
        return dict(row)

    def local_backends(self) -> list[dict[str, Any]]:
        """Local backends a download may land on, the default first."""
        rows = self._fetchall(
            f"SELECT * FROM storage_backends b WHERE {LIBRARY_SQL} ORDER BY is_default DESC, id"
        )
        return [dict(r) for r in rows]

    # -- read-model queries (assembled in ops/views.py) -------------------

    def playlist_picker_rows(self) -> list[dict[str, Any]]:
        """Every playlist with the number of its songs being downloaded right now."""
        rows = self._fetchall(
            f"""
            SELECT p.*, COALESCE(r.running, 0) AS running_download_song_count,
                   COALESCE(d.downloaded, 0) AS downloaded_song_count
            FROM playlists p
            LEFT JOIN (
                SELECT ps.playlist_id, COUNT(DISTINCT i.song_id) AS running
                FROM job_items i JOIN playlist_songs ps ON ps.song_id = i.song_id
                WHERE i.status = 'running' AND i.item_type = 'song_download'
                GROUP BY ps.playlist_id
            ) r ON r.playlist_id = p.id
            LEFT JOIN (
                SELECT ps.playlist_id, COUNT(DISTINCT ps.song_id) AS downloaded
                FROM playlist_songs ps
                JOIN local_files lf ON lf.song_id = ps.song_id
                JOIN storage_backends b ON b.id = lf.backend_id AND {LIBRARY_SQL}
                WHERE ps.removed_at IS NULL
                GROUP BY ps.playlist_id
            ) d ON d.playlist_id = p.id
            ORDER BY p.id
            """
        )
        return [dict(r) for r in rows]

    def playlist_progress(self, playlist_ids: list[int]) -> list[dict[str, Any]]:
        """Per playlist: songs in it now and how many have a file in the library."""
        if not playlist_ids:
            return []
        marks = ",".join("?" * len(playlist_ids))
        rows = self._fetchall(
            f"""
            SELECT p.id AS playlist_id, p.name AS playlist_name,
                   COUNT(ps.song_id) AS total_songs,
                   COUNT(DISTINCT lf.song_id) AS downloaded_songs
            FROM playlists p
            LEFT JOIN playlist_songs ps ON ps.playlist_id = p.id AND ps.removed_at IS NULL
            LEFT JOIN local_files lf ON lf.song_id = ps.song_id AND lf.backend_id IN (
                SELECT b.id FROM storage_backends b WHERE {LIBRARY_SQL})
            WHERE p.id IN ({marks})
            GROUP BY p.id
            """,
            [int(i) for i in playlist_ids],
        )
        by_id = {int(r["playlist_id"]): dict(r) for r in rows}
        return [by_id[int(i)] for i in playlist_ids if int(i) in by_id]

    def library_stats(self) -> dict[str, Any]:
        """Songs in the catalog, songs with a library file and their bytes (kept by triggers)."""
        row = self._fetchone(
            "SELECT (SELECT COUNT(*) FROM songs) AS total_songs, songs AS downloaded_songs, "
            "bytes AS library_bytes FROM library_summary WHERE id = 1"
        )
        return dict(row) if row is not None else {}

    def playlist_source_stats(self) -> list[dict[str, Any]]:
        rows = self._fetchall(
            """
            SELECT pool_kind, platform, COUNT(*) AS playlists, SUM(wanted) AS wanted,
                   SUM(song_count) AS songs, SUM(song_count = 0) AS never_synced
            FROM playlists GROUP BY pool_kind, platform ORDER BY pool_kind, platform
            """
        )
        return [dict(r) for r in rows]

    # -- sync policies, quarantine and plans (issue 14) --------------------------

    def set_sync_policy(self, playlist_id: int, policy: str) -> None:
        """``add`` (files stay) or ``mirror`` (files of tracks removed upstream are quarantined)."""
        if policy not in ("add", "mirror"):
            raise CatalogsyncError(f"policy must be add or mirror, got {policy!r}")
        self.require_playlists([playlist_id])
        with self._connection() as conn:
            conn.execute(
                "UPDATE playlists SET sync_policy = ?, updated_at = ? WHERE id = ?",
                (policy, clock.now_text(), int(playlist_id)),
            )

    def quarantine_candidates(self) -> list[dict[str, Any]]:
        """Library file records of songs removed upstream from a wanted mirror playlist whose
        file no wanted playlist needs any more, for no song sharing it either (only files
        catalogsync recorded: ``local_files`` rows)."""
        rows = self._fetchall(
            f"""
            SELECT lf.*, b.target AS target FROM local_files lf
            JOIN storage_backends b ON b.id = lf.backend_id AND {LIBRARY_SQL}
            WHERE lf.song_id IN (
                SELECT ps.song_id FROM playlist_songs ps JOIN playlists p ON p.id = ps.playlist_id
                WHERE p.sync_policy = 'mirror' AND p.wanted = 1 AND ps.removed_at IS NOT NULL)
              AND NOT EXISTS (
                SELECT 1 FROM local_files o
                JOIN playlist_songs ps ON ps.song_id = o.song_id
                JOIN playlists p ON p.id = ps.playlist_id
                WHERE o.backend_id = lf.backend_id AND o.relative_path = lf.relative_path
                  AND ps.removed_at IS NULL AND p.wanted = 1)
            ORDER BY lf.backend_id, lf.relative_path, lf.id
            """
        )
        return [dict(r) for r in rows]

    def begin_trash(self, file_rows: list[dict[str, Any]], trash_path: str) -> list[int]:
        """Before the rename: every record of the file (all the songs sharing it) leaves
        ``local_files`` and is recorded as ``moving``, in one transaction."""
        now = clock.now_text()
        ids = []
        with self._connection() as conn:
            sharers = conn.execute(
                "SELECT COUNT(*) FROM local_files WHERE backend_id = ? AND relative_path = ?",
                (file_rows[0]["backend_id"], file_rows[0]["relative_path"]),
            ).fetchone()[0]
            if int(sharers) != len(file_rows):
                raise CatalogsyncError(
                    f"{file_rows[0]['relative_path']}: another song's record shares this file"
                )
            for row in file_rows:
                ids.append(
                    int(
                        conn.execute(
                            """
                    INSERT INTO trashed_files (song_id, backend_id, relative_path, trash_path,
                        file_size_bytes, ext, quality_label, sha256, source_sha256,
                        file_created_at, state, trashed_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'moving', ?)
                    """,
                            (
                                row["song_id"],
                                row["backend_id"],
                                row["relative_path"],
                                trash_path,
                                row.get("file_size_bytes"),
                                row.get("ext"),
                                row.get("quality_label"),
                                row.get("sha256"),
                                row.get("source_sha256"),
                                row.get("created_at"),
                                now,
                            ),
                        ).lastrowid
                        or 0
                    )
                )
                conn.execute("DELETE FROM local_files WHERE id = ?", (int(row["id"]),))
        return ids

    def set_trash_state(self, trash_ids: list[int], state: str) -> None:
        with self._connection() as conn:
            conn.executemany(
                "UPDATE trashed_files SET state = ? WHERE id = ?",
                [(state, int(i)) for i in trash_ids],
            )

    def undo_trash(self, trash_ids: list[int]) -> None:
        """The rename failed: the file is where it was, and so are its records."""
        now = clock.now_text()
        with self._connection() as conn:
            for trash_id in trash_ids:
                row = conn.execute(
                    "SELECT * FROM trashed_files WHERE id = ?", (int(trash_id),)
                ).fetchone()
                if row is None:
                    continue
                conn.execute(
                    """
                    INSERT OR IGNORE INTO local_files (song_id, backend_id, relative_path,
                        file_size_bytes, ext, quality_label, sha256, created_at, flushed_at,
                        path_key, source_sha256)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                    (
                        row["song_id"],
                        row["backend_id"],
                        row["relative_path"],
                        row["file_size_bytes"],
                        row["ext"],
                        row["quality_label"],
                        row["sha256"],
                        row["file_created_at"] or now,
                        now,
                        library_path_key(row["relative_path"]),
                        row["source_sha256"] or row["sha256"],
                    ),
                )
                conn.execute("DELETE FROM trashed_files WHERE id = ?", (int(trash_id),))

    def trashed_files(
        self, *, states: tuple[str, ...] = ("moving", "trashed")
    ) -> list[dict[str, Any]]:
        rows = self._fetchall(
            f"SELECT t.*, b.target AS target FROM trashed_files t "
            f"JOIN storage_backends b ON b.id = t.backend_id "
            f"WHERE t.state IN ({','.join('?' * len(states))}) ORDER BY t.id",
            states,
        )
        return [dict(r) for r in rows]

    def forget_trashed(self, trash_ids: list[int]) -> None:
        with self._connection() as conn:
            conn.executemany(
                "DELETE FROM trashed_files WHERE id = ?", [(int(i),) for i in trash_ids]
            )

    def plan_playlist_songs(self, playlist_id: int) -> list[dict[str, Any]]:
        """A playlist's current tracks with their song and whether the library has a file."""
        rows = self._fetchall(
            f"""
            SELECT s.id, s.platform, s.remote_id, s.name, s.singers, s.file_size_bytes,
                   EXISTS (SELECT 1 FROM local_files lf JOIN storage_backends b
                           ON b.id = lf.backend_id AND {LIBRARY_SQL}
                           WHERE lf.song_id = s.id) AS has_file
            FROM playlist_songs ps JOIN songs s ON s.id = ps.song_id
            WHERE ps.playlist_id = ? AND ps.removed_at IS NULL ORDER BY ps.position
            """,
            (int(playlist_id),),
        )
        return [dict(r) for r in rows]

    def plan_known_songs(self, platform: str, remote_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Songs already known by (platform, remote id), with whether a library file exists."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(remote_ids), 500):
            chunk = remote_ids[start : start + 500]
            rows = self._fetchall(
                f"""
                SELECT s.id, s.remote_id, s.file_size_bytes,
                       EXISTS (SELECT 1 FROM local_files lf JOIN storage_backends b
                               ON b.id = lf.backend_id AND {LIBRARY_SQL}
                               WHERE lf.song_id = s.id) AS has_file
                FROM songs s WHERE s.platform = ? AND s.remote_id IN ({",".join("?" * len(chunk))})
                """,
                (platform, *chunk),
            )
            found.update({str(r["remote_id"]): dict(r) for r in rows})
        return found

    def plan_library_files(
        self, song_ids: list[int], other_than_playlist: int
    ) -> list[dict[str, Any]]:
        """Library files of these songs that no other wanted playlist lists (would be moved)."""
        if not song_ids:
            return []
        rows = self._fetchall(
            f"""
            SELECT lf.song_id, lf.relative_path, lf.file_size_bytes FROM local_files lf
            JOIN storage_backends b ON b.id = lf.backend_id AND {LIBRARY_SQL}
            WHERE lf.song_id IN ({",".join("?" * len(song_ids))})
              AND NOT EXISTS (
                SELECT 1 FROM playlist_songs ps JOIN playlists p ON p.id = ps.playlist_id
                WHERE ps.song_id = lf.song_id AND ps.removed_at IS NULL AND p.wanted = 1
                  AND p.id != ?)
            ORDER BY lf.relative_path
            """,
            (*song_ids, int(other_than_playlist)),
        )
        return [dict(r) for r in rows]


def backend_options_without_secrets(target: str, options: dict[str, Any]) -> dict[str, Any]:
    """Refuse secrets in a backend's target or options; keys come back lower-cased.

    Secrets belong in the environment of the process that runs the jobs: the target
    and options are stored in the database and shown by `backends list`.
    """
    from catalogsync.redact import is_secret_name, mask_url, url_has_credentials

    if url_has_credentials(target):
        raise CatalogsyncError(
            f"--target {mask_url(target)}: a password in the URL would be stored in the "
            "database; give the user with -o username=NAME and the password with "
            "-o password_env=VARIABLE (the name of an environment variable you export)"
        )
    cleaned: dict[str, Any] = {}
    for raw_key, value in options.items():
        key = str(raw_key).strip().lower()
        if is_secret_name(key):
            hint = "password_env" if key in ("pass", "passwd", "pwd", "password") else f"{key}_env"
            raise CatalogsyncError(
                f"--option {key}=***: secrets never go on the command line or into the "
                f"database (shell history, `ps` and `backends list` would show them); "
                f"use -o {hint}=VARIABLE and export VARIABLE"
            )
        cleaned[key] = value
    return cleaned
