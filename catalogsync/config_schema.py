"""The shape of `config.toml`: every known table and key, with its type and range.

One data table (``SCHEMA``) says what a valid file looks like; ``validate`` walks the
parsed TOML against it and raises a ``ConfigError`` naming ``config.toml:LINE``, the
key, the allowed values and, for a typo, the nearest valid name. Branches that add a
setting add one line here and parse the value in ``config.py``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import field
from pathlib import Path
from typing import Any, cast

from catalogsync.errors import ConfigError
from catalogsync.ops.jobdefs import JOB_TYPES
from catalogsync.records import record


@record(frozen=True)
class Value:
    """One key's rule: a TOML type, and an inclusive range or a set of choices."""

    kind: str  # "int", "number", "str", "bool", "str_list", "wanted_or_ids", "int_or_auto"
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    what: str = ""  # how to name the expected value instead of its type ("a folder path")

    def describe(self) -> str:
        if self.what:
            return self.what
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "int_or_auto":
            return '"auto" or ' + Value("int", self.low, self.high).describe()
        noun = {
            "int": "an integer",
            "number": "a number",
            "str": "a string",
            "bool": "true or false",
            "str_list": "a list of strings",
            "wanted_or_ids": '"wanted" or a list of playlist ids',
        }[self.kind]
        if self.low is not None and self.high is not None:
            return f"{noun} from {_num(self.low)} to {_num(self.high)}"
        if self.low is not None:
            return f"{noun} >= {_num(self.low)}"
        return noun

    def accepts(self, value: Any) -> bool:
        if self.kind == "int_or_auto":
            return value == "auto" or Value("int", self.low, self.high).accepts(value)
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind in ("int", "number"):
            kinds: tuple[type, ...] = (int,) if self.kind == "int" else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds):
                return False
            number = cast(float, value)  # an int stays an int: 10**400 must not overflow
            if self.low is not None and not number >= self.low:  # NaN fails both tests
                return False
            return self.high is None or number <= self.high
        if self.kind == "str":
            return isinstance(value, str) and (not self.choices or value in self.choices)
        if self.kind == "str_list":
            items = value if isinstance(value, list) else None
            if items is None or not all(isinstance(v, str) for v in items):
                return False
            return not self.choices or all(v in self.choices for v in items)
        if self.kind == "wanted_or_ids":
            if value == "wanted":
                return True
            return isinstance(value, list) and all(
                isinstance(v, int) and not isinstance(v, bool) for v in value
            )
        raise AssertionError(self.kind)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@record(frozen=True)
class Table:
    """A TOML table: its keys, sub-tables, and whether it is an array of tables.

    ``any_key`` makes every key valid with that rule (``[tui.keys]``); ``named``
    makes every sub-table a table of that shape (``[platforms.NAME]``).
    """

    keys: dict[str, Value] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    array: bool = False
    any_key: Value | None = None
    named: Table | None = None
    free: bool = False  # anything goes (provider options)
    moved: dict[str, str] = field(default_factory=dict)  # key -> why it is not here


def _int(low: int, high: int) -> Value:
    return Value("int", low, high)


# Generous but finite ceilings: a value past them is a typo, not a wish, and a huge
# one must never reach code that allocates per unit (``workers = 10**17``).
_BYTES_PER_SEC = _int(0, 10**12)
_ATTEMPTS = _int(1, 100)
_WORKERS = _int(1, 64)

SOURCE_KINDS = ("manual_file", "directory", "playlist_square")
JOB_NAMES = JOB_TYPES  # one table of job types: ops/jobdefs.py

_LIBRARY = Table(
    keys={
        "root": Value("str", what="a folder path"),
        "template": Value("str"),
        "playlists": Value("str"),
        "write_tags": Value("bool"),
        "cover_art": Value("bool"),
        "overwrite_tags": Value("bool"),
        "trash_days": _int(0, 36500),
    }
)

SCHEMA = Table(
    keys={
        "library": Value("str", what="a folder path")
    },  # legacy: the library root; [library] root is the new form
    tables={
        "runner": Table(
            keys={
                "download_lane_concurrency": _int(1, 16),
                "general_lane_concurrency": _int(1, 64),
            }
        ),
        "download": Table(
            keys={
                "workers": _WORKERS,
                "processes": Value("int_or_auto", 1, 64),
                "max_bytes_per_sec": _BYTES_PER_SEC,
                "max_attempts": _ATTEMPTS,
                "reserve_mb": _int(0, 10**7),
                "stall_seconds": _int(5, 3600),
            },
            tables={
                "limits": Table(
                    array=True,
                    keys={"hours": Value("str"), "max_bytes_per_sec": _BYTES_PER_SEC},
                )
            },
        ),
        "upload": Table(
            keys={
                "workers": _WORKERS,
                "max_bytes_per_sec": _BYTES_PER_SEC,
                "max_attempts": _ATTEMPTS,
            },
            moved={
                "processes": "uploads always run in the runner process; only [download] "
                "takes processes",
                "reserve_mb": "free space is kept on the library disk by [download] reserve_mb",
            },
        ),
        "library": _LIBRARY,
        "sources": Table(
            array=True,
            keys={
                "name": Value("str"),
                "kind": Value("str", choices=SOURCE_KINDS),
                "path": Value("str", what="a file or folder path"),
                "provider": Value("str"),
            },
            tables={"options": Table(free=True)},
        ),
        "schedules": Table(
            array=True,
            keys={
                "name": Value("str"),
                "cron": Value("str"),
                "job": Value("str", choices=JOB_NAMES),
                "playlists": Value("wanted_or_ids"),
                "sources": Value("str_list"),
                "catch_up": Value("bool"),
                "priority": _int(-(10**6), 10**6),
                "backend": Value("str"),
            },
        ),
        "platforms": Table(
            named=Table(
                keys={
                    "requests_per_minute": Value("number", 0, 10**6),
                    "jitter": Value("number", 0, 1),
                    "max_concurrent": _int(0, 64),
                    "max_cooldown": Value("number", 0, 86400),
                }
            )
        ),
        "notify": Table(
            keys={"urls": Value("str_list"), "urls_env": Value("str"), "on": Value("str_list")}
        ),
        "log": Table(
            keys={
                "file": Value("str", what="a file path"),
                "max_bytes": _int(0, 10**12),
                "backups": _int(0, 1000),
            }
        ),
        "tui": Table(
            keys={"refresh_seconds": Value("number", 0.1, 60)},
            tables={"keys": Table(any_key=Value("str"))},
        ),
    },
)


# -- where things are in the file ----------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def _split_dotted(text: str) -> list[str]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)', text)
    return [a or b or c for a, b, c in parts]


def key_lines(text: str) -> dict[tuple[Any, ...], int]:
    """Map key paths (``("download", "workers")``, ``("sources", 0, "kind")``) to lines.

    A light scan, not a TOML parser: good enough to point at the line of a key the
    real parser already accepted.
    """
    lines: dict[tuple[Any, ...], int] = {}
    counts: dict[tuple[Any, ...], int] = {}
    current: tuple[Any, ...] = ()
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        quotes = line.count('"""') + line.count("'''")
        if in_multiline:
            in_multiline = quotes % 2 == 0
            continue
        header = _HEADER.match(line)
        if header:
            names = _split_dotted(header.group(2))
            parent = _resolve(tuple(names[:-1]), counts)
            if header.group(1) == "[[":
                base = parent + (names[-1],)
                index = counts.get(base, -1) + 1
                counts[base] = index
                lines.setdefault(base, number)
                current = base + (index,)
            else:
                current = parent + (names[-1],)
            lines.setdefault(current, number)
            continue
        key = _KEY.match(line)
        if key:
            path = current + tuple(_split_dotted(key.group(1)))
            lines.setdefault(path, number)
            if quotes % 2 == 1:
                in_multiline = True
    return lines


def _resolve(names: tuple[str, ...], counts: dict[tuple[Any, ...], int]) -> tuple[Any, ...]:
    """A dotted header's parent path, with array-of-tables indexes filled in."""
    path: tuple[Any, ...] = ()
    for name in names:
        path += (name,)
        if path in counts:
            path += (counts[path],)
    return path


def _line_of(lines: dict[tuple[Any, ...], int], path: tuple[Any, ...]) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


def _label(path: tuple[Any, ...]) -> str:
    """``[download]``, ``[[sources]] #2``, ``[platforms.example]``."""
    names = [p for p in path if isinstance(p, str)]
    index = next((p for p in reversed(path) if isinstance(p, int)), None)
    if index is not None and isinstance(path[-1], int):
        return f"[[{'.'.join(names)}]] #{index + 1}"
    if index is not None:
        return f"[{'.'.join(names)}] in entry #{index + 1}"
    return f"[{'.'.join(names)}]" if names else "the top level"


def _suggest(name: str, known: list[str], table: bool) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean [{close[0]}]?)" if table else f" (did you mean {close[0]}?)"


# -- validation ----------------------------------------------------------------------


def validate(data: dict[str, Any], text: str, config_path: Path) -> None:
    """Raise ConfigError for the first unknown name, wrong type or value out of range."""
    lines = key_lines(text)

    def fail(path: tuple[Any, ...], message: str) -> None:
        line = _line_of(lines, path)
        where = f"{config_path}:{line}" if line else str(config_path)
        raise ConfigError(f"{where}: {message}")

    def walk(table: Table, value: dict[str, Any], path: tuple[Any, ...]) -> None:
        if table.free:
            return
        for key, item in value.items():
            here = path + (key,)
            if key == "library" and not path and isinstance(item, dict):
                walk(SCHEMA.tables["library"], item, here)
                continue
            if key in table.tables and key not in table.keys:
                walk_table(table.tables[key], item, here)
                continue
            if table.named is not None:
                if not isinstance(item, dict):
                    fail(here, f"{_label(here)} must be a table")
                walk(table.named, item, here)
                continue
            rule = table.keys.get(key) or table.any_key
            if rule is None:
                if key in table.moved:
                    fail(here, f"{key} is not a setting of {_label(path)}: {table.moved[key]}")
                is_table = isinstance(item, dict) or (
                    isinstance(item, list) and item and isinstance(item[0], dict)
                )
                if is_table:
                    known = [
                        ".".join(str(p) for p in path if isinstance(p, str)) + "." + t
                        if path
                        else t
                        for t in table.tables
                    ]
                    name = ".".join([p for p in here if isinstance(p, str)])
                    fail(here, f"unknown table [{name}]{_suggest(name, known, True)}")
                known_keys = list(table.keys) + list(table.tables)
                where = f" in {_label(path)}" if path else ""
                fail(here, f"unknown key {key}{where}{_suggest(key, known_keys, False)}")
                return  # unreachable: fail raises
            if not rule.accepts(item):
                # TOML's spelling of a boolean, not Python's: the user wrote `true`.
                shown = str(item).lower() if isinstance(item, bool) else repr(item)
                if len(shown) > 40:
                    shown = shown[:37] + "..."
                name = key if not path else f"{_label(path)} {key}"
                hint = ""
                if rule.choices and isinstance(item, str):  # kind = "directry"
                    close = difflib.get_close_matches(item, list(rule.choices), n=1, cutoff=0.6)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                fail(here, f"{name} must be {rule.describe()}, got {shown}{hint}")

    def walk_table(table: Table, item: Any, here: tuple[Any, ...]) -> None:
        if table.array:
            if not isinstance(item, list) or not all(isinstance(e, dict) for e in item):
                name = ".".join(p for p in here if isinstance(p, str))
                fail(here, f"{name} must be an array of tables ([[{name}]])")
            for index, entry in enumerate(item):
                walk(table, entry, here + (index,))
        else:
            if not isinstance(item, dict):
                fail(here, f"{_label(here)} must be a table")
            walk(table, item, here)

    walk(SCHEMA, data, ())
