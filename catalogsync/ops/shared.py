"""What every job of one runner shares: bandwidth limits, platform pacing and the flusher."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from catalogsync.catalog.repository import CatalogRepository
from catalogsync.config import PlatformPacing, Settings
from catalogsync.transfer.durability import Flusher
from catalogsync.transfer.pacing import Pacer
from catalogsync.transfer.ratelimit import TokenBucket

from .repository import OpsRepository
from .unattended import cooldown_event


class SharedResources:
    """What every job of one runner shares: bandwidth limits and the flusher."""

    def __init__(
        self,
        download_limit: int = 0,
        upload_limit: int = 0,
        *,
        on_synced: Callable[[list[int]], None] | None = None,
        on_flush_error: Callable[[Path, OSError], None] | None = None,
        pacing: dict[str, PlatformPacing] | None = None,
    ) -> None:
        self.download_limiter = TokenBucket(download_limit or None)
        self.upload_limiter = TokenBucket(upload_limit or None)
        self.flusher = Flusher(on_synced or (lambda ids: None), on_error=on_flush_error)
        self.pacer = Pacer(pacing)  # per-platform pacing and shared cooldowns
        # How many download-class jobs may run at once: only above 1 can two job items
        # download one song together, which the cross-job download claim prevents.
        self.download_jobs_at_once = 1

    @classmethod
    def build(
        cls,
        settings: Settings | None,
        catalog: CatalogRepository | None = None,
        ops: OpsRepository | None = None,
    ) -> SharedResources:
        on_flushed = catalog.mark_files_flushed if catalog is not None else None

        def flush_failed(path: Path, exc: OSError) -> None:
            if ops is not None:
                ops.add_event(
                    None,
                    "flush_failed",
                    f"could not write {path} to disk: {exc.strerror or exc}; "
                    "it is checked again when the runner next starts",
                    level="error",
                )

        limits = (
            (settings.download.max_bytes_per_sec, settings.upload.max_bytes_per_sec)
            if settings is not None
            else (0, 0)
        )
        pacing = settings.unattended.platforms if settings is not None else None
        shared = cls(*limits, on_synced=on_flushed, on_flush_error=flush_failed, pacing=pacing)
        shared.pacer.on_cooldown = cooldown_event(ops) if ops is not None else None
        if settings is not None:
            shared.download_jobs_at_once = settings.download_lane_concurrency
        return shared

    def close(self) -> None:
        """Flush every downloaded file to disk; stop the runner's rclone rcd, if one started."""
        self.flusher.close()
        # Only when an upload used rclone: importing the backends costs 0.1-0.3 s (httpx).
        rcd = sys.modules.get("catalogsync.transfer.backends.rcd")
        if rcd is not None:
            rcd.stop_daemons()
