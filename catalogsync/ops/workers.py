"""Item workers: the claim / process / settle loop, the one writer of an item's status.

A stage's named workers (``download-1`` ...) each loop: claim the stage's next item
(``RETURNING`` hands over the row), ``executor.process_item`` does the work and returns
``Succeeded`` / ``Skipped`` or raises, and the loop settles the item: its status, the
stage counters, the file records and the claim of the worker's next item in one write
transaction. A failure is classified once (``classify``) into a retry, a failed item, a
paused job or a stopped runner. The runner runs these loops in threads; a helper
process (``ops/helper_main.py``) runs the same loops for some of a stage's workers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from catalogsync import clock
from catalogsync.catalog.repository import CatalogRepository
from catalogsync.db import is_storage_fault
from catalogsync.errors import (
    CatalogsyncError,
    StorageFullError,
    StorageUnavailableError,
    TransferError,
    TransferStopped,
)

from .context import JobContext, StopReason
from .models import JobItem
from .repository import OpsRepository
from .stages.base import NewDownload, Outcome, StageExecutor, Succeeded

log = logging.getLogger("catalogsync.workers")

RETRY_BACKOFF_BASE = 2.0
RETRY_BACKOFF_MAX = 300.0


def retry_delay(attempts: int) -> float:
    """Exponential backoff for an item's next try: 2, 4, 8 ... seconds, capped."""
    return min(RETRY_BACKOFF_BASE ** max(attempts, 1), RETRY_BACKOFF_MAX)


class FailureKind(StrEnum):
    """What an exception out of a stage's work means for its item and job."""

    STOPPED = "stopped"  # the job was stopped: the item goes back, no attempt charged
    STORAGE = "storage"  # the library's disk is full or gone: the item goes back, the job pauses
    RETRY = "retry"  # failed: tried again after a backoff while attempts are left
    FAILED = "failed"  # failed for good
    DATABASE = "database"  # the database itself failed: the runner stops, writes nothing more


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    message: str = ""
    code: str | None = None
    delay: float | None = None


def classify(exc: BaseException, attempts: int = 1) -> Failure:
    """The one classifier of failures, for items (the worker loop) and stages (planning)."""
    if isinstance(exc, TransferStopped):
        return Failure(FailureKind.STOPPED, str(exc))
    if isinstance(exc, (StorageFullError, StorageUnavailableError)):
        return Failure(FailureKind.STORAGE, str(exc))
    if isinstance(exc, TransferError):
        if exc.permanent:
            return Failure(FailureKind.FAILED, str(exc), exc.code)
        return Failure(FailureKind.RETRY, str(exc), exc.code, retry_delay(attempts))
    if isinstance(exc, CatalogsyncError):
        return Failure(FailureKind.FAILED, str(exc), "error")
    if is_storage_fault(exc):
        return Failure(FailureKind.DATABASE, str(exc))
    return Failure(
        FailureKind.RETRY, f"{type(exc).__name__}: {exc}", "internal", retry_delay(attempts)
    )


class HelperHandle(Protocol):
    """What the worker threads need of a helper process running more of the stage's workers."""

    worker_names: list[str]

    def running(self) -> bool: ...

    def request_stop(self, reason: str, message: str | None = None) -> None: ...


class StageWorkers:
    """The named workers of one stage in this process, and the loop each of them runs.

    ``owned()`` turns False once another runner took the lease: from then on the loop
    writes nothing (the items are the new owner's). ``on_database_fault`` hears of a
    database that failed under a worker (the runner stops).
    """

    def __init__(
        self,
        executor: StageExecutor,
        ctx: JobContext,
        *,
        owned: Callable[[], bool] = lambda: True,
        on_database_fault: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.executor = executor
        self.repository: OpsRepository = executor.repository
        self.catalog: CatalogRepository = executor.catalog
        if not self.catalog.shares_connections_with(self.repository):
            # One transaction settles an item across both: they need one connection.
            raise ValueError("the stage's catalog and ops repositories must share connections")
        self.stage_id = executor.stage.id
        self.ctx = ctx
        self._owned = owned
        self._on_database_fault = on_database_fault
        self._max_attempts = executor.max_attempts()

    # -- threads ---------------------------------------------------------------

    def run(
        self,
        names: Sequence[str],
        helpers: Sequence[HelperHandle] = (),
        on_helper_exit: Callable[[HelperHandle], bool] | None = None,
    ) -> None:
        """Worker threads for ``names``; returns once they, and any helpers, are done.

        A helper that exits while the stage runs is seen within a tick: ``on_helper_exit``
        settles it (a dead helper's items go back) and says whether its worker names go
        on here, so the stage keeps the number of workers the operator set.
        """
        threads = [self._start(name) for name in names]
        if not helpers:
            for thread in threads:
                thread.join()
            return
        live = list(helpers)
        # Pass a stop on to the helpers as soon as it is raised, not once our own
        # workers have wound down: a pause must reach every worker within a second.
        while any(t.is_alive() for t in threads) or live:
            stopping = self.ctx.should_stop()
            for helper in list(live):
                if stopping:
                    helper.request_stop(self.ctx.reason or StopReason.SHUTDOWN, self.ctx.message)
                if helper.running():
                    continue
                live.remove(helper)
                if on_helper_exit is not None and on_helper_exit(helper):
                    threads += [self._start(name) for name in helper.worker_names]
            if stopping:
                time.sleep(0.05)
            else:
                self.ctx.wait(0.05)

    def _start(self, worker_name: str) -> threading.Thread:
        thread = threading.Thread(
            target=self._thread,
            args=(worker_name,),
            name=f"job{self.ctx.job_id}-{worker_name}",
            daemon=True,
        )
        thread.start()
        return thread

    def _thread(self, worker_name: str) -> None:
        try:
            self.work(worker_name)
        except Exception as exc:
            if not is_storage_fault(exc):
                raise
            self._database_fault(exc)

    def _database_fault(self, exc: BaseException) -> None:
        if self._on_database_fault is not None:
            self._on_database_fault(exc)
        self.ctx.stop(StopReason.SHUTDOWN, "database fault")

    # -- the loop --------------------------------------------------------------

    def work(self, worker_name: str) -> None:
        """Claim, process and settle items until none is left or the job stops."""
        item: JobItem | None = None
        while not self.ctx.should_stop():
            if item is None:
                item = self._claim(worker_name)
            if item is None:
                counts = self.repository.stage_item_counts(self.stage_id)
                if not counts.get("pending"):
                    break
                # Only items waiting for a retry remain: sleep until the first is due.
                due = self.repository.next_retry_at(self.stage_id) or clock.now()
                self.ctx.wait(min(max(due - clock.now(), 0.05), 0.5))
                continue
            item = self._run_one(item, worker_name)
        if not self._owned():
            return  # the items and worker rows are the new runner's
        if item is not None:  # claimed with the last success, then told to stop
            self.repository.release_item(item.id)
        self.repository.update_worker_state(worker_name, job_id=self.ctx.job_id, status="idle")

    def _claim(self, worker_name: str) -> JobItem | None:
        with self.repository.transaction():
            item = self.repository.claim_next_item(self.stage_id, worker_name)
            if item is not None:
                self.executor.on_claim(item)
        return item

    def _run_one(self, item: JobItem, worker_name: str) -> JobItem | None:
        """Process one claimed item and settle it; the worker's next item, if it got one."""
        try:
            outcome = self.executor.process_item(item, worker_name)
            download = outcome.download if isinstance(outcome, Succeeded) else None
            payload = self._record_download(download) if download is not None else None
            return self._settle(item, outcome, worker_name, payload)
        except Exception as exc:  # noqa: BLE001 - classified; the worker goes on
            # A settle that failed wrote nothing (one transaction): the item fails as its
            # work would have. A download placed by then is found on the item's next try.
            self._fail(item, exc)
            return None

    def _record_download(self, download: NewDownload) -> dict[str, object]:
        """Record a new download, then let the executor rename it into place.

        The record is committed before the rename, so a finished file is never on disk
        unrecorded; if the rename fails the record is taken back. This is a write of its
        own, not part of the item's settle: the item must stay running, holding the
        song's cross-job download claim, until the file is in place (another job waiting
        for the song must find it on disk, not its bare record).
        """
        try:
            file_id, rel, size, shared = self.catalog.record_download(
                song_id=download.song_id,
                backend_id=download.backend_id,
                relative_path=download.relative_path,
                file_size_bytes=download.file_size_bytes,
                ext=download.ext,
                sha256=download.sha256,
                source_sha256=download.source_sha256,
                exists=download.exists,
            )
        except BaseException:
            download.abandon()
            raise
        try:
            download.place(file_id, shared)
        except BaseException:
            if not shared:
                self.catalog.forget_local_file(file_id, with_sharers=True)
            download.abandon()
            raise
        # Another worker may have recorded the same bytes meanwhile: both songs share it.
        return (
            {"path": rel, "bytes": size, "shared": True} if shared else {"path": rel, "bytes": size}
        )

    def _settle(
        self,
        item: JobItem,
        outcome: Outcome,
        worker_name: str,
        download_payload: dict[str, object] | None,
    ) -> JobItem | None:
        """Item status, stage counters, file records and the next claim: one transaction."""
        claim_next = not self.ctx.should_stop()
        with self.repository.transaction():
            for record in outcome.files:
                self.catalog.record_local_file(
                    song_id=record.song_id,
                    backend_id=record.backend_id,
                    relative_path=record.relative_path,
                    file_size_bytes=record.file_size_bytes,
                    ext=record.ext,
                    sha256=record.sha256,
                )
            if isinstance(outcome, Succeeded):
                payload = {**outcome.payload, **(download_payload or {})}
                if claim_next:
                    following = self.repository.succeed_and_claim_next(
                        item.id, payload, self.stage_id, worker_name
                    )
                else:
                    self.repository.mark_item_succeeded(item.id, payload)
                    following = None
            else:
                self.repository.mark_item_skipped(item.id, outcome.reason)
                following = (
                    self.repository.claim_next_item(self.stage_id, worker_name)
                    if claim_next
                    else None
                )
            if following is not None:
                self.executor.on_claim(following)
        return following

    def _fail(self, item: JobItem, exc: BaseException) -> None:
        """Settle an item whose work raised, by what ``classify`` makes of the exception."""
        failure = classify(exc, item.attempts)
        if failure.kind == FailureKind.DATABASE:
            self._database_fault(exc)
            return
        if not self._owned():
            return  # another runner took the lease: the item is its to settle
        if failure.kind == FailureKind.RETRY and failure.code == "internal":
            log.error("item %s failed unexpectedly", item.id, exc_info=exc)
        if failure.kind in (FailureKind.STOPPED, FailureKind.STORAGE):
            self.repository.release_item(item.id)
        else:
            self.repository.mark_item_failed(
                item.id,
                failure.message,
                error_code=failure.code,
                retry_delay=failure.delay,
                max_attempts=self._max_attempts if failure.delay is not None else 1,
            )
        if failure.kind == FailureKind.STORAGE:
            self.ctx.stop(StopReason.STORAGE, failure.message)


def fail_items_of_lost_workers(
    repository: OpsRepository,
    stage_id: int,
    job_id: int,
    worker_names: Sequence[str],
    message: str,
    max_attempts: int,
) -> int:
    """Items a dead helper process held go back with a retry (attempts bound it)."""
    held = repository.running_items_of_workers(stage_id, list(worker_names))
    for item in held:
        repository.mark_item_failed(
            item.id,
            message,
            error_code="helper_died",
            retry_delay=retry_delay(item.attempts),
            max_attempts=max_attempts,
        )
    for name in worker_names:
        repository.update_worker_state(name, job_id=job_id, status="idle")
    return len(held)
