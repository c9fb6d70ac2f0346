"""The quarantine of the `mirror` policy: files no wanted playlist needs, moved, never deleted.

A file qualifies only if catalogsync recorded it (a ``local_files`` row) and it is on disk
as recorded (same size): a file the user put in the library, or changed since, is never
touched. It moves to ``<root>/.catalogsync-trash/<YYYY-MM-DD>/<same relative path>``
and stays there `[library] trash_days` days before it is purged.

Crash safety: the record leaves ``local_files`` and is written to ``trashed_files`` as
``moving`` in one transaction *before* the rename, so verify and reorganize never look
for it at its old path; the rename (atomic, inside one root) then marks it ``trashed``.
``recover`` finishes or undoes a move a crash cut short.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path, PurePosixPath

from catalogsync import clock
from catalogsync.errors import CatalogsyncError
from catalogsync.transfer.durability import fsync_dir
from catalogsync.transfer.paths import safe_join

from .repository import CatalogRepository

log = logging.getLogger("catalogsync.quarantine")

TRASH_DIR = ".catalogsync-trash"


@dataclass
class QuarantineReport:
    moved: list[str] = field(default_factory=list)  # relative paths that went to the trash
    kept: list[str] = field(default_factory=list)  # "path: why" for files left alone
    purged: int = 0
    recovered: int = 0


def trash_path_for(relative_path: str, day: date) -> str:
    return f"{TRASH_DIR}/{day.isoformat()}/{relative_path}"


def _free(root: Path, trash_rel: str) -> str:
    """``trash_rel``, or ``name (2).ext`` ... when a file of that name is already there."""
    candidate, n = trash_rel, 1
    while os.path.lexists(root / candidate):
        n += 1
        path = PurePosixPath(trash_rel)
        candidate = str(path.with_name(f"{path.stem} ({n}){path.suffix}"))
    return candidate


def _files(rows: list[dict[str, object]]) -> list[list[dict[str, object]]]:
    """Records grouped by the file they name (songs sharing one file move together)."""
    groups: dict[tuple[object, object], list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault((row["backend_id"], row["relative_path"]), []).append(row)
    return list(groups.values())


def quarantine_unreferenced(
    catalog: CatalogRepository, *, today: date | None = None
) -> QuarantineReport:
    """Move every candidate of the mirror policy to the trash; what moved and what was kept."""
    report = QuarantineReport()
    day = today or datetime.fromtimestamp(clock.now()).date()
    for records in _files(catalog.quarantine_candidates()):
        row = records[0]
        rel = str(row["relative_path"])
        try:
            root = Path(str(row["target"])).resolve()
            source = safe_join(root, rel, root_resolved=True)
            size = source.stat().st_size if source.is_file() and not source.is_symlink() else None
        except (CatalogsyncError, OSError) as exc:
            report.kept.append(f"{rel}: {exc}")
            continue
        if size is None:
            report.kept.append(f"{rel}: not on disk as a file")
            continue
        recorded = row.get("file_size_bytes")
        if recorded is not None and size != int(str(recorded)):
            report.kept.append(f"{rel}: changed on disk since catalogsync wrote it")
            continue
        trash_rel = _free(root, trash_path_for(rel, day))
        target = root / trash_rel
        try:
            trash_ids = catalog.begin_trash(records, trash_rel)
        except CatalogsyncError as exc:  # a song started sharing the file meanwhile
            report.kept.append(str(exc))
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(source, target)
            fsync_dir(target.parent)
            fsync_dir(source.parent)
        except OSError as exc:
            catalog.undo_trash(trash_ids)
            report.kept.append(f"{rel}: cannot move it: {exc.strerror or exc}")
            continue
        catalog.set_trash_state(trash_ids, "trashed")
        report.moved.append(rel)
    return report


def recover(catalog: CatalogRepository) -> int:
    """Finish (or undo) moves a crash interrupted; how many files were settled."""
    settled = 0
    for records in _trash_groups(catalog.trashed_files(states=("moving",))):
        row = records[0]
        ids = [int(str(r["id"])) for r in records]
        root = Path(str(row["target"])).resolve()
        source, target = root / str(row["relative_path"]), root / str(row["trash_path"])
        try:
            if target.is_file():
                catalog.set_trash_state(ids, "trashed")
            elif source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(source, target)
                fsync_dir(target.parent)
                catalog.set_trash_state(ids, "trashed")
            else:
                catalog.set_trash_state(ids, "lost")
        except OSError as exc:
            log.warning("cannot finish moving %s to the trash: %s", source, exc)
            catalog.undo_trash(ids)
        settled += 1
    return settled


def _trash_groups(rows: list[dict[str, object]]) -> list[list[dict[str, object]]]:
    groups: dict[tuple[object, object], list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault((row["backend_id"], row["trash_path"]), []).append(row)
    return list(groups.values())


def purge(catalog: CatalogRepository, trash_days: int) -> int:
    """Delete trashed files older than ``trash_days`` (only ours, only if unchanged)."""
    cutoff = clock.now() - trash_days * 86400
    purged = 0
    for records in _trash_groups(catalog.trashed_files(states=("trashed", "lost"))):
        row = records[0]
        at = clock.parse_text(str(row["trashed_at"]))
        if at is None or at > cutoff:
            continue
        root = Path(str(row["target"])).resolve()
        target = root / str(row["trash_path"])
        try:
            if target.is_file() and not target.is_symlink():
                expected = row["file_size_bytes"]
                if expected is not None and target.stat().st_size != int(str(expected)):
                    continue  # someone changed it in the trash: not ours to delete any more
                target.unlink()
            _prune_empty(target.parent, root / TRASH_DIR)
        except OSError as exc:
            log.warning("cannot purge %s: %s", target, exc)
            continue
        catalog.forget_trashed([int(str(r["id"])) for r in records])
        purged += 1
    return purged


def _prune_empty(folder: Path, stop: Path) -> None:
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
