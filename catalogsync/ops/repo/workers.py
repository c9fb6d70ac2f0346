"""Workers: one row per named worker and job, its live state and speed samples."""

from __future__ import annotations

import sqlite3
from typing import Any

from catalogsync import clock
from catalogsync.db import SqliteStore

from ._sql import SPEED_SAMPLES_KEPT, WORKER_IDLE_SET, WORKER_STATE_FIELDS


class WorkersRepository(SqliteStore):
    _worker_ids: dict[tuple[str, int], int]  # (name, job id) -> row id, set in OpsRepository

    def _ensure_worker_row(
        self, conn: sqlite3.Connection, worker_name: str, job_id: int | None, stage_id: int | None
    ) -> int:
        row = conn.execute(
            "SELECT id FROM job_workers WHERE worker_name = ? AND job_run_id IS ? "
            "ORDER BY id DESC LIMIT 1",
            (worker_name, job_id),
        ).fetchone()
        if row is not None:
            conn.execute(
                "UPDATE job_workers SET job_stage_id = COALESCE(?, job_stage_id) WHERE id = ?",
                (stage_id, int(row["id"])),
            )
            return int(row["id"])
        return int(
            conn.execute(
                "INSERT INTO job_workers (worker_name, job_run_id, job_stage_id, status, "
                "heartbeat_at) VALUES (?, ?, ?, 'idle', ?)",
                (worker_name, job_id, stage_id, clock.now_text()),
            ).lastrowid
            or 0
        )

    def _worker_id(self, conn: sqlite3.Connection, worker_name: str, job_id: int) -> int:
        """The worker's row for a job, remembered: rows are never deleted."""
        key = (worker_name, int(job_id))
        worker_id = self._worker_ids.get(key)
        if worker_id is None:
            worker_id = self._worker_ids[key] = self._ensure_worker_row(
                conn, worker_name, int(job_id), None
            )
        return worker_id

    def _worker_done(
        self, conn: sqlite3.Connection, worker_id: int | None, *, failed: bool
    ) -> None:
        if worker_id is None:
            return
        counter = (
            "error_count = error_count + 1" if failed else "processed_count = processed_count + 1"
        )
        conn.execute(
            f"UPDATE job_workers SET {WORKER_IDLE_SET}, {counter}, heartbeat_at = ? WHERE id = ?",
            (clock.now_text(), int(worker_id)),
        )

    # -- workers -----------------------------------------------------------

    def update_worker_state(
        self, worker_name: str, *, job_id: int | None = None, **state: Any
    ) -> int:
        """Write a worker's live state; a ``speed_bytes_per_sec`` also appends a sparkline sample.

        The worker row is the newest one with this name (for ``job_id`` when given).
        Returns the worker row id.
        """
        name = str(worker_name).strip() or "worker"
        now_text = clock.now_text()
        with self._connection() as conn:
            if job_id is not None:
                worker_id = self._ensure_worker_row(conn, name, int(job_id), None)
            else:
                row = conn.execute(
                    "SELECT id FROM job_workers WHERE worker_name = ? ORDER BY id DESC LIMIT 1",
                    (name,),
                ).fetchone()
                if row is None:
                    worker_id = int(
                        conn.execute(
                            "INSERT INTO job_workers (worker_name, status, heartbeat_at) "
                            "VALUES (?, ?, ?)",
                            (name, str(state.get("status") or "running"), now_text),
                        ).lastrowid
                        or 0
                    )
                else:
                    worker_id = int(row["id"])
            updates = ["heartbeat_at = ?"]
            params: list[Any] = [now_text]
            for field_name in WORKER_STATE_FIELDS:
                if field_name in state:
                    updates.append(f"{field_name} = ?")
                    params.append(state[field_name])
            if state.get("processed_increment"):
                updates.append("processed_count = processed_count + ?")
                params.append(int(state["processed_increment"]))
            if state.get("error_increment"):
                updates.append("error_count = error_count + ?")
                params.append(int(state["error_increment"]))
            params.append(worker_id)
            conn.execute(f"UPDATE job_workers SET {', '.join(updates)} WHERE id = ?", params)
            # A sparkline sample is a measurement: "nothing measured" is not a zero.
            if state.get("speed_bytes_per_sec") is not None:
                conn.execute(
                    "INSERT INTO worker_speed_samples (worker_id, at, speed_bytes_per_sec) "
                    "VALUES (?, ?, ?)",
                    (worker_id, clock.now(), state["speed_bytes_per_sec"]),
                )
                conn.execute(
                    """
                    DELETE FROM worker_speed_samples WHERE worker_id = ? AND id <= (
                        SELECT id FROM worker_speed_samples WHERE worker_id = ?
                        ORDER BY id DESC LIMIT 1 OFFSET ?)
                    """,
                    (worker_id, worker_id, SPEED_SAMPLES_KEPT),
                )
        return worker_id

    def stop_job_workers(self, job_id: int) -> None:
        """A job's workers leave: idle, no live speed (their counters and samples stay)."""
        with self._connection() as conn:
            conn.execute(
                f"UPDATE job_workers SET {WORKER_IDLE_SET}, status = 'stopped' "
                "WHERE job_run_id = ?",
                (int(job_id),),
            )

    def list_job_workers(
        self, job_id: int | None, *, active_only: bool = False, limit: int = 100
    ) -> list[dict[str, Any]]:
        """A job's workers (every job's when ``job_id`` is None) with what they work on."""
        where, params = ["1 = 1"], []
        if job_id is not None:
            where.append("w.job_run_id = ?")
            params.append(int(job_id))
        if active_only:
            where.append("w.status = 'running'")
        rows = self._fetchall(
            f"""
            SELECT w.*, s.stage_type, i.item_type, i.item_key, so.name AS song_name,
                   p.name AS playlist_name
            FROM job_workers w
            LEFT JOIN job_stages s ON s.id = w.job_stage_id
            LEFT JOIN job_items i ON i.id = w.current_job_item_id
            LEFT JOIN songs so ON so.id = w.current_song_id
            LEFT JOIN playlists p ON p.id = w.current_playlist_id
            WHERE {" AND ".join(where)}
            ORDER BY w.job_run_id, w.worker_name LIMIT ?
            """,
            (*params, int(limit)),
        )
        return [dict(row) for row in rows]

    def list_speed_samples(self, worker_ids: list[int]) -> dict[int, list[float]]:
        """Recent speed samples per worker, oldest first (missing speeds read as 0)."""
        if not worker_ids:
            return {}
        marks = ",".join("?" * len(worker_ids))
        rows = self._fetchall(
            f"SELECT worker_id, speed_bytes_per_sec FROM worker_speed_samples "
            f"WHERE worker_id IN ({marks}) ORDER BY worker_id, id",
            worker_ids,
        )
        samples: dict[int, list[float]] = {int(w): [] for w in worker_ids}
        for row in rows:
            samples[int(row["worker_id"])].append(float(row["speed_bytes_per_sec"] or 0.0))
        return samples
