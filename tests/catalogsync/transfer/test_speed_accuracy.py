"""The reported worker speed against the rate servers themselves log (issue 12).

Real transfers through ``HttpDownloader`` and ``WorkerProgress`` (the code that writes
the worker rows and sparkline samples), against nginx from Debian with its
per-connection ``limit_rate`` (smooth and whole-MiB bursts), and against the project's
own server (smooth 8 KiB pieces and 1 MiB bursts). The speeds recorded after a 3.5 s
warm-up must average within 5 % of the server's own figure, and the recorded bytes
must move at least twice a second while data flows in.

nginx's ``limit_rate`` sends one second's worth up front (bytes by time t are
rate x (t + 1)), so one request's bytes / request time overstates the steady rate by
1 / duration. Its figure is therefore taken from its own log as the difference of two
requests (a short and a long one) of the same file: (S2 - S1) / (T2 - T1).
"""

from __future__ import annotations

import sqlite3
import statistics
import time
import urllib.request
from pathlib import Path

import pytest

from catalogsync.ops.progress import WorkerProgress
from catalogsync.providers.base import DownloadSpec
from catalogsync.transfer.http import HttpDownloader
from tests.catalogsync.pipeline_support import wait_for
from tests.support.audio import mp3_body
from tests.support.httpserver import Behaviour, LocalServer
from tests.support.nginx_rate import Nginx, nginx_binary

MIB = 1024 * 1024
RATE = 2 * MIB
WARMUP = 3.5


def _download(repo, url: str, dest: Path) -> tuple[list[float], list[float]]:
    """Download ``url``; (speeds recorded after the warm-up, times the bytes moved)."""
    job_id = repo.create_job("download_only", {})
    progress = WorkerProgress(repo, "download-1", job_id)
    progress.start("Song")
    writes: list[tuple[float, int]] = []
    original = progress._write

    def recorded(done, total, rate, *, display=None):  # the row write, as it happens
        writes.append((time.monotonic(), done))
        original(done, total, rate, display=display)

    progress._write = recorded  # type: ignore[method-assign]
    began = time.time()
    with HttpDownloader(durable=False) as downloader:
        downloader.download(DownloadSpec(url=url), dest, on_progress=progress.on_bytes)
    ended = time.time()
    worker = repo.list_job_workers(job_id)[0]
    with sqlite3.connect(repo.db_path) as conn:
        samples = conn.execute(
            "SELECT at, speed_bytes_per_sec FROM worker_speed_samples WHERE worker_id = ?",
            (int(worker["id"]),),
        ).fetchall()
    steady = [
        float(speed) for at, speed in samples if began + WARMUP <= float(at) <= ended and speed
    ]
    moved = [
        at for (at, done), (_, before) in zip(writes[1:], writes, strict=False) if done > before
    ]
    return steady, moved


def _assert_close(
    steady: list[float], truth: float, moved: list[float], *, still: float = 0.6
) -> None:
    assert len(steady) >= 5, steady
    mean = statistics.fmean(steady)
    error = abs(mean - truth) / truth
    assert error <= 0.05, f"reported {mean / MIB:.3f} MB/s, server {truth / MIB:.3f} MB/s"
    gaps = [b - a for a, b in zip(moved, moved[1:], strict=False)]
    # Bytes shown move as often as data lands: twice a second for a flow that does
    # (0.6 s allows for scheduling on a busy machine).
    assert gaps and max(gaps) <= still, f"bytes stood still for {max(gaps):.2f} s"


@pytest.fixture
def nginx(tmp_path: Path):
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light); .ci/run installs it")
    root = tmp_path / "files"
    root.mkdir()
    (root / "short.mp3").write_bytes(mp3_body(4 * MIB, seed=1))
    (root / "long.mp3").write_bytes(mp3_body(24 * MIB, seed=2))
    server = Nginx(root, tmp_path / "nginx", rate=RATE)
    yield server
    server.close()


@pytest.mark.parametrize("location", ["limited", "bursty"])
def test_speed_matches_nginx_limit_rate(nginx: Nginx, repo, tmp_path: Path, location: str):
    with urllib.request.urlopen(nginx.url(location, "short.mp3"), timeout=30) as response:
        response.read()
    short = nginx.wait_for_log(f"/{location}/short.mp3")
    # Only the long file is left for the engine.
    (nginx.root / "short.mp3").unlink()
    steady, moved = _download(repo, nginx.url(location, "long.mp3"), tmp_path / "out.mp3")
    long = nginx.wait_for_log(f"/{location}/long.mp3")
    truth = (long.bytes_sent - short.bytes_sent) / (long.request_time - short.request_time)
    # limit_rate sends 2 MiB once a second: bytes can only move when a burst lands.
    # With sendfile_max_chunk 1m the bursts come every 0.5 s.
    _assert_close(steady, truth, moved, still=1.2 if location == "limited" else 0.6)


@pytest.mark.parametrize("burst", [None, MIB], ids=["smooth", "1MiB-bursts"])
def test_speed_matches_the_project_server(
    http_server: LocalServer, repo, tmp_path: Path, burst: int | None
):
    url = http_server.route(
        "/paced.mp3", Behaviour(body=mp3_body(16 * MIB), rate_bps=RATE, burst_bytes=burst)
    )
    steady, moved = _download(repo, url, tmp_path / "out.mp3")
    # The server notes the body once its last write returned: maybe just after we did.
    assert wait_for(lambda: http_server.served("/paced.mp3"), timeout=10)
    served = http_server.served("/paced.mp3")
    assert len(served) == 1
    _assert_close(steady, served[0].rate, moved)
