"""Opening files a user names without ever blocking on a FIFO, device or folder."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from catalogsync.errors import CatalogsyncError


class NotRegularFileError(OSError):
    """The path exists but is a folder, FIFO, device or socket."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(f"{path} is {kind}, not a regular file")
        self.kind = kind


def open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading without blocking; NotRegularFileError unless a file.

    stat() first so a FIFO is never opened; O_NONBLOCK as well, since the path can be
    swapped for a FIFO between the two calls, then fstat() checks what was opened.
    """
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise NotRegularFileError(path, file_kind(info.st_mode))
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    handle = os.fdopen(fd, "rb")
    mode = os.fstat(handle.fileno()).st_mode
    if not stat.S_ISREG(mode):
        handle.close()
        raise NotRegularFileError(path, file_kind(mode))
    return handle


def read_regular_file(path: Path, what: str) -> bytes | None:
    """The bytes of ``path`` (None when absent); CatalogsyncError for a FIFO, folder..."""
    try:
        with open_regular(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except NotRegularFileError as exc:
        raise CatalogsyncError(f"{path}: the {what} is {exc.kind}, not a regular file") from None
    except OSError as exc:
        raise CatalogsyncError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None


def size_or_zero(path: Path) -> int:
    """The file's size in bytes; 0 when it does not exist (a `.part` not started yet)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


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
