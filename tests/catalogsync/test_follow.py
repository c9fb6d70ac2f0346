"""The --wait follower waits between status checks; it never spins on the database."""

from __future__ import annotations

import pytest
from rich.console import Console

from catalogsync import follow
from catalogsync.ops.models import JobStatus


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class FakeService:
    """A job that runs until ``finish_after`` seconds of waiting, with no commits seen."""

    def __init__(self, clock: FakeClock, finish_after: float) -> None:
        self.clock = clock
        self.finish_at = clock.now + finish_after
        self.waits: list[float] = []
        self.status_reads = 0

    def wait_for_change(self, timeout: float) -> bool:
        self.waits.append(timeout)
        self.clock.now += timeout  # nothing changed the whole time
        return False

    def job_statuses(self, ids: list[int]) -> dict[int, JobStatus]:
        self.status_reads += 1
        done = self.clock.now >= self.finish_at
        return {i: JobStatus.COMPLETED if done else JobStatus.RUNNING for i in ids}

    def job_row(self, job_id: int):  # the plain and terminal displays read rows
        raise AssertionError("a quiet follower reads no rows")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(follow.time, "monotonic", fake.monotonic)
    return fake


def test_a_quiet_wait_checks_the_status_once_per_refresh_interval(clock: FakeClock) -> None:
    service = FakeService(clock, finish_after=10.0)
    watch = follow._Watch(service, [1], timeout=None)  # type: ignore[arg-type]
    done = False
    for _ in range(100):  # bounded: 10 s of waiting is 20 intervals
        done = watch.next_change()
        if done:
            break
    assert done
    intervals = 10.0 / follow.REFRESH_SECONDS
    assert service.status_reads <= intervals + 1, "one status read per interval, no spinning"
    assert all(wait > 0 for wait in service.waits)
    assert sum(service.waits) == pytest.approx(10.0)


def test_a_quiet_wait_ends_at_its_timeout(clock: FakeClock) -> None:
    service = FakeService(clock, finish_after=60.0)
    watch = follow._Watch(service, [1], timeout=2.0)  # type: ignore[arg-type]
    for _ in range(100):
        if watch.next_change() or watch.timed_out():
            break
    assert watch.timed_out() and sum(service.waits) == pytest.approx(2.0)
    assert service.status_reads <= 2.0 / follow.REFRESH_SECONDS + 1


def test_follow_jobs_quiet_returns_the_final_status(clock: FakeClock) -> None:
    service = FakeService(clock, finish_after=3.0)
    service.job_row = lambda job_id: type("Row", (), {"status": "running"})()  # first look
    statuses = follow.follow_jobs(service, [7], Console(quiet=True), quiet=True)  # type: ignore[arg-type]
    assert statuses == {7: "completed"}
    assert service.status_reads <= 3.0 / follow.REFRESH_SECONDS + 2
