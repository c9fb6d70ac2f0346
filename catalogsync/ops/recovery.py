"""What a runner does once after taking the lease: undo what an unclean stop left behind."""

from __future__ import annotations

import logging

from catalogsync.catalog.repository import CatalogRepository
from catalogsync.library.lock import library_is_busy
from catalogsync.transfer.durability import verify_unflushed_files

from .repository import OpsRepository

log = logging.getLogger("catalogsync.runner")


def recover_on_start(repository: OpsRepository, catalog: CatalogRepository | None = None) -> None:
    """Run once after taking the lease: undo what an unclean stop left behind.

    With ``catalog``, files recorded but never flushed to disk are checked too; a damaged
    one is dropped, so the next download fetches its song again.
    """
    report = repository.recover_interrupted()
    if report.anything:
        repository.add_event(
            None,
            "recovered",
            f"recovered after an unclean stop: {report.jobs_requeued} jobs re-queued, "
            f"{report.jobs_paused} paused, {report.items_reset} items back to pending",
            level="warning",
        )
    if catalog is None:
        return
    # Names held for downloads that no unfinished item will resume are free again,
    # unless a reorganize or relocate (which reserve names too) is moving files now.
    if not library_is_busy(catalog.db_path):
        catalog.release_stale_reservations()
    files = verify_unflushed_files(catalog)
    if files.dropped:
        shown = "; ".join(files.dropped[:5])
        more = f" and {len(files.dropped) - 5} more" if len(files.dropped) > 5 else ""
        repository.add_event(
            None,
            "files_dropped",
            f"{len(files.dropped)} downloaded files did not survive an unclean stop and will "
            f"be downloaded again: {shown}{more}",
            level="warning",
        )
    if files.unflushed:
        repository.add_event(
            None,
            "flush_failed",
            f"{len(files.unflushed)} downloaded files are intact but the disk would not "
            f"confirm them; kept, and checked again at the next start: "
            + "; ".join(files.unflushed[:5]),
            level="error",
        )
    if files.kept:
        log.info("%d downloaded files checked and flushed after an unclean stop", files.kept)
