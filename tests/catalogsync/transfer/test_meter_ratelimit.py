"""ThroughputMeter, the speed formats and TokenBucket, mostly on a fake clock."""

from __future__ import annotations

import threading

import pytest

from catalogsync.errors import TransferStopped
from catalogsync.transfer import (
    ThroughputMeter,
    TokenBucket,
    format_bytes_progress,
    format_speed,
)

MIB = 1024 * 1024


class FakeClock:
    """A clock whose ``sleep`` advances time instead of waiting (thread-safe)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


# -- meter ---------------------------------------------------------------------------------


def test_meter_is_none_until_measured() -> None:
    clock = FakeClock()
    meter = ThroughputMeter(clock=clock)
    assert meter.rate() is None
    clock.advance(10)
    assert meter.rate() is None


def test_meter_steady_rate() -> None:
    clock = FakeClock()
    meter = ThroughputMeter(window_seconds=3.0, clock=clock)
    meter.start()
    for _ in range(80):  # 10 s at 64 KiB every 0.125 s = 512 KiB/s
        clock.advance(0.125)
        meter.add(64 * 1024)
    assert meter.rate() == pytest.approx(512 * 1024, rel=0.01)
    assert meter.total_bytes == 80 * 64 * 1024


def test_meter_single_chunk_is_not_a_spike() -> None:
    clock = FakeClock()
    meter = ThroughputMeter(clock=clock)
    meter.add(64 * 1024)
    clock.advance(0.001)
    rate = meter.rate()
    assert rate is not None and rate <= 2 * 64 * 1024  # span is at least 0.5 s


def test_meter_drops_to_zero_after_window() -> None:
    clock = FakeClock()
    meter = ThroughputMeter(window_seconds=3.0, clock=clock)
    meter.add(1000)
    clock.advance(3.5)
    assert meter.rate() == 0.0


def test_meter_memory_is_bounded() -> None:
    clock = FakeClock()
    meter = ThroughputMeter(window_seconds=1.0, clock=clock)
    for _ in range(10_000):
        clock.advance(0.01)
        meter.add(10)
    assert len(meter._samples) <= 101


def test_meter_reset() -> None:
    meter = ThroughputMeter(clock=FakeClock())
    meter.add(5)
    meter.reset()
    assert meter.rate() is None and meter.total_bytes == 0


@pytest.mark.parametrize(
    ("bps", "text"),
    [
        (None, "-"),
        (0, "-"),
        (0.0, "-"),
        (3 * MIB, "3.0 MB/s"),
        (1.25 * MIB, "1.2 MB/s"),
        (512 * 1024, "0.5 MB/s"),
    ],
)
def test_format_speed(bps: float | None, text: str) -> None:
    assert format_speed(bps) == text


@pytest.mark.parametrize(
    ("done", "total", "text"),
    [
        (10 * MIB, 20 * MIB, "10.0 / 20.0 MB"),
        (10 * MIB, None, "10.0 MB"),
        (None, None, "-"),
        (0, 5 * MIB, "0.0 / 5.0 MB"),
        (None, 5 * MIB, "0.0 / 5.0 MB"),
    ],
)
def test_format_bytes_progress(done: int | None, total: int | None, text: str) -> None:
    assert format_bytes_progress(done, total) == text


# -- token bucket --------------------------------------------------------------------------


def test_burst_defaults() -> None:
    assert TokenBucket(1000).burst_bytes == 16 * 1024
    assert TokenBucket(10 * MIB).burst_bytes == MIB
    assert TokenBucket(1000, burst_bytes=4096).burst_bytes == 4096


def test_rate_is_respected_single_worker() -> None:
    clock = FakeClock()
    rate = 100_000
    bucket = TokenBucket(rate, clock=clock, sleep=clock.sleep)
    total = 0
    for _ in range(20):
        bucket.acquire(64 * 1024)
        total += 64 * 1024
        # never ahead of the budget: the initial burst plus what the rate allowed since
        assert total <= bucket.burst_bytes + rate * clock() + 1e-6
    expected = (total - bucket.burst_bytes) / rate
    assert expected - 1e-6 <= clock() <= expected + 0.11
    assert clock.sleeps and max(clock.sleeps) <= 0.1 + 1e-9


def test_rate_is_shared_by_many_workers() -> None:
    clock = FakeClock()
    rate = 200_000
    bucket = TokenBucket(rate, clock=clock, sleep=clock.sleep)
    granted: list[tuple[float, int]] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            bucket.acquire(32 * 1024)
            with lock:
                granted.append((clock(), 32 * 1024))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(granted) == 40
    running = 0
    for at, n in sorted(granted):
        running += n
        assert running <= bucket.burst_bytes + rate * at + 1e-6


def test_unlimited_returns_at_once() -> None:
    clock = FakeClock()
    for rate in (0, None):
        bucket = TokenBucket(rate, clock=clock, sleep=clock.sleep)
        bucket.acquire(100 * MIB)
        assert bucket.rate is None
    assert clock.sleeps == []


def test_stop_is_prompt_while_waiting() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)  # 10 B/s: would take days
    with pytest.raises(TransferStopped):
        bucket.acquire(10 * MIB, should_stop=lambda: clock() >= 1.0)
    assert 1.0 <= clock() <= 1.1 + 1e-9


def test_set_rate_applies_to_waiting_workers() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)

    def sleep_then_unthrottle(seconds: float) -> None:
        clock.sleep(seconds)
        if clock() >= 0.5:
            bucket.set_rate(None)

    bucket._sleep = sleep_then_unthrottle
    bucket.acquire(10 * MIB)
    assert clock() <= 0.6


def test_set_rate_changes_pace() -> None:
    clock = FakeClock()
    bucket = TokenBucket(50_000, burst_bytes=16 * 1024, clock=clock, sleep=clock.sleep)
    bucket.acquire(16 * 1024)  # drain the initial burst
    bucket.set_rate(200_000)
    assert bucket.rate == 200_000
    assert bucket.burst_bytes == 16 * 1024
    start = clock()
    bucket.acquire(400_000)
    assert clock() - start == pytest.approx(2.0, abs=0.11)
