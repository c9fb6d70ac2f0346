"""The stage executor base: what one stage of one job plans and does per item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from catalogsync.catalog.repository import CatalogRepository
from catalogsync.config import Settings
from catalogsync.errors import CatalogsyncError

from ..context import JobContext
from ..models import JobRun, JobStage
from ..progress import WorkerProgress
from ..repository import OpsRepository
from ..shared import SharedResources


@dataclass(frozen=True)
class ItemDone:
    """What ``process_item`` returns for an item it finished without marking it.

    The runner then marks it succeeded with ``payload`` in the same transaction that
    claims the worker's next item: one write instead of two per item.
    """

    payload: dict[str, Any]


class StageExecutor:
    """Base: one stage of one job."""

    stage_type = ""
    item_type = ""

    def __init__(
        self,
        *,
        ops_repo: OpsRepository,
        catalog_repo: CatalogRepository,
        settings: Settings | None,
        job: JobRun,
        stage: JobStage,
        ctx: JobContext,
        shared: SharedResources,
    ) -> None:
        self.ops_repo = ops_repo
        self.catalog = catalog_repo
        self.settings = settings
        self.job = job
        self.stage = stage
        self.ctx = ctx
        self.shared = shared
        self._progress: dict[str, WorkerProgress] = {}
        # Items the runner just claimed (with RETURNING): no need to read them again.
        self.claimed: dict[int, Any] = {}

    def _worker_progress(self, worker_name: str) -> WorkerProgress:
        """One meter per worker for the stage, so its speed carries across items."""
        progress = self._progress.get(worker_name)
        if progress is None:
            progress = self._progress[worker_name] = WorkerProgress(
                self.ops_repo, worker_name, self.job.id
            )
        return progress

    def plan(self) -> None:
        """Create this stage's items (idempotent: item keys are unique per stage)."""

    def close(self) -> None:
        """Release what the stage held (connections); called once its workers are done."""

    def worker_count(self) -> int:
        return 1

    def max_attempts(self) -> int:
        return self.settings.download.max_attempts if self.settings else 3

    def process_item(
        self, item_id: int, worker_name: str, *, already_claimed: bool = False
    ) -> ItemDone | None:
        raise NotImplementedError

    def _claim(self, item_id: int, worker_name: str, already_claimed: bool) -> Any:
        if not already_claimed and not self.ops_repo.claim_item(item_id, worker_name):
            raise CatalogsyncError(f"item {item_id} is not pending")
        item = self.claimed.pop(item_id, None) if already_claimed else None
        if item is None:
            item = self.ops_repo.get_item(item_id)
        if item is None:
            raise CatalogsyncError(f"item {item_id} does not exist")
        return item

    def _scope_playlist_ids(self, *, wanted_only: bool) -> list[int]:
        if self.job.playlist_ids:
            return [int(p["id"]) for p in self.catalog.require_playlists(self.job.playlist_ids)]
        playlists = self.catalog.list_playlists(
            wanted_only=wanted_only, source_names=self.job.sources or None
        )
        return [int(p["id"]) for p in playlists]
