"""The stage executor base, and what processing one item returns.

An executor plans its stage's items (``plan``) and does one claimed item's work
(``process_item``). It never writes the item's status: it returns ``Succeeded`` or
``Skipped`` (with the file records the item produced), or raises a classified failure
(``TransferError``, ``CatalogsyncError``, ``TransferStopped``, ``StorageFullError`` ...),
and the worker loop (``ops/workers.py``) settles the item.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from catalogsync.catalog.repository import CatalogRepository
from catalogsync.config import Settings

from ..context import JobContext
from ..models import JobItem, JobRun, JobStage
from ..progress import WorkerProgress
from ..repository import OpsRepository
from ..shared import SharedResources


@dataclass(frozen=True)
class FileRecord:
    """A ``local_files`` row the worker loop writes with the item's outcome (an upload's copy)."""

    song_id: int
    backend_id: int
    relative_path: str
    file_size_bytes: int | None
    ext: str | None
    sha256: str | None


@dataclass(frozen=True)
class NewDownload:
    """A verified (and tagged) download for the worker loop to record, then put in place.

    The worker loop records it with ``CatalogRepository.record_download`` and only after
    that commit calls ``place`` (record before rename: a finished file is never on disk
    unrecorded); the item's settle follows. If the record fails, or ``place`` raises
    (the record is then taken back), it calls ``abandon`` so the executor can keep or
    drop its bytes.
    """

    song_id: int
    backend_id: int
    relative_path: str
    file_size_bytes: int
    ext: str
    sha256: str
    source_sha256: str
    exists: Callable[[str], bool]  # is this recorded path on disk (for a twin's file)
    place: Callable[[int, bool], None]  # (file_id, shared): rename into place, or drop
    abandon: Callable[[], None]


@dataclass(frozen=True)
class Succeeded:
    """The item did its work; ``payload`` is merged into the item's payload."""

    payload: dict[str, Any] = field(default_factory=dict)
    files: tuple[FileRecord, ...] = ()
    download: NewDownload | None = None


@dataclass(frozen=True)
class Skipped:
    """The item had nothing to do (the song is in the library, the file on the target)."""

    reason: str = ""
    files: tuple[FileRecord, ...] = ()


Outcome = Succeeded | Skipped


class StageExecutor:
    """Base: one stage of one job."""

    stage_type = ""
    item_type = ""

    def __init__(
        self,
        *,
        repository: OpsRepository,
        catalog: CatalogRepository,
        settings: Settings | None,
        job: JobRun,
        stage: JobStage,
        ctx: JobContext,
        shared: SharedResources,
    ) -> None:
        self.repository = repository
        self.catalog = catalog
        self.settings = settings
        self.job = job
        self.stage = stage
        self.ctx = ctx
        self.shared = shared
        self._progress: dict[str, WorkerProgress] = {}

    def _worker_progress(self, worker_name: str) -> WorkerProgress:
        """One meter per worker for the stage, so its speed carries across items."""
        progress = self._progress.get(worker_name)
        if progress is None:
            progress = self._progress[worker_name] = WorkerProgress(
                self.repository, worker_name, self.job.id
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

    def on_claim(self, item: JobItem) -> None:
        """Runs inside the write transaction that claimed ``item`` (its writes join it)."""

    def process_item(self, item: JobItem, worker_name: str) -> Outcome:
        """Do the claimed item's work; return its outcome or raise a classified failure."""
        raise NotImplementedError

    def _scope_playlist_ids(self, *, wanted_only: bool) -> list[int]:
        if self.job.playlist_ids:
            return [int(p["id"]) for p in self.catalog.require_playlists(self.job.playlist_ids)]
        playlists = self.catalog.list_playlists(
            wanted_only=wanted_only, source_names=self.job.sources or None
        )
        return [int(p["id"]) for p in playlists]
