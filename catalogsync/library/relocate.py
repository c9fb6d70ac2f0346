"""`library relocate NEW [--move]`: the library backend (and config.toml) point at NEW.

Without ``--move`` the files are expected to be at NEW already (the user moved the
disk or the share); at least one recorded file must be found there, so a typo does not
re-point the library at an empty folder. With ``--move`` every recorded file (and every
playlist file catalogsync wrote) is copied to NEW and checked, then config.toml and
the backend are switched, then the old copies are deleted: a kill before the switch
leaves the old library whole (a rerun copies what is missing), a kill after it leaves
the new one whole, and the journal (``library_moves``, kind ``relocate``) tells the
rerun which old copies are still to delete. Files nobody recorded stay where they are.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalogsync.errors import CatalogsyncError, ConfigError
from catalogsync.library.lock import holds_library
from catalogsync.library.playlists import write_atomically
from catalogsync.transfer.durability import sha256_of

if TYPE_CHECKING:
    from catalogsync.catalog.repository import CatalogRepository


@dataclass
class RelocateReport:
    old_root: str
    new_root: str
    moved: bool
    copied: int = 0
    already_there: int = 0
    deleted: int = 0
    missing: list[str] = field(default_factory=list)
    left_behind: int = 0  # files at the old root nobody recorded

    def summary(self) -> str:
        if not self.moved:
            return (
                f"relocate: the library is now {self.new_root} (was {self.old_root}); "
                f"{len(self.missing)} recorded files are not there"
            )
        text = (
            f"relocate: moved the library to {self.new_root}: {self.copied} files copied, "
            f"{self.already_there} already there, {self.deleted} old copies deleted"
        )
        if self.left_behind:
            text += f"; {self.left_behind} files nobody recorded stay in {self.old_root}"
        if self.missing:
            text += f"; {len(self.missing)} recorded files were missing"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}


_TABLE = re.compile(r"^\s*\[")
_LIBRARY_TABLE = re.compile(r"^\s*\[\s*library\s*\]\s*(#.*)?$")
_ROOT_KEY = re.compile(r"^(\s*)root\s*=")
_TOP_LIBRARY_KEY = re.compile(r"^(\s*)library\s*=")


def set_library_root(config_path: Path, root: Path) -> None:
    """Write ``[library] root`` into config.toml, keeping every other line as it was."""
    text = config_path.read_text(encoding="utf-8") if config_path.exists() else ""
    value = json.dumps(str(root), ensure_ascii=False)  # a JSON string is a TOML basic string
    lines = text.splitlines()
    in_library = False
    first_table = next((n for n, line in enumerate(lines) if _TABLE.match(line)), len(lines))
    done = False
    for n, line in enumerate(lines):
        if _TABLE.match(line):
            if in_library:  # the [library] table ended without a root: add one
                lines.insert(n, f"root = {value}")
                done = True
                break
            in_library = bool(_LIBRARY_TABLE.match(line))
            continue
        if in_library and (match := _ROOT_KEY.match(line)):
            lines[n] = f"{match.group(1)}root = {value}"
            done = True
            break
        if n < first_table and (match := _TOP_LIBRARY_KEY.match(line)):
            lines[n] = f"{match.group(1)}library = {value}"
            done = True
            break
    if not done:
        if in_library:
            lines.append(f"root = {value}")
        else:
            lines += ["", "[library]", f"root = {value}"]
    new_text = "\n".join(lines).lstrip("\n") + "\n"
    try:
        tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: cannot record the new library root: {exc}") from None
    config_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(config_path, new_text.encode("utf-8"))


def _recorded_paths(catalog: CatalogRepository, backend_id: int) -> list[str]:
    files = {str(r["relative_path"]) for r in catalog.list_library_files(backend_id)}
    files |= {
        str(r["relative_path"])
        for r in catalog.playlist_file_records()
        if int(r["backend_id"]) == backend_id
    }
    return sorted(files)


def _same(src: Path, dst: Path) -> bool:
    try:
        if dst.stat().st_size != src.stat().st_size:
            return False
    except OSError:
        return False
    return sha256_of(dst) == sha256_of(src)


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    temp = dst.with_name(f".{dst.name}.relocate.tmp")
    shutil.copyfile(src, temp)
    shutil.copymode(src, temp)
    with open(temp, "rb") as handle:
        os.fsync(handle.fileno())
    if not _same(src, temp):
        # The original is deleted once the library is switched: only a proven copy counts.
        temp.unlink(missing_ok=True)
        raise CatalogsyncError(f"{dst}: the copy differs from {src}; nothing was switched")
    os.replace(temp, dst)


def _finish_deletes(catalog: CatalogRepository, report: RelocateReport) -> None:
    for move in catalog.journaled_moves("relocate"):
        old = Path(move["old_root"]) / move["old_path"]
        new = Path(move["new_root"]) / move["new_path"]
        if new.is_file() and old.is_file() and not old.is_symlink():
            old.unlink()
            report.deleted += 1
            _prune(Path(move["old_root"]), old.parent)
        catalog.finish_move(int(move["id"]), new_path=None)


def _prune(root: Path, folder: Path) -> None:
    while folder != root and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


@holds_library("library relocate")
def relocate(
    catalog: CatalogRepository, config_path: Path, new_root: Path, *, move: bool
) -> RelocateReport:
    """Point the default library backend (and config.toml) at ``new_root``.

    Holds the library (``library.lock``) for the whole move.
    """
    backend = catalog.default_backend()
    old_root = Path(backend["target"])
    new_root = new_root.expanduser().resolve()
    pending = catalog.journaled_moves("relocate")
    if pending:  # a killed --move had switched already: finish deleting, then carry on
        report = RelocateReport(str(pending[0]["old_root"]), str(new_root), moved=True)
        _finish_deletes(catalog, report)
        if Path(backend["target"]).resolve() == new_root:
            return report
    if new_root == old_root.resolve():
        raise CatalogsyncError(f"the library is already at {new_root}")
    if new_root.is_relative_to(old_root.resolve()) or old_root.resolve().is_relative_to(new_root):
        raise CatalogsyncError(
            f"{new_root} and the library {old_root} contain one another; choose a separate folder"
        )
    if new_root.exists() and not new_root.is_dir():
        raise CatalogsyncError(f"{new_root} is not a folder")
    paths = _recorded_paths(catalog, int(backend["id"]))
    report = RelocateReport(str(old_root), str(new_root), moved=move)
    if not move:
        report.missing = [p for p in paths if not (new_root / p).is_file()]
        if paths and len(report.missing) == len(paths):
            raise CatalogsyncError(
                f"none of the {len(paths)} recorded files is under {new_root}; move them there "
                "first, or use --move to have catalogsync move them"
            )
        set_library_root(config_path, new_root)
        catalog.set_backend_target(int(backend["id"]), str(new_root))
        return report
    new_root.mkdir(parents=True, exist_ok=True)
    present: list[str] = []
    for rel in paths:
        src, dst = old_root / rel, new_root / rel
        if not src.is_file():
            report.missing.append(rel)
            continue
        if _same(src, dst):
            report.already_there += 1
        elif dst.exists():
            raise CatalogsyncError(f"{dst} exists and is another file; move it away first")
        else:
            _copy(src, dst)
            report.copied += 1
        present.append(rel)
    # config first: a kill before the backend switch then still finds every file at NEW
    set_library_root(config_path, new_root)
    catalog.switch_backend_root(int(backend["id"]), str(old_root), str(new_root), present)
    _finish_deletes(catalog, report)
    report.left_behind = (
        sum(1 for p in old_root.rglob("*") if p.is_file()) if old_root.is_dir() else 0
    )
    return report
