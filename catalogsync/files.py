"""Opening files a user names without ever blocking on a FIFO, device or folder."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from catalogsync.errors import CatalogsyncError


def read_regular_file(path: Path, what: str) -> bytes | None:
    """The bytes of ``path`` (None when absent); never opens a FIFO, device or folder.

    Opening a FIFO for reading blocks until a writer appears, so the type is checked
    with stat() first and the open is non-blocking as well (the file can be swapped
    between the two).
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CatalogsyncError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = file_kind(info.st_mode)
        raise CatalogsyncError(f"{path}: the {what} is {kind}, not a regular file")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise CatalogsyncError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise CatalogsyncError(f"{path}: the {what} is not a regular file")
        try:
            return handle.read()
        except OSError as exc:
            raise CatalogsyncError(
                f"{path}: cannot read the {what}: {exc.strerror or exc}"
            ) from None


def file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"
