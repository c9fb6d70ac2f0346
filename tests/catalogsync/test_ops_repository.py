"""Task-center rows, queue labels, scope text and worker speed (the seed's Tasks 1, 3, 5)."""

from __future__ import annotations

import dataclasses

import pytest

from catalogsync.errors import InvalidTransitionError
from catalogsync.ops import views
from catalogsync.ops.models import CommandType, ItemStatus, JobStatus, StageStatus

MB = 1024 * 1024


def _running_download(repo, *, song_id=202, speed=3 * MB, name="Song 202"):
    job = repo.create_job(job_type="download_only", config_snapshot={}, status=JobStatus.RUNNING)
    stage = repo.create_stage(
        job_id=job, stage_type="download", seq_no=1, status=StageStatus.RUNNING
    )
    repo.create_item(
        job_stage_id=stage,
        item_type="song_download",
        item_key="song:done",
        song_id=201,
        status=ItemStatus.SUCCEEDED,
    )
    item = repo.create_item(
        job_stage_id=stage,
        item_type="song_download",
        item_key="song:running",
        song_id=song_id,
        status=ItemStatus.PENDING,
        payload={"row": {"id": song_id, "name": name}},
    )
    assert repo.claim_item(item_id=item, worker_name="download-1")
    repo.update_worker_state(
        "download-1",
        status="running",
        current_job_item_id=item,
        current_song_id=song_id,
        current_display_text=name,
        downloaded_bytes=10 * MB,
        total_bytes=20 * MB,
        speed_bytes_per_sec=speed,
        progress_percent=50.0,
    )
    return job, stage, item


def test_list_task_center_rows_computes_lane_queue_progress_and_speed(repo):
    running_download_job, _, _ = _running_download(repo)
    queued_download_job = repo.create_job(
        job_type="catalog_sync", config_snapshot={}, status=JobStatus.QUEUED
    )
    general_job = repo.create_job(
        job_type="sync_only",
        config_snapshot={},
        status=JobStatus.RUNNING,
        playlist_scope={"playlist_ids": [11, 12]},
    )

    rows = views.task_center_rows(repo, limit=10)
    by_id = {int(row.id): row for row in rows}

    assert by_id[running_download_job].lane_type == "download"
    assert by_id[queued_download_job].queue_label == "queued #1"
    assert by_id[general_job].lane_type == "general"
    assert by_id[general_job].scope_summary == "2 playlists"
    assert by_id[running_download_job].active_worker_count == 1
    assert by_id[running_download_job].primary_progress_percent == 50
    assert by_id[running_download_job].speed_bytes_per_sec == 3 * MB
    assert by_id[running_download_job].speed_text == "3.0 MB/s"
    assert "1 / 2 songs" in by_id[running_download_job].primary_progress_text
    assert by_id[running_download_job].queue_label == "running"


def test_task_rows_matching_searches_every_job_in_table_order(repo):
    """A filter finds a job far behind the table's first 50 rows, in the table's order,
    and sees the same name, status and scope the table shows."""
    from catalogsync.ops.views import task_rows_matching

    old_upload = repo.create_job("upload_only", status=JobStatus.COMPLETED)
    for _ in range(60):
        repo.create_job("sync_only", status=JobStatus.COMPLETED)
    newer_upload = repo.create_job("upload_only", status=JobStatus.FAILED, sources=["a", "b"])
    queued_upload = repo.create_job("upload_only")
    running = repo.create_job(
        "download_only", status=JobStatus.RUNNING, playlist_scope={"playlist_ids": [1, 2, 3]}
    )
    assert old_upload not in {r.id for r in views.task_center_rows(repo, limit=50)}

    seen: list[dict] = []

    def upload(row: dict) -> bool:
        seen.append(row)
        return "upload" in row.display_name.lower()

    rows = task_rows_matching(repo, upload)
    assert [r.id for r in rows] == [queued_upload, newer_upload, old_upload]
    assert rows[1].scope_summary == "2 sources" and rows[1].status == "failed"
    # Asked once per distinct name, status and scope, not once per job.
    # The filter's facets (type:, lane:) see the job type and lane too.
    assert {(r.job_type, r.lane_type) for r in seen if r.display_name == "Upload"} == {
        ("upload_only", "general")
    }
    assert sorted((r.display_name, r.status, r.scope_summary) for r in seen) == [
        ("Download Selected Playlists", "running", "3 playlists"),
        ("Sync", "completed", "All sources"),
        ("Upload", "completed", "All sources"),
        ("Upload", "failed", "2 sources"),
        ("Upload", "queued", "All sources"),
    ]
    assert running not in {r.id for r in rows}
    assert [r.id for r in task_rows_matching(repo, upload, limit=2)] == [
        queued_upload,
        newer_upload,
    ]
    assert task_rows_matching(repo, lambda row: False) == []


def test_list_task_center_rows_uses_live_worker_speed_for_download_jobs(repo):
    job, _, _ = _running_download(repo, song_id=999, speed=4 * MB, name="Speed Song")
    row = next(r for r in views.task_center_rows(repo, limit=20) if int(r.id) == job)
    assert row.speed_text == "4.0 MB/s"
    assert "4.0 MB/s" in row.primary_progress_text


def test_no_measured_speed_reads_dash_never_a_guess(repo):
    job = repo.create_job(job_type="download_only", status=JobStatus.RUNNING)
    stage = repo.create_stage(job_id=job, stage_type="download", seq_no=1)
    item = repo.create_item(job_stage_id=stage, item_type="song_download", item_key="s:1")
    repo.claim_item(item_id=item, worker_name="download-1")
    row = views.task_center_rows(repo)[0]
    assert row.speed_text == "-"
    assert row.speed_bytes_per_sec is None
    assert row.primary_progress_text == "0 / 1 songs"


def test_queue_labels_number_each_lane_in_queue_order(repo):
    first = repo.create_job("download_only")
    general = repo.create_job("sync_only")
    second = repo.create_job("sync_download", priority=100)
    urgent = repo.create_job("download_upload", priority=10)
    labels = {r.id: r.queue_label for r in views.task_center_rows(repo)}
    assert labels[urgent] == "queued #1"
    assert labels[first] == "queued #2"
    assert labels[second] == "queued #3"
    assert labels[general] == "queued #1"


def test_scope_summary_texts(repo):
    sources = repo.create_job("collect_only", sources=["a", "b", "c"])
    unscoped = repo.create_job("catalog_sync")
    one = repo.create_job("sync_only", playlist_scope={"playlist_ids": [4]})
    by_id = {r.id: r.scope_summary for r in views.task_center_rows(repo)}
    assert by_id[sources] == "3 sources"
    assert by_id[unscoped] == "All sources"
    assert by_id[one] == "1 playlist"


def test_dashboard_summary_counts_queued_download_jobs(repo):
    _running_download(repo)
    repo.create_job("catalog_sync")
    repo.create_job("download_only")
    repo.create_job("sync_only")
    paused = repo.create_job("download_only", status=JobStatus.PAUSED)
    failed = repo.create_job("sync_only", status=JobStatus.FAILED)
    payload = views.dashboard_payload(repo)
    summary = payload.summary
    assert summary.queued_download_jobs == 2
    assert summary.queued_jobs == 3
    assert summary.running_jobs == 1
    assert summary.paused_jobs == 1
    assert summary.failed_jobs == 1
    assert summary.running_song_items == 1
    assert summary.total_jobs == 6
    assert {r.id for r in payload.task_rows} >= {paused, failed}
    fields = {f.name for f in dataclasses.fields(payload)}
    for key in ("download_stats", "playlist_sources", "workers", "running_items", "recent_events"):
        assert key in fields


def test_api_dashboard_exposes_worker_speed_and_bytes_text(repo):
    job, _, _ = _running_download(repo, song_id=301, speed=5 * MB, name="API Speed")
    payload = views.dashboard_payload(repo)
    row = next(r for r in payload.task_rows if int(r.id) == job)
    worker = next(w for w in payload.workers if w.worker_name == "download-1")
    assert worker.speed_bytes_per_sec == 5 * MB
    assert worker.speed_text == "5.0 MB/s"
    assert worker.bytes_text == "10.0 / 20.0 MB"
    assert "5.0 MB/s" in row.primary_progress_text


def test_succeeding_an_item_resets_the_worker_and_counts(repo):
    job, stage, item = _running_download(repo)
    assert repo.mark_item_succeeded(item_id=item)
    assert not repo.mark_item_succeeded(item_id=item), "a second transition must be refused"
    stage_row = repo.get_stage(stage)
    assert (stage_row.total_items, stage_row.success_items) == (2, 2)
    worker = repo.list_job_workers(job)[0]
    assert worker["status"] == "idle"
    assert worker["speed_bytes_per_sec"] is None
    assert worker["processed_count"] == 1


def test_succeed_and_claim_next_is_one_transaction_with_both_effects(repo):
    job = repo.create_job("download_only", status=JobStatus.RUNNING)
    stage = repo.create_stage(job_id=job, stage_type="download", seq_no=1)
    first, second, third = (
        repo.create_item(
            job_stage_id=stage,
            item_type="song_download",
            item_key=f"s:{n}",
            payload={"display_text": f"Song {n}", "row": {"id": n}},
        )
        for n in (1, 2, 3)
    )
    assert repo.claim_next_item(stage, "download-1").id == first
    statements: list[str] = []
    repo._conn().set_trace_callback(statements.append)
    try:
        nxt = repo.succeed_and_claim_next(
            first, {"path": "a.mp3", "bytes": 3, "gone": None}, stage, "download-1"
        )
    finally:
        repo._conn().set_trace_callback(None)
    assert [s for s in statements if s.startswith(("BEGIN", "COMMIT"))] == [
        "BEGIN IMMEDIATE",
        "COMMIT",
    ]
    assert nxt is not None and nxt.id == second and nxt.status == ItemStatus.RUNNING
    done = repo.get_item(first)
    assert done.status == ItemStatus.SUCCEEDED
    assert done.payload == {
        "display_text": "Song 1",
        "row": {"id": 1},
        "path": "a.mp3",
        "bytes": 3,
        "gone": None,
    }
    assert repo.get_stage(stage).success_items == 1
    worker = repo.list_job_workers(job)[0]
    assert (worker["status"], worker["processed_count"]) == ("running", 1)
    assert (worker["current_job_item_id"], worker["current_display_text"]) == (second, "Song 2")
    assert repo.get_item(second).worker_id == worker["id"]
    # A key no JSON path names plainly takes the general route, same outcome.
    nxt = repo.succeed_and_claim_next(second, {"odd key": 1}, stage, "download-1")
    assert nxt is not None and nxt.id == third
    assert repo.get_item(second).payload["odd key"] == 1
    # The last item: succeeded, nothing left to claim, the worker goes idle.
    assert repo.succeed_and_claim_next(third, None, stage, "download-1") is None
    assert repo.get_item(third).status == ItemStatus.SUCCEEDED
    assert repo.get_stage(stage).success_items == 3
    worker = repo.list_job_workers(job)[0]
    assert (worker["status"], worker["processed_count"]) == ("idle", 3)
    assert worker["current_job_item_id"] is None


def test_speed_samples_are_kept_to_the_last_120(repo):
    job, _, _ = _running_download(repo)
    for n in range(150):
        repo.update_worker_state("download-1", job_id=job, speed_bytes_per_sec=float(n))
    worker_id = repo.list_job_workers(job)[0]["id"]
    samples = repo.list_speed_samples([worker_id])[worker_id]
    assert len(samples) == 120
    assert samples[-1] == 149.0


def test_failed_item_retries_then_fails_for_good(repo):
    job = repo.create_job("download_only", status=JobStatus.RUNNING)
    stage = repo.create_stage(job_id=job, stage_type="download", seq_no=1)
    item = repo.create_item(job_stage_id=stage, item_type="song_download", item_key="s:1")
    assert repo.claim_next_item(stage, "download-1").id == item
    repo.mark_item_failed(item, "timeout", error_code="timeout", retry_delay=60, max_attempts=2)
    assert repo.get_item(item).status == ItemStatus.PENDING
    assert repo.claim_next_item(stage, "download-1") is None, "retry must wait for its backoff"
    repo._conn().execute("UPDATE job_items SET next_attempt_at = 0")
    assert repo.claim_next_item(stage, "download-1").id == item
    repo.mark_item_failed(item, "timeout", error_code="timeout", retry_delay=60, max_attempts=2)
    failed = repo.get_item(item)
    assert failed.status == ItemStatus.FAILED
    assert failed.last_error_code == "timeout"
    assert repo.get_stage(stage).failed_items == 1


@pytest.mark.parametrize(
    ("status", "command"),
    [
        (JobStatus.COMPLETED, CommandType.PAUSE),
        (JobStatus.PAUSED, CommandType.PAUSE),
        (JobStatus.QUEUED, CommandType.RESUME),
        (JobStatus.RUNNING, CommandType.RESUME),
        (JobStatus.CANCELED, CommandType.CANCEL),
        (JobStatus.COMPLETED, CommandType.CANCEL),
        (JobStatus.RUNNING, CommandType.RETRY),
        (JobStatus.COMPLETED, CommandType.RETRY),
    ],
)
def test_illegal_commands_are_rejected_with_a_clear_message(repo, status, command):
    job = repo.create_job("download_only", status=status)
    with pytest.raises(InvalidTransitionError, match=f"cannot {command.value} job {job}"):
        repo.submit_command(job, command)


def test_reordering_swaps_places_within_a_lane(repo):
    a = repo.create_job("download_only")
    repo.create_job("sync_only")
    b = repo.create_job("download_only")
    assert repo.move_queued_job(b, -1)
    assert [j.id for j in repo.list_queued_jobs() if j.job_type == "download_only"] == [b, a]
    assert not repo.move_queued_job(b, -1), "already first in its lane"
    running = repo.create_job("download_only", status=JobStatus.RUNNING)
    with pytest.raises(InvalidTransitionError):
        repo.move_queued_job(running, 1)


def _count_queries(repo, func):
    statements: list[str] = []
    conn = repo._conn()
    conn.set_trace_callback(statements.append)
    try:
        func()
    finally:
        conn.set_trace_callback(None)
    return len(statements)


def test_read_models_use_a_fixed_number_of_queries(repo):
    def seed(n):
        for _ in range(n):
            job, _, _ = _running_download(repo)
            repo.create_job("sync_only")
            repo.set_job_status(job, JobStatus.COMPLETED)

    seed(2)
    few = (
        _count_queries(repo, lambda: views.task_center_rows(repo, limit=50)),
        _count_queries(repo, lambda: views.dashboard_payload(repo)),
        _count_queries(repo, lambda: views.job_detail(repo, 1)),
    )
    seed(20)
    many = (
        _count_queries(repo, lambda: views.task_center_rows(repo, limit=50)),
        _count_queries(repo, lambda: views.dashboard_payload(repo)),
        _count_queries(repo, lambda: views.job_detail(repo, 1)),
    )
    assert few == many


def test_a_worker_keeps_its_speed_from_one_song_to_the_next_and_loses_it_when_idle(repo):
    """Songs shorter than a progress write: the header's total must not read a third."""
    from catalogsync.ops.progress import WorkerProgress

    job = repo.create_job(job_type="download_only", status=JobStatus.RUNNING)
    stage = repo.create_stage(job_id=job, stage_type="download", seq_no=1)
    items = [
        repo.create_item(job_stage_id=stage, item_type="song_download", item_key=f"s:{n}")
        for n in range(3)
    ]
    assert repo.claim_item(item_id=items[0], worker_name="download-1")
    repo.update_worker_state("download-1", job_id=job, speed_bytes_per_sec=3 * MB)
    following = repo.succeed_and_claim_next(items[0], {}, stage, "download-1")
    assert following is not None and following.id == items[1]
    (worker,) = repo.list_job_workers(job)
    assert worker["current_job_item_id"] == items[1] and worker["downloaded_bytes"] is None
    assert worker["speed_bytes_per_sec"] == 3 * MB, "the worker's measured speed carries on"
    assert views.dashboard_payload(repo).download_stats.speed_bytes_per_sec == 3 * MB

    # Waiting to retry is not transferring.
    WorkerProgress(repo, "download-1", job).on_retry(None, 4.0)
    assert repo.list_job_workers(job)[0]["speed_bytes_per_sec"] is None

    repo.update_worker_state("download-1", job_id=job, speed_bytes_per_sec=2 * MB)
    assert repo.succeed_and_claim_next(items[1], {}, stage, "download-1").id == items[2]
    assert repo.succeed_and_claim_next(items[2], {}, stage, "download-1") is None
    (worker,) = repo.list_job_workers(job)
    assert worker["status"] == "idle" and worker["speed_bytes_per_sec"] is None, "idle: no speed"
