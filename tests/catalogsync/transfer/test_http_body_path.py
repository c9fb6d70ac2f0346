"""Which body path a download takes: httpx for small bodies, the socket for large ones.

Every misbehaving-server case in ``test_http_download.py`` runs on both paths; these
tests pin the real threshold and what each path does with the connection.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalogsync.errors import TransferStopped
from catalogsync.providers.base import DownloadSpec
from catalogsync.transfer import HttpDownloader
from catalogsync.transfer import http as http_module
from tests.support.httpserver import LocalServer, pseudo_random


@pytest.fixture
def downloader() -> Iterator[HttpDownloader]:
    with HttpDownloader(read_timeout=5, connect_timeout=5) as dl:
        yield dl


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("with_headers", [0, 1, 200 * 1024])
def test_large_body_is_read_from_the_socket_and_identical(
    http_server: LocalServer,
    downloader: HttpDownloader,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    with_headers: int,
) -> None:
    """A body past the size threshold skips h11; bytes that came with the headers count."""
    big = pseudo_random(3 * 1024 * 1024 + 17, seed=7)
    url = http_server.route("/big.mp3", body=big, with_headers=with_headers)
    streams: list[object] = []
    real = http_module._direct_stream

    def spy(response):  # type: ignore[no-untyped-def]
        stream = real(response)
        streams.append(stream)
        return stream

    monkeypatch.setattr(http_module, "_direct_stream", spy)
    for n in range(2):  # the second download needs a fresh connection: nothing is reused
        dest = tmp_path / f"big{n}.mp3"
        result = downloader.download(
            DownloadSpec(url=url, expected_size=len(big), sha256=sha(big)), dest
        )
        assert dest.read_bytes() == big
        assert result.attempts == 1
    assert len(streams) == 2 and all(s is not None for s in streams)
    assert http_server.connections() == 2


def test_small_body_keeps_the_connection_alive(
    http_server: LocalServer, downloader: HttpDownloader, payload: bytes, tmp_path: Path
) -> None:
    """Below the threshold the body goes through httpx and the connection is pooled."""
    url = http_server.route("/song.mp3", body=payload, with_headers=4096)
    for n in range(3):
        dest = tmp_path / f"song{n}.mp3"
        downloader.download(DownloadSpec(url=url, sha256=sha(payload)), dest)
        assert dest.read_bytes() == payload
    assert http_server.connections() == 1


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "http-download-reader"]


def test_one_reader_thread_serves_a_downloader_until_a_stop_retires_it(
    http_server: LocalServer, tmp_path: Path
) -> None:
    """Threads are reused between songs; one left blocked by a stall is not."""
    before = set(_reader_threads())
    small = pseudo_random(100_000, seed=3)
    url = http_server.route("/small.mp3", body=small)
    stalled = http_server.route(
        "/stall.mp3", body=small, stall_after=10_000, stall_seconds=1.0, stall_times=None
    )
    with HttpDownloader(read_timeout=5, connect_timeout=5) as downloader:
        for n in range(4):
            downloader.download(DownloadSpec(url=url, sha256=sha(small)), tmp_path / f"{n}.mp3")
        mine = set(_reader_threads()) - before
        assert len(mine) == 1
        first = mine.pop()

        stop = threading.Event()
        threading.Timer(0.3, stop.set).start()
        with pytest.raises(TransferStopped):
            downloader.download(DownloadSpec(url=stalled), tmp_path / "s.mp3", should_stop=stop.is_set)
        downloader.download(DownloadSpec(url=url, sha256=sha(small)), tmp_path / "again.mp3")
        assert (tmp_path / "again.mp3").read_bytes() == small
        # The stalled read still held the first thread, so a new one took the request;
        # the first exits once the server gives up.
        first.join(timeout=5)
        assert not first.is_alive()
        assert len(set(_reader_threads()) - before) == 1
    deadline = time.monotonic() + 5
    while set(_reader_threads()) - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not set(_reader_threads()) - before, "close() lets the last reader go"


def test_paced_downloads_report_every_piece_unpaced_ones_whole_reads(
    http_server: LocalServer, tmp_path: Path
) -> None:
    """A bucket with no rate (the runner always has one) must not cut reads up."""
    from catalogsync.transfer import TokenBucket

    big = pseudo_random(3 * 1024 * 1024, seed=9)
    url = http_server.route("/big.mp3", body=big)
    steps: dict[str, list[int]] = {}
    for label, rate in (("unpaced", None), ("paced", 64 * 1024 * 1024)):
        seen: list[int] = []
        with HttpDownloader(limiter=TokenBucket(rate), chunk_size=64 * 1024) as downloader:
            downloader.download(
                DownloadSpec(url=url, sha256=sha(big)),
                tmp_path / f"{label}.mp3",
                on_progress=lambda done, total, seen=seen: seen.append(done),
            )
        assert (tmp_path / f"{label}.mp3").read_bytes() == big
        steps[label] = [b - a for a, b in zip(seen, seen[1:], strict=False) if b > a]
    assert max(steps["paced"]) <= 64 * 1024
    assert len(steps["paced"]) >= 3 * 1024 // 64
    assert max(steps["unpaced"]) > 64 * 1024
