"""Library layout, file-name safety and free-space checks."""

from __future__ import annotations

import os
import re
import shutil
import stat
import unicodedata
from collections.abc import Callable
from pathlib import Path, PurePath, PurePosixPath

from catalogsync.errors import StorageFullError, StorageUnavailableError

_MIB = 1024 * 1024
_REPLACED = frozenset('/\\<>:"|?*')
_WHITESPACE_CONTROLS = frozenset("\t\n\r\v\f")
_SPACES = re.compile(r"\s+")
_RESERVED_DEVICE_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in "123456789¹²³"}
    | {f"LPT{i}" for i in "123456789¹²³"}
)
_MAX_UNIQUE_TRIES = 10_000
# Invisible characters that make a name look like another (bidi overrides can show
# "evil\u202egpj.mp3" as "evilmp3.jpg") or differ only invisibly: removed from names.
_INVISIBLE = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"  # bidi
    "\u200b\u200c\u200d\u2060\ufeff\u180e\u00ad"  # zero-width, BOM, soft hyphen
)


class UnsafePathError(StorageUnavailableError, ValueError):
    """A relative library path would land outside its backend root."""


def _truncate_utf8(text: str, max_bytes: int) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", errors="ignore")


def _is_reserved_device(name: str) -> bool:
    base = name.split(".", 1)[0].rstrip(" ").upper()
    return base in _RESERVED_DEVICE_NAMES


def _clean(name: str, max_bytes: int) -> str:
    text = _clean_ascii(name) if _plain_ascii(name) else _clean_chars(name)
    text = _truncate_utf8(text, max_bytes).rstrip(" .")
    if text in ("", ".", ".."):
        return ""
    if _is_reserved_device(text):
        text = _truncate_utf8("_" + text, max_bytes).rstrip(" .")
    return text


def _plain_ascii(name: str) -> bool:
    """Printable ASCII with nothing to replace: ``_clean_chars`` would keep every
    character (and NFC changes no ASCII), so ``_clean_ascii`` gives the same, faster."""
    return name.isascii() and name.isprintable() and _REPLACED.isdisjoint(name)


def _clean_ascii(name: str) -> str:
    return _SPACES.sub(" ", name).strip(" .")


def _clean_chars(name: str) -> str:
    text = unicodedata.normalize("NFC", name)
    out: list[str] = []
    for ch in text:
        if ch in _REPLACED:
            out.append("_")
        elif ch in _WHITESPACE_CONTROLS:
            out.append(" ")
        elif ch in _INVISIBLE or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            continue
        else:
            out.append(ch)
    return unicodedata.normalize("NFC", _SPACES.sub(" ", "".join(out))).strip(" .")


def sanitize_component(name: str, *, fallback: str = "unknown", max_bytes: int = 180) -> str:
    """Make ``name`` a single safe path component of at most ``max_bytes`` UTF-8 bytes."""
    if max_bytes < 1:
        raise ValueError("max_bytes must be at least 1")
    return _clean(name, max_bytes) or _clean(fallback, max_bytes) or "_"


def sanitize_ext(ext: str, *, fallback: str = "bin") -> str:
    """A lowercase ASCII alphanumeric extension of at most 8 characters, without the dot."""
    cleaned = "".join(ch for ch in ext.lower() if ch.isascii() and ch.isalnum())[:8]
    return cleaned or fallback


def library_relative_path(platform: str, singers: str, title: str, ext: str) -> PurePosixPath:
    """``<platform>/<singers>/<title>.<ext>`` with every component sanitized."""
    suffix = sanitize_ext(ext)
    return PurePosixPath(
        sanitize_component(platform, fallback="unknown"),
        sanitize_component(singers, fallback="Unknown Artist"),
        sanitize_component(title, fallback="untitled", max_bytes=180 - len(suffix) - 1)
        + "."
        + suffix,
    )


def safe_join(root: Path, relative: str | PurePath, *, root_resolved: bool = False) -> Path:
    """Resolve ``root / relative`` (symlinks included); raise ``UnsafePathError`` outside root.

    ``root_resolved=True`` says ``root`` is already absolute and free of symlinks (the
    caller resolved it once): then a plain relative path whose components are no
    symlinks is joined with one ``lstat`` per existing component instead of a
    ``realpath`` of the whole path, which matters when every download calls this.
    """
    if root_resolved:
        fast = _join_without_links(os.fspath(root), os.fspath(relative))
        if fast is not None:
            return fast
    rel = PurePath(relative)
    try:
        base = Path(root).resolve()
        if rel.is_absolute() or rel.drive or rel.anchor:
            raise UnsafePathError(f"path {str(relative)!r} is absolute, not inside {base}")
        target = (base / rel).resolve()
    except ValueError as exc:
        if isinstance(exc, UnsafePathError):
            raise
        raise UnsafePathError(f"path {str(relative)!r} is not valid: {exc}") from exc
    except OSError as exc:
        raise StorageUnavailableError(f"cannot resolve {root}/{relative}: {exc}") from exc
    if target != base and not target.is_relative_to(base):
        raise UnsafePathError(f"path {str(relative)!r} leaves the library root {base}")
    return target


def _join_without_links(base: str, rel: str) -> Path | None:
    """``base / rel`` if ``rel`` is plain and no existing component is a symlink, else None.

    Plain strings, not ``pathlib``: every download calls this a few times, and building
    a ``Path`` per component cost more than the ``lstat`` calls.
    """
    parts = rel.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None  # absolute, doubled or dotted: the full check decides
    current = base
    for part in parts:
        current = os.path.join(current, part)
        try:
            if stat.S_ISLNK(os.lstat(current).st_mode):
                return None
        except FileNotFoundError:
            return Path(os.path.join(base, rel))  # nothing below a missing component exists
        except (OSError, ValueError):
            return None  # let the full check report it
    return Path(current)


def unique_path(
    root: Path,
    relative: str | PurePath,
    taken: Callable[[str], bool] | None = None,
) -> PurePosixPath:
    """``relative``, or ``title (2).ext``, ``title (3).ext``... if a file or ``taken(rel)`` has it."""
    rel = PurePosixPath(PurePath(relative).as_posix())
    stem, suffix = rel.stem, rel.suffix
    for n in range(1, _MAX_UNIQUE_TRIES + 1):
        candidate = rel if n == 1 else rel.with_name(f"{stem} ({n}){suffix}")
        safe_join(root, candidate)  # refuses names that would leave the root
        if os.path.lexists(Path(root) / candidate):
            continue
        if taken is not None and taken(candidate.as_posix()):
            continue
        return candidate
    raise StorageUnavailableError(f"no free file name for {rel} under {root}")


def _existing_ancestor(path: Path) -> Path:
    current = Path(path).absolute()
    while not current.exists() and current.parent != current:
        current = current.parent
    return current


def ensure_space(candidates: list[Path], needed_bytes: int | None, reserve_bytes: int) -> Path:
    """The first root with free space >= needed + reserve; else ``StorageFullError``."""
    need = max(needed_bytes or 0, 0) + max(reserve_bytes, 0)
    checked: list[str] = []
    unreachable: list[str] = []
    for root in candidates:
        try:
            free = shutil.disk_usage(_existing_ancestor(Path(root))).free
        except OSError as exc:
            unreachable.append(f"{root} ({exc.strerror or exc})")
            continue
        if free >= need:
            return Path(root)
        checked.append(f"{root}: {free / _MIB:.1f} MB free")
    if not checked:
        detail = "; ".join(unreachable) if unreachable else "none configured"
        raise StorageUnavailableError(f"no local backend is reachable: {detail}")
    raise StorageFullError(
        f"no local backend has room for {max(needed_bytes or 0, 0) / _MIB:.1f} MB "
        f"(+ {max(reserve_bytes, 0) / _MIB:.1f} MB reserve): " + "; ".join(checked)
    )


def partial_paths(dest: Path, song_id: int) -> tuple[Path, Path]:
    """The ``.part`` (bytes arriving) and ``.ready`` (verified, being tagged) files of a
    song whose reserved library path is ``dest``: ``<stem>.cs<song id>.part`` beside it,
    so two songs never share partial bytes even when one of them is renamed."""
    stem = PurePosixPath(dest.name).stem
    return (
        dest.with_name(f"{stem}.cs{int(song_id)}.part"),
        dest.with_name(f"{stem}.cs{int(song_id)}.ready"),
    )
