"""The verify stage of a `library_verify` job: `catalogsync library verify` from the queue."""

from __future__ import annotations

from catalogsync.library.playlists import refresh_playlist_files
from catalogsync.library.verify import verify_library

from ..jobdefs import STAGE_DEFS
from ..models import JobItem
from .base import StageExecutor, Succeeded


class VerifyStageExecutor(StageExecutor):
    """One item: check every library backend's records against its files (no --fix)."""

    stage_type = "verify"
    item_type = STAGE_DEFS["verify"].item_type

    def plan(self) -> None:
        self.repository.create_items(
            self.stage.id,
            [
                {
                    "item_type": self.item_type,
                    "item_key": "library",
                    "payload": {"display_text": "library records and files"},
                }
            ],
        )

    def max_attempts(self) -> int:
        return 1

    def process_item(self, item: JobItem, worker_name: str) -> Succeeded:
        library = self.settings.library if self.settings is not None else None
        report = verify_library(self.catalog, library, fix=False)
        level = "warning" if report.missing or report.mismatched else "info"
        self.repository.add_event(self.job.id, "library_verify", report.summary(), level=level)
        for entry in report.mismatched[:20]:
            self.repository.add_event(
                self.job.id,
                "library_verify",
                f"{entry['backend']}:{entry['path']}: {entry['reason']}",
                level="warning",
            )
        if report.missing:
            refresh_playlist_files(self.catalog, library)
        return Succeeded(
            {
                "checked": report.checked,
                "missing": len(report.missing),
                "mismatched": len(report.mismatched),
                "unrecorded": len(report.unrecorded),
            },
        )
