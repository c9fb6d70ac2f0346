"""The lane-aware runner: lanes, commands, retries and stop flags (the seed's Task 2 and more)."""

from __future__ import annotations

import threading
import time
from unittest.mock import patch

import pytest

from catalogsync.errors import StorageFullError, TransferError
from catalogsync.ops.jobdefs import DOWNLOAD_LANE, GENERAL_LANE, job_lane_type
from catalogsync.ops.models import CommandType, ItemStatus, JobStatus
from catalogsync.ops.runner import OpsRunner
from catalogsync.ops.stages.base import Succeeded

PATCH_DOWNLOAD = "catalogsync.ops.stages.download.DownloadStageExecutor.process_item"
PATCH_SYNC = "catalogsync.ops.stages.sync.SyncStageExecutor.process_item"


def _seed_stage_item(repo, *, job_id: int, stage_type: str, item_key: str) -> int:
    stage_id = repo.create_stage(job_id=job_id, stage_type=stage_type, seq_no=1)
    return repo.create_item(
        job_stage_id=stage_id,
        item_type="song_download" if stage_type == "download" else "playlist_sync",
        item_key=item_key,
        song_id=101 if stage_type == "download" else None,
        playlist_id=201 if stage_type == "sync" else None,
        payload={"row": {"id": 101, "name": "Task Item"}},
    )


def _wait_for(predicate, timeout: float = 10.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture
def runner(repo):
    instance = OpsRunner(repository=repo, sleep_seconds=0.01)
    yield instance
    instance.stop(timeout=10)


def test_download_lane_runs_only_one_job_at_a_time(repo, runner):
    job_a = repo.create_job(job_type="download_only", config_snapshot={})
    job_b = repo.create_job(job_type="catalog_sync", config_snapshot={})
    _seed_stage_item(repo, job_id=job_a, stage_type="download", item_key="song:a")
    _seed_stage_item(repo, job_id=job_b, stage_type="download", item_key="song:b")
    gate = threading.Event()

    def slow_download(executor, item, worker_name):
        gate.wait(5)
        return Succeeded()

    with patch(PATCH_DOWNLOAD, new=slow_download):
        runner.loop_once()
        time.sleep(0.05)
        runner.loop_once()
        status_a = repo.get_job(job_a).status
        status_b = repo.get_job(job_b).status
        gate.set()
        assert _wait_for(lambda: repo.get_job(job_a).status == JobStatus.COMPLETED)
        runner.loop_once()
        assert _wait_for(lambda: repo.get_job(job_b).status != JobStatus.QUEUED)

    assert status_a == JobStatus.RUNNING
    assert status_b == JobStatus.QUEUED


def test_general_lane_job_can_run_while_download_lane_job_is_active(repo, runner):
    download_job = repo.create_job(job_type="download_only", config_snapshot={})
    sync_job = repo.create_job(job_type="sync_only", config_snapshot={})
    _seed_stage_item(repo, job_id=download_job, stage_type="download", item_key="song:d")
    _seed_stage_item(repo, job_id=sync_job, stage_type="sync", item_key="playlist:s")
    download_gate = threading.Event()
    sync_seen = threading.Event()

    def slow_download(executor, item, worker_name):
        download_gate.wait(5)
        return Succeeded()

    def fast_sync(executor, item, worker_name):
        sync_seen.set()
        return Succeeded()

    with patch(PATCH_DOWNLOAD, new=slow_download), patch(PATCH_SYNC, new=fast_sync):
        runner.loop_once()
        time.sleep(0.05)
        runner.loop_once()
        assert sync_seen.wait(5)
        download_status = repo.get_job(download_job).status
        assert _wait_for(lambda: repo.get_job(sync_job).status == JobStatus.COMPLETED)
        download_gate.set()
        assert _wait_for(lambda: repo.get_job(download_job).status == JobStatus.COMPLETED)

    assert download_status == JobStatus.RUNNING


def test_catalog_sync_is_classified_into_download_lane():
    assert job_lane_type("catalog_sync") == DOWNLOAD_LANE
    assert job_lane_type("download_upload") == DOWNLOAD_LANE
    assert job_lane_type("sync_download") == DOWNLOAD_LANE
    assert job_lane_type("download_only") == DOWNLOAD_LANE
    assert job_lane_type("sync_only") == GENERAL_LANE
    assert job_lane_type("collect_only") == GENERAL_LANE
    assert job_lane_type("upload_only") == GENERAL_LANE


def test_general_lane_runs_up_to_three_jobs_at_once(repo, runner):
    jobs = [repo.create_job("sync_only") for _ in range(4)]
    for n, job in enumerate(jobs):
        _seed_stage_item(repo, job_id=job, stage_type="sync", item_key=f"p:{n}")
    gate = threading.Event()

    def blocked_sync(executor, item, worker_name):
        gate.wait(5)
        return Succeeded()

    with patch(PATCH_SYNC, new=blocked_sync):
        runner.loop_once()
        statuses = [repo.get_job(j).status for j in jobs]
        gate.set()
        assert _wait_for(lambda: repo.get_job(jobs[0]).status == JobStatus.COMPLETED)
        for _ in range(50):
            runner.loop_once()
            if repo.get_job(jobs[3]).status == JobStatus.COMPLETED:
                break
            time.sleep(0.05)
    assert statuses == [JobStatus.RUNNING] * 3 + [JobStatus.QUEUED]
    assert repo.get_job(jobs[3]).status == JobStatus.COMPLETED


def _blocking_download(started: threading.Event, release: threading.Event):
    """An executor that works like a transfer: it checks the stop flag between chunks."""

    def process(executor, item, worker_name):
        started.set()
        while not release.is_set():
            if executor.ctx.should_stop():
                from catalogsync.errors import TransferStopped

                raise TransferStopped("stopped")
            time.sleep(0.01)
        return Succeeded()

    return process


def _run_loop_in_background(runner):
    stop = threading.Event()
    thread = threading.Thread(target=lambda: runner.run_forever(stop_event=stop), daemon=True)
    thread.start()
    return stop, thread


def test_pause_a_running_job_then_resume_it_keeping_its_place(repo, runner):
    job = repo.create_job("download_only")
    item = _seed_stage_item(repo, job_id=job, stage_type="download", item_key="song:1")
    later = repo.create_job("download_only")
    started, release = threading.Event(), threading.Event()
    with patch(PATCH_DOWNLOAD, new=_blocking_download(started, release)):
        stop, thread = _run_loop_in_background(runner)
        assert started.wait(5)
        repo.submit_command(job, CommandType.PAUSE)
        runner.nudge()
        assert _wait_for(lambda: repo.get_job(job).status == JobStatus.PAUSED, timeout=3)
        assert repo.get_item(item).status == ItemStatus.PENDING
        assert repo.get_item(item).attempts == 0, "a pause is not the item's fault"
        # The paused job left the download lane free for the next one.
        assert _wait_for(lambda: repo.get_job(later).status != JobStatus.QUEUED)
        release.set()
        assert _wait_for(lambda: repo.get_job(later).status == JobStatus.COMPLETED)
        repo.submit_command(job, CommandType.RESUME)
        runner.nudge()
        assert _wait_for(lambda: repo.get_job(job).status == JobStatus.COMPLETED)
        stop.set()
        thread.join(10)
    assert repo.get_item(item).status == ItemStatus.SUCCEEDED
    events = [e["event_type"] for e in repo.list_events(job, limit=50)]
    assert "command_pause" in events and "command_resume" in events


def test_resume_requeues_a_paused_job_ahead_of_later_jobs(repo):
    first = repo.create_job("download_only")
    second = repo.create_job("download_only")
    repo.submit_command(first, CommandType.PAUSE)
    OpsRunner(repository=repo).apply_pending_commands()
    assert repo.get_job(first).status == JobStatus.PAUSED
    third = repo.create_job("download_only")
    repo.submit_command(first, CommandType.RESUME)
    OpsRunner(repository=repo).apply_pending_commands()
    assert [j.id for j in repo.list_queued_jobs()] == [first, second, third]


def test_cancel_running_queued_and_paused_jobs(repo, runner):
    running = repo.create_job("download_only")
    item = _seed_stage_item(repo, job_id=running, stage_type="download", item_key="song:1")
    queued = repo.create_job("download_only")
    queued_item = _seed_stage_item(repo, job_id=queued, stage_type="download", item_key="s:2")
    paused = repo.create_job("sync_only", status=JobStatus.PAUSED)
    started, release = threading.Event(), threading.Event()
    with patch(PATCH_DOWNLOAD, new=_blocking_download(started, release)):
        stop, thread = _run_loop_in_background(runner)
        assert started.wait(5)
        for job in (running, queued, paused):
            repo.submit_command(job, CommandType.CANCEL)
        runner.nudge()
        assert _wait_for(
            lambda: all(
                repo.get_job(j).status == JobStatus.CANCELED for j in (running, queued, paused)
            ),
            timeout=3,
        )
        stop.set()
        thread.join(10)
    assert repo.get_item(item).status == ItemStatus.CANCELED
    assert repo.get_item(queued_item).status == ItemStatus.CANCELED
    assert not repo.list_job_workers(running, active_only=True)


def test_pause_queued_job_is_immediate_and_resumable(repo):
    job = repo.create_job("sync_only")
    repo.submit_command(job, CommandType.PAUSE)
    runner = OpsRunner(repository=repo)
    runner.apply_pending_commands()
    assert repo.get_job(job).status == JobStatus.PAUSED
    with pytest.raises(Exception, match="only queued or running jobs can be paused"):
        repo.submit_command(job, CommandType.PAUSE)
    repo.submit_command(job, CommandType.RESUME)
    runner.apply_pending_commands()
    assert repo.get_job(job).status == JobStatus.QUEUED
    runner.stop()


def test_transient_failures_retry_with_backoff_and_permanent_ones_do_not(repo, runner):
    job = repo.create_job("download_only")
    stage = repo.create_stage(job_id=job, stage_type="download", seq_no=1)
    flaky = repo.create_item(job_stage_id=stage, item_type="song_download", item_key="flaky")
    gone = repo.create_item(job_stage_id=stage, item_type="song_download", item_key="gone")
    calls: dict[int, int] = {}

    def process(executor, item, worker_name):
        item_id = item.id
        calls[item_id] = calls.get(item_id, 0) + 1
        if item_id == gone:
            raise TransferError("HTTP 404 for x", code="http_404", permanent=True)
        if calls[item_id] == 1:
            raise TransferError("connection reset", code="connection")
        return Succeeded()

    with (
        patch(PATCH_DOWNLOAD, new=process),
        patch("catalogsync.ops.workers.retry_delay", return_value=0.05),
    ):
        stop, thread = _run_loop_in_background(runner)
        assert _wait_for(lambda: repo.get_job(job).status.is_finished)
        stop.set()
        thread.join(10)
    assert calls == {flaky: 2, gone: 1}
    assert repo.get_item(flaky).status == ItemStatus.SUCCEEDED
    assert repo.get_item(gone).last_error_code == "http_404"
    assert repo.get_job(job).status == JobStatus.COMPLETED_WITH_ERRORS


def test_retry_command_requeues_failed_items(repo, runner):
    job = repo.create_job("download_only")
    stage = repo.create_stage(job_id=job, stage_type="download", seq_no=1)
    item = repo.create_item(job_stage_id=stage, item_type="song_download", item_key="x")
    failing = {"on": True}

    def process(executor, item, worker_name):
        if failing["on"]:
            raise TransferError("HTTP 404", code="http_404", permanent=True)
        return Succeeded()

    with patch(PATCH_DOWNLOAD, new=process):
        stop, thread = _run_loop_in_background(runner)
        assert _wait_for(lambda: repo.get_job(job).status == JobStatus.FAILED)
        failing["on"] = False
        repo.submit_command(job, CommandType.RETRY)
        runner.nudge()
        assert _wait_for(lambda: repo.get_job(job).status == JobStatus.COMPLETED)
        stop.set()
        thread.join(10)
    assert repo.get_item(item).status == ItemStatus.SUCCEEDED
    assert repo.get_stage(stage).failed_items == 0


def test_disk_full_pauses_the_job_with_an_event(repo, runner):
    job = repo.create_job("download_only")
    stage = repo.create_stage(job_id=job, stage_type="download", seq_no=1)
    items = [
        repo.create_item(job_stage_id=stage, item_type="song_download", item_key=f"s{n}")
        for n in range(5)
    ]

    def full(executor, item, worker_name):
        raise StorageFullError("no space left on the device while writing /lib/x.mp3")

    with patch(PATCH_DOWNLOAD, new=full):
        stop, thread = _run_loop_in_background(runner)
        assert _wait_for(lambda: repo.get_job(job).status == JobStatus.PAUSED)
        stop.set()
        thread.join(10)
    assert all(repo.get_item(i).status == ItemStatus.PENDING for i in items)
    job_row = repo.get_job(job)
    assert "no space left" in job_row.pause_reason
    assert any(e["event_type"] == "paused_storage" for e in repo.list_events(job))


def test_an_executor_bug_fails_the_item_not_the_runner(repo, runner):
    job = repo.create_job("sync_only")
    item = _seed_stage_item(repo, job_id=job, stage_type="sync", item_key="p")

    def broken(executor, item, worker_name):
        raise KeyError("oops")

    with (
        patch(PATCH_SYNC, new=broken),
        patch("catalogsync.ops.workers.retry_delay", return_value=0.01),
    ):
        stop, thread = _run_loop_in_background(runner)
        assert _wait_for(lambda: repo.get_job(job).status.is_finished)
        stop.set()
        thread.join(10)
    failed = repo.get_item(item)
    assert failed.status == ItemStatus.FAILED
    assert "KeyError" in failed.last_error
    assert repo.get_job(job).status == JobStatus.FAILED


def test_graceful_stop_puts_in_flight_items_back_and_requeues_first(repo):
    runner = OpsRunner(repository=repo, sleep_seconds=0.01)
    job = repo.create_job("download_only")
    item = _seed_stage_item(repo, job_id=job, stage_type="download", item_key="s")
    newer = repo.create_job("download_only")
    started, release = threading.Event(), threading.Event()
    with patch(PATCH_DOWNLOAD, new=_blocking_download(started, release)):
        stop, thread = _run_loop_in_background(runner)
        assert started.wait(5)
        stop.set()
        thread.join(10)
    assert repo.get_item(item).status == ItemStatus.PENDING
    assert repo.get_job(job).status == JobStatus.QUEUED
    assert [j.id for j in repo.list_queued_jobs()] == [job, newer]


def test_run_until_idle_returns_when_the_queue_is_empty(repo):
    job = repo.create_job("sync_only")
    _seed_stage_item(repo, job_id=job, stage_type="sync", item_key="p")

    def ok(executor, item, worker_name):
        return Succeeded()

    runner = OpsRunner(repository=repo, sleep_seconds=0.01)
    with patch(PATCH_SYNC, new=ok):
        thread = threading.Thread(target=lambda: runner.run_forever(until_idle=True), daemon=True)
        thread.start()
        thread.join(10)
    assert not thread.is_alive()
    assert repo.get_job(job).status == JobStatus.COMPLETED


def test_a_pause_applied_outside_the_runner_still_stops_the_job(repo, runner):
    job = repo.create_job("download_only")
    item = _seed_stage_item(repo, job_id=job, stage_type="download", item_key="s")
    started, release = threading.Event(), threading.Event()
    with patch(PATCH_DOWNLOAD, new=_blocking_download(started, release)):
        stop, thread = _run_loop_in_background(runner)
        assert started.wait(5)
        # Another process applied the command itself (it saw no live runner).
        command = repo.submit_command(job, CommandType.PAUSE)
        repo.apply_command(command)
        assert _wait_for(lambda: repo.get_job(job).status == JobStatus.PAUSED, timeout=3)
        stop.set()
        thread.join(10)
    assert repo.get_item(item).status == ItemStatus.PENDING


def test_holding_new_jobs_lets_running_ones_finish_and_starts_nothing(repo, runner):
    running = repo.create_job("sync_only")
    _seed_stage_item(repo, job_id=running, stage_type="sync", item_key="p")
    gate = threading.Event()

    def blocked(executor, item, worker_name):
        gate.wait(5)
        return Succeeded()

    with patch(PATCH_SYNC, new=blocked):
        runner.loop_once()
        runner.hold_new_jobs(True)
        queued = repo.create_job("sync_only")
        gate.set()
        assert _wait_for(lambda: repo.get_job(running).status == JobStatus.COMPLETED)
        for _ in range(5):
            runner.loop_once()
        assert repo.get_job(queued).status == JobStatus.QUEUED
        runner.hold_new_jobs(False)
        runner.loop_once()
        assert _wait_for(lambda: repo.get_job(queued).status == JobStatus.COMPLETED)


def test_an_item_claimed_with_a_success_is_released_when_a_stop_follows(repo, runner):
    """Succeeded: the worker loop marks it and claims the next in one go; a pause right then
    must leave the new claim pending, not running."""
    from catalogsync.ops.context import StopReason
    from catalogsync.ops.repository import OpsRepository

    job = repo.create_job("download_only")
    stage = repo.create_stage(job_id=job, stage_type="download", seq_no=1)
    items = [
        repo.create_item(job_stage_id=stage, item_type="song_download", item_key=f"song:{n}")
        for n in range(3)
    ]
    seen: dict[str, object] = {}

    def done(executor, item, worker_name):
        item_id = item.id
        seen["executor"] = executor
        return Succeeded({"n": item_id})

    real = OpsRepository.succeed_and_claim_next

    def then_pause(self, *args, **kwargs):
        claimed = real(self, *args, **kwargs)
        if "paused" not in seen:
            seen["paused"] = claimed
            repo.submit_command(job, CommandType.PAUSE)
            seen["executor"].ctx.stop(StopReason.PAUSE, "operator paused")
        return claimed

    with (
        patch(PATCH_DOWNLOAD, new=done),
        patch.object(OpsRepository, "succeed_and_claim_next", then_pause),
        patch("catalogsync.ops.stages.download.DownloadStageExecutor.worker_count", return_value=1),
    ):
        stop, thread = _run_loop_in_background(runner)
        assert _wait_for(lambda: repo.get_job(job).status == JobStatus.PAUSED, timeout=5)
        statuses = [repo.get_item(i).status for i in items]
        assert statuses[0] == ItemStatus.SUCCEEDED
        assert ItemStatus.RUNNING not in statuses
        assert seen["paused"] is not None and seen["paused"].id == items[1]
        assert repo.get_item(items[0]).payload["n"] == items[0]
        repo.submit_command(job, CommandType.RESUME)
        runner.nudge()
        assert _wait_for(lambda: repo.get_job(job).status == JobStatus.COMPLETED, timeout=5)
        stop.set()
        thread.join(5)
    assert [repo.get_item(i).status for i in items] == [ItemStatus.SUCCEEDED] * 3


def test_a_finished_job_wakes_the_loop_instead_of_waiting_for_its_tick(repo):
    """Reaping (job_finished, the next job in the lane) follows the job, not the timer."""
    slow_tick = OpsRunner(repository=repo, sleep_seconds=60)
    job = repo.create_job("download_only")
    _seed_stage_item(repo, job_id=job, stage_type="download", item_key="song:1")
    finished: list[int] = []
    slow_tick.on_event = lambda kind, data: (
        finished.append(data["job_id"]) if (kind == "job_finished") else None
    )

    def done(executor, item, worker_name):
        return Succeeded()

    with patch(PATCH_DOWNLOAD, new=done):
        thread = threading.Thread(target=lambda: slow_tick.run_forever(until_idle=True))
        thread.start()
        thread.join(timeout=20)
    assert not thread.is_alive(), "the loop slept through the finished job"
    assert finished == [job]
    assert repo.get_job(job).status == JobStatus.COMPLETED
