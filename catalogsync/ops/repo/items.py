"""Items: a stage's units of work, claimed by workers and settled once each."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from catalogsync import clock
from catalogsync.errors import NotFoundError
from catalogsync.redact import mask_secrets

from ..models import ItemStatus, JobItem, json_loads
from ._sql import (
    CLAIM_NEXT_SQL,
    CLAIM_NEXT_WHERE,
    ITEM_COUNTER,
    PLAIN_KEY,
    WORKER_IDLE_SET,
    WORKER_NEXT_SET,
    cancel_unfinished,
    display_text,
    json_dumps,
)
from .workers import WorkersRepository


class ItemsRepository(WorkersRepository):
    # -- items -------------------------------------------------------------

    def create_item(
        self,
        job_stage_id: int,
        item_type: str,
        item_key: str,
        *,
        song_id: int | None = None,
        playlist_id: int | None = None,
        status: ItemStatus = ItemStatus.PENDING,
        payload: dict[str, Any] | None = None,
    ) -> int:
        """Add an item to a stage (its counters move in the same transaction)."""
        ids = self.create_items(
            job_stage_id,
            [
                {
                    "item_type": item_type,
                    "item_key": item_key,
                    "song_id": song_id,
                    "playlist_id": playlist_id,
                    "status": status,
                    "payload": payload,
                }
            ],
        )
        return ids[0]

    def create_items(self, job_stage_id: int, items: list[dict[str, Any]]) -> list[int]:
        """Add many items at once; an item_key already in the stage is left as it is."""
        with self._connection() as conn:
            stage = conn.execute(
                "SELECT job_run_id FROM job_stages WHERE id = ?", (int(job_stage_id),)
            ).fetchone()
            if stage is None:
                raise NotFoundError(f"stage {job_stage_id} does not exist")
            ids: list[int] = []
            counts = {"total_items": 0, "success_items": 0, "failed_items": 0, "skipped_items": 0}
            for item in items:
                status = ItemStatus(item.get("status") or ItemStatus.PENDING)
                cursor = conn.execute(
                    """
                    INSERT INTO job_items (job_stage_id, job_run_id, item_type, item_key,
                        song_id, playlist_id, status, payload_json)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (job_stage_id, item_key) DO NOTHING
                    """,
                    (
                        int(job_stage_id),
                        int(stage["job_run_id"]),
                        item["item_type"],
                        item["item_key"],
                        item.get("song_id"),
                        item.get("playlist_id"),
                        status.value,
                        json_dumps(item.get("payload") or {}),
                    ),
                )
                if cursor.rowcount == 1:
                    ids.append(int(cursor.lastrowid or 0))
                    counts["total_items"] += 1
                    if status in ITEM_COUNTER:
                        counts[ITEM_COUNTER[status]] += 1
                else:
                    found = conn.execute(
                        "SELECT id FROM job_items WHERE job_stage_id = ? AND item_key = ?",
                        (int(job_stage_id), item["item_key"]),
                    ).fetchone()
                    ids.append(int(found["id"]))
            conn.execute(
                """
                UPDATE job_stages SET total_items = total_items + ?,
                    success_items = success_items + ?, failed_items = failed_items + ?,
                    skipped_items = skipped_items + ?
                WHERE id = ?
                """,
                (
                    counts["total_items"],
                    counts["success_items"],
                    counts["failed_items"],
                    counts["skipped_items"],
                    int(job_stage_id),
                ),
            )
        return ids

    def get_item(self, item_id: int) -> JobItem | None:
        row = self._fetchone("SELECT * FROM job_items WHERE id = ?", (int(item_id),))
        return JobItem.from_row(row) if row is not None else None

    def update_item_payload(self, item_id: int, updates: dict[str, Any]) -> None:
        """Merge ``updates`` into an item's payload (what a retry needs to know)."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT payload_json FROM job_items WHERE id = ?", (int(item_id),)
            ).fetchone()
            if row is None:
                return
            payload = json_loads(row["payload_json"])
            payload.update(updates)
            conn.execute(
                "UPDATE job_items SET payload_json = ? WHERE id = ?",
                (json_dumps(payload), int(item_id)),
            )

    def list_stage_items(
        self, stage_id: int, status: ItemStatus | None = None, limit: int = 1000
    ) -> list[JobItem]:
        if status is None:
            rows = self._fetchall(
                "SELECT * FROM job_items WHERE job_stage_id = ? ORDER BY id LIMIT ?",
                (int(stage_id), int(limit)),
            )
        else:
            rows = self._fetchall(
                "SELECT * FROM job_items WHERE job_stage_id = ? AND status = ? ORDER BY id LIMIT ?",
                (int(stage_id), ItemStatus(status).value, int(limit)),
            )
        return [JobItem.from_row(row) for row in rows]

    def _mark_claimed(self, conn: sqlite3.Connection, row: sqlite3.Row, worker_name: str) -> None:
        worker_id = self._ensure_worker_row(
            conn, worker_name, row["job_run_id"], int(row["job_stage_id"])
        )
        display = display_text(row)
        conn.execute("UPDATE job_items SET worker_id = ? WHERE id = ?", (worker_id, row["id"]))
        conn.execute(
            f"""
            UPDATE job_workers SET {WORKER_NEXT_SET},
                current_job_item_id = ?, current_song_id = ?, current_playlist_id = ?,
                current_display_text = ?, heartbeat_at = ?
            WHERE id = ?
            """,
            (
                row["id"],
                row["song_id"],
                row["playlist_id"],
                display,
                clock.now_text(),
                worker_id,
            ),
        )

    def claim_item(self, item_id: int, worker_name: str) -> bool:
        """Compare-and-set pending -> running for one item, binding it to a worker."""
        with self._connection() as conn:
            row = conn.execute(
                """
                UPDATE job_items SET status = 'running', attempts = attempts + 1,
                    started_at = ?, ended_at = NULL
                WHERE id = ? AND status = 'pending' RETURNING *
                """,
                (clock.now_text(), int(item_id)),
            ).fetchone()
            if row is None:
                return False
            self._mark_claimed(conn, row, worker_name)
        return True

    def claim_next_item(self, stage_id: int, worker_name: str) -> JobItem | None:
        """Claim the stage's next eligible pending item (retries wait for next_attempt_at)."""
        with self._connection() as conn:
            return self._claim_next(conn, stage_id, worker_name)

    def succeed_and_claim_next(
        self,
        item_id: int,
        result_payload: dict[str, Any] | None,
        stage_id: int,
        worker_name: str,
    ) -> JobItem | None:
        """``mark_item_succeeded`` and ``claim_next_item`` in one transaction.

        A worker that finishes an item and goes on to the next pays for one write
        instead of two; on a small-file download that is a tenth of the item's time.
        """
        patch = result_payload or {}
        if not all(isinstance(key, str) and PLAIN_KEY.match(key) for key in patch):
            with self._connection() as conn:  # keys a JSON path can't name plainly
                row = self._finish_item(conn, item_id, ItemStatus.SUCCEEDED, payload_update=patch)
                if row is not None:
                    self._worker_done(conn, row["worker_id"], failed=False)
                return self._claim_next(conn, stage_id, worker_name)
        paths = "".join(", ?, json(?)" for _ in patch)
        args: list[Any] = []
        for key, value in patch.items():
            args += [f"$.{key}", json.dumps(value, ensure_ascii=False)]
        now = clock.now_text()
        with self._connection() as conn:
            done = conn.execute(
                f"""
                UPDATE job_items SET status = 'succeeded',
                    payload_json = json_set(COALESCE(payload_json, '{{}}'){paths}),
                    worker_id = NULL, ended_at = ?, last_error = NULL, last_error_code = NULL,
                    next_attempt_at = NULL
                WHERE id = ? AND status = 'running' RETURNING job_run_id
                """,
                (*args, now, int(item_id)),
            ).fetchone()
            if done is None:  # paused, canceled or reset meanwhile: just claim
                return self._claim_next(conn, stage_id, worker_name)
            conn.execute(
                "UPDATE job_stages SET success_items = success_items + 1 WHERE id = ?",
                (int(stage_id),),
            )
            worker_id = self._worker_id(conn, worker_name, done["job_run_id"])
            row = conn.execute(
                f"{CLAIM_NEXT_SQL} , worker_id = ? {CLAIM_NEXT_WHERE}",
                (now, worker_id, int(stage_id), clock.now()),
            ).fetchone()
            if row is None:
                conn.execute(
                    f"UPDATE job_workers SET {WORKER_IDLE_SET}, "
                    "processed_count = processed_count + 1, heartbeat_at = ? WHERE id = ?",
                    (now, worker_id),
                )
                return None
            conn.execute(
                f"""
                UPDATE job_workers SET {WORKER_NEXT_SET},
                    processed_count = processed_count + 1, job_stage_id = ?,
                    current_job_item_id = ?, current_song_id = ?, current_playlist_id = ?,
                    current_display_text = ?, heartbeat_at = ?
                WHERE id = ?
                """,
                (
                    int(stage_id),
                    row["id"],
                    row["song_id"],
                    row["playlist_id"],
                    display_text(row),
                    now,
                    worker_id,
                ),
            )
            return JobItem.from_row(row)

    def _claim_next(
        self, conn: sqlite3.Connection, stage_id: int, worker_name: str
    ) -> JobItem | None:
        row = conn.execute(
            f"{CLAIM_NEXT_SQL} {CLAIM_NEXT_WHERE}",
            (clock.now_text(), int(stage_id), clock.now()),
        ).fetchone()
        if row is None:
            return None
        self._mark_claimed(conn, row, worker_name)
        return JobItem.from_row(row)

    def _finish_item(
        self,
        conn: sqlite3.Connection,
        item_id: int,
        to_status: ItemStatus,
        *,
        from_statuses: tuple[ItemStatus, ...] = (ItemStatus.RUNNING,),
        payload_update: dict[str, Any] | None = None,
        error: str | None = None,
        error_code: str | None = None,
    ) -> sqlite3.Row | None:
        row = conn.execute("SELECT * FROM job_items WHERE id = ?", (int(item_id),)).fetchone()
        if row is None or ItemStatus(row["status"]) not in from_statuses:
            return None
        payload = json_loads(row["payload_json"])
        if payload_update:
            payload.update(payload_update)
        values = [s.value for s in from_statuses]
        cursor = conn.execute(
            f"""
            UPDATE job_items SET status = ?, payload_json = ?, worker_id = NULL, ended_at = ?,
                last_error = ?, last_error_code = ?, next_attempt_at = NULL
            WHERE id = ? AND status IN ({",".join("?" * len(values))})
            """,
            (
                to_status.value,
                json_dumps(payload),
                clock.now_text(),
                error,
                error_code,
                int(item_id),
                *values,
            ),
        )
        if cursor.rowcount != 1:
            return None
        if to_status in ITEM_COUNTER:
            conn.execute(
                f"UPDATE job_stages SET {ITEM_COUNTER[to_status]} = "
                f"{ITEM_COUNTER[to_status]} + 1 WHERE id = ?",
                (row["job_stage_id"],),
            )
        return row

    def mark_item_succeeded(
        self, item_id: int, result_payload: dict[str, Any] | None = None
    ) -> bool:
        with self._connection() as conn:
            row = self._finish_item(
                conn, item_id, ItemStatus.SUCCEEDED, payload_update=result_payload
            )
            if row is None:
                return False
            self._worker_done(conn, row["worker_id"], failed=False)
        return True

    def mark_item_skipped(self, item_id: int, reason: str = "") -> bool:
        with self._connection() as conn:
            row = self._finish_item(
                conn,
                item_id,
                ItemStatus.SKIPPED,
                from_statuses=(ItemStatus.RUNNING, ItemStatus.PENDING),
                payload_update={"skip_reason": reason} if reason else None,
            )
            if row is None:
                return False
            self._worker_done(conn, row["worker_id"], failed=False)
        return True

    def mark_item_failed(
        self,
        item_id: int,
        error_message: str,
        *,
        error_code: str | None = None,
        retry_delay: float | None = None,
        max_attempts: int = 1,
    ) -> bool:
        """Fail an item; with ``retry_delay`` and attempts left it goes back to pending instead."""
        error_message = mask_secrets(error_message)
        with self._connection() as conn:
            row = conn.execute("SELECT * FROM job_items WHERE id = ?", (int(item_id),)).fetchone()
            if row is None or row["status"] != ItemStatus.RUNNING.value:
                return False
            if retry_delay is not None and int(row["attempts"]) < int(max_attempts):
                conn.execute(
                    """
                    UPDATE job_items SET status = 'pending', worker_id = NULL, last_error = ?,
                        last_error_code = ?, next_attempt_at = ?
                    WHERE id = ? AND status = 'running'
                    """,
                    (error_message, error_code, clock.now() + float(retry_delay), int(item_id)),
                )
                self._worker_done(conn, row["worker_id"], failed=True)
                return True
            finished = self._finish_item(
                conn, item_id, ItemStatus.FAILED, error=error_message, error_code=error_code
            )
            if finished is None:
                return False
            self._worker_done(conn, row["worker_id"], failed=True)
        return True

    def running_items_of_workers(self, stage_id: int, worker_names: list[str]) -> list[JobItem]:
        """A stage's running items held by these workers (a helper process that died)."""
        if not worker_names:
            return []
        marks = ", ".join("?" * len(worker_names))
        rows = self._fetchall(
            f"""
            SELECT i.* FROM job_items i
            JOIN job_workers w ON w.id = i.worker_id
            WHERE i.job_stage_id = ? AND i.status = 'running' AND w.worker_name IN ({marks})
            ORDER BY i.id
            """,
            (int(stage_id), *worker_names),
        )
        return [JobItem.from_row(row) for row in rows]

    def release_item(self, item_id: int) -> bool:
        """Running -> pending without charging an attempt (the job was paused or stopped)."""
        with self._connection() as conn:
            row = conn.execute(
                """
                UPDATE job_items SET status = 'pending', worker_id = NULL,
                    attempts = MAX(attempts - 1, 0)
                WHERE id = ? AND status = 'running' RETURNING worker_id
                """,
                (int(item_id),),
            ).fetchone()
            if row is None:
                return False
        return True

    def cancel_pending_items(self, job_id: int) -> int:
        """Every unfinished item of a job -> canceled; returns how many."""
        with self._connection() as conn:
            return cancel_unfinished(conn, job_id)
