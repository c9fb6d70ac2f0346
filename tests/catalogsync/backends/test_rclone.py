"""RcloneBackend against an rclone remote of type local (the real rclone program)."""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import pytest

from catalogsync.errors import (
    StorageFullError,
    StorageUnavailableError,
    TransferError,
    TransferStopped,
)
from catalogsync.transfer.backends import RcloneBackend, StorageBackend, make_backend
from catalogsync.transfer.ratelimit import TokenBucket
from tests.catalogsync.backends.conformance import BackendConformance

needs_rclone = pytest.mark.skipif(
    shutil.which("rclone") is None,
    reason="the rclone program is not installed (apt-get install rclone, or rclone.org/install)",
)


class SleepRecorder:
    """An injected ``sleep`` that records the delays and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def _backend(tmp_path: Path, config: Path, **options: str) -> RcloneBackend:
    if "binary" in options:  # the misbehaving stand-in is a per-operation rclone process
        options.setdefault("rcd", "false")
    return RcloneBackend(
        "cloud",
        f"nas:{tmp_path / 'dest'}",
        {"config": str(config), **options},
        sleep=SleepRecorder(),
    )


@needs_rclone
class TestRcloneConformance(BackendConformance):
    """The shared contract, through one ``rclone rcd`` and a local-type remote."""

    rcd = "true"

    def make_backend(self, tmp_path: Path, *, limiter: TokenBucket | None = None) -> StorageBackend:
        config = tmp_path / "rclone.conf"
        config.write_text("[nas]\ntype = local\n", encoding="utf-8")
        return RcloneBackend(
            "cloud",
            f"nas:{tmp_path / 'dest'}",
            {"config": str(config), "rcd": self.rcd},
            limiter=limiter,
            sleep=SleepRecorder(),
        )

    def storage_dir(self, tmp_path: Path) -> Path:
        return tmp_path / "dest"


@needs_rclone
class TestRcloneProcessConformance(TestRcloneConformance):
    """The same contract on the fallback path: one ``rclone`` process per operation."""

    rcd = "false"


@needs_rclone
def test_upload_verifies_sha256(tmp_path: Path, rclone_config: Path, song: Path) -> None:
    """The local remote offers SHA-256; upload returns it and stat(checksum=True) reports it."""
    backend = _backend(tmp_path, rclone_config)
    assert backend.offers_checksum
    expected = hashlib.sha256(song.read_bytes()).hexdigest()
    stored = backend.upload(song, "manifest/Artist/Title.mp3")
    assert stored.size == song.stat().st_size and stored.sha256 == expected
    found = backend.stat("manifest/Artist/Title.mp3", checksum=True)
    assert found is not None and found.sha256 == expected
    assert (tmp_path / "dest" / "manifest" / "Artist" / "Title.mp3").read_bytes() == (
        song.read_bytes()
    )


@needs_rclone
def test_progress_comes_from_rclone_stats(tmp_path: Path, rclone_config: Path) -> None:
    """With --bwlimit, the JSON stats give progress between 0 and the total; stop ends it."""
    source = tmp_path / "big.bin"
    source.write_bytes(b"\x01" * (2 * 1024 * 1024))
    backend = RcloneBackend(
        "cloud",
        f"nas:{tmp_path / 'dest'}",
        {"config": str(rclone_config)},
        limiter=TokenBucket(128 * 1024),
    )
    seen: list[int] = []
    stop = threading.Event()

    def on_progress(done: int, total: int | None) -> None:
        seen.append(done)
        if 0 < done < 2 * 1024 * 1024:
            stop.set()

    with pytest.raises(TransferStopped):
        backend.upload(source, "big.bin", should_stop=stop.is_set, on_progress=on_progress)
    assert seen[0] == 0 and any(0 < d < 2 * 1024 * 1024 for d in seen)


@needs_rclone
def test_truncated_copy_is_detected(
    tmp_path: Path,
    rclone_config: Path,
    song: Path,
    fake_rclone: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A remote that ends up with fewer bytes -> verify_failed and the bad copy removed."""
    monkeypatch.setenv("FAKE_RCLONE_MODE", "truncate")
    backend = _backend(tmp_path, rclone_config, binary=str(fake_rclone))
    with pytest.raises(TransferError) as info:
        backend.upload(song, "a/song.mp3")
    assert info.value.code == "verify_failed"
    assert "holds 100 bytes" in str(info.value)
    assert not (tmp_path / "dest" / "a" / "song.mp3").exists()


@needs_rclone
def test_transient_failures_are_retried(
    tmp_path: Path,
    rclone_config: Path,
    song: Path,
    fake_rclone: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """'connection refused' twice, then success: our retries (not rclone's) apply."""
    monkeypatch.setenv("FAKE_RCLONE_MODE", "flaky")
    backend = _backend(tmp_path, rclone_config, binary=str(fake_rclone))
    backend.upload(song, "a/song.mp3")
    assert (tmp_path / "copies").read_text() == "3"
    assert (tmp_path / "dest" / "a" / "song.mp3").read_bytes() == song.read_bytes()


@needs_rclone
def test_no_space_is_storage_full(
    tmp_path: Path,
    rclone_config: Path,
    song: Path,
    fake_rclone: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """rclone reporting 'no space left on device' -> StorageFullError at once."""
    monkeypatch.setenv("FAKE_RCLONE_MODE", "full")
    backend = _backend(tmp_path, rclone_config, binary=str(fake_rclone))
    with pytest.raises(StorageFullError) as info:
        backend.upload(song, "a/song.mp3")
    assert str(info.value).startswith("rclone backend cloud: no space left on nas:")
    assert (tmp_path / "copies").read_text() == "1"


@needs_rclone
def test_unconfigured_remote_is_unavailable(
    tmp_path: Path, rclone_config: Path, song: Path
) -> None:
    """A remote missing from the config -> one line pointing at `rclone config`."""
    backend = RcloneBackend(
        "cloud", "nope:/music", {"config": str(rclone_config)}, sleep=SleepRecorder()
    )
    with pytest.raises(StorageUnavailableError) as info:
        backend.upload(song, "a.mp3")
    assert "rclone config" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(StorageUnavailableError) as probe:
        backend.probe()
    assert str(probe.value).startswith("rclone backend cloud: probe of nope:/music failed: ")


def test_missing_program_is_unavailable(tmp_path: Path, song: Path) -> None:
    """No rclone program -> StorageUnavailableError('rclone is not installed: ...')."""
    backend = RcloneBackend("cloud", "nas:/music", {"binary": str(tmp_path / "no-rclone")})
    with pytest.raises(StorageUnavailableError) as info:
        backend.upload(song, "a.mp3")
    assert str(info.value).startswith("rclone is not installed: ")
    with pytest.raises(StorageUnavailableError):
        backend.stat("a.mp3")
    assert not backend.offers_checksum


def test_target_must_be_remote_path() -> None:
    """A target without 'remote:' is refused; make_backend builds rclone rows."""
    with pytest.raises(StorageUnavailableError):
        RcloneBackend("cloud", "/just/a/folder", {})
    backend = make_backend(
        {
            "name": "cloud",
            "kind": "rclone",
            "target": "nas:music",
            "options_json": '{"config": "/etc/rclone.conf"}',
        }
    )
    assert isinstance(backend, RcloneBackend)
    assert backend.config == "/etc/rclone.conf" and backend.remote_name == "nas"
