"""Moving bytes: HTTP/file downloads, rate limiting, speed measurement and library paths."""

from catalogsync.transfer.growth import FileGrowthMonitor, GrowthCallback
from catalogsync.transfer.http import DownloadResult, HttpDownloader, part_path
from catalogsync.transfer.meter import ThroughputMeter, format_bytes_progress, format_speed
from catalogsync.transfer.paths import (
    UnsafePathError,
    ensure_space,
    library_relative_path,
    safe_join,
    sanitize_component,
    sanitize_ext,
    unique_path,
)
from catalogsync.transfer.ratelimit import TokenBucket

__all__ = [
    "DownloadResult",
    "FileGrowthMonitor",
    "GrowthCallback",
    "HttpDownloader",
    "ThroughputMeter",
    "TokenBucket",
    "UnsafePathError",
    "ensure_space",
    "format_bytes_progress",
    "format_speed",
    "library_relative_path",
    "part_path",
    "safe_join",
    "sanitize_component",
    "sanitize_ext",
    "unique_path",
]
