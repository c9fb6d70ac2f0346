"""`playlists plan`: what the next sync and download would do, per playlist; changes nothing.

It reads each playlist upstream through its provider (as a sync would) and compares
with the database: tracks to add and remove, songs to download (a song shared by two
playlists counts once in the totals), bytes where sizes are known, files the mirror
policy would move to the trash, and an ETA at the speed of the recent downloads.
Only SELECTs run: no job, no database write.
"""

from __future__ import annotations

from typing import Any

from catalogsync.catalog.repository import CatalogRepository
from catalogsync.errors import CatalogsyncError
from catalogsync.providers import registry

from .repository import OpsRepository

SHOWN = 20  # titles listed per playlist and direction; the counts are complete


def _title(name: str, singers: str | None) -> str:
    return f"{name} / {singers}" if singers else name


def playlist_plan(
    catalog: CatalogRepository, ops: OpsRepository, playlist_ids: list[int] | None = None
) -> dict[str, Any]:
    """The plan for these playlists (default: every wanted playlist)."""
    if playlist_ids:
        playlists = catalog.require_playlists(playlist_ids)
    else:
        playlists = catalog.list_playlists(wanted_only=True)
    entries = []
    downloads: dict[tuple[str, str], int | None] = {}
    quarantine: set[str] = set()
    for playlist in playlists:
        entry = _one(catalog, playlist)
        entries.append(entry)
        for key, size in entry.pop("_downloads").items():
            downloads[key] = size
        quarantine.update(entry["files_to_quarantine"])
    known = [size for size in downloads.values() if size]
    speed = ops.recent_download_speed()
    total_bytes = sum(known) if known else (0 if not downloads else None)
    unknown = sum(1 for size in downloads.values() if not size)
    eta = None
    if speed and downloads and not unknown:
        eta = round(sum(known) / speed)
    elif speed and known:  # sizes known for some: the others at their average size
        eta = round((sum(known) + unknown * (sum(known) / len(known))) / speed)
    return {
        "playlists": entries,
        "totals": {
            "playlists": len(entries),
            "tracks_to_add": sum(e["tracks_to_add"] for e in entries),
            "tracks_to_remove": sum(e["tracks_to_remove"] for e in entries),
            "songs_to_download": len(downloads),
            "download_bytes": total_bytes,
            "songs_of_unknown_size": unknown,
            "files_to_quarantine": len(quarantine),
            "recent_speed_bytes_per_sec": round(speed, 1) if speed else None,
            "eta_seconds": eta,
        },
    }


def _one(catalog: CatalogRepository, playlist: dict[str, Any]) -> dict[str, Any]:
    policy = playlist.get("sync_policy") or "add"
    wanted = bool(playlist["wanted"])
    entry: dict[str, Any] = {
        "id": int(playlist["id"]),
        "name": playlist["name"],
        "platform": playlist["platform"],
        "sync_policy": policy,
        "wanted": wanted,
        "error": None,
        "tracks_to_add": 0,
        "tracks_to_remove": 0,
        "add": [],
        "remove": [],
        "songs_to_download": 0,
        "download_bytes": None,
        "files_to_quarantine": [],
        "_downloads": {},
    }
    current = catalog.plan_playlist_songs(int(playlist["id"]))
    try:
        provider = registry.get_provider(playlist["platform"])
        content = provider.fetch_playlist(playlist["ref"] or playlist["remote_id"])
    except CatalogsyncError as exc:
        entry["error"] = str(exc)
        return entry
    platform = str(playlist["platform"])
    upstream = list({t.remote_id: t for t in reversed(content.tracks)}.values())[::-1]
    upstream_ids = {t.remote_id for t in upstream}
    current_ids = {str(s["remote_id"]) for s in current}
    added = [t for t in upstream if t.remote_id not in current_ids]
    removed = [s for s in current if str(s["remote_id"]) not in upstream_ids]
    entry["tracks_to_add"], entry["tracks_to_remove"] = len(added), len(removed)
    entry["add"] = [_title(t.name, t.singers) for t in added[:SHOWN]]
    entry["remove"] = [_title(s["name"], s["singers"]) for s in removed[:SHOWN]]
    if wanted:
        known = catalog.plan_known_songs(platform, [t.remote_id for t in upstream])
        downloads: dict[tuple[str, str], int | None] = {}
        for track in upstream:
            song = known.get(track.remote_id)
            if song is not None and song["has_file"]:
                continue
            size = track.file_size_bytes or (song["file_size_bytes"] if song else None)
            downloads[(platform, track.remote_id)] = size
        sizes = [s for s in downloads.values() if s]
        entry["songs_to_download"] = len(downloads)
        entry["download_bytes"] = sum(sizes) if sizes or not downloads else None
        entry["_downloads"] = downloads
        if policy == "mirror" and removed:
            files = catalog.plan_library_files([int(s["id"]) for s in removed], int(playlist["id"]))
            entry["files_to_quarantine"] = [f["relative_path"] for f in files]
    return entry
