"""Download workers in a helper process: real child interpreters, a real HTTP server."""

from __future__ import annotations

import os
import signal
import sys
from unittest.mock import patch

import pytest

from catalogsync.ops import helper_process as helper_module
from catalogsync.ops.helper_process import helper_groups, helper_process_count
from catalogsync.ops.models import CommandType, ItemStatus
from catalogsync.ops.runner import OpsRunner
from catalogsync.ops.workers import StageWorkers
from tests.catalogsync.pipeline_support import (
    library_files,
    open_service,
    serve_songs,
    wait_for,
    write_m3u,
)

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes"),
    pytest.mark.usefixtures("v2_layout"),
]


@pytest.fixture
def service(tmp_path, monkeypatch):
    # Helpers start from 64 pending items; these tests use a handful.
    monkeypatch.setattr(helper_module, "HELPER_MIN_ITEMS", 1)
    monkeypatch.setattr(helper_module, "usable_cpus", lambda: 2)
    svc = open_service(tmp_path / "home")
    svc.settings.download.workers = 4
    svc.settings.download.processes = 2
    yield svc
    svc.close()


def _job(service, http_server, tmp_path, count, **song_options):
    songs = serve_songs(http_server, count, **song_options)
    entries = [("A", f"S{n}", url) for n, url in enumerate(songs)]
    path = write_m3u(tmp_path / "many.m3u", entries, name="Many")
    playlist = service.add_playlists([str(path)])[0].id
    job = service.submit_job("sync_download", playlist_ids=[playlist]).id
    return job, songs


def _download_stage(service, job):
    return next(s for s in service.job_detail(job).stages if s.stage_type == "download")


def _assert_library_matches(service, songs):
    files = library_files(service)
    assert sorted(files) == sorted(f"manifest/A/S{n}.mp3" for n in range(len(songs)))
    assert [files[f"manifest/A/S{n}.mp3"] for n in range(len(songs))] == list(songs.values())


_real_work = StageWorkers.work


def _downloaded(service, job) -> int:
    return sum((w.downloaded_bytes or 0) for w in service.job_detail(job).workers)


def _assert_handed_back(service, job):
    """Stopped mid-file: no item left running, the partial files kept for a resume."""
    stage = _download_stage(service, job)
    statuses = {i.status for i in service.repository.list_stage_items(stage.id)}
    assert ItemStatus.RUNNING not in statuses
    assert list(service.settings.library_root.rglob("*.part")), "partial files kept"


def _idle_local_workers(self, worker_name):
    """The runner's own download workers take nothing: every song goes through the helper."""
    executor, stage_id, ctx = self.executor, self.stage_id, self.ctx
    if executor.stage_type != "download":
        return _real_work(self, worker_name)
    wait_for(
        lambda: (
            ctx.should_stop()
            or not {"pending", "running"} & set(self.repository.stage_item_counts(stage_id))
        ),
        timeout=60,
    )


def test_workers_are_split_over_processes_round_robin():
    names = [f"download-{n}" for n in range(1, 6)]
    assert helper_groups(names, 1) == [names]
    assert helper_groups(names, 2) == [
        ["download-1", "download-3", "download-5"],
        ["download-2", "download-4"],
    ]
    assert helper_groups(names[:1], 4) == [["download-1"]]


def _settings(tmp_path, text=""):
    from catalogsync.config import load_settings

    home = tmp_path / "cfg"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(text, encoding="utf-8")
    return load_settings(home=str(home))


@pytest.mark.parametrize(
    ("text", "cpus", "pending", "expected"),
    [
        ("", 1, 500, 1),  # auto on one core: no helper
        ("", 2, 500, 2),  # auto on two: one helper
        ("", 8, 500, 2),  # auto never asks for more than 2 (3 and 4 measured slower)
        ("", 2, 63, 1),  # too few songs to pay a helper's start-up
        ("[download]\nprocesses = 1\n", 8, 500, 1),  # the operator said one process
        ("[download]\nprocesses = 4\n", 2, 500, 2),  # never more processes than cores
        ("[download]\nprocesses = 4\n", 8, 500, 4),
        ("[download]\nmax_bytes_per_sec = 1000\n", 8, 500, 1),  # one token bucket
        ("[[download.limits]]\nhours = '00:00-23:59'\nmax_bytes_per_sec = 9\n", 8, 500, 1),
    ],
)
def test_auto_runs_a_helper_on_two_cores_for_a_big_stage(tmp_path, text, cpus, pending, expected):
    settings = _settings(tmp_path, text)
    assert helper_process_count(settings, "download", pending, cpus=cpus) == expected
    assert helper_process_count(settings, "upload", pending, cpus=cpus) == 1


def test_auto_is_the_default_and_is_kept_in_the_job_snapshot(tmp_path):
    assert _settings(tmp_path).download.processes == "auto"
    assert _settings(tmp_path, "[download]\nprocesses = 3\n").download.processes == 3


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, 6),  # no cgroup files: the affinity mask
        ({"cpu.max": "max 100000\n"}, 6),  # v2, no quota
        ({"cpu.max": "100000 100000\n"}, 1),  # v2: docker --cpus=1
        ({"cpu.max": "150000 100000\n"}, 1),  # 1.5 cores: not two whole ones
        ({"cpu.max": "400000 100000\n"}, 4),
        ({"cpu.max": "200000 100000\n", "svc/cpu.max": "100000 100000\n"}, 1),  # the unit's
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, 6),  # v1
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2),
        ({"cpu.max": "garbage\n"}, 6),
    ],
)
def test_usable_cpus_follows_the_affinity_mask_and_a_cgroup_quota(
    tmp_path, monkeypatch, files, expected
):
    root = tmp_path / "cgroup"
    root.mkdir()
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    proc = tmp_path / "proc-cgroup"
    proc.write_text("0::/svc\n", encoding="utf-8")
    monkeypatch.setattr(helper_module.os, "sched_getaffinity", lambda pid: set(range(6)))
    real_own = helper_module._own_cgroup
    monkeypatch.setattr(helper_module, "_own_cgroup", lambda r: real_own(r, proc))
    assert helper_module.usable_cpus(root) == expected


def test_a_helper_process_downloads_beside_the_runner_and_the_files_are_identical(
    service, http_server, tmp_path
):
    job, songs = _job(service, http_server, tmp_path, 12, size=120_000, rate_bps=300_000)
    pids: set[int] = set()
    runner = service.make_runner()
    real = OpsRunner._start_helper

    def remember(self, *args):
        helper = real(self, *args)
        pids.add(helper.pid)
        return helper

    with patch.object(OpsRunner, "_start_helper", remember):
        runner.run_forever(until_idle=True, lease=service.lease)

    assert service.job_row(job).status == "completed"
    assert len(pids) == 1 and os.getpid() not in pids
    _assert_library_matches(service, songs)
    workers = {w.worker_name: w for w in service.job_detail(job).workers}
    helper_done = workers["download-2"].processed_count + workers["download-4"].processed_count
    assert helper_done >= 1, "the helper's workers took items"
    assert sum(w.processed_count for n, w in workers.items() if n.startswith("download")) == 12
    recorded = service.catalog.list_library_files(service.catalog.default_backend()["id"])
    unflushed = [f for f in recorded if not f.get("flushed_at")]
    assert unflushed == [], "the helper flushed and stamped its files before it exited"


def test_a_helper_alone_finishes_the_stage(service, http_server, tmp_path):
    job, songs = _job(service, http_server, tmp_path, 6)
    with patch.object(StageWorkers, "work", _idle_local_workers):
        service.run_headless(until_idle=True)
    assert service.job_row(job).status == "completed"
    _assert_library_matches(service, songs)
    stage = _download_stage(service, job)
    assert (stage.success_items, stage.failed_items) == (6, 0)


def test_pause_reaches_the_helper_within_a_second_and_resume_finishes(
    service, http_server, tmp_path
):
    job, songs = _job(service, http_server, tmp_path, 4, size=400_000, rate_bps=100_000)
    with patch.object(StageWorkers, "work", _idle_local_workers):
        assert service.start_runner_thread()
        try:
            assert wait_for(lambda: _downloaded(service, job) > 100_000)
            assert service.runner.helper_pids()
            service.command(job, CommandType.PAUSE)
            assert wait_for(lambda: service.job_row(job).status == "paused", timeout=5)
            assert service.runner.helper_pids() == []
            _assert_handed_back(service, job)
        finally:
            service.stop_runner()
    service.command(job, CommandType.RESUME)
    service.run_headless(until_idle=True)
    assert service.job_row(job).status == "completed"
    assert any(r.range for n in range(4) for r in http_server.requests(f"/song{n}.mp3"))
    _assert_library_matches(service, songs)


def test_a_full_disk_in_the_helper_pauses_the_whole_job(service, http_server, tmp_path):
    job, _songs = _job(service, http_server, tmp_path, 4)
    service.settings.download.reserve_mb = 1 << 40  # the helper gets these settings
    with patch.object(StageWorkers, "work", _idle_local_workers):
        service.run_headless(until_idle=True)
    row = service.job_row(job)
    assert row.status == "paused"
    assert "no local backend has room" in row.pause_reason
    stage = _download_stage(service, job)
    statuses = {i.status for i in service.repository.list_stage_items(stage.id)}
    assert statuses == {ItemStatus.PENDING}
    assert all(http_server.requests(f"/song{n}.mp3") == [] for n in range(4))


def test_a_killed_helper_hands_its_items_back_and_the_runner_finishes_alone(
    service, http_server, tmp_path
):
    job, songs = _job(service, http_server, tmp_path, 8, size=300_000, rate_bps=150_000)
    killed: list[int] = []
    with patch("catalogsync.ops.workers.retry_delay", return_value=0.05):
        assert service.start_runner_thread()
        try:
            assert wait_for(lambda: service.runner.helper_pids(), timeout=10)
            helper_names = ("download-2", "download-4")
            assert wait_for(
                lambda: any(
                    (w.downloaded_bytes or 0) > 50_000
                    for w in service.job_detail(job).workers
                    if w.worker_name in helper_names
                ),
                timeout=20,
            )
            killed = service.runner.helper_pids()
            os.kill(killed[0], signal.SIGKILL)
            assert wait_for(lambda: service.job_row(job).status == "completed", timeout=60)
            assert service.runner.helper_pids() == [], "no new helper after one died"
        finally:
            service.stop_runner()
    _assert_library_matches(service, songs)
    stage = _download_stage(service, job)
    assert (stage.success_items, stage.failed_items) == (8, 0)
    events = [e for e in service.job_detail(job).events if e.event_type == "helper_failed"]
    assert len(events) == 1
    assert f"process {killed[0]} was killed by signal 9" in events[0].message
    assert not list(service.settings.library_root.rglob("*.part"))


HELPER_NAMES = ("download-2", "download-4")


def _workers_of(service, job, names):
    return [w for w in service.job_detail(job).workers if w.worker_name in names]


def _event_texts(service, job, kind):
    return [e.message for e in service.job_detail(job).events if e.event_type == kind]


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_helper_that_ends_mid_stage_is_seen_at_once_and_its_workers_go_on_here(
    service, http_server, tmp_path, how
):
    """Not at the stage's end: the stage keeps the workers the operator set."""
    job, songs = _job(service, http_server, tmp_path, 16, size=300_000, rate_bps=150_000)
    with patch("catalogsync.ops.workers.retry_delay", return_value=0.05):
        assert service.start_runner_thread()
        try:
            assert wait_for(lambda: service.runner.helper_pids(), timeout=10)
            pid = service.runner.helper_pids()[0]
            assert wait_for(
                lambda: (
                    sum(w.downloaded_bytes or 0 for w in _workers_of(service, job, HELPER_NAMES))
                    > 50_000
                ),
                timeout=20,
            )
            os.kill(pid, how)
            kind = "helper_failed" if how == signal.SIGKILL else "helper_stopped"
            assert wait_for(lambda: _event_texts(service, job, kind), timeout=15)
            assert service.job_row(job).status == "running", "seen while the stage runs"
            assert not os.path.exists(f"/proc/{pid}"), "the helper was reaped, no zombie"
            done = sum(w.processed_count for w in _workers_of(service, job, HELPER_NAMES))
            assert wait_for(
                lambda: (
                    sum(w.processed_count for w in _workers_of(service, job, HELPER_NAMES)) > done
                ),
                timeout=30,
            ), "the helper's worker names take songs in the runner"
            assert wait_for(lambda: service.job_row(job).status == "completed", timeout=60)
        finally:
            service.stop_runner()
    _assert_library_matches(service, songs)
    stage = _download_stage(service, job)
    assert (stage.success_items, stage.failed_items) == (16, 0)
    if how == signal.SIGTERM:
        assert _event_texts(service, job, "helper_failed") == []
        (text,) = _event_texts(service, job, "helper_stopped")
        assert f"process {pid} stopped before the stage ended" in text
        items = service.repository.list_stage_items(stage.id)
        assert all(i.last_error_code is None for i in items), "nothing charged as lost"
    else:
        (text,) = _event_texts(service, job, "helper_failed")
        assert f"process {pid} was killed by signal 9" in text


def test_a_helper_whose_runner_dies_stops_and_hands_its_items_back(service, http_server, tmp_path):
    """The runner's end of the pipe closes (SIGKILL): the helper stops like a shutdown."""
    from catalogsync.ops.helper_process import HelperProcess

    job, _songs = _job(service, http_server, tmp_path, 4, size=400_000, rate_bps=100_000)
    with patch.object(StageWorkers, "work", _idle_local_workers):
        assert service.start_runner_thread()
        try:
            assert wait_for(lambda: _downloaded(service, job) > 50_000)
            helper: HelperProcess = service.runner._helpers[service.runner.helper_pids()[0]]
            helper._proc.stdin.close()  # what the kernel does when the runner is killed
            assert wait_for(lambda: not helper.running(), timeout=5)
            assert helper._proc.returncode == 0 and helper.clean
            _assert_handed_back(service, job)
        finally:
            service.stop_runner()


def test_a_helper_that_cannot_start_leaves_its_workers_in_the_runner(
    service, http_server, tmp_path
):
    job, songs = _job(service, http_server, tmp_path, 6)

    def no_interpreter(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", "/usr/bin/python3")

    with patch("catalogsync.ops.helper_process.subprocess.Popen", no_interpreter):
        service.run_headless(until_idle=True)

    assert service.job_row(job).status == "completed"
    _assert_library_matches(service, songs)
    workers = {w.worker_name: w for w in service.job_detail(job).workers}
    assert sum(workers[f"download-{n}"].processed_count for n in range(1, 5)) == 6
    events = [e for e in service.job_detail(job).events if e.event_type == "helper_failed"]
    assert len(events) == 1 and "cannot start a download helper" in events[0].message
