"""Real `catalogsync run` processes: SIGKILL and SIGTERM mid-download, the lease, many writers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from catalogsync.ops.models import ItemStatus, JobStatus
from tests.catalogsync.pipeline_support import (
    library_files,
    open_service,
    serve_songs,
    wait_for,
    write_m3u,
)

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
    pytest.mark.usefixtures("v2_layout"),
]


def _cli(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "catalogsync.cli", "--home", str(home), *args]


def _start_runner(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        _cli(home, "run", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(proc: subprocess.Popen, grace: float = 0.0) -> str:
    """Wait up to ``grace`` seconds, then kill; returns what the process wrote to stderr."""
    try:
        _, err = proc.communicate(timeout=grace or None) if grace else (None, None)
    except subprocess.TimeoutExpired:
        err = None
    if proc.poll() is None:
        proc.kill()
    if err is None:
        _, err = proc.communicate(timeout=10)
    return err or ""


@pytest.fixture
def slow_job(tmp_path, http_server):
    """A queued sync_download of 6 throttled songs (about 1.5 s each)."""
    home = tmp_path / "home"
    service = open_service(home)
    songs = serve_songs(http_server, 6, size=300_000, rate_bps=200_000)
    path = write_m3u(tmp_path / "slow.m3u", [("A", f"S{n}", u) for n, u in enumerate(songs)])
    playlist = service.add_playlists([str(path)])[0].id
    job = service.submit_job("sync_download", playlist_ids=[playlist]).id
    service.close()
    return home, job, songs


def test_sigkill_mid_download_then_a_new_runner_finishes_every_item_once(slow_job):
    home, job, songs = slow_job
    runner = _start_runner(home)
    try:
        service = open_service(home)
        # Kill while at least one song is done and others are half-written.
        assert wait_for(
            lambda: (
                service.job_row(job).done_items >= 1
                and list(service.settings.library_root.rglob("*.part"))
            ),
            timeout=30,
        )
        runner.send_signal(signal.SIGKILL)
        runner.wait(10)
    finally:
        _stop(runner)
    assert service.job_row(job).status == "running", "a killed runner leaves the job running"

    finisher = subprocess.run(
        _cli(home, "run", "--until-idle"), capture_output=True, text=True, timeout=120
    )
    assert finisher.returncode == 0, finisher.stderr

    assert service.job_row(job).status == JobStatus.COMPLETED
    stage = next(s for s in service.job_detail(job).stages if s.stage_type == "download")
    items = service.repository.list_stage_items(stage.id)
    assert len(items) == 6 and all(i.status == ItemStatus.SUCCEEDED for i in items)
    assert (stage.success_items, stage.failed_items, stage.total_items) == (6, 0, 6)
    files = library_files(service)
    assert sorted(files) == sorted(f"manifest/A/S{n}.mp3" for n in range(6)), "no duplicates"
    assert [files[f"manifest/A/S{n}.mp3"] for n in range(6)] == list(songs.values())
    recorded = service.catalog.list_library_files(service.catalog.default_backend()["id"])
    assert len(recorded) == 6
    events = [e["event_type"] for e in service.repository.list_events(limit=100)]
    assert "recovered" in events
    service.close()


def test_sigterm_stops_gracefully_and_requeues_the_job_first(slow_job):
    home, job, _ = slow_job
    runner = _start_runner(home)
    service = open_service(home)
    try:
        assert wait_for(lambda: list(service.settings.library_root.rglob("*.part")), timeout=30)
        runner.send_signal(signal.SIGTERM)
        runner.wait(15)
    finally:
        _stop(runner)
    assert runner.returncode == 0
    assert service.job_row(job).status == "queued"
    stage = next(s for s in service.job_detail(job).stages if s.stage_type == "download")
    statuses = {i.status for i in service.repository.list_stage_items(stage.id)}
    assert ItemStatus.RUNNING not in statuses
    assert service.repository.get_lease() is None, "a graceful stop releases the lease"
    assert list(service.settings.library_root.rglob("*.part")), "partial files are kept"
    service.close()


def test_a_second_runner_on_the_same_database_exits_1_naming_the_holder(tmp_path):
    home = tmp_path / "home"
    first = _start_runner(home)
    try:
        service = open_service(home)
        assert wait_for(lambda: service.repository.get_lease() is not None, timeout=20)
        second = subprocess.run(_cli(home, "run"), capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 2, second.stderr  # the banner and the one-line error
        assert f"pid {first.pid}" in lines[-1] and "Traceback" not in second.stderr
        first.send_signal(signal.SIGTERM)
        first.wait(15)
        assert first.returncode == 0
        service.close()
    finally:
        _stop(first)


def test_a_stale_lease_of_a_dead_process_is_taken_over(tmp_path):
    home = tmp_path / "home"
    service = open_service(home)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    import socket

    assert (
        service.repository.try_acquire_lease(
            "ghost", int(dead), socket.gethostname(), stale_after=30, holder_alive=lambda r: True
        )
        is None
    )
    result = subprocess.run(
        _cli(home, "run", "--until-idle"), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    service.close()


CLIENT = textwrap.dedent(
    """
    import json, sys, time
    from catalogsync.service import Catalogsync
    from catalogsync.errors import InvalidTransitionError
    from catalogsync.ops.models import CommandType

    home, seconds = sys.argv[1], float(sys.argv[2])
    service = Catalogsync.open(home=home)
    errors, commands, reads = [], [], 0
    job = service.submit_job("download_only", requested_by="client").id
    deadline = time.monotonic() + seconds
    want = "pause"
    while time.monotonic() < deadline:
        try:
            service.dashboard()
            service.task_rows()
            reads += 1
            status = service.job_row(job).status
            if want == "pause" and status == "queued":
                commands.append(service.repository.submit_command(job, CommandType.PAUSE))
                service.nudge()
                want = "resume"
            elif want == "resume" and status == "paused":
                commands.append(service.repository.submit_command(job, CommandType.RESUME))
                want = "pause"
        except InvalidTransitionError as exc:
            # The job was read queued and finished before the pause was written (the
            # runner is nudged on submit, so an empty job can end within milliseconds).
            if "it is completed" not in str(exc):
                errors.append(f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        time.sleep(0.01)
    print(json.dumps({"job": job, "errors": errors, "commands": commands, "reads": reads}))
    """
)


def test_runner_and_several_clients_never_see_database_is_locked(slow_job, tmp_path):
    home, _job, _ = slow_job
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    runner = _start_runner(home)
    try:
        service = open_service(home)
        assert wait_for(lambda: service.repository.get_lease() is not None, timeout=20)
        clients = [
            subprocess.Popen(
                [sys.executable, str(script), str(home), "6"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": os.getcwd()},
            )
            for _ in range(4)
        ]
        results = []
        for client in clients:
            out, err = client.communicate(timeout=90)
            assert client.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        command_ids = [c for r in results for c in r["commands"]]
        assert all(not r["errors"] for r in results), [r["errors"] for r in results]
        assert sum(r["reads"] for r in results) > 100
        assert len(command_ids) >= 8
        assert wait_for(
            lambda: all(
                service.repository.get_command(c)["status"] != "pending" for c in command_ids
            ),
            timeout=10,
        ), "every command is handled by the runner"
        commands = [service.repository.get_command(c) for c in command_ids]
        # A client pauses its job when it sees it queued; once the slow job is done the
        # runner may start (and finish: nothing left to download) that job first. Then,
        # and only then, is the pause rejected, saying why.
        for command in commands:
            if command["status"] == "rejected":
                job = service.repository.require_job(int(command["job_run_id"]))
                assert job.status == JobStatus.COMPLETED, command
                assert "completed" in command["message"], command
            else:
                assert command["status"] == "applied", command
        assert sum(c["status"] == "applied" for c in commands) >= 8
        service.close()
    finally:
        runner.send_signal(signal.SIGTERM)
        stderr = _stop(runner, grace=15)
    assert runner.returncode == 0, stderr
    assert "database is locked" not in stderr and "Traceback" not in stderr


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc for the helper's pid")
def test_sigterm_to_the_runner_and_its_helper_at_once_charges_no_attempt(tmp_path, http_server):
    """systemd's default KillMode=control-group signals every process of the unit."""
    from catalogsync.ops.helper_process import HELPER_MIN_ITEMS, usable_cpus

    if usable_cpus() < 2:
        pytest.skip("a helper process needs 2 usable cores")
    home = tmp_path / "home"  # the v2 layout's config.toml is there already
    config = home / "config.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + "\n[download]\nworkers = 4\nprocesses = 2\n",
        encoding="utf-8",
    )
    service = open_service(home)
    count = HELPER_MIN_ITEMS
    songs = serve_songs(http_server, count, size=60_000, rate_bps=120_000)
    path = write_m3u(tmp_path / "many.m3u", [("A", f"S{n}", u) for n, u in enumerate(songs)])
    playlist = service.add_playlists([str(path)])[0].id
    job = service.submit_job("sync_download", playlist_ids=[playlist]).id
    runner = _start_runner(home)
    try:
        assert wait_for(lambda: _children(runner.pid), timeout=30), "a helper started"
        helper = _children(runner.pid)[0]
        assert wait_for(
            lambda: len(list(service.settings.library_root.rglob("*.part"))) >= 4, timeout=30
        ), "every worker, the helper's too, is mid-song"
        for pid in (helper, runner.pid):
            os.kill(pid, signal.SIGTERM)
        runner.wait(20)
    finally:
        err = _stop(runner)
    assert runner.returncode == 0, err
    assert service.job_row(job).status == "queued"
    stage = next(s for s in service.job_detail(job).stages if s.stage_type == "download")
    items = service.repository.list_stage_items(stage.id)
    assert {i.status for i in items} <= {ItemStatus.PENDING, ItemStatus.SUCCEEDED}
    assert all(i.last_error_code is None for i in items), "no item failed or charged as lost"
    assert all(i.attempts == 0 for i in items if i.status == ItemStatus.PENDING), (
        "no attempt charged"
    )
    events = [e["event_type"] for e in service.repository.list_events(limit=200)]
    assert "helper_failed" not in events

    finisher = subprocess.run(
        _cli(home, "run", "--until-idle"), capture_output=True, text=True, timeout=180
    )
    assert finisher.returncode == 0, finisher.stderr
    assert service.job_row(job).status == JobStatus.COMPLETED
    files = library_files(service)
    assert sorted(files) == sorted(f"manifest/A/S{n}.mp3" for n in range(count))
    assert [files[f"manifest/A/S{n}.mp3"] for n in range(count)] == list(songs.values())
    service.close()
