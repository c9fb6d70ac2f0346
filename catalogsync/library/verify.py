"""`library verify`: the records and the files on disk, reconciled.

A record whose file is gone is dropped (the song counts as missing, so the next
download fetches it). A file whose size or SHA-256 differs from its record is
reported; with ``fix`` it is moved to the dated trash folder (never deleted) and its
record dropped, so the next download fetches it again. Audio files nobody recorded are
listed and never touched. Moves a killed `library reorganize` left half done are
finished first, so a file in mid-move is never mistaken for a missing one.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from catalogsync.config import LibrarySettings
from catalogsync.library.layout import playlists_folder
from catalogsync.library.lock import holds_library
from catalogsync.transfer.durability import sha256_of
from catalogsync.transfer.paths import UnsafePathError, safe_join

if TYPE_CHECKING:
    from catalogsync.catalog.repository import CatalogRepository

AUDIO_SUFFIXES = frozenset(
    {".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".m4b", ".mp4", ".aac", ".wav",
     ".aif", ".aiff", ".wma", ".wv", ".ape", ".alac", ".dsf"}
)  # fmt: skip
TRASH_FOLDER = ".catalogsync-trash"


@dataclass
class VerifyReport:
    checked: int = 0
    ok: int = 0
    missing: list[dict[str, Any]] = field(default_factory=list)
    mismatched: list[dict[str, Any]] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)
    moved_to_trash: list[str] = field(default_factory=list)
    moves_recovered: int = 0
    trash_purged: int = 0
    unreachable: list[str] = field(default_factory=list)
    in_flight: int = 0
    fix: bool = False

    @property
    def needs_download(self) -> bool:
        return bool(self.missing or self.moved_to_trash)

    def summary(self) -> str:
        text = (
            f"verify: {self.checked} files checked, {self.ok} ok, {len(self.missing)} missing"
            f"{' (marked for download)' if self.missing else ''}, "
            f"{len(self.mismatched)} mismatched"
        )
        if self.moved_to_trash:
            text += f" ({len(self.moved_to_trash)} moved to {TRASH_FOLDER} for download)"
        text += f", {len(self.unrecorded)} unrecorded audio files (left alone)"
        if self.moves_recovered:
            text += f", {self.moves_recovered} interrupted moves finished"
        if self.in_flight:
            text += f", {self.in_flight} files being downloaded right now skipped"
        for where in self.unreachable:
            text += f"; {where}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}


@holds_library("library verify")
def verify_library(
    catalog: CatalogRepository,
    library: LibrarySettings | None,
    *,
    fix: bool = False,
    check_hash: bool = True,
    today: dt.date | None = None,
) -> VerifyReport:
    """Check every library backend's records against its files (see the module text).

    Holds the library (``library.lock``): a reorganize or relocate in progress makes it
    stop at once with one line instead of undoing their journaled moves.
    """
    from catalogsync.library.reorganize import recover_moves

    settings = library or LibrarySettings()
    report = VerifyReport(fix=fix)
    report.moves_recovered = recover_moves(catalog)
    day = today or dt.date.today()
    for backend in catalog.local_backends():
        root = Path(backend["target"])
        rows = catalog.list_library_files(int(backend["id"]))
        if _looks_unmounted(root, rows):
            # An unmounted share looks like a library whose every file was deleted:
            # forgetting them all would download the whole library again.
            report.checked += len(rows)
            report.unreachable.append(
                f"{backend['name']}: none of its {len(rows)} recorded files is under {root}; "
                "is it mounted? nothing was changed"
            )
            continue
        recorded: set[str] = set()
        seen_paths: dict[str, bool] = {}  # a shared file is checked once
        for row in rows:
            rel = str(row["relative_path"])
            recorded.add(rel)
            if row.get("flushed_at") is None:
                # Recorded just before its rename and not yet flushed: a download in
                # flight (the runner checks such files itself when it starts).
                report.in_flight += 1
                continue
            entry = {
                "file_id": row["id"], "song_id": row["song_id"], "backend": backend["name"],
                "path": rel, "song": _song_text(row),
            }  # fmt: skip
            report.checked += 1
            try:
                path = safe_join(root, rel)
            except UnsafePathError as exc:
                report.mismatched.append({**entry, "reason": str(exc)})
                continue
            if not path.is_file():
                catalog.forget_local_file(int(row["id"]))
                report.missing.append(entry)
                continue
            reason = _mismatch(path, row, check_hash)
            if reason is None:
                report.ok += 1
                seen_paths[rel] = True
                continue
            report.mismatched.append({**entry, "reason": reason})
            if fix:
                if rel not in seen_paths and path.exists():
                    trash = _to_trash(root, rel, day)
                    report.moved_to_trash.append(trash)
                catalog.forget_local_file(int(row["id"]))
                seen_paths[rel] = False
        report.unrecorded.extend(
            f"{backend['name']}:{rel}" for rel in _unrecorded_audio(root, recorded, settings)
        )
        report.trash_purged += _purge_trash(root, settings.trash_days, day)
    return report


def _looks_unmounted(root: Path, rows: list[dict[str, Any]]) -> bool:
    """No recorded file at all under the root (and more than one recorded)."""
    if len(rows) < 2:
        return False
    if not root.is_dir():
        return True
    return not any((root / str(row["relative_path"])).is_file() for row in rows)


def _song_text(row: dict[str, Any]) -> str:
    singers = str(row.get("singers") or "").strip()
    return f"{row.get('song_name')} / {singers}" if singers else str(row.get("song_name"))


def _mismatch(path: Path, row: dict[str, Any], check_hash: bool) -> str | None:
    size = path.stat().st_size
    if row["file_size_bytes"] is not None and size != int(row["file_size_bytes"]):
        return f"{size} bytes on disk, {row['file_size_bytes']} recorded"
    if check_hash and row["sha256"] and sha256_of(path) != row["sha256"]:
        return "SHA-256 differs from the record"
    return None


def _to_trash(root: Path, rel: str, day: dt.date) -> str:
    """Move a library file to ``<root>/.catalogsync-trash/<date>/<rel>``; return that path."""
    base = PurePosixPath(TRASH_FOLDER, day.isoformat(), rel)
    target = base
    n = 1
    while os.path.lexists(root / target):
        n += 1
        target = base.with_name(f"{base.stem} ({n}){base.suffix}")
    (root / target).parent.mkdir(parents=True, exist_ok=True)
    os.replace(root / rel, root / target)
    return target.as_posix()


def _unrecorded_audio(root: Path, recorded: set[str], library: LibrarySettings) -> list[str]:
    skip = {TRASH_FOLDER}
    folder = playlists_folder(library)
    found: list[str] = []
    if not root.is_dir():
        return found
    for current, dirs, files in os.walk(root):
        rel_dir = Path(current).relative_to(root)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and not (rel_dir == Path(".") and d in skip)
            and (folder is None or (rel_dir / d).as_posix() != folder.as_posix())
        )
        for name in sorted(files):
            if Path(name).suffix.lower() not in AUDIO_SUFFIXES or name.startswith("."):
                continue
            rel = (rel_dir / name).as_posix()
            if rel not in recorded:
                found.append(rel)
    return found


def _purge_trash(root: Path, days: int, today: dt.date) -> int:
    """Drop dated trash folders older than ``trash_days`` (only what verify put there)."""
    trash = root / TRASH_FOLDER
    if not trash.is_dir() or days <= 0:
        return 0
    purged = 0
    for entry in trash.iterdir():
        try:
            when = dt.date.fromisoformat(entry.name)
        except ValueError:
            continue  # not a folder verify made: left alone
        if entry.is_dir() and not entry.is_symlink() and (today - when).days > days:
            shutil.rmtree(entry)
            purged += 1
    return purged
