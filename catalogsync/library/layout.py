"""Where a song lives in the library: the `[library] template` rendered for one song."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from catalogsync.config import LibrarySettings
from catalogsync.transfer.paths import library_relative_path


def song_relative_path(
    song: Mapping[str, Any], ext: str, library: LibrarySettings | None
) -> PurePosixPath:
    """The song's library path before any ` (2)` suffix (the caller reserves it).

    ``song`` is a row of ``CatalogRepository.get_song``; ``ext`` has no dot.
    """
    return library_relative_path(
        str(song["platform"]), str(song.get("singers") or ""), str(song["name"]), ext
    )
