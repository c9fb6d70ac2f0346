"""The CLI's JSON boundary: one encoder, timestamps as ISO 8601 UTC with ``Z``.

The database and the read models keep ``YYYY-MM-DD HH:MM:SS`` (UTC) because the TUI
and the plain tables format those for display; scripts get ``2026-12-01T16:12:18Z``.
Every field holding a timestamp is named ``*_at`` (docs/json.md), so the conversion
goes by key, never by guessing from a value (a playlist may be named like a date).
"""

from __future__ import annotations

import dataclasses
import json
import re
from enum import Enum
from pathlib import Path
from typing import Any

_DB_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?(?:Z|[+-]00:?00)?")


def iso_utc(value: str) -> str:
    """``2026-12-01 16:12:18[.123]`` (UTC) -> ``2026-12-01T16:12:18[.123]Z``; else unchanged."""
    match = _DB_TIMESTAMP.fullmatch(value)
    if match is None:
        return value
    return f"{match[1]}T{match[2]}{match[3] or ''}Z"


def jsonable(data: Any, key: str = "") -> Any:
    """Plain JSON types, with every ``*_at`` string written as ISO 8601 UTC."""
    if isinstance(data, dict):
        return {str(k): jsonable(v, str(k)) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [jsonable(v) for v in data]
    if isinstance(data, str):
        return iso_utc(data) if key.endswith("_at") else data
    if isinstance(data, Enum):
        return data.value
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        return jsonable(dataclasses.asdict(data), key)
    if isinstance(data, Path):
        return str(data)
    return data


def dump_json(data: Any) -> str:
    """The text `--json` prints: indented, UTF-8 as is, anything unknown as a string."""
    return json.dumps(jsonable(data), indent=2, ensure_ascii=False, default=str)
