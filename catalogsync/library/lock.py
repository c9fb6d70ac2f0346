"""One library-wide operation at a time: reorganize, relocate and verify, across processes.

Each of them reads and rewrites the move journal and the path reservations; two at
once could undo a move still in progress (verify "recovering" a live reorganize) or
free a name a move is about to take. An advisory ``flock`` on a file beside the
database serializes them; the kernel releases it when its process dies, so a SIGKILL
never leaves the library locked.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from catalogsync.errors import CatalogsyncError


class LibraryBusyError(CatalogsyncError):
    """Another library-wide operation holds the library."""


def lock_path(db_path: Path) -> Path:
    return Path(db_path).with_name(Path(db_path).name + ".library-lock")


@contextlib.contextmanager
def library_lock(db_path: Path, what: str) -> Iterator[None]:
    """Hold the library for ``what``; ``LibraryBusyError`` at once when another holds it."""
    import fcntl

    path = lock_path(db_path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise LibraryBusyError(
                f"{what}: the library is busy ({holder}); run it again when that has finished"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what}, pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


P = ParamSpec("P")
R = TypeVar("R")


def holds_library(
    what: str,
) -> Callable[[Callable[Concatenate[Any, P], R]], Callable[Concatenate[Any, P], R]]:
    """Decorate a function whose first argument is the catalog: it runs holding the library."""

    def decorate(func: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], R]:
        @functools.wraps(func)
        def holding(catalog: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
            with library_lock(catalog.db_path, what):
                return func(catalog, *args, **kwargs)

        return holding

    return decorate


def library_is_busy(db_path: Path) -> bool:
    """Whether a library-wide operation runs now (the runner's start-up asks)."""
    try:
        with library_lock(db_path, "check"):
            return False
    except LibraryBusyError:
        return True
