"""Bandwidth windows: the limit by local time of day, applied live to running transfers."""

from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from catalogsync import clock
from catalogsync.catalog.repository import CatalogRepository
from catalogsync.config import BandwidthWindow, load_settings
from catalogsync.errors import ConfigError
from catalogsync.ops.shared import SharedResources
from catalogsync.ops.unattended import RunnerHooks
from catalogsync.providers.base import DownloadSpec
from catalogsync.transfer.http import HttpDownloader
from catalogsync.transfer.ratelimit import TokenBucket
from catalogsync.transfer.windows import BandwidthWindows, limit_at
from tests.support.audio import mp3_body

UTC = ZoneInfo("UTC")


def window(hours: str, rate: int) -> BandwidthWindow:
    start, end = (int(h) * 60 + int(m) for h, m in (p.split(":") for p in hours.split("-")))
    return BandwidthWindow(hours, start % 1440, end % 1440, rate)


def minute(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def test_the_window_covering_the_minute_sets_the_limit_and_midnight_is_crossed():
    windows = [window("08:00-23:00", 1_000_000), window("23:00-07:00", 5_000_000)]
    expect = {
        "07:59": 0,
        "08:00": 1_000_000,
        "22:59": 1_000_000,
        "23:00": 5_000_000,
        "00:00": 5_000_000,
        "06:59": 5_000_000,
        "07:00": 0,
    }
    assert {t: limit_at(windows, 0, minute(t)) for t in expect} == expect
    assert limit_at([window("01:00-02:00", 10)], 777, minute("03:00")) == 777, "base outside"


def test_apply_changes_the_shared_bucket_only_when_the_window_changes():
    now = [datetime(2026, 1, 10, 7, 59, tzinfo=UTC).timestamp()]
    windows = BandwidthWindows([window("08:00-23:00", 1_000_000)], 0, UTC, now=lambda: now[0])
    bucket = TokenBucket(None)
    assert windows.apply(bucket) and bucket.rate is None
    assert not windows.apply(bucket)
    now[0] += 60
    assert windows.apply(bucket) and bucket.rate == 1_000_000
    now[0] += 15 * 3600
    assert windows.apply(bucket) and bucket.rate is None


def test_the_runner_tick_applies_the_window_in_local_time(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    from catalogsync.ops import schedules

    schedules.local_zone.cache_clear()
    (tmp_path / "config.toml").write_text(
        '[download]\nmax_bytes_per_sec = 300\n[[download.limits]]\nhours = "08:00-23:00"\n'
        "max_bytes_per_sec = 1000000\n",
        encoding="utf-8",
    )
    settings = load_settings(home=str(tmp_path))
    from catalogsync.db import initialize_database
    from catalogsync.ops.repository import OpsRepository

    initialize_database(settings.db_path).close()
    ops = OpsRepository(settings.db_path)
    shared = SharedResources.build(settings)
    try:
        hooks = RunnerHooks(settings, ops, CatalogRepository(settings.db_path), shared)
        clock.freeze(datetime(2026, 1, 10, 12, 0, tzinfo=UTC).timestamp())
        hooks.tick()
        assert shared.download_limiter.rate == 1_000_000
        clock.freeze(datetime(2026, 1, 10, 23, 30, tzinfo=UTC).timestamp())
        hooks.tick()
        assert shared.download_limiter.rate == 300, "outside the window: [download]'s limit"
    finally:
        shared.close()
        schedules.local_zone.cache_clear()


def test_a_running_transfer_speeds_up_when_the_window_lifts_the_limit(http_server, tmp_path):
    body = mp3_body(2_000_000)
    url = http_server.route("/big.mp3", body=body)
    bucket = TokenBucket(16 * 1024)  # 2 MB would take over two minutes at this rate
    seen = threading.Event()
    result: list = []

    def progress(done: int, total: int | None) -> None:
        if done > 0:
            seen.set()

    def run() -> None:
        with HttpDownloader(limiter=bucket, durable=False) as downloader:
            result.append(
                downloader.download(DownloadSpec(url), tmp_path / "big.mp3", on_progress=progress)
            )

    thread = threading.Thread(target=run)
    thread.start()
    assert seen.wait(30), "the transfer never started"
    assert not result, "still crawling at 16 KiB/s"
    windows = BandwidthWindows(
        [window("08:00-09:00", 16 * 1024)],
        0,
        UTC,
        now=lambda: datetime(2026, 1, 10, 10, 0, tzinfo=UTC).timestamp(),
    )
    assert windows.apply(bucket)  # out of the window: no limit, for the transfer under way
    thread.join(60)
    assert result and result[0].size == len(body)


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ('"25:00-03:00"', "not a range of the day"),
        ('"08:00-08:00"', "not a range of the day"),
        ('"8-23"', 'hours must look like "08:00-23:00"'),
        ("8", "hours must be a string"),
    ],
)
def test_a_bad_window_is_one_config_error(tmp_path, hours, message):
    (tmp_path / "config.toml").write_text(
        f"[[download.limits]]\nhours = {hours}\nmax_bytes_per_sec = 10\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(home=str(tmp_path))
    assert message in str(info.value) and "[[download.limits]] #1" in str(info.value)
