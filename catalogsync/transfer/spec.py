"""What the transfer layer is asked to move: a URL with its expectations, and progress.

These live here, below the providers, because the downloader needs them and must not
import the layer above it (the providers build specs; the transfer layer moves bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field

from catalogsync.records import record


@record(frozen=True)
class DownloadSpec:
    """What our own downloader needs to move a track's bytes."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    expected_size: int | None = None
    sha256: str | None = None
    ext: str = ""


ProgressCallback = Callable[[int, int | None], None]
"""Called with (bytes so far, expected total or None)."""
