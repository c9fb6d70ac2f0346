"""Read queries: what the read models in ``views.py`` and notifications assemble."""

from __future__ import annotations

from typing import Any

from catalogsync import clock
from catalogsync.db import SqliteStore

from ..jobdefs import DOWNLOAD_ITEM_TYPE, DOWNLOAD_LANE_JOB_TYPES
from ..models import JobRun, JobStage

_DOWNLOAD_TYPES_SQL = ",".join(f"'{t}'" for t in DOWNLOAD_LANE_JOB_TYPES)


class ReadsRepository(SqliteStore):
    """Queries that join across aggregates for the read models; they never write."""

    def failed_items(
        self, job_id: int, *, limit: int | None = 20, offset: int = 0
    ) -> tuple[int, list[dict[str, Any]]]:
        """(count, rows) of a job's failed items with their song and playlist, by item id."""
        stages = "SELECT id FROM job_stages WHERE job_run_id = ?"
        total = self._fetchone(
            f"SELECT COUNT(*) FROM job_items WHERE job_stage_id IN ({stages}) "
            "AND status = 'failed'",
            (int(job_id),),
        )
        rows = self._fetchall(
            f"""
            SELECT ji.id AS item_id, st.stage_type, ji.song_id, s.name AS song_name,
                s.singers AS song_singers, ji.playlist_id, p.name AS playlist,
                ji.last_error_code AS error_code, ji.last_error AS error, ji.attempts,
                ji.ended_at
            FROM job_items ji
            JOIN job_stages st ON st.id = ji.job_stage_id
            LEFT JOIN songs s ON s.id = ji.song_id
            LEFT JOIN playlists p ON p.id = ji.playlist_id
            WHERE ji.job_stage_id IN ({stages}) AND ji.status = 'failed'
            ORDER BY ji.id LIMIT ? OFFSET ?
            """,
            (int(job_id), -1 if limit is None else int(limit), int(offset)),
        )
        return int(total[0]) if total else 0, [dict(row) for row in rows]

    def job_outcome_facts(self, job_id: int, top: int = 3) -> dict[str, Any]:
        """Songs added, bytes written, failed count and the most common failure reasons."""
        added = self._fetchone(
            """
            SELECT COUNT(*) AS n, COALESCE(SUM(json_extract(i.payload_json, '$.bytes')), 0) AS b
            FROM job_items i JOIN job_stages s ON s.id = i.job_stage_id
            WHERE i.job_run_id = ? AND s.stage_type = 'download' AND i.status = 'succeeded'
            """,
            (int(job_id),),
        )
        reasons = self._fetchall(
            """
            SELECT COALESCE(last_error_code, 'error') AS code, COUNT(*) AS n FROM job_items
            WHERE job_run_id = ? AND status = 'failed' GROUP BY 1 ORDER BY n DESC, code LIMIT ?
            """,
            (int(job_id), int(top)),
        )
        failed = self._fetchone(
            "SELECT COUNT(*) AS n FROM job_items WHERE job_run_id = ? AND status = 'failed'",
            (int(job_id),),
        )
        return {
            "songs_added": int(added["n"]) if added else 0,
            "bytes": int(added["b"] or 0) if added else 0,
            "failed": int(failed["n"]) if failed else 0,
            "reasons": [(str(r["code"]), int(r["n"])) for r in reasons],
        }

    def recent_download_speed(self, stages: int = 5) -> float | None:
        """Bytes per second over the last finished download stages (None: nothing to go by)."""
        rows = self._fetchall(
            """
            SELECT st.started_at, st.ended_at,
                   SUM(COALESCE(json_extract(i.payload_json, '$.bytes'), 0)) AS bytes
            FROM job_stages st JOIN job_items i ON i.job_stage_id = st.id
            WHERE st.stage_type = 'download' AND st.ended_at IS NOT NULL
              AND i.status = 'succeeded'
            GROUP BY st.id ORDER BY st.id DESC LIMIT ?
            """,
            (int(stages),),
        )
        total_bytes, total_seconds = 0, 0.0
        for row in rows:
            start, end = clock.parse_text(row["started_at"]), clock.parse_text(row["ended_at"])
            if start is None or end is None or end <= start or not row["bytes"]:
                continue
            total_bytes += int(row["bytes"])
            total_seconds += end - start
        return total_bytes / total_seconds if total_seconds > 0 else None

    # -- the task table and the dashboard (assembled in views.py) -----------------

    def task_center_jobs(self, limit: int) -> list[JobRun]:
        """Running, then queued in queue order, paused, then the newest finished jobs."""
        # Four small parts instead of one sort over every job ever run. Finished jobs are
        # most of a long-lived database: `+status` makes SQLite walk ids newest first
        # (stopping at `limit`) rather than sort every finished job out of the status index.
        rows = self._fetchall(
            """
            SELECT * FROM (SELECT * FROM job_runs
                WHERE status IN ('running', 'pause_requested') ORDER BY id LIMIT ?)
            UNION ALL SELECT * FROM (SELECT * FROM job_runs WHERE status = 'queued'
                ORDER BY priority, queue_rank, id LIMIT ?)
            UNION ALL SELECT * FROM (SELECT * FROM job_runs WHERE status = 'paused'
                ORDER BY id DESC LIMIT ?)
            UNION ALL SELECT * FROM (SELECT * FROM job_runs
                WHERE +status IN ('completed', 'completed_with_errors', 'failed', 'canceled')
                ORDER BY id DESC LIMIT ?)
            """,
            (int(limit),) * 4,
        )
        return [JobRun.from_row(row) for row in rows][: int(limit)]

    def job_filter_facts(self) -> list[tuple[int, str, str, Any, Any, int, int]]:
        """Per job: (id, job_type, status, priority, queue_rank, playlists, sources) counts,
        what a task-table filter looks at, without decoding any JSON in Python."""
        rows = self._fetchall(
            """
            SELECT id, job_type, status, priority, queue_rank,
                CASE WHEN json_valid(playlist_scope)
                    AND json_type(playlist_scope, '$.playlist_ids') = 'array'
                    THEN json_array_length(playlist_scope, '$.playlist_ids') ELSE 0 END,
                CASE WHEN json_valid(sources) AND json_type(sources) = 'array'
                    THEN json_array_length(sources) ELSE 0 END
            FROM job_runs
            """
        )
        return [tuple(row) for row in rows]

    def jobs_by_id(self, job_ids: list[int]) -> dict[int, JobRun]:
        if not job_ids:
            return {}
        marks = ",".join("?" * len(job_ids))
        rows = self._fetchall(f"SELECT * FROM job_runs WHERE id IN ({marks})", job_ids)
        return {int(row["id"]): JobRun.from_row(row) for row in rows}

    def queue_positions(self, job_ids: list[int]) -> dict[int, int]:
        """Each queued job's place in its lane's queue (1 = next to start)."""
        if not job_ids:
            return {}
        marks = ",".join("?" * len(job_ids))
        rows = self._fetchall(
            f"""
            SELECT id, pos FROM (
                SELECT id, ROW_NUMBER() OVER (
                    PARTITION BY job_type IN ({_DOWNLOAD_TYPES_SQL})
                    ORDER BY priority, queue_rank, id) AS pos
                FROM job_runs WHERE status = 'queued')
            WHERE id IN ({marks})
            """,
            job_ids,
        )
        return {int(r["id"]): int(r["pos"]) for r in rows}

    def stages_by_job(self, job_ids: list[int]) -> dict[int, list[JobStage]]:
        out: dict[int, list[JobStage]] = {i: [] for i in job_ids}
        if not job_ids:
            return out
        marks = ",".join("?" * len(job_ids))
        for row in self._fetchall(
            f"SELECT * FROM job_stages WHERE job_run_id IN ({marks}) ORDER BY seq_no, id",
            job_ids,
        ):
            out[int(row["job_run_id"])].append(JobStage.from_row(row))
        return out

    def worker_totals(self, job_ids: list[int]) -> dict[int, tuple[int, float | None]]:
        """Per job: (running workers, their summed speed in bytes/s or None)."""
        if not job_ids:
            return {}
        marks = ",".join("?" * len(job_ids))
        rows = self._fetchall(
            f"""
            SELECT job_run_id, COUNT(*) AS n, SUM(speed_bytes_per_sec) AS speed
            FROM job_workers WHERE status = 'running' AND job_run_id IN ({marks})
            GROUP BY job_run_id
            """,
            job_ids,
        )
        return {
            int(r["job_run_id"]): (int(r["n"]), float(r["speed"]) if r["speed"] else None)
            for r in rows
        }

    def job_status_counts(self) -> dict[str, int]:
        """Jobs per status, plus ``queued_download`` and ``running_song_items``."""
        rows = self._fetchall("SELECT status, COUNT(*) AS n FROM job_runs GROUP BY status")
        counts = {str(r["status"]): int(r["n"]) for r in rows}
        queued_download = self._fetchone(
            f"SELECT COUNT(*) AS n FROM job_runs WHERE status = 'queued' "
            f"AND job_type IN ({_DOWNLOAD_TYPES_SQL})"
        )
        running_items = self._fetchone(
            "SELECT COUNT(*) AS n FROM job_items WHERE status = 'running' AND item_type = ?",
            (DOWNLOAD_ITEM_TYPE,),
        )
        counts["queued_download"] = int(queued_download["n"]) if queued_download else 0
        counts["running_song_items"] = int(running_items["n"]) if running_items else 0
        return counts

    def running_items(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._fetchall(
            """
            SELECT i.id, i.job_run_id, i.item_type, i.item_key, i.song_id, i.playlist_id,
                   i.attempts, s.name AS song_name
            FROM job_items i LEFT JOIN songs s ON s.id = i.song_id
            WHERE i.status = 'running' ORDER BY i.id LIMIT ?
            """,
            (int(limit),),
        )
        return [dict(r) for r in rows]
