"""Tags written into a finished download before its final rename (mutagen)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalogsync.config import LibrarySettings


@dataclass(frozen=True)
class TagOutcome:
    """What tagging did; ``note`` is an event text when something was left undone."""

    tagged: bool
    note: str | None = None


def write_tags(
    path: Path, song: Mapping[str, Any], ext: str, library: LibrarySettings | None
) -> TagOutcome:
    """Tag ``path`` (a verified `.part`) in place; format problems never raise."""
    return TagOutcome(False)
