"""The downloader's HTTP connection (``catalogsync.transfer.wire``) against real servers:
keep-alive, body framings, redirects, URL encoding, TLS, proxies, and its reader thread.

The misbehaving-server cases (errors, resets, stalls, truncation) are in
``test_http_download.py``.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalogsync.errors import TransferError, TransferStopped
from catalogsync.providers.base import DownloadSpec
from catalogsync.transfer import HttpDownloader
from tests.support.httpserver import (
    LocalServer,
    forward_proxy,
    pseudo_random,
    start_server,
    stop_server,
)


@pytest.fixture
def downloader() -> Iterator[HttpDownloader]:
    with HttpDownloader(read_timeout=5, connect_timeout=5) as dl:
        yield dl


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("with_headers", [0, 1, 200 * 1024])
def test_large_body_is_identical_and_keeps_the_connection(
    http_server: LocalServer, downloader: HttpDownloader, tmp_path: Path, with_headers: int
) -> None:
    """Bytes that came with the headers count; a body read to its end leaves the
    connection open for the next song."""
    big = pseudo_random(3 * 1024 * 1024 + 17, seed=7)
    url = http_server.route("/big.mp3", body=big, with_headers=with_headers)
    for n in range(2):
        dest = tmp_path / f"big{n}.mp3"
        result = downloader.download(
            DownloadSpec(url=url, expected_size=len(big), sha256=sha(big)), dest
        )
        assert dest.read_bytes() == big
        assert result.attempts == 1
    assert http_server.connections() == 1


def test_small_body_keeps_the_connection_alive(
    http_server: LocalServer, downloader: HttpDownloader, payload: bytes, tmp_path: Path
) -> None:
    url = http_server.route("/song.mp3", body=payload, with_headers=4096)
    for n in range(3):
        dest = tmp_path / f"song{n}.mp3"
        downloader.download(DownloadSpec(url=url, sha256=sha(payload)), dest)
        assert dest.read_bytes() == payload
    assert http_server.connections() == 1


def test_a_connection_the_server_dropped_while_idle_is_replaced_unseen(
    http_server: LocalServer, downloader: HttpDownloader, payload: bytes, tmp_path: Path
) -> None:
    """The kept connection was closed by the server: the request goes again on a new
    one, without costing an attempt or a backoff."""
    url = http_server.route("/song.mp3", body=payload, drop_idle=True)
    for n in range(3):
        result = downloader.download(DownloadSpec(url=url, sha256=sha(payload)), tmp_path / f"{n}")
        assert result.attempts == 1
        assert (tmp_path / f"{n}").read_bytes() == payload
    assert http_server.connections() == 3
    assert len(http_server.requests("/song.mp3")) == 3


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_chunked_and_close_delimited_bodies(
    http_server: LocalServer, downloader: HttpDownloader, tmp_path: Path, framing: str
) -> None:
    body = pseudo_random(300_000, seed=5)
    url = http_server.route("/song.mp3", body=body, framing=framing)
    seen: list[tuple[int, int | None]] = []
    result = downloader.download(
        DownloadSpec(url=url, sha256=sha(body)),
        tmp_path / "song.mp3",
        on_progress=lambda done, total: seen.append((done, total)),
    )
    assert (tmp_path / "song.mp3").read_bytes() == body
    assert result.size == len(body)
    assert seen[-1] == (len(body), None)  # no length announced: none is made up


def test_chunked_body_cut_short_is_retried_as_truncated(
    http_server: LocalServer, downloader: HttpDownloader, tmp_path: Path
) -> None:
    body = pseudo_random(300_000, seed=6)
    url = http_server.route(
        "/song.mp3", body=body, framing="chunked", truncate_after=100_000, truncate_times=1
    )
    result = downloader.download(DownloadSpec(url=url, sha256=sha(body)), tmp_path / "s.mp3")
    assert (tmp_path / "s.mp3").read_bytes() == body
    assert result.attempts == 2


def test_hostile_url_characters_are_percent_encoded(
    http_server: LocalServer, downloader: HttpDownloader, payload: bytes, tmp_path: Path
) -> None:
    """Spaces, non-ASCII and a lone % in a playlist's URL are sent encoded, as a
    browser would; escapes already there are kept."""
    url = http_server.route("/My%20Song%20%C3%A9%2B100%25.mp3", body=payload)
    raw = url.replace("%20", " ").replace("%C3%A9", "é").replace("%25", "%")
    assert raw.endswith("/My Song é%2B100%.mp3")
    downloader.download(DownloadSpec(url=raw + "?a=b c"), tmp_path / "s.mp3")
    assert (tmp_path / "s.mp3").read_bytes() == payload


def test_redirect_loop_is_permanent(
    http_server: LocalServer, downloader: HttpDownloader, tmp_path: Path
) -> None:
    url = http_server.route("/loop", redirect_to="/loop")
    with pytest.raises(TransferError) as err:
        downloader.download(DownloadSpec(url=url), tmp_path / "s.mp3")
    assert (err.value.code, err.value.permanent) == ("too_many_redirects", True)
    assert len(http_server.requests("/loop")) == 21  # the first and 20 redirects, once


def test_redirect_to_another_scheme_is_a_bad_url(
    http_server: LocalServer, downloader: HttpDownloader, tmp_path: Path
) -> None:
    url = http_server.route("/away", redirect_to="ftp://example.invalid/x.mp3")
    with pytest.raises(TransferError) as err:
        downloader.download(DownloadSpec(url=url), tmp_path / "s.mp3")
    assert (err.value.code, err.value.permanent) == ("bad_url", True)
    assert "ftp://example.invalid/x.mp3" in str(err.value)


def test_credentials_stay_with_their_host_across_redirects(
    http_server: LocalServer, downloader: HttpDownloader, payload: bytes, tmp_path: Path
) -> None:
    """``localhost`` and ``127.0.0.1`` are different origins: the Authorization header
    a provider set for one is not sent to the other."""
    http_server.route("/song.mp3", body=payload)
    here = http_server.url("/song.mp3")
    there = here.replace("127.0.0.1", "localhost")
    http_server.route("/hop", redirect_to=there)
    http_server.route("/same", redirect_to="/song.mp3")
    spec_headers = {"Authorization": "Bearer s3cret"}
    downloader.download(
        DownloadSpec(url=http_server.url("/same"), headers=spec_headers), tmp_path / "a.mp3"
    )
    downloader.download(
        DownloadSpec(url=http_server.url("/hop"), headers=spec_headers), tmp_path / "b.mp3"
    )
    got = [r.headers.get("authorization") for r in http_server.requests("/song.mp3")]
    assert got == ["Bearer s3cret", None]
    assert (tmp_path / "b.mp3").read_bytes() == payload


def test_cookies_set_by_a_redirect_go_to_the_next_hop_on_that_host_only(
    http_server: LocalServer, downloader: HttpDownloader, payload: bytes, tmp_path: Path
) -> None:
    """A signed-download handshake: /start sets a session cookie and redirects to the
    file, which refuses requests without it. The cookie is not sent to another host,
    and does not outlive the download."""
    http_server.route("/file.mp3", body=payload, require_cookie="session=abc")
    start = http_server.route(
        "/start", redirect_to="/file.mp3", set_cookie="session=abc; Path=/; HttpOnly"
    )
    downloader.download(DownloadSpec(url=start, headers={"cookie": "pref=1"}), tmp_path / "a.mp3")
    assert (tmp_path / "a.mp3").read_bytes() == payload
    cookies = [r.headers.get("cookie") for r in http_server.requests()]
    assert cookies == ["pref=1", "pref=1; session=abc"]

    there = http_server.url("/file.mp3").replace("127.0.0.1", "localhost")
    away = http_server.route("/away", redirect_to=there, set_cookie="session=abc")
    with pytest.raises(TransferError) as err:
        downloader.download(DownloadSpec(url=away), tmp_path / "b.mp3")
    assert err.value.code == "http_403"
    with pytest.raises(TransferError):
        downloader.download(DownloadSpec(url=http_server.url("/file.mp3")), tmp_path / "c")
    assert [r.headers.get("cookie") for r in http_server.requests()][2:] == [None, None, None]


def test_cookie_attributes_domain_and_expiry() -> None:
    from catalogsync.transfer.wire import _remember_cookies, _with_cookies

    jar: list = []
    _remember_cookies(
        jar,
        ["a=1; Domain=.example.org", "b=2", "c=3; Domain=evil.test", "d=4", "d=; Max-Age=0"],
        "www.example.org",
    )
    assert _with_cookies({}, jar, "cdn.example.org") == {"Cookie": "a=1"}
    assert _with_cookies({}, jar, "www.example.org") == {"Cookie": "a=1; b=2"}
    assert _with_cookies({"X": "y"}, jar, "other.test") == {"X": "y"}


def test_refused_connection_is_retried_then_fails_as_connection(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens here
    waits: list[float] = []
    with (
        HttpDownloader(sleep=waits.append, max_attempts=2) as dl,
        pytest.raises(TransferError) as err,
    ):
        dl.download(DownloadSpec(url=f"http://127.0.0.1:{port}/x.mp3"), tmp_path / "x")
    assert err.value.code == "connection" and not err.value.permanent
    assert f"127.0.0.1:{port}" in str(err.value)
    assert waits, "the first refusal was retried after a backoff"
    assert not (tmp_path / "x").exists()


def fetch_with_a_new_downloader(url: str, body: bytes, dest: Path) -> None:
    """Download ``url`` (which must hold ``body``) with a downloader made now, so it
    reads the proxy and certificate settings the test just put in the environment."""
    with HttpDownloader(read_timeout=5, connect_timeout=5) as dl:
        dl.download(DownloadSpec(url=url, sha256=sha(body)), dest)
    assert dest.read_bytes() == body


@pytest.fixture
def https_server(self_signed: tuple[Path, Path]) -> Iterator[LocalServer]:
    """The test server speaking HTTPS with the self-signed certificate."""
    local, thread, server = start_server(tls=self_signed)
    yield local
    stop_server(server, thread)


def test_https_with_a_trusted_certificate(
    https_server: LocalServer,
    self_signed: tuple[Path, Path],
    payload: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """TLS trusts what httpx trusts: here SSL_CERT_FILE names the test's own CA."""
    url = https_server.route("/song.mp3", body=payload)
    assert url.startswith("https://")
    with (
        HttpDownloader(max_attempts=1, read_timeout=5, connect_timeout=5) as dl,
        pytest.raises(TransferError) as err,  # not trusted yet
    ):
        dl.download(DownloadSpec(url=url), tmp_path / "no.mp3")
    assert (err.value.code, err.value.permanent) == ("tls_certificate", True)
    assert url.split("/")[2] in str(err.value) and "SSL_CERT_FILE" in str(err.value)
    monkeypatch.setenv("SSL_CERT_FILE", str(self_signed[0]))
    with HttpDownloader(read_timeout=5, connect_timeout=5) as dl:
        for n in range(2):
            dl.download(DownloadSpec(url=url, sha256=sha(payload)), tmp_path / f"{n}.mp3")
            assert (tmp_path / f"{n}.mp3").read_bytes() == payload
    assert https_server.connections() == 1  # one kept alive (the refused handshake never got one)


def test_http_proxy_from_the_environment(
    http_server: LocalServer, payload: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = http_server.route("/song.mp3", body=payload)
    with forward_proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://me:pw@"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        fetch_with_a_new_downloader(url, payload, tmp_path / "a.mp3")
        assert proxy.seen() == [("GET", url, "Basic " + base64.b64encode(b"me:pw").decode())]

        monkeypatch.setenv("no_proxy", "example.org, 127.0.0.1")
        fetch_with_a_new_downloader(url, payload, tmp_path / "b.mp3")
        assert len(proxy.seen()) == 1  # bypassed


def test_https_through_a_proxy_tunnel(
    https_server: LocalServer,
    self_signed: tuple[Path, Path],
    payload: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = https_server.route("/song.mp3", body=payload)
    monkeypatch.setenv("SSL_CERT_FILE", str(self_signed[0]))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with forward_proxy() as proxy:
        monkeypatch.setenv("https_proxy", proxy.url)
        fetch_with_a_new_downloader(url, payload, tmp_path / "a.mp3")
        assert proxy.seen() == [("CONNECT", url.split("/")[2], None)]


def test_unusable_proxy_setting_fails_the_download_naming_it(
    http_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = http_server.route("/song.mp3", body=b"x")
    monkeypatch.setenv("http_proxy", "socks5://127.0.0.1:1080")
    with HttpDownloader() as dl, pytest.raises(TransferError) as err:
        dl.download(DownloadSpec(url=url), tmp_path / "a.mp3")
    assert (err.value.code, err.value.permanent) == ("bad_url", True)
    assert "socks5://127.0.0.1:1080" in str(err.value)
    assert http_server.requests() == []


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "http-download-reader"]


def test_one_reader_thread_serves_a_downloader_until_a_stop_retires_it(
    http_server: LocalServer, tmp_path: Path
) -> None:
    """Threads are reused between songs; one blocked by a stall is let go at the stop."""
    before = set(_reader_threads())
    small = pseudo_random(100_000, seed=3)
    url = http_server.route("/small.mp3", body=small)
    stalled = http_server.route(
        "/stall.mp3", body=small, stall_after=10_000, stall_seconds=60, stall_times=None
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
            downloader.download(
                DownloadSpec(url=stalled), tmp_path / "s.mp3", should_stop=stop.is_set
            )
        downloader.download(DownloadSpec(url=url, sha256=sha(small)), tmp_path / "again.mp3")
        assert (tmp_path / "again.mp3").read_bytes() == small
        # The stop shut the stalled connection, so the first thread's read returned and
        # it exited (the server would have stalled for a minute); a new one took over.
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


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:99999/x.mp3", "Port out of range"),
        ("http:///x.mp3", "no host"),
        ("gopher://127.0.0.1/x.mp3", "unsupported URL scheme"),
    ],
)
def test_unusable_urls_fail_at_once_naming_the_url(
    downloader: HttpDownloader, tmp_path: Path, url: str, why: str
) -> None:
    with pytest.raises(TransferError) as err:
        downloader.download(DownloadSpec(url=url), tmp_path / "x.mp3")
    assert err.value.permanent and err.value.code == "bad_url"
    assert why in str(err.value) and url.split("//")[1][:9] in str(err.value)


def test_url_parts_become_a_request() -> None:
    from catalogsync.transfer.wire import _parse

    target = _parse("HTTP://me:p%40ss@Bücher.Example:8080/a b/ü.mp3?x=1 2#frag")
    assert (target.scheme, target.host, target.port) == ("http", "xn--bcher-kva.example", 8080)
    assert target.target == "/a%20b/%C3%BC.mp3?x=1%202"
    assert target.authorization == "Basic " + base64.b64encode(b"me:p@ss").decode()


def test_a_server_that_does_not_speak_http_is_a_connection_failure(tmp_path: Path) -> None:
    """Garbage instead of a status line: retried (the server may be restarting), then
    failed with a message naming the server; nothing is left on disk."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    served: list[int] = []

    def serve() -> None:
        listener.settimeout(5)
        for _ in range(2):  # one connection per attempt
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
                served.append(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with (
            HttpDownloader(sleep=lambda s: None, max_attempts=2) as dl,
            pytest.raises(TransferError) as err,
        ):
            dl.download(DownloadSpec(url=f"http://127.0.0.1:{port}/x.mp3"), tmp_path / "x")
    finally:
        listener.close()
        thread.join(5)
    assert err.value.code == "connection" and not err.value.permanent
    assert f"127.0.0.1:{port}" in str(err.value) and "gave up after 2 requests" in str(err.value)
    assert len(served) == 2
    assert list(tmp_path.iterdir()) == []
