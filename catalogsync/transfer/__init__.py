"""Moving bytes: HTTP/file downloads, rate limiting, speed measurement and library paths.

The names below are imported on first use, so a client that only needs the speed
text (the TUI, `status`) does not load httpx and the downloader.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FileGrowthMonitor": "growth",
    "GrowthCallback": "growth",
    "DownloadResult": "http",
    "HttpDownloader": "http",
    "part_path": "http",
    "ThroughputMeter": "meter",
    "format_bytes_progress": "meter",
    "format_speed": "meter",
    "UnsafePathError": "paths",
    "ensure_space": "paths",
    "library_relative_path": "paths",
    "safe_join": "paths",
    "sanitize_component": "paths",
    "sanitize_ext": "paths",
    "unique_path": "paths",
    "TokenBucket": "ratelimit",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'catalogsync.transfer' has no attribute {name!r}")
    return getattr(importlib.import_module(f"catalogsync.transfer.{module}"), name)
