"""Schedules: next-run times, DST, catch-up after downtime and the queueing lock (injected clock)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from catalogsync import clock
from catalogsync.catalog.repository import CatalogRepository
from catalogsync.config import load_settings
from catalogsync.db import SCHEMA_VERSION, initialize_database
from catalogsync.errors import ConfigError
from catalogsync.ops.models import JobStatus
from catalogsync.ops.repository import OpsRepository
from catalogsync.ops.schedules import Scheduler, next_after, next_schedule, schedule_rows

BERLIN = ZoneInfo("Europe/Berlin")
REPO_ROOT = Path(__file__).resolve().parents[2]


def at(*args: int) -> float:
    return datetime(*args, tzinfo=BERLIN).timestamp()


def local(ts: float) -> str:
    return datetime.fromtimestamp(ts, BERLIN).strftime("%Y-%m-%d %H:%M %Z")


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    initialize_database(path / "catalogsync.db", path / "library").close()
    return path


def configure(home: Path, text: str):
    (home / "config.toml").write_text(text, encoding="utf-8")
    return load_settings(home=str(home))


def make(home: Path, text: str, now: Clock) -> tuple[Scheduler, OpsRepository, CatalogRepository]:
    settings = configure(home, text)
    ops = OpsRepository(settings.db_path)
    catalog = CatalogRepository(settings.db_path, share_with=ops)
    return Scheduler(settings, ops, catalog, now=now, zone=BERLIN), ops, catalog


NIGHTLY = """
[[schedules]]
name = "nightly"
cron = "0 3 * * *"
job = "sync_download"
catch_up = {catch_up}
"""


def scheduled_jobs(ops: OpsRepository, name: str = "nightly"):
    return [j for j in ops.list_jobs() if j.requested_by == f"schedule:{name}"]


def test_next_run_times_follow_the_cron_line_in_local_time():
    start = at(2026, 1, 10, 12, 0)
    assert local(next_after("0 3 * * *", start, BERLIN)) == "2026-01-11 03:00 CET"
    assert local(next_after("*/15 * * * *", start, BERLIN)) == "2026-01-10 12:15 CET"
    assert local(next_after("30 8 * * 1-5", start, BERLIN)) == "2026-01-12 08:30 CET"  # a Saturday
    assert local(next_after("0 3 * * *", at(2026, 7, 1, 4, 0), BERLIN)) == "2026-07-02 03:00 CEST"


def test_a_schedule_runs_at_its_slot_and_not_before(home):
    now = Clock(at(2026, 1, 10, 2, 58))
    scheduler, ops, _ = make(home, NIGHTLY.format(catch_up="false"), now)
    assert scheduler.tick() == []  # first sight: counts from now
    now.now = at(2026, 1, 10, 2, 59, 59)
    assert scheduler.tick() == []
    now.now = at(2026, 1, 10, 3, 0, 1)
    fired = scheduler.tick()
    assert [(f.name, f.result) for f in fired] == [("nightly", "submitted")]
    job = ops.require_job(fired[0].job_id)
    assert (job.job_type, job.requested_by, job.status) == (
        "sync_download",
        "schedule:nightly",
        JobStatus.QUEUED,
    )
    assert [s.stage_type for s in ops.list_job_stages(job.id)] == ["sync", "download"]
    now.now += 30
    assert scheduler.tick() == [], "one slot, one job"


def test_spring_forward_runs_a_skipped_time_once_and_autumn_runs_a_repeated_time_once(home):
    text = """
[[schedules]]
name = "half-past-two"
cron = "30 2 * * *"
job = "sync_only"

[[schedules]]
name = "hourly"
cron = "0 * * * *"
job = "collect_only"
"""
    spring = ["01:00 CET", "03:00 CEST", "04:00 CEST", "05:00 CEST"]
    autumn = ["01:00 CEST", "02:00 CEST", "02:00 CET", "03:00 CET"]
    for night, expected_hourly in (
        (at(2026, 3, 29, 0, 0), spring),
        (at(2026, 10, 25, 0, 0), autumn),
    ):
        for job in OpsRepository(home / "catalogsync.db").list_jobs():
            OpsRepository(home / "catalogsync.db").set_job_status(job.id, JobStatus.COMPLETED)
        now = Clock(night)
        scheduler, ops, _ = make(home, text, now)
        scheduler._loaded = False
        ops.save_schedule_state("half-past-two", "30 2 * * *", "sync_only", last_slot_at=night)
        ops.save_schedule_state("hourly", "0 * * * *", "collect_only", last_slot_at=night)
        fired = []
        # Tick once a minute through the night in real (UTC) time: 4 hours = 240 ticks.
        for _ in range(240):
            now.now += 60
            for outcome in scheduler.tick():
                fired.append((outcome.name, local(now.now)))
                ops.set_job_status(outcome.job_id, JobStatus.COMPLETED)
        half = [when for name, when in fired if name == "half-past-two"]
        hourly = [when for name, when in fired if name == "hourly"]
        if night == at(2026, 3, 29, 0, 0):
            # 02:30 does not exist that night: it runs at the first minute after the jump.
            assert half == ["2026-03-29 03:00 CEST"]
        else:
            # 02:30 happens twice: it runs once, the first time.
            assert half == ["2026-10-25 02:30 CEST"]
        # An hourly job runs once per real hour: one an hour shorter night, one more in autumn.
        assert [when[11:] for when in hourly] == expected_hourly


def test_catch_up_after_downtime_runs_once_at_start(home):
    now = Clock(at(2026, 1, 10, 12, 0))
    scheduler, ops, _ = make(home, NIGHTLY.format(catch_up="true"), now)
    scheduler.tick()
    # The runner is down for three nights; a new runner (a new Scheduler) starts at noon.
    now.now = at(2026, 1, 13, 12, 0)
    restarted, ops, _ = make(home, NIGHTLY.format(catch_up="true"), now)
    fired = restarted.tick()
    assert [f.result for f in fired] == ["submitted"]
    assert len(scheduled_jobs(ops)) == 1, "three missed nights are one catch-up run"
    events = [e["message"] for e in ops.list_events(fired[0].job_id)]
    assert any("catch-up for 2026-01-13T02:00:00Z" in m for m in events), events
    now.now += 60
    assert restarted.tick() == []
    state = ops.schedule_states()["nightly"]
    assert (state["last_result"], state["last_job_id"]) == ("submitted", fired[0].job_id)


def test_without_catch_up_a_missed_run_is_an_event_and_the_next_slot_runs(home):
    now = Clock(at(2026, 1, 10, 12, 0))
    scheduler, ops, _ = make(home, NIGHTLY.format(catch_up="false"), now)
    scheduler.tick()
    now.now = at(2026, 1, 12, 9, 0)
    restarted, ops, _ = make(home, NIGHTLY.format(catch_up="false"), now)
    assert [f.result for f in restarted.tick()] == ["missed"]
    assert scheduled_jobs(ops) == []
    assert any(e["event_type"] == "schedule_missed" for e in ops.list_events())
    now.now = at(2026, 1, 13, 3, 0, 5)
    assert [f.result for f in restarted.tick()] == ["submitted"]


def test_the_queueing_lock_skips_a_slot_while_the_same_job_is_unfinished(home):
    now = Clock(at(2026, 1, 10, 2, 0))
    text = """
[[schedules]]
name = "quarter"
cron = "*/15 * * * *"
job = "download_only"
playlists = [1]
"""
    scheduler, ops, catalog = make(home, text, now)
    catalog.upsert_playlist(platform="manifest", remote_id="a", name="A", wanted=True)
    scheduler.tick()
    now.now = at(2026, 1, 10, 2, 15, 2)
    first = scheduler.tick()[0]
    assert first.result == "submitted"
    assert ops.require_job(first.job_id).playlist_scope == {"playlist_ids": [1]}
    ops.claim_job_if_queued(first.job_id)  # running now
    now.now = at(2026, 1, 10, 2, 30, 2)
    skipped = scheduler.tick()[0]
    assert (skipped.result, skipped.job_id) == ("skipped", first.job_id)
    assert len(scheduled_jobs(ops, "quarter")) == 1
    events = ops.list_events(first.job_id)
    assert any(
        e["event_type"] == "schedule_skipped" and "still unfinished" in e["message"] for e in events
    )
    # A job of the same type with another scope does not hold the lock ...
    ops.create_job("download_only", {}, playlist_scope={"playlist_ids": [2]})
    ops.set_job_status(first.job_id, JobStatus.COMPLETED)
    now.now = at(2026, 1, 10, 2, 45, 2)
    assert scheduler.tick()[0].result == "submitted"
    assert len(scheduled_jobs(ops, "quarter")) == 2


def test_wanted_scope_is_resolved_when_due_and_nothing_wanted_is_skipped(home):
    text = """
[[schedules]]
name = "wanted"
cron = "0 * * * *"
job = "sync_download"
playlists = "wanted"
priority = 50
"""
    now = Clock(at(2026, 1, 10, 1, 30))
    scheduler, ops, catalog = make(home, text, now)
    scheduler.tick()
    now.now = at(2026, 1, 10, 2, 0, 1)
    assert [f.result for f in scheduler.tick()] == ["skipped"]
    assert "no playlist is marked wanted" in ops.list_events()[0]["message"]
    catalog.upsert_playlist(platform="manifest", remote_id="a", name="A", wanted=True)
    catalog.upsert_playlist(platform="manifest", remote_id="b", name="B", wanted=False)
    catalog.upsert_playlist(platform="manifest", remote_id="c", name="C", wanted=True)
    now.now = at(2026, 1, 10, 3, 0, 1)
    job = ops.require_job(scheduler.tick()[0].job_id)
    assert job.playlist_scope == {"playlist_ids": [1, 3]}
    assert job.priority == 50


def test_a_changed_cron_line_starts_counting_afresh(home):
    now = Clock(at(2026, 1, 10, 12, 0))
    scheduler, ops, _ = make(home, NIGHTLY.format(catch_up="true"), now)
    scheduler.tick()
    now.now = at(2026, 1, 13, 12, 0)
    changed, ops, _ = make(home, NIGHTLY.format(catch_up="true").replace("0 3", "0 4"), now)
    assert changed.tick() == [], "a new cron line has no missed runs"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('name = "x"\ncron = "0 3 * *"\njob = "sync_only"', "five fields"),
        ('name = "x"\ncron = "61 3 * * *"\njob = "sync_only"', "Bad minute"),
        ('name = "x"\ncron = "0 3 * * *"\njob = "nap"', "job must be one of"),
        ('name = "x"\ncron = "0 3 * * *"\njob = "sync_only"\nplaylists = "all"', "playlists must"),
        ('cron = "0 3 * * *"\njob = "sync_only"', "name must be"),
        ('name = "x"\ncron = "0 3 * * *"\njob = "sync_only"\nsources = ["nope"]', "no source"),
        ('name = "x"\ncron = "0 3 * * *"\njob = "upload_only"', 'needs backend = "NAME"'),
    ],
)
def test_a_bad_schedule_is_one_config_error_naming_it(home, body, message):
    with pytest.raises(ConfigError) as info:
        configure(home, "[[schedules]]\n" + body + "\n")
    assert message in str(info.value)
    assert "[[schedules]]" in str(info.value)
    assert "\n" not in str(info.value)


def test_schedules_list_and_the_dashboard_show_the_next_run(home, tmp_path):
    clock.freeze(at(2026, 1, 10, 12, 0))
    settings = configure(
        home,
        NIGHTLY.format(catch_up="true")
        + """
[[schedules]]
name = "soon"
cron = "30 12 * * *"
job = "sync_only"
""",
    )
    rows = schedule_rows(settings.unattended.schedules, {}, zone=BERLIN)
    assert [(r["name"], r["next_run_at"]) for r in rows] == [
        ("nightly", "2026-01-11T02:00:00Z"),
        ("soon", "2026-01-10T11:30:00Z"),
    ]
    assert next_schedule(settings.unattended.schedules, zone=BERLIN) == {
        "name": "soon",
        "job_type": "sync_only",
        "next_run_at": "2026-01-10T11:30:00Z",
    }
    env = {**os.environ, "TZ": "Europe/Berlin", "CATALOGSYNC_HOME": str(home)}
    listed = subprocess.run(
        [sys.executable, "-m", "catalogsync.cli", "schedules", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    names = [r["name"] for r in json.loads(listed.stdout)["schedules"]]
    assert names == ["nightly", "soon"]
    status = subprocess.run(
        [sys.executable, "-m", "catalogsync.cli", "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert json.loads(status.stdout)["next_schedule"]["name"] in ("nightly", "soon")


def test_schema_has_the_schedule_table(home):
    conn = initialize_database(home / "catalogsync.db")
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = {r[1] for r in conn.execute("PRAGMA table_info(schedule_runs)")}
    finally:
        conn.close()
    assert {"name", "cron", "last_slot_at", "last_result", "last_job_id"} <= columns


def test_a_real_runner_submits_a_job_from_an_every_minute_schedule(home):
    (home / "config.toml").write_text(
        '[[schedules]]\nname = "every-minute"\ncron = "* * * * *"\njob = "collect_only"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "CATALOGSYNC_HOME": str(home)}
    env.pop("NOTIFY_SOCKET", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "catalogsync.cli", "run"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ops = OpsRepository(home / "catalogsync.db")
    try:
        deadline = time.monotonic() + 75
        jobs: list = []
        while time.monotonic() < deadline and process.poll() is None:
            jobs = scheduled_jobs(ops, "every-minute")
            if jobs and jobs[0].status.is_finished:
                break
            time.sleep(0.5)
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert jobs, "no job was submitted within 75 s"
        assert jobs[0].job_type == "collect_only"
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "schedule every-minute: job" in err


def test_a_bad_schedule_stops_every_command_with_one_line(home):
    (home / "config.toml").write_text(
        '[[schedules]]\nname = "n"\ncron = "0 25 * * *"\njob = "sync_only"\n', encoding="utf-8"
    )
    env = {**os.environ, "CATALOGSYNC_HOME": str(home)}
    for args in (["schedules", "list"], ["run", "--until-idle"]):
        result = subprocess.run(
            [sys.executable, "-m", "catalogsync.cli", *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert "[[schedules]] 'n': cron '0 25 * * *': Bad hour" in result.stderr


def test_the_tuis_embedded_runner_evaluates_schedules_too(home):
    from catalogsync.service import Catalogsync

    (home / "config.toml").write_text(
        '[[schedules]]\nname = "hourly"\ncron = "0 * * * *"\njob = "collect_only"\n',
        encoding="utf-8",
    )
    clock.freeze(datetime(2026, 1, 10, 11, 59, 30).astimezone().timestamp())
    service = Catalogsync.open(home=str(home))
    try:
        assert service.start_runner_thread(), "the embedded runner takes the lease"
        deadline = time.monotonic() + 30
        while "hourly" not in service.repository.schedule_states() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "hourly" in service.repository.schedule_states()
        clock.freeze(datetime(2026, 1, 10, 12, 0, 1).astimezone().timestamp())
        while not scheduled_jobs(service.repository, "hourly") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [j.requested_by for j in scheduled_jobs(service.repository, "hourly")] == [
            "schedule:hourly"
        ]
    finally:
        service.close()


def test_an_upload_schedule_names_its_backend_and_a_missing_one_skips_the_run(home, tmp_path):
    text = """
[[schedules]]
name = "copy"
cron = "0 * * * *"
job = "upload_only"
backend = "nas"
"""
    now = Clock(at(2026, 1, 10, 1, 30))
    scheduler, ops, catalog = make(home, text, now)
    scheduler.tick()
    now.now = at(2026, 1, 10, 2, 0, 1)
    skipped = scheduler.tick()[0]
    assert skipped.result == "skipped" and "no storage backend named 'nas'" in skipped.message
    catalog.add_backend("nas", "local", str(tmp_path / "nas"), {})
    now.now = at(2026, 1, 10, 3, 0, 1)
    job = ops.require_job(scheduler.tick()[0].job_id)
    assert (job.job_type, job.backend_name) == ("upload_only", "nas")
