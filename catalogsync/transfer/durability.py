"""Getting downloaded files onto the disk without making the download wait for it.

A download is verified (size, SHA-256), renamed into place and recorded at once, with
``flushed_at`` left empty: its bytes may still be only in the page cache. A ``Flusher``
thread fsyncs such files and their folders a batch at a time, off the download path, and
stamps them synced. A runner that stops cleanly drains it first.

If the machine dies before the flush (a power cut, a kernel panic), the record may point
at a file that is short or full of zeros. ``verify_unflushed_files`` runs when the next
runner starts: every file still unflushed is checked against the size and SHA-256 taken
while it downloaded. A file that matches is fsynced and kept; one that does not is
deleted and its record dropped, so the song counts as missing and the next download
fetches it again. No damaged file is ever trusted as complete.

Why not fsync inline: on the reference VM an fsync of a 256 MiB file takes about 0.4 s,
longer than the download itself, and on a NAS's spinning disk every small file's fsync
costs a journal commit. Batching moves that wait out of every worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalogsync.errors import TransferStopped
from catalogsync.transfer.stop import never

log = logging.getLogger(__name__)

_HASH_BLOCK = 1024 * 1024
_fdatasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort: some file systems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush ``path``'s data to its disk; raises ``OSError`` if that fails."""
    fd = os.open(path, os.O_RDONLY)
    try:
        _fdatasync(fd)
    finally:
        os.close(fd)


class Flusher:
    """A background thread that fsyncs recorded files and reports which made it to disk.

    ``on_flushed(ids)`` is called from the thread with the ids of each batch whose file and
    folder were fsynced; ``on_error(path, exc)`` for a file that could not be (it stays
    unflushed and is checked at the next start). Both must not raise; if they do, the error
    is logged and the thread carries on.
    """

    def __init__(
        self,
        on_flushed: Callable[[list[int]], None],
        *,
        on_error: Callable[[Path, OSError], None] | None = None,
        batch_delay: float = 0.05,
    ) -> None:
        self._on_flushed = on_flushed
        self._on_error = on_error
        self._batch_delay = max(float(batch_delay), 0.0)
        self._cond = threading.Condition()
        self._pending: list[tuple[int, Path]] = []
        self._in_flight = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> int:
        """Files waiting for (or in) an fsync."""
        with self._cond:
            return len(self._pending) + self._in_flight

    def add(self, file_id: int, path: Path) -> None:
        """Queue ``path`` (recorded as ``file_id``) for an fsync."""
        with self._cond:
            if self._closed:
                closed = True
            else:
                closed = False
                self._pending.append((int(file_id), Path(path)))
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="catalogsync-flusher", daemon=True
                    )
                    self._thread.start()
                self._cond.notify_all()
        if closed:  # after close nothing runs in the background: flush here
            self._flush([(int(file_id), Path(path))])

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued file is flushed; False if ``timeout`` ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending or self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float | None = 60.0) -> bool:
        """Flush what is queued, then stop the thread; later ``add``s flush inline."""
        drained = self.drain(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        return drained

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
            if self._batch_delay:
                # Let the workers' next few files join this batch: one folder fsync
                # then covers all of them.
                time.sleep(self._batch_delay)
            with self._cond:
                batch, self._pending = self._pending, []
                self._in_flight = len(batch)
            try:
                self._flush(batch)
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()

    def _flush(self, batch: list[tuple[int, Path]]) -> None:
        done: list[int] = []
        folders: dict[Path, list[int]] = {}
        for file_id, path in batch:
            try:
                fsync_file(path)
            except OSError as exc:
                self._report_error(path, exc)
                continue
            folders.setdefault(path.parent, []).append(file_id)
        for folder, ids in folders.items():
            fsync_dir(folder)
            done.extend(ids)
        if done:
            try:
                self._on_flushed(done)
            except Exception:  # noqa: BLE001 - the rows stay unflushed and are checked later
                log.exception("could not mark %d flushed files as synced", len(done))

    def _report_error(self, path: Path, exc: OSError) -> None:
        log.warning("could not flush %s to disk: %s", path, exc.strerror or exc)
        if self._on_error is not None:
            try:
                self._on_error(path, exc)
            except Exception:  # noqa: BLE001 - reporting must not stop the flusher
                log.exception("flush error handler failed")


@dataclass
class VerifyReport:
    """What ``verify_unflushed_files`` found."""

    kept: int = 0
    dropped: list[str] = field(default_factory=list)
    unflushed: list[str] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(self.kept or self.dropped or self.unflushed)


def sha256_of(path: Path, should_stop: Callable[[], bool] = never) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks: the one file hash we compute.

    ``should_stop`` is asked between blocks (a pause must not wait for a 1 GB hash).
    """
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            if should_stop():
                raise TransferStopped("transfer stopped")
            digest.update(block)
    return digest.hexdigest()


def verify_unflushed_files(catalog: Any) -> VerifyReport:
    """Check every file recorded but never flushed; keep the sound ones, drop the rest.

    ``catalog`` is a ``CatalogRepository`` (``unflushed_files``, ``mark_files_flushed``,
    ``forget_local_file``). A file is sound when it exists with the recorded size and,
    when one was recorded, the recorded SHA-256.
    """
    report = VerifyReport()
    for row in catalog.unflushed_files():
        root = Path(row["target"])
        if not root.is_dir():
            # An unmounted share is not a lost file: check again at the next start.
            log.warning("library root %s is not available; its files are checked later", root)
            continue
        path = root / row["relative_path"]
        problem = _check(path, row)
        if problem is None:
            try:
                fsync_file(path)
                fsync_dir(path.parent)
            except OSError as exc:
                # The bytes are right but the disk will not confirm them: keep the file
                # (unflushed) and say so, rather than delete a sound copy.
                report.unflushed.append(f"{row['relative_path']} ({exc.strerror or exc})")
                continue
            catalog.mark_files_flushed([int(row["id"])])
            report.kept += 1
            continue
        log.warning("dropping %s from the library: %s", path, problem)
        if path.exists() and problem != "missing":
            with contextlib.suppress(OSError):
                path.unlink()
        catalog.forget_local_file(int(row["id"]))
        report.dropped.append(f"{row['relative_path']} ({problem})")
    return report


def _check(path: Path, row: dict[str, Any]) -> str | None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    expected = row.get("file_size_bytes")
    if expected is not None and size != int(expected):
        return f"{size} bytes, expected {int(expected)}"
    if row.get("sha256"):
        try:
            digest = sha256_of(path)
        except OSError as exc:
            return f"unreadable: {exc.strerror or exc}"
        if digest != str(row["sha256"]).lower():
            return "content does not match its SHA-256"
    return None
