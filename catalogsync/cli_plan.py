"""`playlists plan` as a table (``service.read_only_plan`` reads it without writing)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from catalogsync.transfer.meter import format_speed


def _size(n: int | None) -> str:
    return "size unknown" if n is None else f"{n / (1024 * 1024):.1f} MB"


def _eta(seconds: int | None) -> str:
    if seconds is None:
        return "unknown (no recent download speed)"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


def render_plan(console: Console, plan: dict[str, Any]) -> None:
    table = Table(
        "ID", "Playlist", "Policy", "+ tracks", "- tracks", "Download", "Bytes", "To trash"
    )
    for entry in plan["playlists"]:
        if entry["error"]:
            table.add_row(
                str(entry["id"]),
                entry["name"],
                entry["sync_policy"],
                "error",
                entry["error"],
                "",
                "",
                "",
            )
            continue
        table.add_row(
            str(entry["id"]),
            entry["name"],
            entry["sync_policy"] + ("" if entry["wanted"] else " (not wanted)"),
            str(entry["tracks_to_add"]),
            str(entry["tracks_to_remove"]),
            str(entry["songs_to_download"]),
            _size(entry["download_bytes"]),
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
