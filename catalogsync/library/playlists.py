"""Playlist files: one ordered `.m3u8` per wanted playlist, so media servers see them.

Navidrome, Jellyfin and Plex import `.m3u8` files from the music folder; spotDL's
``--m3u`` writes the same shape (``#EXTM3U``, ``#EXTINF:<secs>,<artist> - <title>``, one
path per line). Paths are relative to the `.m3u8` with forward slashes, so the folder
can be mounted anywhere. Every file catalogsync writes is recorded in
``playlist_files`` with the SHA-256 of what it wrote: a file it did not write, or one
somebody edited since, is never overwritten or removed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from catalogsync.config import LibrarySettings
from catalogsync.library.layout import COMPONENT_BYTES, playlists_folder
from catalogsync.transfer.paths import safe_join, sanitize_component

if TYPE_CHECKING:
    from catalogsync.catalog.repository import CatalogRepository
    from catalogsync.ops.repository import OpsRepository

log = logging.getLogger("catalogsync.library")
SUFFIX = ".m3u8"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_NUMBERED = re.compile(r"^(?P<base>.*) \((?P<n>\d+)\)$")
_lock = threading.Lock()  # one refresh at a time in a process (stages end concurrently)


@dataclass
class PlaylistFilesResult:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed or self.notes)

    def summary(self) -> str:
        parts = []
        if self.written:
            parts.append(
                f"wrote {len(self.written)} ({', '.join(self.written[:3])}"
                + (", ..." if len(self.written) > 3 else "")
                + ")"
            )
        if self.removed:
            parts.append(f"removed {len(self.removed)}")
        parts.extend(self.notes)
        return "playlist files: " + "; ".join(parts) if parts else "playlist files: unchanged"


def _one_line(text: str) -> str:
    return _CONTROL.sub(" ", str(text)).strip()


def render_m3u8(name: str, playlist_id: int, entries: list[dict[str, Any]], folder: Path) -> str:
    """The text of a playlist file; ``folder`` is where it lives (paths are relative to it)."""
    lines = [
        "#EXTM3U",
        f"#PLAYLIST:{_one_line(name)}",
        f"# written by catalogsync for playlist {playlist_id}; rewritten after each sync",
    ]
    for entry in entries:
        target = Path(entry["target"]) / entry["relative_path"]
        rel = Path(os.path.relpath(target, folder)).as_posix()
        if rel.startswith("#"):
            rel = "./" + rel
        duration = entry.get("duration_seconds")
        seconds = int(round(float(duration))) if duration is not None else -1
        title = _one_line(entry.get("name") or "")
        artist = _one_line(entry.get("singers") or "")
        lines.append(
            f"#EXTINF:{seconds},{artist} - {title}" if artist else f"#EXTINF:{seconds},{title}"
        )
        lines.append(rel)
    return "\n".join(lines) + "\n"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _disk_sha(path: Path) -> str | None:
    try:
        return _sha(path.read_bytes()) if path.is_file() and not path.is_symlink() else None
    except OSError:
        return None


def write_atomically(path: Path, data: bytes) -> None:
    """temp file + fsync + rename + fsync of the folder: a reader sees old or new, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _base_name(playlist: dict[str, Any]) -> str:
    return sanitize_component(
        str(playlist["name"]),
        fallback=f"playlist {playlist['id']}",
        max_bytes=COMPONENT_BYTES - len(SUFFIX) - 6,
    )


def _keeps_name(recorded: str, folder: PurePosixPath, base: str) -> bool:
    """Whether a recorded path is still this playlist's name (``base`` or ``base (n)``)."""
    path = PurePosixPath(recorded)
    if path.parent != folder or path.suffix != SUFFIX:
        return False
    stem = path.stem
    match = _NUMBERED.match(stem)
    return stem == base or (match is not None and match.group("base") == base)


def refresh_playlist_files(
    catalog: CatalogRepository, library: LibrarySettings | None
) -> PlaylistFilesResult:
    """Write, rewrite or remove the `.m3u8` of every playlist; only what changed is touched."""
    with _lock:
        return _refresh(catalog, library or LibrarySettings())


def _refresh(catalog: CatalogRepository, library: LibrarySettings) -> PlaylistFilesResult:
    result = PlaylistFilesResult()
    backend = catalog.default_backend()
    root = Path(backend["target"])
    if not root.is_dir():  # not mounted: never create a library where there is none
        result.notes.append(f"library {root} is not reachable; playlist files left as they were")
        return result
    folder = playlists_folder(library)
    records = {int(r["playlist_id"]): r for r in catalog.playlist_file_records()}
    wanted = catalog.list_playlists(wanted_only=True) if folder is not None else []
    wanted_ids = {int(p["id"]) for p in wanted}

    def ours(record: dict[str, Any]) -> bool:
        path = safe_join(Path(_record_root(catalog, record, root)), record["relative_path"])
        return bool(_disk_sha(path) == record["sha256"])

    # Unwanted, deleted or (playlists = "") all: remove what we wrote and nothing else.
    for playlist_id, record in list(records.items()):
        if playlist_id in wanted_ids:
            continue
        path = safe_join(Path(_record_root(catalog, record, root)), record["relative_path"])
        if ours(record):
            path.unlink(missing_ok=True)
            result.removed.append(record["relative_path"])
        elif path.exists():
            result.notes.append(f"{record['relative_path']} was edited since; left in place")
        catalog.forget_playlist_file(playlist_id)
        del records[playlist_id]
    if folder is None:
        return result
    folder_abs = safe_join(root, folder)
    # Names taken: by another playlist's record, or by a file we did not write (casefolded,
    # since SMB shares and macOS disks do not tell "Mix" from "mix").
    assigned: dict[str, int] = {
        PurePosixPath(r["relative_path"]).name.casefold(): pid for pid, r in records.items()
    }
    for playlist in wanted:  # ordered by id: the older playlist keeps the plain name
        playlist_id = int(playlist["id"])
        base = _base_name(playlist)
        kept = records.get(playlist_id)
        if kept is not None and int(kept["backend_id"]) == int(backend["id"]):
            current = PurePosixPath(kept["relative_path"])
            disk = safe_join(root, current)
            edited = disk.exists() and not ours(kept)
            if _keeps_name(kept["relative_path"], folder, base) and not edited:
                _write_one(catalog, backend, root, playlist, current, kept, result)
                continue
            if edited:
                result.notes.append(f"{current} was edited since; left in place")
            elif disk.exists():
                disk.unlink()
                result.removed.append(str(current))
            catalog.forget_playlist_file(playlist_id)
            assigned.pop(current.name.casefold(), None)
        name = _free_name(base, folder_abs, assigned, playlist_id)
        assigned[name.casefold()] = playlist_id
        _write_one(catalog, backend, root, playlist, folder / name, None, result)
    return result


def _record_root(catalog: CatalogRepository, record: dict[str, Any], default_root: Path) -> str:
    for backend in catalog.list_backends():
        if int(backend["id"]) == int(record["backend_id"]):
            return str(backend["target"])
    return str(default_root)


def _free_name(base: str, folder: Path, assigned: dict[str, int], playlist_id: int) -> str:
    for n in range(1, 10_000):
        name = f"{base}{SUFFIX}" if n == 1 else f"{base} ({n}){SUFFIX}"
        owner = assigned.get(name.casefold())
        if owner is not None and owner != playlist_id:
            continue
        if owner is None and os.path.lexists(folder / name):
            continue  # a file catalogsync did not write: never touched
        return name
    raise RuntimeError(f"no free playlist file name for {base!r}")


def _write_one(
    catalog: CatalogRepository,
    backend: dict[str, Any],
    root: Path,
    playlist: dict[str, Any],
    rel: PurePosixPath,
    record: dict[str, Any] | None,
    result: PlaylistFilesResult,
) -> None:
    path = safe_join(root, rel)
    entries = [
        e
        for e in catalog.playlist_entries(int(playlist["id"]))
        if (Path(e["target"]) / e["relative_path"]).is_file()
    ]
    if not entries:
        # Nothing of it in the library yet: no file (a media server would list it empty).
        if record is not None and _disk_sha(path) == record["sha256"]:
            path.unlink()
            result.removed.append(str(rel))
        if record is not None:
            catalog.forget_playlist_file(int(playlist["id"]))
        return
    data = render_m3u8(str(playlist["name"]), int(playlist["id"]), entries, path.parent).encode()
    digest = _sha(data)
    if record is not None and record["sha256"] == digest and _disk_sha(path) == digest:
        result.unchanged += 1
        return
    write_atomically(path, data)
    catalog.record_playlist_file(
        int(playlist["id"]), int(backend["id"]), str(rel), digest, len(entries)
    )
    result.written.append(str(rel))


def after_stage(
    catalog: CatalogRepository,
    ops: OpsRepository,
    library: LibrarySettings | None,
    job_id: int,
    stage_type: str,
) -> None:
    """Rewrite playlist files once a sync or download stage has finished (never raises)."""
    if stage_type not in ("sync", "download"):
        return
    try:
        result = refresh_playlist_files(catalog, library)
    except Exception as exc:  # a playlist file is never worth failing a job for
        log.warning("playlist files not written: %s", exc)
        ops.add_event(
            job_id, "playlist_files", f"playlist files not written: {exc}", level="warning"
        )
        return
    if result.changed:
        ops.add_event(
            job_id, "playlist_files", result.summary(), level="warning" if result.notes else "info"
        )
