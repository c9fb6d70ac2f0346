"""WebDavBackend against a real WebDAV server (wsgidav + cheroot) on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from catalogsync.errors import (
    StorageFullError,
    StorageUnavailableError,
    TransferError,
)
from catalogsync.transfer.backends import StorageBackend, WebDavBackend, make_backend
from catalogsync.transfer.ratelimit import TokenBucket
from tests.catalogsync.backends.conformance import BackendConformance
from tests.catalogsync.backends.conftest import DAV_PASSWORD, DAV_USER, DavServer, run_webdav

pytest.importorskip("wsgidav", reason="the WebDAV tests need wsgidav (pip install wsgidav cheroot)")
pytest.importorskip("cheroot", reason="the WebDAV tests need cheroot (pip install wsgidav cheroot)")


class SleepRecorder:
    """An injected ``sleep`` that records the delays and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def _backend(server: DavServer, url: str | None = None, **kwargs: Any) -> WebDavBackend:
    options = kwargs.pop("options", None) or server.options()
    kwargs.setdefault("sleep", SleepRecorder())
    return WebDavBackend("nas", url or server.url, options, **kwargs)


class TestWebDavConformance(BackendConformance):
    """The shared contract, against the wsgidav share."""

    @pytest.fixture(autouse=True)
    def _server(self, webdav_server: DavServer) -> None:
        self.server = webdav_server

    def make_backend(self, tmp_path: Path, *, limiter: TokenBucket | None = None) -> StorageBackend:
        return _backend(self.server, self.server.url + "library/", limiter=limiter)

    def storage_dir(self, tmp_path: Path) -> Path:
        return self.server.root / "library"


def test_upload_lands_on_the_server(webdav_server: DavServer, song: Path) -> None:
    """The file is on the server's disk; MKCOL made each folder; no sha256 is claimed."""
    backend = _backend(webdav_server)
    stored = backend.upload(song, "manifest/Artist/Title.mp3")
    assert stored.size == song.stat().st_size and stored.sha256 is None
    assert not backend.offers_checksum
    on_disk = webdav_server.root / "manifest" / "Artist" / "Title.mp3"
    assert on_disk.read_bytes() == song.read_bytes()
    assert webdav_server.faults.methods("MKCOL") == [
        "/music/",
        "/music/manifest/",
        "/music/manifest/Artist/",
    ]
    backend.upload(song, "manifest/Artist/Other.mp3")  # known folders are not made again
    assert len(webdav_server.faults.methods("MKCOL")) == 3


def test_wrong_password_is_one_line_without_the_password(
    webdav_server: DavServer, song: Path
) -> None:
    """HTTP 401 -> StorageUnavailableError naming backend and URL, never the password."""
    wrong = "Wr0ng-" + DAV_PASSWORD
    backend = _backend(webdav_server, options={"username": DAV_USER, "password": wrong})
    with pytest.raises(StorageUnavailableError) as info:
        backend.upload(song, "a/song.mp3")
    message = str(info.value)
    assert message == (
        f"webdav backend nas: authentication failed (HTTP 401) for {webdav_server.url}"
    )
    assert webdav_server.faults.methods("PUT") == []
    with pytest.raises(StorageUnavailableError) as probe:
        backend.probe()
    text = str(probe.value)
    assert text.startswith(f"webdav backend nas: probe of {webdav_server.url} failed: ")
    assert "HTTP 401" in text and "\n" not in text
    for shown in (message, text, repr(backend), str(backend.options)):
        assert wrong not in shown and DAV_PASSWORD not in shown
    assert backend.options["password"] == "***"


def test_password_from_environment_variable(
    webdav_server: DavServer, song: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """password_env names an environment variable that holds the password."""
    monkeypatch.setenv("CATALOGSYNC_TEST_DAV_PASSWORD", DAV_PASSWORD)
    options = {"username": DAV_USER, "password_env": "CATALOGSYNC_TEST_DAV_PASSWORD"}
    backend = make_backend(
        {
            "name": "nas",
            "kind": "webdav",
            "target": webdav_server.url,
            "options_json": json.dumps(options),
        }
    )
    assert isinstance(backend, WebDavBackend)
    backend.upload(song, "env/song.mp3")
    assert (webdav_server.root / "env" / "song.mp3").read_bytes() == song.read_bytes()
    assert DAV_PASSWORD not in repr(backend) and DAV_PASSWORD not in str(backend.options)
    monkeypatch.delenv("CATALOGSYNC_TEST_DAV_PASSWORD")
    with pytest.raises(StorageUnavailableError) as info:
        WebDavBackend("nas", webdav_server.url, options)
    assert "CATALOGSYNC_TEST_DAV_PASSWORD" in str(info.value)


def test_password_in_the_url_is_refused(webdav_server: DavServer) -> None:
    """A password inside the target URL is refused without echoing it."""
    url = webdav_server.url.replace("http://", f"http://{DAV_USER}:{DAV_PASSWORD}@")
    with pytest.raises(StorageUnavailableError) as info:
        WebDavBackend("nas", url, {})
    assert DAV_PASSWORD not in str(info.value) and "password_env" in str(info.value)


def test_truncated_upload_is_detected_and_removed(webdav_server: DavServer, song: Path) -> None:
    """A server that stores fewer bytes than were sent -> verify_failed, bad copy deleted."""
    webdav_server.faults.truncate_put_to = 1000
    backend = _backend(webdav_server)
    with pytest.raises(TransferError) as info:
        backend.upload(song, "a/song.mp3")
    assert info.value.code == "verify_failed" and not info.value.permanent
    assert "1000 bytes" in str(info.value) and "\n" not in str(info.value)
    assert not (webdav_server.root / "a" / "song.mp3").exists()
    assert backend.stat("a/song.mp3") is None


def test_insufficient_storage_is_storage_full(webdav_server: DavServer, song: Path) -> None:
    """HTTP 507 on PUT -> StorageFullError at once (no retries); probe says the same."""
    webdav_server.faults.put_status = 507
    backend = _backend(webdav_server)
    with pytest.raises(StorageFullError) as info:
        backend.upload(song, "a/song.mp3")
    assert str(info.value).startswith("webdav backend nas: insufficient storage (HTTP 507)")
    assert len(webdav_server.faults.methods("PUT")) == 1
    with pytest.raises(StorageFullError) as probe:
        backend.probe()
    assert str(probe.value).startswith(f"webdav backend nas: probe of {webdav_server.url} failed")


def test_503_twice_then_success(webdav_server: DavServer, song: Path) -> None:
    """Two 503 answers are retried with backoff; the third PUT succeeds."""
    webdav_server.faults.put_status = 503
    webdav_server.faults.put_fail_times = 2
    sleep = SleepRecorder()
    backend = _backend(webdav_server, sleep=sleep)
    progress: list[tuple[int, int | None]] = []
    backend.upload(song, "a/song.mp3", on_progress=lambda d, t: progress.append((d, t)))
    assert (webdav_server.root / "a" / "song.mp3").read_bytes() == song.read_bytes()
    assert len(webdav_server.faults.methods("PUT")) == 3
    assert sleep.calls and sum(sleep.calls) <= 0.5 + 1.0
    assert progress[-1] == (song.stat().st_size, song.stat().st_size)


def test_429_waits_for_retry_after(webdav_server: DavServer, song: Path) -> None:
    """429 with Retry-After: 7 waits 7 s (in short slices) before trying again."""
    webdav_server.faults.put_status = 429
    webdav_server.faults.put_fail_times = 1
    webdav_server.faults.retry_after = "7"
    sleep = SleepRecorder()
    _backend(webdav_server, sleep=sleep).upload(song, "a/song.mp3")
    assert sum(sleep.calls) == pytest.approx(7.0)
    assert max(sleep.calls) <= 0.25


def test_503_forever_gives_up(webdav_server: DavServer, song: Path) -> None:
    """A server that keeps answering 503 -> a retryable TransferError after max_attempts."""
    webdav_server.faults.put_status = 503
    backend = _backend(webdav_server, max_attempts=3)
    with pytest.raises(TransferError) as info:
        backend.upload(song, "a/song.mp3")
    assert info.value.code == "http_503" and not info.value.permanent
    assert "gave up after 3 attempts" in str(info.value)
    assert len(webdav_server.faults.methods("PUT")) == 3


def test_other_4xx_is_permanent(webdav_server: DavServer, song: Path) -> None:
    """HTTP 400 on PUT fails at once with a permanent http_400."""
    webdav_server.faults.put_status = 400
    with pytest.raises(TransferError) as info:
        _backend(webdav_server).upload(song, "a/song.mp3")
    assert info.value.code == "http_400" and info.value.permanent
    assert len(webdav_server.faults.methods("PUT")) == 1


def test_unreachable_server_is_unavailable(free_port: int, song: Path) -> None:
    """Nothing listening -> StorageUnavailableError after the bounded retries."""
    sleep = SleepRecorder()
    backend = WebDavBackend(
        "nas",
        f"http://127.0.0.1:{free_port}/music/",
        {"username": DAV_USER, "password": DAV_PASSWORD},
        sleep=sleep,
        max_attempts=3,
    )
    with pytest.raises(StorageUnavailableError) as info:
        backend.upload(song, "a/song.mp3")
    message = str(info.value)
    assert message.startswith(
        f"webdav backend nas: cannot reach http://127.0.0.1:{free_port}/music/: "
    )
    assert "gave up after 3 attempts" in message and "\n" not in message
    assert DAV_PASSWORD not in message
    assert len(sleep.calls) >= 2  # backoff slices between the three attempts
    with pytest.raises(StorageUnavailableError):
        backend.probe()


def test_missing_share_is_unavailable(webdav_server: DavServer, song: Path) -> None:
    """A base URL that cannot be created (no such share) is unavailable, in one line."""
    url = webdav_server.url.replace("/music/", "/nothing/here/")
    with pytest.raises(StorageUnavailableError) as info:
        _backend(webdav_server, url).upload(song, "a.mp3")
    assert "does not exist and cannot be created" in str(info.value)


def test_bad_target_and_options(webdav_server: DavServer) -> None:
    """Non-HTTP targets and unreadable options are refused when the backend is built."""
    from catalogsync.errors import ConfigError

    with pytest.raises(StorageUnavailableError):
        WebDavBackend("nas", "ftp://127.0.0.1/x", {})
    with pytest.raises(ConfigError):
        WebDavBackend("nas", webdav_server.url, {"verify_tls": "maybe"})
    with pytest.raises(StorageUnavailableError):
        WebDavBackend("nas", webdav_server.url, {"verify_tls": "/no/such/ca.pem"})
    assert WebDavBackend("nas", webdav_server.url.rstrip("/"), {}).base_url == webdav_server.url


def test_tls_certificate_checks(tmp_path: Path, song: Path, self_signed: tuple[Path, Path]) -> None:
    """HTTPS: an untrusted certificate is one clear line; a CA path or verify_tls=false work."""
    with run_webdav(tmp_path / "tls-root", tls=self_signed) as server:
        strict = _backend(server)
        with pytest.raises(StorageUnavailableError) as info:
            strict.upload(song, "a.mp3")
        assert "TLS certificate" in str(info.value) and "verify_tls" in str(info.value)
        assert len(strict._sleep.calls) == 0  # type: ignore[attr-defined]  # no retries
        _backend(server, options=server.options(verify_tls=str(self_signed[0]))).upload(
            song, "b.mp3"
        )
        _backend(server, options=server.options(verify_tls="false")).upload(song, "c.mp3")
        assert sorted(p.name for p in server.root.iterdir()) == ["b.mp3", "c.mp3"]
