"""LocalBackend: a folder on a mounted share or disk."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from catalogsync.errors import (
    StorageFullError,
    StorageUnavailableError,
    TransferError,
)
from catalogsync.transfer.backends import LocalBackend, StorageBackend, local
from catalogsync.transfer.backends.local import TEMP_SUFFIX
from catalogsync.transfer.ratelimit import TokenBucket
from tests.catalogsync.backends.conformance import BackendConformance

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(TEMP_SUFFIX)]


class TestLocalConformance(BackendConformance):
    """The shared contract, on a plain folder."""

    def make_backend(self, tmp_path: Path, *, limiter: TokenBucket | None = None) -> StorageBackend:
        (tmp_path / "share").mkdir(exist_ok=True)
        return LocalBackend("nas", str(tmp_path / "share" / "music"), {}, limiter=limiter)

    def storage_dir(self, tmp_path: Path) -> Path:
        return tmp_path / "share" / "music"

    def after_stop(self, tmp_path: Path, backend: StorageBackend, rel: str) -> None:
        assert backend.stat(rel) is None
        assert _temp_files(self.storage_dir(tmp_path)) == []


@pytest.fixture
def share(tmp_path: Path) -> Path:
    """An existing target folder."""
    path = tmp_path / "share"
    path.mkdir()
    return path


def _patch_open(monkeypatch: pytest.MonkeyPatch, under: Path, error: OSError) -> None:
    """Make os.open fail with ``error`` for writes inside ``under`` (reads still work)."""
    real_open = os.open

    def fake_open(
        path: str | os.PathLike[str], flags: int, mode: int = 0o777, *, dir_fd: int | None = None
    ) -> int:
        if flags & _WRITE_FLAGS and Path(os.fsdecode(path)).is_relative_to(under):
            raise error
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", fake_open)


@pytest.fixture
def deny_writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """chmod a folder 0o500; as root (where chmod does not deny) also emulate EACCES."""
    denied: list[Path] = []

    def deny(folder: Path) -> None:
        folder.chmod(0o500)
        denied.append(folder)
        if os.geteuid() == 0:
            _patch_open(
                monkeypatch, folder.resolve(), PermissionError(errno.EACCES, "Permission denied")
            )

    yield deny
    for folder in denied:
        folder.chmod(0o700)


def test_permission_denied_is_one_clear_line(
    share: Path, song: Path, deny_writes: Callable[[Path], None]
) -> None:
    """A folder we may not write to gives StorageUnavailableError naming backend and path."""
    deny_writes(share)
    backend = LocalBackend("nas", str(share), {})
    with pytest.raises(StorageUnavailableError) as info:
        backend.upload(song, "song.mp3")
    message = str(info.value)
    assert message == f"local backend nas: permission denied writing {share.resolve() / 'song.mp3'}"
    assert _temp_files(share) == [] and not (share / "song.mp3").exists()
    with pytest.raises(StorageUnavailableError) as probe:
        backend.probe()
    assert "\n" not in str(probe.value)
    assert str(probe.value).startswith(f"local backend nas: probe of {share} failed: ")
    assert "permission denied" in str(probe.value)


def test_read_only_file_system_is_one_clear_line(
    share: Path, song: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EROFS gives a one-line StorageUnavailableError."""
    _patch_open(monkeypatch, share.resolve(), OSError(errno.EROFS, "Read-only file system"))
    backend = LocalBackend("nas", str(share), {})
    with pytest.raises(StorageUnavailableError) as info:
        backend.upload(song, "a/song.mp3")
    dest = share.resolve() / "a" / "song.mp3"
    assert str(info.value) == f"local backend nas: read-only file system, cannot write {dest}"


def test_disk_full_removes_the_temp_file(
    share: Path, song: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC in the middle of the copy -> StorageFullError, and no temp or final file."""
    real_open, real_write = os.open, os.write
    temp_fds: set[int] = set()
    writes: list[int] = []

    def tracking_open(
        path: str | os.PathLike[str], flags: int, mode: int = 0o777, *, dir_fd: int | None = None
    ) -> int:
        fd = real_open(path, flags, mode, dir_fd=dir_fd)
        if os.fsdecode(path).endswith(TEMP_SUFFIX):
            temp_fds.add(fd)
        return fd

    def full_write(fd: int, data: bytes | memoryview) -> int:
        if fd in temp_fds:
            writes.append(len(data))
            if len(writes) > 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "open", tracking_open)
    monkeypatch.setattr(os, "write", full_write)
    backend = LocalBackend("nas", str(share), {})
    with pytest.raises(StorageFullError) as info:
        backend.upload(song, "a/song.mp3")
    assert str(info.value).startswith("local backend nas: no space left on the device writing ")
    assert "\n" not in str(info.value)
    assert len(writes) == 3
    assert _temp_files(share) == []
    assert not (share / "a" / "song.mp3").exists()


def test_keeps_the_source_mtime(share: Path, song: Path) -> None:
    """The stored file has the source's modification time."""
    os.utime(song, ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
    stored = LocalBackend("nas", str(share), {}).upload(song, "a/song.mp3")
    assert (share / "a" / "song.mp3").stat().st_mtime_ns == 1_500_000_000_987_654_321
    assert stored.sha256 is not None and len(stored.sha256) == 64


def test_returns_and_stats_the_sha256(share: Path, song: Path) -> None:
    """upload() returns the SHA-256; stat(checksum=True) computes it; offers_checksum is true."""
    import hashlib

    backend = LocalBackend("nas", str(share), {})
    assert backend.offers_checksum
    expected = hashlib.sha256(song.read_bytes()).hexdigest()
    assert backend.upload(song, "s.mp3").sha256 == expected
    found = backend.stat("s.mp3", checksum=True)
    assert found is not None and found.sha256 == expected
    plain = backend.stat("s.mp3")
    assert plain is not None and plain.sha256 is None


def test_verification_failure_removes_the_copy(
    share: Path, song: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy that reads back differently is removed and reported as verify_failed."""
    monkeypatch.setattr(local, "sha256_of", lambda path, should_stop=None: "0" * 64)
    with pytest.raises(TransferError) as info:
        LocalBackend("nas", str(share), {}).upload(song, "a/song.mp3")
    assert info.value.code == "verify_failed" and not info.value.permanent
    assert not (share / "a" / "song.mp3").exists() and _temp_files(share) == []


def test_missing_target_is_created_when_its_parent_exists(share: Path, song: Path) -> None:
    """A missing target folder is created if its parent exists."""
    backend = LocalBackend("nas", str(share / "music"), {})
    backend.upload(song, "x.mp3")
    assert (share / "music" / "x.mp3").is_file()


def test_missing_target_parent_is_unavailable(tmp_path: Path, song: Path) -> None:
    """A target whose parent is missing too (an unmounted share) is unavailable."""
    backend = LocalBackend("nas", str(tmp_path / "mnt" / "nas" / "music"), {})
    with pytest.raises(StorageUnavailableError) as info:
        backend.upload(song, "x.mp3")
    assert "does not exist" in str(info.value) and "mounted" in str(info.value)
    assert not (tmp_path / "mnt").exists()
    with pytest.raises(StorageUnavailableError):
        backend.probe()


def test_require_mount(share: Path, song: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With require_mount, a target that is not on a mount point is refused."""
    monkeypatch.setattr(os.path, "ismount", lambda path: False)
    backend = LocalBackend("nas", str(share), {"require_mount": "true"})
    with pytest.raises(StorageUnavailableError) as info:
        backend.upload(song, "x.mp3")
    assert "not on a mounted share" in str(info.value)
    monkeypatch.setattr(os.path, "ismount", lambda path: Path(path) == share.resolve())
    backend.upload(song, "x.mp3")


def test_symlink_leaving_the_root_is_refused(tmp_path: Path, share: Path, song: Path) -> None:
    """A symlink inside the target that points outside it cannot be written through."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (share / "escape").symlink_to(outside, target_is_directory=True)
    backend = LocalBackend("nas", str(share), {})
    with pytest.raises(StorageUnavailableError):
        backend.upload(song, "escape/x.mp3")
    assert list(outside.iterdir()) == []


def test_folder_in_the_way(share: Path, song: Path) -> None:
    """A folder where the file should go is a permanent not_a_file error."""
    (share / "x.mp3").mkdir()
    backend = LocalBackend("nas", str(share), {})
    with pytest.raises(TransferError) as info:
        backend.upload(song, "x.mp3")
    assert info.value.code == "not_a_file" and info.value.permanent
    with pytest.raises(TransferError):
        backend.stat("x.mp3")
