"""The shared pieces: path checks, the backend factory, retries and error mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalogsync.errors import (
    ConfigError,
    StorageFullError,
    StorageUnavailableError,
    TransferError,
    TransferStopped,
)
from catalogsync.transfer.backends import (
    BACKEND_CLASSES,
    LocalBackend,
    WebDavBackend,
    check_relative,
    make_backend,
)
from catalogsync.transfer.backends.base import Transient
from catalogsync.transfer.http import parse_retry_after
from catalogsync.transfer.paths import UnsafePathError
from tests.catalogsync.backends.conformance import HOSTILE_PATHS


@pytest.mark.parametrize("rel", HOSTILE_PATHS)
def test_check_relative_refuses_hostile_paths(rel: str) -> None:
    """Each hostile path is an UnsafePathError (a StorageUnavailableError) in one line."""
    with pytest.raises(UnsafePathError) as info:
        check_relative(rel, "local backend nas")
    assert isinstance(info.value, StorageUnavailableError)
    assert str(info.value).startswith("local backend nas: refusing path ")
    assert "\n" not in str(info.value)


def test_check_relative_keeps_good_paths() -> None:
    """Ordinary library paths pass unchanged, dots inside names included."""
    for rel in ("a.mp3", "manifest/Artist/Title.mp3", "..hidden/x..y.mp3", "a b/Ä – c.flac"):
        assert check_relative(rel, "x").as_posix() == rel


def test_make_backend_builds_each_kind(tmp_path: Path) -> None:
    """Rows of every kind become the right class; options come from options_json."""
    assert set(BACKEND_CLASSES) == {"local", "webdav", "rclone"}
    local = make_backend(
        {
            "id": 1,
            "name": "nas",
            "kind": "local",
            "target": str(tmp_path),
            "options_json": '{"require_mount": false}',
        }
    )
    assert isinstance(local, LocalBackend) and local.root == tmp_path
    dav = make_backend(
        {
            "name": "dav",
            "kind": "webdav",
            "target": "http://127.0.0.1:9/x",
            "options": {"username": "u", "password": "p"},
        }
    )
    assert isinstance(dav, WebDavBackend) and dav.options == {"username": "u", "password": "***"}
    assert "p" not in repr(dav).replace("http", "")


def test_make_backend_rejects_bad_rows() -> None:
    """Unknown kinds and broken options are ConfigErrors."""
    with pytest.raises(ConfigError):
        make_backend({"name": "x", "kind": "ftp", "target": "/x", "options_json": "{}"})
    with pytest.raises(ConfigError):
        make_backend({"name": "x", "kind": "local", "target": "/x", "options_json": "{nope"})
    with pytest.raises(ConfigError):
        make_backend({"name": "x", "kind": "local", "target": "/x", "options_json": "[1]"})


def _backend(**kwargs: object) -> LocalBackend:
    return LocalBackend("nas", "/srv/music", {}, **kwargs)  # type: ignore[arg-type]


def test_status_mapping() -> None:
    """507 -> full, 401/403 -> unavailable, 5xx/408/429 -> transient, other 4xx -> permanent."""
    b = _backend()
    assert isinstance(b._status_error(507, "u"), StorageFullError)
    assert str(b._status_error(401, "http://h/x")) == (
        "local backend nas: authentication failed (HTTP 401) for http://h/x"
    )
    assert isinstance(b._status_error(403, "u"), StorageUnavailableError)
    for status in (500, 502, 503, 504, 408, 429):
        assert isinstance(b._status_error(status, "u"), Transient)
    assert b._status_error(429, "u", "12").delay == 12.0  # type: ignore[union-attr]
    for status in (400, 404, 409, 410, 413):
        error = b._status_error(status, "u")
        assert isinstance(error, TransferError) and error.permanent
        assert error.code == f"http_{status}"


def test_retries_are_bounded_with_growing_backoff() -> None:
    """A transient failure is tried max_attempts times with exponential backoff."""
    sleeps: list[float] = []
    b = _backend(sleep=sleeps.append, max_attempts=4, backoff_base=1.0)
    calls = []

    def failing() -> None:
        calls.append(1)
        raise Transient(TransferError("HTTP 503 from u", code="http_503"))

    with pytest.raises(TransferError) as info:
        b._retrying(failing)
    assert len(calls) == 4 and info.value.code == "http_503" and not info.value.permanent
    assert 0.5 + 1 + 2 <= sum(sleeps) <= 1 + 2 + 4


def test_network_failures_become_unavailable() -> None:
    """Connection failures that outlast the retries are StorageUnavailableError."""
    b = _backend(sleep=lambda s: None, max_attempts=2)

    def refused() -> None:
        raise Transient(TransferError("connection failed: refused", code="connection"))

    with pytest.raises(StorageUnavailableError) as info:
        b._retrying(refused)
    assert str(info.value).startswith("local backend nas: cannot reach /srv/music: ")


def test_stop_during_backoff() -> None:
    """A stop request during the backoff wait raises TransferStopped."""
    asked = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 3

    b = _backend(sleep=lambda s: None, max_attempts=10, backoff_base=5.0)

    def failing() -> None:
        raise Transient(TransferError("x", code="timeout"))

    with pytest.raises(TransferStopped):
        b._retrying(failing, should_stop)


def test_parse_retry_after() -> None:
    """Seconds, HTTP dates in the past, garbage and the cap."""
    assert parse_retry_after("3", 30) == 3.0
    assert parse_retry_after("999", 30) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 30) == 0.0
    assert parse_retry_after("soon", 30) is None
    assert parse_retry_after(None, 30) is None
