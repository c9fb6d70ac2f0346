"""Where a song lives in the library: the `[library] template` rendered for one song.

The template is a `str.format` pattern with ``/`` between folders, in the spirit of
beets' path formats (``$albumartist/$album/$track $title``) and spotDL's ``--output``
(``{artists}/{album}/{title}``). Conventions where the two leave room:

- ``albumartist`` falls back to ``artist`` when the provider gives none (beets does
  the same), and both fall back to ``Unknown Artist``; ``album`` to ``Unknown Album``.
- ``track``, ``disc`` and ``year`` are numbers; when one is unknown it renders as
  nothing and the separators that followed it go too (``{track:02} {title}`` becomes
  ``{title}``), an emptied ``()`` / ``[]`` goes, and a folder left empty is dropped.
- Every folder and the file name pass ``sanitize_component`` (separators, ``..``,
  control, bidi and zero-width characters, reserved device names) and are cut to
  ``COMPONENT_BYTES`` bytes of UTF-8; a template has at most ``MAX_DEPTH`` parts.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from catalogsync.config import LibrarySettings
from catalogsync.errors import ConfigError
from catalogsync.transfer.paths import sanitize_component, sanitize_ext

FIELDS = (
    "artist", "albumartist", "album", "title", "track", "disc", "year", "platform",
    "playlist", "id",
)  # fmt: skip
NUMBER_FIELDS = frozenset({"track", "disc", "year"})
FALLBACKS = {
    "artist": "Unknown Artist",
    "albumartist": "Unknown Artist",
    "album": "Unknown Album",
    "title": "Untitled",
    "playlist": "Unknown Playlist",
    "platform": "unknown",
    "id": "unknown",
}
COMPONENT_BYTES = 180
MAX_DEPTH = 8
_SEPARATORS = " -_.,;:~–—"
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]")
_FORMATTER = string.Formatter()


class TemplateError(ValueError):
    """A template that cannot be rendered; the message names the field."""


def _parse(template: str) -> list[list[tuple[str, str | None, str]]]:
    """Per folder: (literal, field, format spec) pieces; TemplateError when malformed."""
    if not template.strip():
        raise TemplateError("template is empty")
    if template.startswith("/") or template.startswith("\\"):
        raise TemplateError(f"template {template!r} must be relative to the library root")
    parts: list[list[tuple[str, str | None, str]]] = []
    for raw in template.split("/"):
        if not raw.strip():
            continue
        try:
            pieces = list(_FORMATTER.parse(raw))
        except ValueError as exc:
            raise TemplateError(f"template {template!r}: {exc}") from None
        parsed: list[tuple[str, str | None, str]] = []
        for literal, field, spec, conversion in pieces:
            if field is not None:
                if field not in FIELDS:
                    hint = "" if field else " (an empty {} names no field)"
                    raise TemplateError(
                        f"template field {{{field}}} is unknown{hint}; "
                        f"known fields: {', '.join(FIELDS)}"
                    )
                if conversion:
                    raise TemplateError(
                        f"template field {{{field}!{conversion}}}: no ! conversions"
                    )
                if spec and "{" in spec:
                    raise TemplateError(f"template field {{{field}}}: nested fields in {spec!r}")
            parsed.append((literal, field, spec or ""))
        parts.append(parsed)
    if not parts:
        raise TemplateError(f"template {template!r} names no file")
    if len(parts) > MAX_DEPTH:
        raise TemplateError(f"template {template!r} has more than {MAX_DEPTH} folders and file")
    return parts


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def song_fields(song: Mapping[str, Any]) -> dict[str, Any]:
    """The template values of a song row; None for an unknown number."""
    artist = str(song.get("singers") or "").strip()
    albumartist = str(song.get("albumartist") or "").strip() or artist
    return {
        "artist": artist,
        "albumartist": albumartist,
        "album": str(song.get("album") or "").strip(),
        "title": str(song.get("name") or "").strip(),
        "track": _number(song.get("track_number")),
        "disc": _number(song.get("disc_number")),
        "year": _number(song.get("year")),
        "platform": str(song.get("platform") or "").strip(),
        "playlist": str(song.get("playlist") or "").strip(),
        "id": str(song.get("remote_id") or "").strip(),
    }


def _render_part(pieces: list[tuple[str, str | None, str]], values: dict[str, Any]) -> str:
    out = ""
    boundary = 0  # end of the last rendered value: separators are only cut after it
    drop_separators = dropped = False
    for literal, field, spec in pieces:
        if drop_separators:
            literal = literal.lstrip(_SEPARATORS)
        out += literal
        drop_separators = False
        if field is None:
            continue
        value = values[field]
        if field in NUMBER_FIELDS:
            if value is None:
                # Unknown number: it and the separators around it go ("{track:02} {title}").
                out = out[:boundary] + out[boundary:].rstrip(_SEPARATORS)
                drop_separators = dropped = True
                continue
        else:
            # A value is one name: a "/" in it is not a folder (beets replaces it too).
            value = sanitize_component(str(value), fallback="", max_bytes=COMPONENT_BYTES)
            if not value or value == "_":
                value = FALLBACKS[field]
        try:
            out += format(value, spec)
        except (ValueError, TypeError) as exc:
            raise TemplateError(f"template field {{{field}:{spec}}}: {exc}") from None
        boundary = len(out)
    if dropped:
        out = _EMPTY_BRACKETS.sub("", out)
    return out.strip()


def render(template: str, song: Mapping[str, Any], ext: str) -> PurePosixPath:
    """The sanitized relative path of ``song`` for ``template`` (TemplateError if bad)."""
    parts = _parse(template)
    values = song_fields(song)
    suffix = sanitize_ext(ext)
    rendered = [_render_part(pieces, values) for pieces in parts]
    folders = [
        sanitize_component(text, fallback="", max_bytes=COMPONENT_BYTES) for text in rendered[:-1]
    ]
    name = sanitize_component(
        rendered[-1],
        fallback=values["title"] or FALLBACKS["title"],
        max_bytes=COMPONENT_BYTES - len(suffix) - 1,
    )
    kept = [f for f in folders if f and f != "_"]
    return PurePosixPath(*kept, f"{name}.{suffix}")


_SAMPLE_FULL = {
    "name": "Title", "singers": "Artist", "albumartist": "Album Artist", "album": "Album",
    "track_number": 3, "disc_number": 1, "year": 1999, "platform": "manifest",
    "remote_id": "abc", "playlist": "Playlist",
}  # fmt: skip
_SAMPLE_BARE = {"name": "Title", "platform": "manifest", "remote_id": "abc"}


def check_library_settings(library: LibrarySettings, where: str) -> None:
    """ConfigError naming the field when the template (or playlists folder) is unusable."""
    try:
        for sample in (_SAMPLE_FULL, _SAMPLE_BARE):
            render(library.template, sample, "mp3")
    except TemplateError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    folder = library.playlists
    if folder:
        if folder.startswith(("/", "\\")) or any(p in ("..",) for p in folder.split("/")):
            raise ConfigError(
                f"{where}: playlists must be a folder inside the library root, got {folder!r}"
            )
        if not playlists_folder(library):
            raise ConfigError(f"{where}: playlists folder {folder!r} has no usable name")


def playlists_folder(library: LibrarySettings | None) -> PurePosixPath | None:
    """The .m3u8 folder inside the root, sanitized; None when playlist files are off."""
    folder = (library or LibrarySettings()).playlists
    parts = [
        sanitize_component(p, fallback="", max_bytes=COMPONENT_BYTES)
        for p in folder.split("/")
        if p.strip()
    ]
    parts = [p for p in parts if p and p != "_"]
    return PurePosixPath(*parts) if parts else None


def song_relative_path(
    song: Mapping[str, Any], ext: str, library: LibrarySettings | None
) -> PurePosixPath:
    """The song's library path before any ` (2)` suffix (the caller reserves it).

    ``song`` is a row of ``CatalogRepository.get_song`` (with the ``playlist`` name the
    ``{playlist}`` field renders); ``ext`` has no dot.
    """
    template = (library or LibrarySettings()).template
    try:
        return render(template, song, ext)
    except TemplateError as exc:  # settings are checked at load; a hand-built one may not be
        raise ConfigError(f"[library] {exc}") from None
