"""HttpDownloader against a real local HTTP server."""

from __future__ import annotations

import errno
import hashlib
import statistics
import threading
import time
from pathlib import Path

import pytest

from catalogsync.errors import (
    StorageFullError,
    StorageUnavailableError,
    TransferError,
    TransferStopped,
)
from catalogsync.providers.base import DownloadSpec
from catalogsync.transfer import (
    HttpDownloader,
    ThroughputMeter,
    TokenBucket,
    part_path,
)
from tests.support.httpserver import LocalServer, pseudo_random


class SleepRecorder:
    """An injected ``sleep`` that records what was asked and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)

    @property
    def total(self) -> float:
        return sum(self.calls)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def downloader(sleeps: SleepRecorder):
    with HttpDownloader(sleep=sleeps, read_timeout=5, connect_timeout=5) as dl:
        yield dl


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_is_byte_identical(
    http_server: LocalServer, downloader: HttpDownloader, payload: bytes, tmp_path: Path
) -> None:
    url = http_server.route("/song.mp3", body=payload)
    seen: list[tuple[int, int | None]] = []
    dest = tmp_path / "lib" / "song.mp3"
    result = downloader.download(
        DownloadSpec(url=url, expected_size=len(payload), sha256=sha(payload)),
        dest,
        on_progress=lambda done, total: seen.append((done, total)),
    )
    assert dest.read_bytes() == payload
    assert result.path == dest
    assert result.size == len(payload)
    assert result.sha256 == sha(payload)
    assert result.resumed is False
    assert result.attempts == 1
    assert not part_path(dest).exists()
    assert seen[0] == (0, len(payload))
    assert seen[-1] == (len(payload), len(payload))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert http_server.requests("/song.mp3")[0].range is None


def test_resume_sends_range_and_appends(
    http_server: LocalServer, downloader: HttpDownloader, payload: bytes, tmp_path: Path
) -> None:
    url = http_server.route("/song.mp3", body=payload)
    dest = tmp_path / "song.mp3"
    half = len(payload) // 2
    part_path(dest).write_bytes(payload[:half])
    seen: list[tuple[int, int | None]] = []
    result = downloader.download(
        DownloadSpec(url=url, sha256=sha(payload)),
        dest,
        on_progress=lambda done, total: seen.append((done, total)),
    )
    assert [r.range for r in http_server.requests("/song.mp3")] == [f"bytes={half}-"]
    assert dest.read_bytes() == payload
    assert result.resumed is True
    assert result.sha256 == sha(payload)
    assert seen[0] == (half, len(payload))


def test_server_ignoring_range_restarts_from_zero(
    http_server: LocalServer, downloader: HttpDownloader, payload: bytes, tmp_path: Path
) -> None:
    url = http_server.route("/song.mp3", body=payload, honour_range=False)
    dest = tmp_path / "song.mp3"
    part_path(dest).write_bytes(b"garbage that is not a prefix" * 100)
    result = downloader.download(DownloadSpec(url=url), dest)
    assert http_server.requests("/song.mp3")[0].range is not None
    assert dest.read_bytes() == payload
    assert result.resumed is False


def test_416_with_complete_part_finishes_it(
    http_server: LocalServer, downloader: HttpDownloader, payload: bytes, tmp_path: Path
) -> None:
    url = http_server.route("/song.mp3", body=payload)
    dest = tmp_path / "song.mp3"
    part_path(dest).write_bytes(payload)
    result = downloader.download(
        DownloadSpec(url=url, expected_size=len(payload), sha256=sha(payload)), dest
    )
    assert dest.read_bytes() == payload
    assert result.resumed is True
    assert len(http_server.requests("/song.mp3")) == 1


def test_500_then_success(
    http_server: LocalServer,
    downloader: HttpDownloader,
    payload: bytes,
    tmp_path: Path,
    sleeps: SleepRecorder,
) -> None:
    url = http_server.route("/song.mp3", body=payload, fail_first=1, fail_status=500)
    dest = tmp_path / "song.mp3"
    result = downloader.download(DownloadSpec(url=url), dest)
    assert dest.read_bytes() == payload
    assert result.attempts == 2
    assert 0 < sleeps.total <= downloader.backoff_base


def test_429_retry_after_is_honoured(
    http_server: LocalServer,
    downloader: HttpDownloader,
    payload: bytes,
    tmp_path: Path,
    sleeps: SleepRecorder,
) -> None:
    url = http_server.route(
        "/song.mp3", body=payload, fail_first=2, fail_status=429, retry_after="7"
    )
    dest = tmp_path / "song.mp3"
    result = downloader.download(DownloadSpec(url=url), dest)
    assert dest.read_bytes() == payload
    assert result.attempts == 3
    assert sleeps.total == pytest.approx(14.0)
    assert max(sleeps.calls) <= 0.25  # sliced so a stop is seen promptly


def test_retry_after_is_capped_by_backoff_max(
    http_server: LocalServer, payload: bytes, tmp_path: Path, sleeps: SleepRecorder
) -> None:
    url = http_server.route(
        "/song.mp3", body=payload, fail_first=1, fail_status=503, retry_after="3600"
    )
    with HttpDownloader(sleep=sleeps, backoff_max=2.0) as dl:
        dl.download(DownloadSpec(url=url), tmp_path / "song.mp3")
    assert sleeps.total == pytest.approx(2.0)


def test_5xx_gives_up_after_max_attempts(
    http_server: LocalServer, payload: bytes, tmp_path: Path, sleeps: SleepRecorder
) -> None:
    url = http_server.route("/song.mp3", body=payload, fail_first=99, fail_status=503)
    dest = tmp_path / "song.mp3"
    with HttpDownloader(sleep=sleeps, max_attempts=3) as dl, pytest.raises(TransferError) as err:
        dl.download(DownloadSpec(url=url), dest)
    assert err.value.code == "http_503"
    assert err.value.permanent is False
    assert len(http_server.requests("/song.mp3")) == 3
    assert not dest.exists()


def test_reset_mid_body_then_success(
    http_server: LocalServer, downloader: HttpDownloader, payload: bytes, tmp_path: Path
) -> None:
    url = http_server.route("/song.mp3", body=payload, reset_after=100 * 1024)
    dest = tmp_path / "song.mp3"
    result = downloader.download(DownloadSpec(url=url, sha256=sha(payload)), dest)
    assert dest.read_bytes() == payload
    assert result.attempts == 2
    assert len(http_server.requests("/song.mp3")) == 2


def test_truncated_body_is_resumed(
    http_server: LocalServer, downloader: HttpDownloader, payload: bytes, tmp_path: Path
) -> None:
    cut = 120 * 1024
    url = http_server.route("/song.mp3", body=payload, truncate_after=cut)
    dest = tmp_path / "song.mp3"
    result = downloader.download(DownloadSpec(url=url, sha256=sha(payload)), dest)
    assert dest.read_bytes() == payload
    assert result.attempts == 2
    assert result.resumed is True
    ranges = [r.range for r in http_server.requests("/song.mp3")]
    assert ranges == [None, f"bytes={cut}-"]


def test_always_truncated_fails_without_completing(
    http_server: LocalServer, payload: bytes, tmp_path: Path, sleeps: SleepRecorder
) -> None:
    url = http_server.route(
        "/song.mp3", body=payload, truncate_after=20 * 1024, truncate_times=None
    )
    dest = tmp_path / "song.mp3"
    with HttpDownloader(sleep=sleeps, max_attempts=3) as dl, pytest.raises(TransferError) as err:
        dl.download(DownloadSpec(url=url), dest)
    assert err.value.code == "truncated"
    assert err.value.permanent is False
    assert not dest.exists()
    part = part_path(dest)
    assert part.exists() and part.stat().st_size == 3 * 20 * 1024 < len(payload)
    assert len(http_server.requests("/song.mp3")) == 3


def test_stall_times_out_and_retries(
    http_server: LocalServer, payload: bytes, tmp_path: Path, sleeps: SleepRecorder
) -> None:
    url = http_server.route("/song.mp3", body=payload, stall_after=64 * 1024, stall_seconds=10)
    dest = tmp_path / "song.mp3"
    with HttpDownloader(sleep=sleeps, read_timeout=0.6) as dl:
        result = dl.download(DownloadSpec(url=url, sha256=sha(payload)), dest)
    assert dest.read_bytes() == payload
    assert result.attempts == 2
    assert http_server.requests("/song.mp3")[1].range == f"bytes={64 * 1024}-"


def test_stall_gives_timeout_code(
    http_server: LocalServer, payload: bytes, tmp_path: Path, sleeps: SleepRecorder
) -> None:
    url = http_server.route(
        "/song.mp3", body=payload, stall_after=0, stall_seconds=10, stall_times=None
    )
    with (
        HttpDownloader(sleep=sleeps, read_timeout=0.5, max_attempts=2) as dl,
        pytest.raises(TransferError) as err,
    ):
        dl.download(DownloadSpec(url=url), tmp_path / "song.mp3")
    assert err.value.code == "timeout"
    assert err.value.permanent is False


@pytest.mark.parametrize("status", [404, 410, 403])
def test_client_errors_are_permanent_at_once(
    http_server: LocalServer,
    downloader: HttpDownloader,
    tmp_path: Path,
    sleeps: SleepRecorder,
    status: int,
) -> None:
    url = http_server.route("/gone.mp3", status=status)
    with pytest.raises(TransferError) as err:
        downloader.download(DownloadSpec(url=url), tmp_path / "gone.mp3")
    assert err.value.code == f"http_{status}"
    assert err.value.permanent is True
    assert len(http_server.requests("/gone.mp3")) == 1
    assert sleeps.calls == []


def test_redirect_is_followed(
    http_server: LocalServer, downloader: HttpDownloader, payload: bytes, tmp_path: Path
) -> None:
    http_server.route("/real.mp3", body=payload)
    url = http_server.route("/short", redirect_to="/real.mp3")
    dest = tmp_path / "song.mp3"
    downloader.download(DownloadSpec(url=url), dest)
    assert dest.read_bytes() == payload
    assert [r.path for r in http_server.requests()] == ["/short", "/real.mp3"]


def test_html_instead_of_audio_is_unsupported(
    http_server: LocalServer, downloader: HttpDownloader, tmp_path: Path
) -> None:
    url = http_server.route(
        "/login", body=b"<html>please log in</html>", content_type="text/html; charset=utf-8"
    )
    dest = tmp_path / "song.mp3"
    with pytest.raises(TransferError) as err:
        downloader.download(DownloadSpec(url=url), dest)
    assert err.value.code == "unsupported_content"
    assert err.value.permanent is True
    assert not dest.exists()


def test_sha256_mismatch_fails_and_leaves_nothing(
    http_server: LocalServer, payload: bytes, tmp_path: Path, sleeps: SleepRecorder
) -> None:
    url = http_server.route("/song.mp3", body=payload)
    dest = tmp_path / "song.mp3"
    with HttpDownloader(sleep=sleeps, max_attempts=2) as dl, pytest.raises(TransferError) as err:
        dl.download(DownloadSpec(url=url, sha256="0" * 64), dest)
    assert err.value.code == "checksum_mismatch"
    assert not dest.exists()
    assert not part_path(dest).exists()
    assert len(http_server.requests("/song.mp3")) == 2


def test_size_mismatch_against_expected_size(
    http_server: LocalServer, payload: bytes, tmp_path: Path, sleeps: SleepRecorder
) -> None:
    url = http_server.route("/song.mp3", body=payload)
    dest = tmp_path / "song.mp3"
    with HttpDownloader(sleep=sleeps, max_attempts=1) as dl, pytest.raises(TransferError) as err:
        dl.download(DownloadSpec(url=url, expected_size=len(payload) + 1), dest)
    assert err.value.code == "size_mismatch"
    assert not dest.exists()
    assert not part_path(dest).exists()


def test_stop_during_stall_keeps_part_then_resumes(
    http_server: LocalServer, downloader: HttpDownloader, tmp_path: Path
) -> None:
    body = pseudo_random(1024 * 1024, seed=7)
    first = 256 * 1024
    url = http_server.route("/song.mp3", body=body, stall_after=first, stall_seconds=20)
    dest = tmp_path / "song.mp3"
    stop = threading.Event()
    stop_asked_at: list[float] = []

    def on_progress(done: int, total: int | None) -> None:
        if done >= first and not stop_asked_at:
            # ask for the stop while the server is silent, not at a chunk boundary
            def later() -> None:
                time.sleep(0.3)
                stop_asked_at.append(time.monotonic())
                stop.set()

            threading.Thread(target=later, daemon=True).start()
            stop_asked_at.append(0.0)

    with pytest.raises(TransferStopped):
        downloader.download(
            DownloadSpec(url=url, sha256=sha(body)),
            dest,
            should_stop=stop.is_set,
            on_progress=on_progress,
        )
    reaction = time.monotonic() - stop_asked_at[-1]
    assert reaction < 2.0, "the stop must not wait for the stalled server"
    assert not dest.exists()
    assert part_path(dest).read_bytes() == body[:first]

    result = downloader.download(DownloadSpec(url=url, sha256=sha(body)), dest)
    assert dest.read_bytes() == body
    assert result.resumed is True
    assert http_server.requests("/song.mp3")[-1].range == f"bytes={first}-"


def test_stop_between_chunks(
    http_server: LocalServer, downloader: HttpDownloader, tmp_path: Path
) -> None:
    payload = pseudo_random(1024 * 1024, seed=11)
    # Paced, so the body arrives in several reads whatever the path and the timing.
    url = http_server.route("/song.mp3", body=payload, rate_bps=4 * 1024 * 1024)
    dest = tmp_path / "song.mp3"
    progress: list[int] = []
    with pytest.raises(TransferStopped):
        downloader.download(
            DownloadSpec(url=url),
            dest,
            should_stop=lambda: bool(progress) and progress[-1] > 0,
            on_progress=lambda done, total: progress.append(done),
        )
    kept = part_path(dest).stat().st_size
    assert 0 < kept < len(payload)
    assert part_path(dest).read_bytes() == payload[:kept]


def test_enospc_raises_storage_full_and_removes_part(
    http_server: LocalServer,
    downloader: HttpDownloader,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payload = pseudo_random(3 * 1024 * 1024, seed=12)  # several writes of up to 1 MiB
    url = http_server.route("/song.mp3", body=payload)
    dest = tmp_path / "song.mp3"
    writes: list[int] = []
    original = HttpDownloader._write_chunk

    def failing(self: HttpDownloader, fh, data: bytes) -> None:
        writes.append(len(data))
        if len(writes) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(self, fh, data)

    monkeypatch.setattr(HttpDownloader, "_write_chunk", failing)
    with pytest.raises(StorageFullError) as err:
        downloader.download(DownloadSpec(url=url), dest)
    assert str(dest) in str(err.value)
    assert not part_path(dest).exists()
    assert not dest.exists()


def test_read_only_target_raises_storage_unavailable(
    http_server: LocalServer,
    downloader: HttpDownloader,
    payload: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = http_server.route("/song.mp3", body=payload)
    dest = tmp_path / "song.mp3"

    def read_only(self: HttpDownloader, fh, data: bytes) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(HttpDownloader, "_write_chunk", read_only)
    with pytest.raises(StorageUnavailableError) as err:
        downloader.download(DownloadSpec(url=url), dest)
    assert str(part_path(dest)) in str(err.value)
    assert not dest.exists()


def test_stop_during_backoff_is_prompt(
    http_server: LocalServer, payload: bytes, tmp_path: Path, sleeps: SleepRecorder
) -> None:
    url = http_server.route(
        "/song.mp3", body=payload, fail_first=1, fail_status=503, retry_after="30"
    )
    with HttpDownloader(sleep=sleeps) as dl, pytest.raises(TransferStopped):
        dl.download(
            DownloadSpec(url=url), tmp_path / "song.mp3", should_stop=lambda: len(sleeps.calls) >= 2
        )
    assert sleeps.total <= 0.5
    assert len(http_server.requests("/song.mp3")) == 1


def test_file_url_is_copied(tmp_path: Path, payload: bytes, sleeps: SleepRecorder) -> None:
    src = tmp_path / "music dir" / "a song%.flac"
    src.parent.mkdir()
    src.write_bytes(payload)
    dest = tmp_path / "lib" / "a song.flac"
    seen: list[tuple[int, int | None]] = []
    with HttpDownloader(sleep=sleeps, chunk_size=32 * 1024) as dl:
        result = dl.download(
            DownloadSpec(url=src.as_uri(), sha256=sha(payload)),
            dest,
            on_progress=lambda done, total: seen.append((done, total)),
        )
    assert dest.read_bytes() == payload
    assert result.size == len(payload)
    assert seen[-1] == (len(payload), len(payload))
    assert len(seen) > 2


def test_missing_file_url_is_permanent(tmp_path: Path, downloader: HttpDownloader) -> None:
    with pytest.raises(TransferError) as err:
        downloader.download(
            DownloadSpec(url=(tmp_path / "nope.mp3").as_uri()), tmp_path / "out.mp3"
        )
    assert err.value.permanent is True


def test_file_copy_goes_through_the_limiter(tmp_path: Path, payload: bytes) -> None:
    clock = [0.0]

    def fake_sleep(seconds: float) -> None:
        clock[0] += seconds

    rate = 100 * 1024
    bucket = TokenBucket(rate, clock=lambda: clock[0], sleep=fake_sleep)
    src = tmp_path / "src.mp3"
    src.write_bytes(payload)
    with HttpDownloader(limiter=bucket) as dl:
        dl.download(DownloadSpec(url=src.as_uri()), tmp_path / "dst.mp3")
    expected = (len(payload) - bucket.burst_bytes) / rate
    assert expected - 0.01 <= clock[0] <= expected + 0.2


def test_meter_matches_real_rate_on_throttled_server(
    http_server: LocalServer, downloader: HttpDownloader, tmp_path: Path
) -> None:
    body = pseudo_random(2 * 1024 * 1024, seed=3)
    url = http_server.route("/slow.mp3", body=body, rate_bps=400 * 1024)
    meter = ThroughputMeter(window_seconds=3.0)
    samples: list[float] = []
    last = [0]
    began = time.monotonic()

    def on_progress(done: int, total: int | None) -> None:
        if done > last[0]:
            meter.add(done - last[0])
            last[0] = done
        if time.monotonic() - began >= 1.5:
            rate = meter.rate()
            assert rate is not None
            samples.append(rate)

    meter.start()
    downloader.download(DownloadSpec(url=url), tmp_path / "slow.mp3", on_progress=on_progress)
    real = len(body) / (time.monotonic() - began)
    assert len(samples) > 10
    measured = statistics.median(samples)
    assert abs(measured - real) / real < 0.10, (measured, real)
