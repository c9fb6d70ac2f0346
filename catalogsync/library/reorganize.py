"""`library reorganize`: move recorded files to the current template, crash-safe.

Each move is: reserve the new path (``CatalogRepository.reserve_path``, the same
reservation downloads take, so no download can write it meanwhile), journal
``old -> new`` in ``library_moves``, rename, fsync both folders, then point every
record of the old path at the new one and drop the journal row in one transaction.
A kill at any point leaves each song findable: before the rename its record is right;
after it the journal row says where the file went, and the next run (or `library
verify`) finishes the move from what is on disk. Files nobody recorded are never moved.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from catalogsync.config import LibrarySettings
from catalogsync.db import library_path_key
from catalogsync.library.layout import song_relative_path
from catalogsync.library.lock import library_lock
from catalogsync.transfer.paths import safe_join

if TYPE_CHECKING:
    from catalogsync.catalog.repository import CatalogRepository


@dataclass
class ReorganizeReport:
    dry_run: bool = False
    moves: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0
    missing: list[str] = field(default_factory=list)
    recovered: int = 0

    def summary(self) -> str:
        verb = "would move" if self.dry_run else "moved"
        text = f"reorganize: {verb} {len(self.moves)} files, {self.unchanged} already in place"
        if self.missing:
            text += (
                f", {len(self.missing)} recorded files missing (run `catalogsync library verify`)"
            )
        if self.recovered:
            text += f", {self.recovered} interrupted moves finished first"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover_moves(catalog: CatalogRepository) -> int:
    """Finish or undo every journaled reorganize move from what is on disk; returns count."""
    count = 0
    for move in catalog.journaled_moves("reorganize"):
        old = Path(move["old_root"]) / move["old_path"]
        new = Path(move["new_root"]) / move["new_path"]
        if os.path.lexists(new) and not os.path.lexists(old):
            catalog.finish_move(int(move["id"]), new_path=str(move["new_path"]))
        else:  # the rename never happened (or the new name is someone else's): undo
            catalog.finish_move(int(move["id"]), new_path=None)
        catalog.release_path(int(move["backend_id"]), int(move["song_id"]))
        count += 1
    return count


def _remove_empty_parents(root: Path, folder: Path) -> None:
    """rmdir the folders a move emptied, up to (not including) the root."""
    current = folder
    while current != root and current.is_relative_to(root):
        try:
            current.rmdir()
        except OSError:
            return  # not empty (or not ours to remove): stop
        current = current.parent


def reorganize(
    catalog: CatalogRepository,
    library: LibrarySettings | None,
    *,
    dry_run: bool = False,
) -> ReorganizeReport:
    """Move every recorded library file to where the template puts it now.

    Holds the library (``library.lock``) while it moves; a dry run moves nothing and
    takes no lock.
    """
    if dry_run:
        return _reorganize_unlocked(catalog, library, dry_run=True)
    with library_lock(catalog.db_path, "library reorganize"):
        return _reorganize_unlocked(catalog, library, dry_run=dry_run)


def _reorganize_unlocked(
    catalog: CatalogRepository,
    library: LibrarySettings | None,
    *,
    dry_run: bool = False,
) -> ReorganizeReport:
    """Move every recorded library file to where the template puts it now."""
    report = ReorganizeReport(dry_run=dry_run)
    if not dry_run:
        report.recovered = recover_moves(catalog)
    for backend in catalog.local_backends():
        backend_id = int(backend["id"])
        root = Path(backend["target"]).resolve()
        planned: set[str] = set()
        rows = catalog.library_file_rows(backend_id)
        done_paths: set[str] = set()
        for row in rows:
            current = str(row["relative_path"])
            if current in done_paths:
                continue  # a file several songs share moves once, with its first song
            done_paths.add(current)
            ext = PurePosixPath(current).suffix.lstrip(".") or str(row.get("file_ext") or "")
            wanted = song_relative_path(row, ext, library).as_posix()
            if library_path_key(wanted) == library_path_key(current) and (
                wanted == current or wanted.casefold() == current.casefold()
            ):
                report.unchanged += 1
                continue
            old_abs = safe_join(root, current)
            if not old_abs.is_file():
                report.missing.append(current)
                continue
            song_id = int(row["id"])

            def on_disk(rel: str, _current: str = current, _root: Path = root) -> bool:
                return rel != _current and os.path.lexists(safe_join(_root, rel))

            if dry_run:
                target = _dry_run_target(
                    catalog, backend_id, song_id, wanted, on_disk, planned, current
                )
                planned.add(library_path_key(target))
                if target != current:
                    report.moves.append({"song_id": song_id, "from": current, "to": target})
                else:
                    report.unchanged += 1
                continue
            target = catalog.reserve_path(
                backend_id, song_id, wanted, exists_on_disk=on_disk, moving=current
            )
            if target == current:
                catalog.release_path(backend_id, song_id)
                report.unchanged += 1
                continue
            _move_one(catalog, backend_id, song_id, root, current, target)
            report.moves.append({"song_id": song_id, "from": current, "to": target})
    return report


def _dry_run_target(
    catalog: CatalogRepository,
    backend_id: int,
    song_id: int,
    wanted: str,
    on_disk: Any,
    planned: set[str],
    current: str,
) -> str:
    from catalogsync.catalog.repository import numbered_path

    for n in range(1, 10_000):
        candidate = numbered_path(wanted, n)
        if library_path_key(candidate) in planned or on_disk(candidate):
            continue
        if catalog.path_is_taken(backend_id, candidate, by_other_than=song_id, moving=current):
            continue
        return candidate
    return wanted


def _move_one(
    catalog: CatalogRepository, backend_id: int, song_id: int, root: Path, old: str, new: str
) -> None:
    old_abs, new_abs = safe_join(root, old), safe_join(root, new)
    move_id = catalog.journal_move(
        kind="reorganize", file_id=0, song_id=song_id, backend_id=backend_id,
        old_root=str(root), old_path=old, new_root=str(root), new_path=new,
    )  # fmt: skip
    try:
        new_abs.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(new_abs):
            raise FileExistsError(f"{new_abs} appeared while moving {old}")
        os.rename(old_abs, new_abs)
    except BaseException:
        catalog.finish_move(move_id, new_path=None)
        catalog.release_path(backend_id, song_id)
        raise
    _fsync_dir(new_abs.parent)
    _fsync_dir(old_abs.parent)
    catalog.finish_move(move_id, new_path=new)
    catalog.release_path(backend_id, song_id)
    _remove_empty_parents(root, old_abs.parent)
