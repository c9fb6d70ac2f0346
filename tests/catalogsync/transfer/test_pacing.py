"""Pacing per platform: rate, jitter, concurrency and the cooldown a 429 puts on every worker."""

from __future__ import annotations

import random
import threading

import pytest

from catalogsync.config import PlatformPacing, load_settings
from catalogsync.errors import ConfigError, TransferError, TransferStopped
from catalogsync.ops.progress import WorkerProgress
from catalogsync.ops.views import serialize_worker
from catalogsync.providers.base import DownloadSpec
from catalogsync.transfer.http import HttpDownloader
from catalogsync.transfer.pacing import DEFAULT_COOLDOWN_SECONDS, Pacer, PlatformGate
from tests.catalogsync.pipeline_support import open_service, write_m3u
from tests.support.audio import mp3_body


class FakeTime:
    """A clock whose sleep moves it: waits are exact and take no real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def _downloader(**kwargs) -> HttpDownloader:
    return HttpDownloader(sleep=lambda s: None, durable=False, **kwargs)


def test_requests_per_minute_spaces_requests_and_jitter_only_adds(fake):
    gate = PlatformGate(
        "netease", PlatformPacing(requests_per_minute=30), clock=fake.clock, sleep=fake.sleep
    )
    starts = []
    for _ in range(4):
        gate.before_request()
        starts.append(fake.now)
    assert [round(b - a, 6) for a, b in zip(starts, starts[1:], strict=False)] == [2.0, 2.0, 2.0]
    jittered = PlatformGate(
        "netease",
        PlatformPacing(requests_per_minute=30, jitter=0.5),
        clock=fake.clock,
        sleep=fake.sleep,
        rng=random.Random(7),
    )
    starts = []
    for _ in range(20):
        jittered.before_request()
        starts.append(fake.now)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(2.0 <= gap <= 3.0 + 1e-9 for gap in gaps) and len(set(gaps)) > 1


def test_a_429_from_a_real_server_cools_down_every_worker_of_the_platform(
    http_server, fake, tmp_path
):
    limited = http_server.route(
        "/limited.mp3", body=mp3_body(20_000), fail_first=1, fail_status=429, retry_after="42"
    )
    other = http_server.route("/other.mp3", body=mp3_body(30_000, seed=2))
    pacer = Pacer(
        {"manifest": PlatformPacing(max_cooldown=600)}, clock=fake.clock, sleep=fake.sleep
    )
    worker_a, worker_b = _downloader(max_attempts=1), _downloader()
    try:
        with pytest.raises(TransferError) as info:
            worker_a.download(
                DownloadSpec(limited), tmp_path / "a.mp3", gate=pacer.gate("manifest")
            )
        assert info.value.code == "http_429"
        assert pacer.cooldowns() == {"manifest": 42.0}
        waits: list[float] = []
        # Another worker, another song, the same platform: it waits out the cooldown first.
        result = worker_b.download(
            DownloadSpec(other),
            tmp_path / "b.mp3",
            gate=pacer.gate("manifest"),
            on_wait=waits.append,
        )
    finally:
        worker_a.close()
        worker_b.close()
    assert result.size == 30_000
    assert waits[0] == 42.0 and waits[-1] == 0.0
    assert sum(fake.slept) == pytest.approx(42.0)
    assert len(http_server.requests("/other.mp3")) == 1, "no request went out during the cooldown"
    assert pacer.cooldowns() == {}
    assert pacer.gate("netease").cooldown_remaining() == 0.0, "other platforms are not held"


def test_cooldowns_are_bounded_and_a_503_without_retry_after_sets_none(http_server, fake, tmp_path):
    pacer = Pacer({"manifest": PlatformPacing(max_cooldown=5)}, clock=fake.clock, sleep=fake.sleep)
    long = http_server.route("/long.mp3", fail_first=1, fail_status=503, retry_after="3600")
    plain = http_server.route("/plain.mp3", fail_first=1, fail_status=503)
    bare = http_server.route("/bare.mp3", fail_first=1, fail_status=429)
    gate = pacer.gate("manifest")
    downloader = _downloader(max_attempts=1)
    try:
        for url in (long, plain, bare):
            with pytest.raises(TransferError):
                downloader.download(DownloadSpec(url), tmp_path / "x.mp3", gate=gate)
            if url == long:
                assert gate.cooldown_remaining() == 5.0, "Retry-After: 3600 cut to max_cooldown"
                fake.now += 5
            if url == plain:
                assert gate.cooldown_remaining() == 0.0, "a 503 without Retry-After is an outage"
    finally:
        downloader.close()
    assert gate.cooldown_remaining() == min(DEFAULT_COOLDOWN_SECONDS, 5.0)
    assert gate.cooldowns == 2


def test_a_stop_reaches_a_worker_waiting_out_a_cooldown(fake):
    gate = PlatformGate("netease", clock=fake.clock, sleep=fake.sleep)
    gate.cooldown(60)
    asked = []

    def should_stop() -> bool:
        asked.append(fake.now)
        return len(asked) > 3

    with pytest.raises(TransferStopped):
        gate.before_request(should_stop)
    assert fake.now - 1000.0 < 1.0, "stopped within a few wait slices, not after 60 s"


def test_max_concurrent_holds_a_third_transfer_until_one_ends():
    gate = PlatformGate("netease", PlatformPacing(max_concurrent=2))
    inside, release, third_in = [], threading.Event(), threading.Event()

    def transfer(name: str, entered: threading.Event | None = None) -> None:
        with gate.slot():
            inside.append(name)
            if entered is not None:
                entered.set()
            release.wait(30)

    first, second = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=transfer, args=("a", first)),
        threading.Thread(target=transfer, args=("b", second)),
    ]
    for thread in threads:
        thread.start()
    assert first.wait(30) and second.wait(30)
    third = threading.Thread(target=transfer, args=("c", third_in))
    third.start()
    assert not third_in.is_set() and sorted(inside) == ["a", "b"]
    release.set()
    assert third_in.wait(30)
    for thread in [*threads, third]:
        thread.join(30)
    assert sorted(inside) == ["a", "b", "c"]


def test_the_worker_row_shows_the_cooldown(repo):
    job = repo.create_job("download_only", {})
    progress = WorkerProgress(repo, "download-2", job)
    progress.start("Song / Artist")
    progress.on_wait(41.2)
    row = repo.list_job_workers(job)[0]
    assert serialize_worker(row).display_text == "cooldown 42 s · Song / Artist"
    progress.on_wait(0.0)
    assert serialize_worker(repo.list_job_workers(job)[0]).display_text == "Song / Artist"


def test_a_job_through_the_runner_waits_out_a_429_and_completes(http_server, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        "[download]\nworkers = 2\n[platforms.manifest]\nmax_cooldown = 1\n", encoding="utf-8"
    )
    urls = [
        http_server.route(
            "/s0.mp3", body=mp3_body(20_000), fail_first=1, fail_status=429, retry_after="120"
        )
    ]
    urls += [http_server.route(f"/s{n}.mp3", body=mp3_body(20_000 + n, seed=n)) for n in (1, 2)]
    service = open_service(home)
    try:
        path = write_m3u(tmp_path / "p.m3u", [("A", f"S{n}", u) for n, u in enumerate(urls)])
        playlist = service.add_playlists([str(path)])[0].id
        job = service.submit_job("sync_download", playlist_ids=[playlist]).id
        service.run_headless(until_idle=True)
        assert service.job_row(job).status == "completed"
        events = [
            e["message"] for e in service.repository.list_events() if e["event_type"] == "cooldown"
        ]
    finally:
        service.close()
    assert len(http_server.requests("/s0.mp3")) == 2
    assert events == [
        "manifest: the server asked to slow down (HTTP 429); every worker waits "
        "1 s before its next request to it"
    ]


def test_one_report_per_cooldown_episode_not_per_worker(fake):
    heard = []
    pacer = Pacer(
        clock=fake.clock, sleep=fake.sleep, on_cooldown=lambda p, s, r: heard.append((p, s, r))
    )
    gate = pacer.gate("netease")
    gate.cooldown(10, "HTTP 429")
    gate.cooldown(12, "HTTP 429")  # another worker, same episode: extends it quietly
    assert heard == [("netease", 10.0, "HTTP 429")]
    assert gate.cooldown_remaining() == 12.0
    fake.now += 12
    gate.cooldown(None, "HTTP 429")
    assert heard[-1] == ("netease", DEFAULT_COOLDOWN_SECONDS, "HTTP 429")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[platforms.netease]\njitter = 2\n", "jitter must be a number from 0 to 1"),
        ("[platforms.netease]\nrequests_per_minute = -1\n", "requests_per_minute must be"),
        ('[platforms.netease]\nmax_concurrent = "two"\n', "max_concurrent must be an integer"),
        ("[platforms]\nnetease = 3\n", "[platforms.netease] must be a table"),
    ],
)
def test_a_bad_platforms_table_is_one_config_error(tmp_path, table, message):
    (tmp_path / "config.toml").write_text(table, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(home=str(tmp_path))
    assert message in str(info.value)
