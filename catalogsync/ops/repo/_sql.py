"""What the repository modules share: JSON columns, the worker-idle SET and a few statements."""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from catalogsync import clock
from catalogsync.redact import mask_secrets

from ..models import ItemStatus, json_loads

SPEED_SAMPLES_KEPT = 120
WORKER_STATE_FIELDS = (
    "status",
    "job_stage_id",
    "current_job_item_id",
    "current_song_id",
    "current_playlist_id",
    "current_display_text",
    "downloaded_bytes",
    "total_bytes",
    "speed_bytes_per_sec",
    "progress_percent",
)
WORKER_IDLE_SET = """
    status = 'idle', current_job_item_id = NULL, current_song_id = NULL,
    current_playlist_id = NULL, current_display_text = NULL, downloaded_bytes = NULL,
    total_bytes = NULL, speed_bytes_per_sec = NULL, progress_percent = NULL
"""
# A worker going straight on to its next item: the song fields reset, its measured speed
# stays (its meter spans songs). Nulled, a worker on songs shorter than a progress write
# read "no speed" most of the time, and the header's total (a sum of workers' speeds)
# showed a third of the real rate. A retry or a cooldown wait clears it (progress.py).
WORKER_NEXT_SET = """
    status = 'running', current_job_item_id = NULL, current_song_id = NULL,
    current_playlist_id = NULL, current_display_text = NULL, downloaded_bytes = NULL,
    total_bytes = NULL, progress_percent = NULL
"""
PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CLAIM_NEXT_SQL = """
    UPDATE job_items SET status = 'running', attempts = attempts + 1,
        started_at = ?, ended_at = NULL"""
CLAIM_NEXT_WHERE = """
    WHERE id = (
        SELECT id FROM job_items
        WHERE job_stage_id = ? AND status = 'pending'
          AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
        ORDER BY id LIMIT 1
    ) AND status = 'pending'
    RETURNING *"""
ITEM_COUNTER = {
    ItemStatus.SUCCEEDED: "success_items",
    ItemStatus.FAILED: "failed_items",
    ItemStatus.SKIPPED: "skipped_items",
}


def json_dumps(value: Any) -> str:
    return json.dumps(value if value is not None else {}, ensure_ascii=False, sort_keys=True)


def display_text(row: sqlite3.Row) -> str:
    """What a worker shows for the item in ``row``."""
    payload = json_loads(row["payload_json"])
    return str(
        payload.get("display_text") or (payload.get("row") or {}).get("name") or row["item_key"]
    )


def insert_event(
    conn: sqlite3.Connection, job_id: int | None, event_type: str, message: str, level: str
) -> int:
    """The one INSERT of ``job_events`` (secrets in ``message`` are masked here)."""
    cursor = conn.execute(
        "INSERT INTO job_events (job_run_id, event_type, level, message, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (job_id, event_type, level, mask_secrets(message), clock.now_text()),
    )
    return int(cursor.lastrowid or 0)


def cancel_unfinished(conn: sqlite3.Connection, job_id: int) -> int:
    """A job's pending and running items and stages -> canceled; returns the item count."""
    now = clock.now_text()
    cursor = conn.execute(
        "UPDATE job_items SET status = 'canceled', worker_id = NULL, ended_at = ? "
        "WHERE job_run_id = ? AND status IN ('pending', 'running')",
        (now, int(job_id)),
    )
    conn.execute(
        "UPDATE job_stages SET status = 'canceled', ended_at = ? "
        "WHERE job_run_id = ? AND status IN ('pending', 'running')",
        (now, int(job_id)),
    )
    return cursor.rowcount


def front_of_queue_rank(conn: sqlite3.Connection, places: int = 1) -> float:
    """The lowest queue_rank that puts ``places`` jobs ahead of every queued one."""
    low = conn.execute(
        "SELECT MIN(queue_rank) AS r FROM job_runs WHERE status = 'queued'"
    ).fetchone()["r"]
    return min(float(low) if low is not None else 0.0, 0.0) - places


def retry_failed_items(conn: sqlite3.Connection, job_id: int) -> int:
    """A job's failed items -> pending with fresh attempts; their stages run again."""
    per_stage = conn.execute(
        "SELECT job_stage_id, COUNT(*) AS n FROM job_items "
        "WHERE job_run_id = ? AND status = 'failed' GROUP BY job_stage_id",
        (job_id,),
    ).fetchall()
    total = 0
    for row in per_stage:
        conn.execute(
            "UPDATE job_items SET status = 'pending', attempts = 0, next_attempt_at = NULL, "
            "ended_at = NULL WHERE job_stage_id = ? AND status = 'failed'",
            (row["job_stage_id"],),
        )
        conn.execute(
            "UPDATE job_stages SET failed_items = MAX(failed_items - ?, 0), "
            "status = 'pending', ended_at = NULL WHERE id = ?",
            (int(row["n"]), row["job_stage_id"]),
        )
        total += int(row["n"])
    return total
