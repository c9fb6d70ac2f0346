"""A folder on a mounted share or disk as an upload target."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from catalogsync.errors import (
    StorageFullError,
    StorageUnavailableError,
    TransferError,
    TransferStopped,
)
from catalogsync.transfer.backends.base import (
    ProgressFn,
    RemoteFile,
    StorageBackend,
    no_progress,
    one_line,
    open_source,
    option_bool,
    read_source,
)
from catalogsync.transfer.durability import fsync_dir, sha256_of
from catalogsync.transfer.paths import safe_join
from catalogsync.transfer.stop import never

TEMP_SUFFIX = ".catalogsync-tmp"
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_DENIED_ERRNOS = frozenset({errno.EACCES, errno.EPERM})
_UNAVAILABLE_ERRNOS = frozenset(
    {errno.EIO, errno.ENOENT, errno.ENOTDIR}
    | {
        getattr(errno, name)
        for name in ("ESTALE", "ENOTCONN", "EHOSTDOWN", "ENODEV", "ENXIO", "ENOMEDIUM")
        if hasattr(errno, name)
    }
)


def temp_path(dest: Path) -> Path:
    """Where ``dest`` is written before it is renamed into place: ``.name.ext.catalogsync-tmp``."""
    return dest.with_name(f".{dest.name}{TEMP_SUFFIX}")


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class LocalBackend(StorageBackend):
    """Copies into a folder (a mounted NAS share or a disk) via a temp file and a rename.

    Options: ``require_mount`` (default false): refuse to write unless the target
    or one of its parent folders (other than ``/``) is a mount point, so an
    unmounted share never fills the local disk.
    """

    kind = "local"
    offers_checksum = True

    def __init__(
        self, name: str, target: str, options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(name, target, options, **kwargs)
        self.root = Path(target).expanduser()
        self.require_mount = option_bool(self._options, "require_mount", False, self.label)

    # -- paths -------------------------------------------------------------------

    def _path(self, rel: str) -> Path:
        """The absolute path of ``rel`` inside the root (symlinks that leave it are refused)."""
        parts = self._rel(rel)
        return safe_join(self.root, parts)

    def _ensure_root(self) -> Path:
        """The root folder, created when missing if its parent exists."""
        root = self.root
        if not root.is_dir():
            if root.exists():
                raise StorageUnavailableError(f"{self.label}: target {root} is not a folder")
            parent = root.parent
            if not parent.is_dir():
                raise StorageUnavailableError(
                    f"{self.label}: target folder {root} does not exist and neither does "
                    f"{parent} (is the share mounted?)"
                )
            try:
                root.mkdir(exist_ok=True)
            except OSError as exc:
                raise self._os_error(exc, root, "creating") from exc
        if self.require_mount and not self._on_mount(root):
            raise StorageUnavailableError(
                f"{self.label}: {root} is not on a mounted share (require_mount is set; "
                "mount the share first)"
            )
        return root

    @staticmethod
    def _on_mount(root: Path) -> bool:
        current = root.resolve()
        while current.parent != current:
            if os.path.ismount(current):
                return True
            current = current.parent
        return False

    def _os_error(self, exc: OSError, path: Path, action: str = "writing") -> Exception:
        """Turn an ``OSError`` on the target into a one-line storage or transfer error."""
        if exc.errno in _FULL_ERRNOS:
            what = "disk quota exceeded" if exc.errno == errno.EDQUOT else "no space left"
            return StorageFullError(f"{self.label}: {what} on the device {action} {path}")
        if exc.errno in _DENIED_ERRNOS or isinstance(exc, PermissionError):
            return StorageUnavailableError(f"{self.label}: permission denied {action} {path}")
        if exc.errno == errno.EROFS:
            return StorageUnavailableError(
                f"{self.label}: read-only file system, cannot write {path}"
            )
        reason = one_line(exc.strerror or str(exc))
        if exc.errno in _UNAVAILABLE_ERRNOS:
            return StorageUnavailableError(f"{self.label}: cannot access {path}: {reason}")
        return TransferError(f"{self.label}: error {action} {path}: {reason}", code="io_error")

    # -- the contract ---------------------------------------------------------------

    def stat(self, rel: str, *, checksum: bool = False) -> RemoteFile | None:
        """Size of ``rel`` (and its SHA-256 when ``checksum``), or ``None`` when absent."""
        path = self._path(rel)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._os_error(exc, path, "reading") from exc
        if not path.is_file():
            raise TransferError(
                f"{self.label}: {path} is not a file", code="not_a_file", permanent=True
            )
        digest = None
        if checksum:
            try:
                digest = sha256_of(path)
            except OSError as exc:
                raise self._os_error(exc, path, "reading") from exc
        return RemoteFile(st.st_size, digest)

    def upload(
        self,
        local: Path,
        rel: str,
        *,
        should_stop: Callable[[], bool] = never,
        on_progress: ProgressFn = no_progress,
    ) -> RemoteFile:
        """Copy in chunks to a temp file, fsync, verify by re-reading, rename; keep the mtime."""
        local = Path(local)
        dest = self._path(rel)
        self._ensure_root()
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._os_error(exc, dest.parent, "creating") from exc
        dest = self._path(rel)  # re-check now that the folders exist
        if dest.is_dir():
            raise TransferError(
                f"{self.label}: {dest} is a folder", code="not_a_file", permanent=True
            )
        tmp = temp_path(dest)
        src, total = open_source(local, self.label)
        try:
            source_stat = os.fstat(src.fileno())
            size, digest = self._copy(src, local, dest, total, should_stop, on_progress)
            if size != total:
                _unlink(tmp)
                raise TransferError(
                    f"{self.label}: {local} changed size while it was copied", code="source_changed"
                )
        finally:
            src.close()
        try:
            os.utime(tmp, ns=(source_stat.st_atime_ns, source_stat.st_mtime_ns))
            stored = sha256_of(tmp, should_stop)
            stored_size = tmp.stat().st_size
        except TransferStopped:
            _unlink(tmp)
            raise
        except OSError as exc:
            _unlink(tmp)
            raise self._os_error(exc, dest) from exc
        if stored_size != size or stored != digest:
            _unlink(tmp)
            raise self._verify_failed(
                f"{dest} reads back as {stored_size} bytes with SHA-256 {stored}, "
                f"wrote {size} bytes with SHA-256 {digest}"
            )
        try:
            os.replace(tmp, dest)
        except OSError as exc:
            _unlink(tmp)
            raise self._os_error(exc, dest) from exc
        fsync_dir(dest.parent)
        return RemoteFile(size, digest)

    def _copy(
        self,
        src: Any,
        local: Path,
        dest: Path,
        total: int,
        should_stop: Callable[[], bool],
        on_progress: ProgressFn,
    ) -> tuple[int, str]:
        """Write the source into the temp file of ``dest``; remove it on any failure or stop."""
        tmp = temp_path(dest)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(tmp, flags, 0o644)
        except OSError as exc:
            raise self._os_error(exc, dest) from exc
        hasher = hashlib.sha256()
        done = 0
        try:
            on_progress(0, total)
            while True:
                if should_stop():
                    raise TransferStopped("transfer stopped")
                data = read_source(src, self.chunk_size, local, self.label)
                if not data:
                    break
                self._acquire(len(data), should_stop)
                _write_all(fd, data)
                hasher.update(data)
                done += len(data)
                on_progress(done, total)
            os.fsync(fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.close(fd)
            _unlink(tmp)
            if isinstance(exc, OSError):
                raise self._os_error(exc, dest) from exc
            raise
        try:
            os.close(fd)
        except OSError as exc:
            _unlink(tmp)
            raise self._os_error(exc, dest) from exc
        return done, hasher.hexdigest()

    def delete(self, rel: str) -> None:
        """Remove ``rel``; a missing file is fine."""
        path = self._path(rel)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        except IsADirectoryError as exc:
            raise TransferError(
                f"{self.label}: {path} is a folder", code="not_a_file", permanent=True
            ) from exc
        except OSError as exc:
            if path.is_dir():
                raise TransferError(
                    f"{self.label}: {path} is a folder", code="not_a_file", permanent=True
                ) from exc
            raise self._os_error(exc, path, "deleting") from exc

    def read(self, rel: str) -> bytes:
        """The bytes of ``rel``."""
        path = self._path(rel)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise TransferError(
                f"{self.label}: {path} does not exist", code="not_found", permanent=True
            ) from exc
        except OSError as exc:
            raise self._os_error(exc, path, "reading") from exc
