"""`playlists plan`: the database is neither upgraded nor written, only read; a table."""

from __future__ import annotations

import sqlite3
from typing import Any

from rich.console import Console
from rich.table import Table

from catalogsync.config import Settings
from catalogsync.errors import CatalogsyncError
from catalogsync.transfer.meter import format_speed


def plan_for(settings: Settings, playlist_ids: list[int]) -> dict[str, Any]:
    """The plan, read from the database without upgrading or writing it."""
    from catalogsync.catalog.repository import CatalogRepository
    from catalogsync.db import SCHEMA_VERSION
    from catalogsync.ops.plan import playlist_plan
    from catalogsync.ops.repository import OpsRepository

    path = settings.db_path
    if not path.exists():
        raise CatalogsyncError(f"no database at {path}; run `catalogsync init` first")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise CatalogsyncError(f"{path}: {exc}") from None
    if version < SCHEMA_VERSION:
        raise CatalogsyncError(
            f"{path} is from an older catalogsync; run `catalogsync status` once to upgrade it"
        )
    ops = OpsRepository(path)
    catalog = CatalogRepository(path, share_with=ops)
    try:
        return playlist_plan(catalog, ops, playlist_ids or None)
    finally:
        ops.close()


def _size(n: int | None) -> str:
    return "size unknown" if n is None else f"{n / (1024 * 1024):.1f} MB"


def _eta(seconds: int | None) -> str:
    if seconds is None:
        return "unknown (no recent download speed)"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


def render_plan(console: Console, plan: dict[str, Any]) -> None:
    table = Table("ID", "Playlist", "Policy", "+ tracks", "- tracks", "Download", "Bytes",
                  "To trash")
    for entry in plan["playlists"]:
        if entry["error"]:
            table.add_row(str(entry["id"]), entry["name"], entry["sync_policy"], "error",
                          entry["error"], "", "", "")
            continue
        table.add_row(
            str(entry["id"]), entry["name"], entry["sync_policy"] + ("" if entry["wanted"]
                                                                     else " (not wanted)"),
            str(entry["tracks_to_add"]), str(entry["tracks_to_remove"]),
            str(entry["songs_to_download"]), _size(entry["download_bytes"]),
            str(len(entry["files_to_quarantine"])),
        )
    console.print(table)
    totals = plan["totals"]
    speed = totals["recent_speed_bytes_per_sec"]
    unknown, known = totals["songs_of_unknown_size"], totals["download_bytes"]
    if known is None:
        size = "sizes unknown"
    elif unknown:
        size = f"{_size(known)} known, {unknown} of unknown size"
    else:
        size = _size(known)
    console.print(
        f"{totals['songs_to_download']} songs to download ({size}), "
        f"{totals['files_to_quarantine']} files to the trash; ETA {_eta(totals['eta_seconds'])}"
        + (f" at {format_speed(speed)}" if speed else ""),
        markup=False,
    )
    for entry in plan["playlists"]:
        for path in entry["files_to_quarantine"]:
            console.print(f"  to trash ({entry['name']}): {path}", markup=False)
