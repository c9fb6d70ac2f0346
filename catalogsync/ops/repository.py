"""OpsRepository: the SQL of the job system, composed from one module per aggregate.

Each aggregate lives in ``ops/repo/``: jobs, stages, items, workers, commands, events,
the runner lease, schedule state and the read queries the views assemble. They share
one ``SqliteStore`` (one connection per thread, one write transaction at a time), so a
transaction that spans aggregates (an item's success and its worker's next claim) is
still one transaction.
"""

from __future__ import annotations

from pathlib import Path

from catalogsync.db import SqliteStore

from .repo.commands import CommandOutcome, CommandsRepository
from .repo.events import EventsRepository
from .repo.items import ItemsRepository
from .repo.lease import LeaseRepository, RecoveryReport
from .repo.reads import ReadsRepository
from .repo.schedules import SchedulesRepository
from .repo.stages import StagesRepository

__all__ = ["CommandOutcome", "OpsRepository", "RecoveryReport"]


class OpsRepository(
    StagesRepository,
    ItemsRepository,
    CommandsRepository,
    EventsRepository,
    LeaseRepository,
    SchedulesRepository,
    ReadsRepository,
):
    """All reads and writes of the job tables; safe to share between threads."""

    def __init__(self, db_path: str | Path, *, share_with: SqliteStore | None = None) -> None:
        super().__init__(db_path, share_with=share_with)
        self._worker_ids: dict[tuple[str, int], int] = {}
