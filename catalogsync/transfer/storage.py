"""Write-side ``OSError``s as the storage errors that pause a job (a full or gone disk).

A module of its own, light to import: the download stage guards its renames and tag
writes with it without loading the HTTP stack.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path

from catalogsync.errors import StorageFullError, StorageUnavailableError

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_UNAVAILABLE_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO, errno.ENOENT, errno.ENOTDIR}
    | {
        getattr(errno, name)
        for name in ("ESTALE", "ENOTCONN", "EHOSTDOWN", "ENODEV", "ENXIO")
        if hasattr(errno, name)
    }
)


def storage_error(exc: OSError, path: Path) -> Exception | None:
    """Map a write-side ``OSError`` to a storage error, or ``None`` to re-raise it."""
    if exc.errno in _FULL_ERRNOS:
        return StorageFullError(f"no space left on the device while writing {path}")
    if exc.errno in _UNAVAILABLE_ERRNOS or isinstance(exc, PermissionError):
        reason = exc.strerror or str(exc)
        return StorageUnavailableError(f"cannot write {path}: {reason}")
    return None


@contextlib.contextmanager
def storage_guard(path: Path) -> Iterator[None]:
    """Disk-full and permission ``OSError``s as the storage errors that pause a job."""
    try:
        yield
    except OSError as exc:
        mapped = storage_error(exc, path)
        if mapped is None:
            raise
        raise mapped from exc
