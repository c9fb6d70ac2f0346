"""Playlist files the user owns: M3U/M3U8, PLS, JSON and CSV manifests.

Every malformed input raises ``PlaylistFormatError(path, line, reason)``; no other exception
type escapes ``parse_manifest_text`` or ``ManifestProvider.fetch_playlist`` whatever the file
holds.  See ``docs/providers.md`` for the formats.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from catalogsync.errors import PlaylistFormatError, ProviderError, shorten
from catalogsync.files import NotRegularFileError, open_regular
from catalogsync.providers.base import PlaylistContent, PlaylistRef, Provider, Track

#: file suffix (lowercase) -> format name understood by ``parse_manifest_text``
SUFFIX_FORMATS: dict[str, str] = {
    ".m3u": "m3u",
    ".m3u8": "m3u",
    ".pls": "pls",
    ".json": "json",
    ".csv": "csv",
}
#: the largest playlist file we read, in bytes
MAX_PLAYLIST_BYTES = 64 * 1024 * 1024

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_WINDOWS_DRIVE_RE = re.compile(r"^[A-Za-z]:[\\/]")
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?$")
_INT_RE = re.compile(r"^\d{1,18}$")
_PLS_INDEX_RE = re.compile(r"^\d{1,9}$")
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_EXT_RE = re.compile(r"^[a-z0-9]{1,10}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_CSV_COLUMNS = (
    "url", "path", "title", "artist", "album", "duration", "size", "sha256", "id",
    "track", "disc", "year", "albumartist", "cover",
)  # fmt: skip
_TRACK_RE = re.compile(r"^(\d{1,6})(?:\s*/\s*\d{1,6})?$")  # "3" or "3/12", as tags write it
_YEAR_RE = re.compile(r"^(\d{4})(?:[-/.]\d{1,2}(?:[-/.]\d{1,2})?)?$")  # 1999, 1999-05-03
# A word followed by ":" is only a URL scheme when "//" follows or the scheme is a well-known
# one; otherwise "Artist: Song.mp3" would be mistaken for a URL instead of a relative path.
_KNOWN_SCHEMES = frozenset(
    {
        "about", "blob", "data", "file", "ftp", "ftps", "git", "http", "https", "irc",
        "javascript", "magnet", "mailto", "mms", "news", "nfs", "rtmp", "rtsp", "sftp",
        "sms", "smb", "spotify", "ssh", "tel", "urn", "vbscript", "ws", "wss",
    }
)  # fmt: skip


class _EntryError(Exception):
    """Internal: a reason why one entry or field is malformed (turned into PlaylistFormatError)."""


@dataclass
class _RawEntry:
    """One playlist entry before its location is resolved."""

    line: int | None
    location: str
    title: str = ""
    artist: str = ""
    album: str = ""
    duration: float | None = None
    size: int | None = None
    sha256: str | None = None
    track_id: str | None = None
    albumartist: str = ""
    track_number: int | None = None
    disc_number: int | None = None
    year: int | None = None
    cover_url: str | None = None


# --------------------------------------------------------------------------- helpers


def _short(text: str, limit: int = 60) -> str:
    """Quote ``text`` for an error message, cut to ``limit`` characters."""
    return repr(shorten(text, limit))


def _line_of(text: str, offset: int) -> int:
    """1-based line number of a character offset in newline-normalized text."""
    return text.count("\n", 0, max(offset, 0)) + 1


def _url_scheme(text: str) -> str | None:
    """The lowercase URL scheme of ``text``, or None when it reads as a file path."""
    match = _SCHEME_RE.match(text)
    if not match:
        return None
    scheme = match.group(1).lower()
    if len(scheme) == 1:  # a Windows drive letter such as C:
        return None
    if text[match.end() :].startswith("//") or scheme in _KNOWN_SCHEMES:
        return scheme
    return None


def _parse_number(text: str, what: str) -> float | None:
    """Parse a duration: a finite number; negative values (e.g. -1) mean unknown."""
    text = text.strip()
    if not _NUMBER_RE.match(text):
        raise _EntryError(f"{what} {_short(text)} is not a number")
    value = float(text)
    if not math.isfinite(value):
        raise _EntryError(f"{what} {_short(text)} is not a finite number")
    return None if value < 0 else value


def _parse_size(text: str, what: str) -> int:
    """Parse a byte count: a non-negative integer."""
    text = text.strip()
    if not _INT_RE.match(text):
        raise _EntryError(f"{what} {_short(text)} is not a non-negative integer")
    return int(text)


def _parse_sha256(text: str, what: str) -> str:
    """Validate a hex SHA-256 digest and lowercase it."""
    text = text.strip()
    if not _SHA256_RE.match(text):
        raise _EntryError(f"{what} {_short(text)} is not a 64-digit hex SHA-256")
    return text.lower()


def _parse_track_number(value: Any, what: str) -> int | None:
    """A track or disc number: an integer >= 0 or text "3" / "3/12"; 0 means unknown."""
    if isinstance(value, bool):
        raise _EntryError(f"{what} must be a number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        match = _TRACK_RE.match(value.strip())
        if not match:
            raise _EntryError(f"{what} {_short(value)} is not a number (3 or 3/12)")
        number = int(match.group(1))
    else:
        raise _EntryError(f"{what} must be a number")
    if not 0 <= number <= 999_999:
        raise _EntryError(f"{what} {number} is out of range 0..999999")
    return number or None


def _parse_year(value: Any, what: str) -> int | None:
    """A year: 1..9999, or a date text starting with one (1999-05-03); 0 means unknown."""
    if isinstance(value, bool):
        raise _EntryError(f"{what} must be a year")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        match = _YEAR_RE.match(value.strip())
        if not match:
            raise _EntryError(f"{what} {_short(value)} is not a year (1999 or 1999-05-03)")
        number = int(match.group(1))
    else:
        raise _EntryError(f"{what} must be a year")
    if not 0 <= number <= 9999:
        raise _EntryError(f"{what} {number} is out of range 0..9999")
    return number or None


def _parse_cover(value: Any, what: str) -> str | None:
    """A cover image URL: http(s) only (it is fetched when the song is tagged)."""
    if not isinstance(value, str):
        raise _EntryError(f"{what} must be a string")
    text = value.strip()
    if not text:
        return None
    if _CONTROL_RE.search(text) or _url_scheme(text) not in ("http", "https"):
        raise _EntryError(f"{what} {_short(text)} is not an http:// or https:// URL")
    try:
        if not urlsplit(text).hostname:
            raise _EntryError(f"{what} {_short(text)} has no host")
    except ValueError as exc:
        raise _EntryError(f"{what} {_short(text)} is malformed: {exc}") from None
    return text


def _library_fields(entry: _RawEntry, values: dict[str, Any], what: str) -> None:
    """Fill track / disc / year / albumartist / cover of an entry from JSON or CSV values."""
    if values.get("track") not in (None, ""):
        entry.track_number = _parse_track_number(values["track"], f'{what}"track"')
    if values.get("disc") not in (None, ""):
        entry.disc_number = _parse_track_number(values["disc"], f'{what}"disc"')
    if values.get("year") not in (None, ""):
        entry.year = _parse_year(values["year"], f'{what}"year"')
    if values.get("cover") not in (None, ""):
        entry.cover_url = _parse_cover(values["cover"], f'{what}"cover"')
    albumartist = values.get("albumartist")
    if albumartist is not None:
        if not isinstance(albumartist, str):
            raise _EntryError(f'{what}"albumartist" must be a string')
        entry.albumartist = albumartist


def _split_artist_title(text: str) -> tuple[str, str]:
    """Split ``artist - title`` on the first " - "; without it everything is the title."""
    artist, sep, title = text.partition(" - ")
    if not sep:
        return "", text.strip()
    return artist.strip(), title.strip()


def _clean(text: str) -> str:
    """Drop control characters from a display string."""
    return _CONTROL_RE.sub("", text).strip()


def _path_uri(path: str) -> str:
    """``file://`` URL of an absolute path after normalizing it."""
    norm = os.path.normpath(path)
    if norm.startswith("//"):  # POSIX keeps a leading "//"; we do not want file:////
        norm = "/" + norm.lstrip("/")
    return Path(norm).as_uri()


def _resolve_location(location: str, base_dir: str) -> str:
    """Turn an entry (URL or path) into the URL stored as ``Track.download_url``."""
    if _CONTROL_RE.search(location):
        raise _EntryError(f"entry {_short(location)} contains a control character")
    try:
        location.encode("utf-8")
    except UnicodeEncodeError:
        raise _EntryError(f"entry {_short(location)} is not valid Unicode") from None
    scheme = _url_scheme(location)
    try:
        if scheme is None:
            if _WINDOWS_DRIVE_RE.match(location):
                raise _EntryError(
                    f"Windows drive path {_short(location)} is not supported; "
                    "use a path relative to the playlist or a file:// URL"
                )
            if os.path.isabs(location):
                return _path_uri(location)
            return _path_uri(os.path.join(base_dir, location))
        if scheme in ("http", "https"):
            parts = urlsplit(location)
            if not parts.hostname:
                raise _EntryError(f"URL {_short(location)} has no host")
            _ = parts.port  # raises ValueError on a bad port
            return location
        if scheme == "file":
            parts = urlsplit(location)
            if parts.netloc.lower() not in ("", "localhost"):
                raise _EntryError(
                    f"file URL {_short(location)} names another host ({parts.netloc!r})"
                )
            path = unquote(parts.path)
            if _CONTROL_RE.search(path):
                raise _EntryError(f"file URL {_short(location)} contains a control character")
            if not path.startswith("/"):
                raise _EntryError(f"file URL {_short(location)} must hold an absolute path")
            return _path_uri(path)
    except ValueError as exc:  # urlsplit, port or as_uri refused the entry
        raise _EntryError(f"malformed entry {_short(location)}: {exc}") from None
    raise _EntryError(
        f"unsupported URL scheme {scheme + ':'!r} in {_short(location)} "
        "(use http://, https://, file:// or a file path)"
    )


def _url_file_name(url: str) -> str:
    """The URL-decoded last path segment of a URL ("" when there is none)."""
    try:
        path = unquote(urlsplit(url).path)
    except ValueError:
        return ""
    return path.rstrip("/").rsplit("/", 1)[-1]


def _ext_of(url: str) -> str:
    """Lowercase file suffix of a URL's path without the dot, or "" when it has none."""
    ext = PurePosixPath(_url_file_name(url) or "x").suffix[1:].lower()
    return ext if _EXT_RE.match(ext) else ""


def _fallback_name(url: str) -> str:
    """A track name from its URL: the file stem, else the last segment, else the URL."""
    segment = _clean(_url_file_name(url))
    stem = _clean(PurePosixPath(segment).stem) if segment else ""
    return stem or segment or url


def _make_track(raw: _RawEntry, base_dir: str) -> Track:
    """Resolve a raw entry into a Track (raises _EntryError)."""
    url = _resolve_location(raw.location, base_dir)
    digest = hashlib.sha1(url.encode("utf-8"), usedforsecurity=False).hexdigest()
    remote_id = raw.track_id or digest[:16]
    return Track(
        remote_id=remote_id,
        name=_clean(raw.title) or _fallback_name(url),
        singers=_clean(raw.artist),
        album=_clean(raw.album),
        duration_seconds=raw.duration,
        ext=_ext_of(url),
        file_size_bytes=raw.size,
        sha256=raw.sha256,
        download_url=url,
        albumartist=_clean(raw.albumartist),
        track_number=raw.track_number,
        disc_number=raw.disc_number,
        year=raw.year,
        cover_url=raw.cover_url,
    )


# --------------------------------------------------------------------------- M3U


def _parse_m3u(text: str, path: str) -> tuple[str | None, list[_RawEntry]]:
    """Parse (extended) M3U / M3U8 text."""
    name: str | None = None
    entries: list[_RawEntry] = []
    pending: _RawEntry | None = None  # fields from #EXTINF waiting for their entry
    album = artist = ""
    for lineno, raw_line in enumerate(text.split("\n"), 1):
        line = raw_line.strip()
        if not line:
            continue
        if not line.startswith("#"):
            entry = pending or _RawEntry(line=lineno, location="")
            entry.line, entry.location = lineno, line
            entry.album = entry.album or album
            entry.artist = entry.artist or artist
            entries.append(entry)
            pending, album, artist = None, "", ""
            continue
        upper = line.upper()
        if upper.startswith("#EXTINF"):
            if pending is not None:
                raise PlaylistFormatError(path, pending.line, "#EXTINF is not followed by an entry")
            pending = _parse_extinf(line, lineno, path)
        elif upper.startswith("#PLAYLIST:"):
            if name is None:
                name = _clean(line[len("#PLAYLIST:") :]) or None
        elif upper.startswith("#EXTALB:"):
            album = line[len("#EXTALB:") :].strip()
        elif upper.startswith("#EXTART:"):
            artist = line[len("#EXTART:") :].strip()
    if pending is not None:
        raise PlaylistFormatError(path, pending.line, "#EXTINF is not followed by an entry")
    return name, entries


def _parse_extinf(line: str, lineno: int, path: str) -> _RawEntry:
    """Parse ``#EXTINF:<duration>[ attrs],<artist> - <title>``."""
    body = line[len("#EXTINF") :]
    if not body.startswith(":"):
        raise PlaylistFormatError(
            path, lineno, "malformed #EXTINF (expected #EXTINF:<duration>,<artist> - <title>)"
        )
    head, _, text = body[1:].partition(",")
    tokens = head.split()
    if not tokens:
        raise PlaylistFormatError(path, lineno, "#EXTINF has no duration")
    try:
        duration = _parse_number(tokens[0], "#EXTINF duration")
    except _EntryError as exc:
        raise PlaylistFormatError(path, lineno, str(exc)) from None
    artist, title = _split_artist_title(text)
    return _RawEntry(line=lineno, location="", title=title, artist=artist, duration=duration)


# --------------------------------------------------------------------------- PLS


def _parse_pls(text: str, path: str) -> tuple[str | None, list[_RawEntry]]:
    """Parse a PLS (``[playlist]`` / ``FileN=`` / ``TitleN=`` / ``LengthN=``) file."""
    name: str | None = None
    header_seen = in_playlist = False
    fields: dict[str, dict[int, tuple[int, str]]] = {"file": {}, "title": {}, "length": {}}
    for lineno, raw_line in enumerate(text.split("\n"), 1):
        line = raw_line.strip()
        if not line or line.startswith((";", "#")):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise PlaylistFormatError(path, lineno, f"malformed section header {_short(line)}")
            section = line[1:-1].strip().lower()
            if not header_seen and section != "playlist":
                raise PlaylistFormatError(path, lineno, "a PLS file must start with [playlist]")
            header_seen, in_playlist = True, section == "playlist"
            continue
        if not header_seen:
            raise PlaylistFormatError(path, lineno, "a PLS file must start with [playlist]")
        if not in_playlist:
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise PlaylistFormatError(path, lineno, f"expected Key=value, got {_short(line)}")
        key, value = key.strip(), value.strip()
        lower = key.lower()
        if lower in ("title", "x-gnome-title", "name"):
            name = name or _clean(value) or None
            continue
        if lower == "numberofentries":
            if not _INT_RE.match(value):
                raise PlaylistFormatError(
                    path, lineno, f"NumberOfEntries {_short(value)} is not a number"
                )
            continue
        for prefix, table in fields.items():
            if lower.startswith(prefix):
                number = lower[len(prefix) :]
                if not _PLS_INDEX_RE.match(number):
                    raise PlaylistFormatError(
                        path, lineno, f"bad entry number in key {_short(key)}"
                    )
                index = int(number)
                if index in table:
                    first = table[index][0]
                    raise PlaylistFormatError(
                        path, lineno, f"duplicate key {_short(key)} (first on line {first})"
                    )
                table[index] = (lineno, value)
                break
    return name, _pls_entries(fields, path)


def _pls_entries(fields: dict[str, dict[int, tuple[int, str]]], path: str) -> list[_RawEntry]:
    """Join FileN/TitleN/LengthN into entries ordered by N."""
    files, titles, lengths = fields["file"], fields["title"], fields["length"]
    for key, table in (("Title", titles), ("Length", lengths)):
        for index, (lineno, _) in table.items():
            if index not in files:
                raise PlaylistFormatError(path, lineno, f"{key}{index} has no File{index}")
    entries: list[_RawEntry] = []
    for index in sorted(files):
        lineno, location = files[index]
        if not location:
            raise PlaylistFormatError(path, lineno, f"File{index} is empty")
        duration = None
        if index in lengths and lengths[index][1]:
            try:
                duration = _parse_number(lengths[index][1], f"Length{index}")
            except _EntryError as exc:
                raise PlaylistFormatError(path, lengths[index][0], str(exc)) from None
        artist, title = _split_artist_title(titles[index][1]) if index in titles else ("", "")
        entries.append(
            _RawEntry(line=lineno, location=location, title=title, artist=artist, duration=duration)
        )
    return entries


# --------------------------------------------------------------------------- JSON

_JSON_WS = " \t\n\r"


def _skip_ws(text: str, index: int) -> int:
    """Index of the next non-whitespace character."""
    while index < len(text) and text[index] in _JSON_WS:
        index += 1
    return index


def _json_array_offsets(text: str, start: int) -> list[int]:
    """Start offsets of the items of the (already validated) JSON array at ``start``."""
    decoder = json.JSONDecoder()
    offsets: list[int] = []
    index = _skip_ws(text, start + 1)
    if text[index] == "]":
        return offsets
    while True:
        offsets.append(index)
        _, index = decoder.raw_decode(text, index)
        index = _skip_ws(text, index)
        if text[index] == "]":
            return offsets
        index = _skip_ws(text, index + 1)  # skip the comma


def _json_object_offsets(text: str, start: int) -> dict[str, int]:
    """Start offsets of the values of the (already validated) JSON object at ``start``."""
    decoder = json.JSONDecoder()
    offsets: dict[str, int] = {}
    index = _skip_ws(text, start + 1)
    if text[index] == "}":
        return offsets
    while True:
        key, index = json.decoder.scanstring(text, index + 1)  # type: ignore[attr-defined]
        index = _skip_ws(text, _skip_ws(text, index) + 1)  # skip the colon
        offsets[key] = index  # the last duplicate wins, as in json.loads
        _, index = decoder.raw_decode(text, index)
        index = _skip_ws(text, index)
        if text[index] == "}":
            return offsets
        index = _skip_ws(text, index + 1)


def _json_error_at(text: str, exc: json.JSONDecodeError) -> tuple[int, str]:
    """The line and message of a JSON error, the same on every Python version.

    A trailing comma is reported at its closing bracket (3.11 and 3.12 stop there with
    "Expecting value"; 3.13 points at the comma itself with "Illegal trailing comma").
    """
    pos = exc.pos
    if exc.msg.startswith("Illegal trailing comma"):
        pos = _skip_ws(text, pos + 1)
    before = text[:pos].rstrip()
    if pos < len(text) and text[pos] in "]}" and before.endswith(","):
        return text.count("\n", 0, pos) + 1, f"trailing comma before {text[pos]!r}"
    return exc.lineno, exc.msg


def _json_str(item: dict[str, Any], key: str, what: str) -> str:
    """A string field (missing or null -> "")."""
    value = item.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _EntryError(f'{what} "{key}" must be a string')
    return value


def _json_entry(item: Any, number: int, line: int | None) -> _RawEntry:
    """Validate one JSON track object (raises _EntryError)."""
    what = f"track {number}"
    if not isinstance(item, dict):
        raise _EntryError(f"{what} must be an object")
    location = ""
    for key in ("url", "path"):
        location = _json_str(item, key, what).strip()
        if location:
            break
    if not location:
        raise _EntryError(f'{what} has no "url" or "path"')
    entry = _RawEntry(
        line=line,
        location=location,
        title=_json_str(item, "title", what),
        artist=_json_str(item, "artist", what),
        album=_json_str(item, "album", what),
    )
    duration = item.get("duration")
    if duration is not None:
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            raise _EntryError(f'{what} "duration" must be a number')
        if not math.isfinite(duration):
            raise _EntryError(f'{what} "duration" must be a finite number')
        entry.duration = float(duration) if duration >= 0 else None
    size = item.get("size")
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise _EntryError(f'{what} "size" must be a non-negative integer')
        entry.size = size
    sha256 = item.get("sha256")
    if sha256 is not None:
        if not isinstance(sha256, str):
            raise _EntryError(f'{what} "sha256" must be a string')
        entry.sha256 = _parse_sha256(sha256, f'{what} "sha256"')
    track_id = item.get("id")
    if track_id is not None:
        if isinstance(track_id, bool) or not isinstance(track_id, str | int):
            raise _EntryError(f'{what} "id" must be a string')
        entry.track_id = _clean(str(track_id)) or None
    _library_fields(entry, item, f"{what} ")
    return entry


def _parse_json(text: str, path: str) -> tuple[str | None, list[_RawEntry]]:
    """Parse a JSON manifest: ``{"name": ..., "tracks": [...]}`` or a bare list of tracks."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        at, message = _json_error_at(text, exc)
        raise PlaylistFormatError(path, at, f"invalid JSON: {message}") from None
    except RecursionError:
        raise PlaylistFormatError(path, None, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal with too many digits
        digits = re.search(r"\d{4000,}", text)
        if digits is not None:
            raise PlaylistFormatError(
                path,
                _line_of(text, digits.start()),
                f"invalid JSON: a number with {len(digits.group(0))} digits is too long",
            ) from None
        raise PlaylistFormatError(path, None, f"invalid JSON: {str(exc).split('; ')[0]}") from None
    start = _skip_ws(text, 0)
    name: str | None = None
    line: int | None
    tracks_at: int | None
    if isinstance(doc, list):
        tracks, tracks_at = doc, start
    elif isinstance(doc, dict):
        keys = _safe_offsets(_json_object_offsets, text, start) or {}
        name_key = "name" if "name" in doc else "title"
        raw_name = doc.get(name_key)
        if raw_name is not None and not isinstance(raw_name, str):
            line = _line_of(text, keys[name_key]) if name_key in keys else None
            raise PlaylistFormatError(path, line, f'"{name_key}" must be a string')
        name = _clean(raw_name or "") or None
        if "tracks" not in doc:
            raise PlaylistFormatError(
                path, _line_of(text, start), 'a JSON playlist object needs a "tracks" list'
            )
        tracks, tracks_at = doc["tracks"], keys.get("tracks")
        if not isinstance(tracks, list):
            line = _line_of(text, tracks_at) if tracks_at is not None else None
            raise PlaylistFormatError(path, line, '"tracks" must be a list')
    else:
        raise PlaylistFormatError(
            path, _line_of(text, start), 'expected an object with "tracks" or a list of tracks'
        )
    offsets = _safe_offsets(_json_array_offsets, text, tracks_at) if tracks_at is not None else None
    if offsets is None or len(offsets) != len(tracks):
        offsets = None
    entries: list[_RawEntry] = []
    for number, item in enumerate(tracks, 1):
        line = _line_of(text, offsets[number - 1]) if offsets else None
        try:
            entries.append(_json_entry(item, number, line))
        except _EntryError as exc:
            raise PlaylistFormatError(path, line, str(exc)) from None
    return name, entries


def _safe_offsets(walker: Callable[[str, int], Any], text: str, start: int) -> Any:
    """Run a position walker; None if it cannot (line numbers are then unknown)."""
    try:
        return walker(text, start)
    except (ValueError, IndexError, RecursionError):
        return None


# --------------------------------------------------------------------------- CSV


def _csv_delimiter(text: str) -> str:
    """Pick the delimiter from the header line: comma, else semicolon, else tab."""
    first = next((line for line in text.split("\n") if line.strip()), "")
    for candidate in (",", ";", "\t"):
        if candidate in first:
            return candidate
    return ","


def _csv_entry(values: dict[str, str], line: int) -> _RawEntry:
    """Validate one CSV row (raises _EntryError)."""
    location = values.get("url", "") or values.get("path", "")
    if not location:
        raise _EntryError('row has no "url" or "path"')
    entry = _RawEntry(
        line=line,
        location=location,
        title=values.get("title", ""),
        artist=values.get("artist", ""),
        album=values.get("album", ""),
        track_id=_clean(values.get("id", "")) or None,
    )
    if values.get("duration"):
        entry.duration = _parse_number(values["duration"], "duration")
    if values.get("size"):
        entry.size = _parse_size(values["size"], "size")
    if values.get("sha256"):
        entry.sha256 = _parse_sha256(values["sha256"], "sha256")
    _library_fields(entry, values, "")
    return entry


def _parse_csv(text: str, path: str) -> tuple[str | None, list[_RawEntry]]:
    """Parse a CSV manifest with a header row naming a ``url`` or ``path`` column."""
    # strict: an unterminated quote is an error, not a field that swallows the rest.
    reader = csv.reader(io.StringIO(text), delimiter=_csv_delimiter(text), strict=True)
    columns: dict[str, int] | None = None
    entries: list[_RawEntry] = []
    previous = 0
    try:
        for row in reader:
            line, previous = previous + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if columns is None:
                names = [cell.strip().lower() for cell in row]
                if "url" not in names and "path" not in names:
                    found = ", ".join(_short(n, 20) for n in names[:8])
                    raise PlaylistFormatError(
                        path, line, f'CSV header must name a "url" or "path" column (found {found})'
                    )
                columns = {n: names.index(n) for n in _CSV_COLUMNS if n in names}
                continue
            values = {n: row[i].strip() for n, i in columns.items() if i < len(row)}
            try:
                entries.append(_csv_entry(values, line))
            except _EntryError as exc:
                raise PlaylistFormatError(path, line, str(exc)) from None
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise PlaylistFormatError(
                path, previous + 1, "malformed CSV: a quoted field is never closed"
            ) from None
        raise PlaylistFormatError(path, max(reader.line_num, 1), f"malformed CSV: {exc}") from None
    return None, entries


# --------------------------------------------------------------------------- public API

_PARSERS: dict[str, Callable[[str, str], tuple[str | None, list[_RawEntry]]]] = {
    "m3u": _parse_m3u,
    "m3u8": _parse_m3u,
    "pls": _parse_pls,
    "json": _parse_json,
    "csv": _parse_csv,
}


def detect_format(path: str | os.PathLike[str]) -> str:
    """Format name ("m3u", "pls", "json" or "csv") from a playlist path's suffix."""
    text = os.fspath(path)
    local = _ref_path(text) if isinstance(text, str) else None
    suffix = (local or PurePosixPath(str(text))).suffix.lower()
    fmt = SUFFIX_FORMATS.get(suffix)
    if fmt is None:
        raise PlaylistFormatError(
            str(text),
            None,
            f"unsupported playlist format {suffix or '(no suffix)'!r} "
            "(expected .m3u, .m3u8, .pls, .json or .csv)",
        )
    return fmt


def _utf16_kind(data: bytes) -> str | None:
    """ "little-endian, no BOM" and the like when ``data`` is UTF-16 text, else None.

    Without a BOM, UTF-16 text in the Latin range has a NUL in every other byte: a
    zero in most odd bytes and in no even byte (little-endian), or the reverse.
    """
    if data.startswith(codecs.BOM_UTF16_LE):
        return "little-endian, with BOM"
    if data.startswith(codecs.BOM_UTF16_BE):
        return "big-endian, with BOM"
    sample = data[:4096]
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    even, odd = sample[0::2], sample[1::2]
    for zeros, others, name in ((odd, even, "little-endian"), (even, odd, "big-endian")):
        if zeros.count(0) >= 0.8 * len(zeros) and others.count(0) == 0:
            codec = "utf-16-le" if name == "little-endian" else "utf-16-be"
            try:
                data[: len(data) // 2 * 2].decode(codec)
            except UnicodeDecodeError:
                return None
            return f"{name}, no BOM"
    return None


def decode_playlist_bytes(data: bytes) -> str:
    """Decode a playlist file: UTF-8 with or without BOM, else Latin-1."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse_manifest_text(text: str, *, path: str, fmt: str) -> PlaylistContent:
    """Parse playlist text of format ``fmt``; relative entries resolve against ``path``'s folder."""
    parser = _PARSERS.get(fmt.lower().lstrip("."))
    if parser is None:
        raise PlaylistFormatError(path, None, f"unsupported playlist format {fmt!r}")
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    nul = text.find("\x00")
    if nul >= 0:
        raise PlaylistFormatError(path, _line_of(text, nul), "NUL byte in playlist file")
    try:
        base_dir = os.path.dirname(os.path.abspath(path))
        name, raw_entries = parser(text, path)
        tracks: list[Track] = []
        seen: set[str] = set()
        for raw in raw_entries:
            try:
                track = _make_track(raw, base_dir)
            except _EntryError as exc:
                raise PlaylistFormatError(path, raw.line, str(exc)) from None
            if track.remote_id in seen:  # the same song twice: keep its first position
                continue
            seen.add(track.remote_id)
            tracks.append(track)
    except (ValueError, TypeError, LookupError, OSError, RecursionError, csv.Error) as exc:
        # Last-resort guard for the "only PlaylistFormatError" contract; the parsers above
        # report every case we know of with a line number.
        raise PlaylistFormatError(path, None, f"cannot parse playlist: {exc}") from None
    return PlaylistContent(name=name or _playlist_stem(path), tracks=tracks)


def _playlist_stem(path: str) -> str:
    """The default playlist name: the file stem."""
    name = PurePosixPath(path.replace("\\", "/")).name
    return _clean(PurePosixPath(name).stem) or _clean(name) or path


def _ref_path(ref: str) -> Path | None:
    """The local path a ref names (a path or file:// URL), or None for anything else."""
    if not isinstance(ref, str) or not ref.strip() or _CONTROL_RE.search(ref):
        return None
    scheme = _url_scheme(ref)
    if scheme is not None:
        if scheme != "file":
            return None
        try:
            parts = urlsplit(ref)
        except ValueError:
            return None
        path = unquote(parts.path)
        if parts.netloc.lower() not in ("", "localhost") or not path.startswith("/"):
            return None
        return Path(path)
    try:
        return Path(ref).expanduser()
    except RuntimeError:  # no home directory to expand "~" against
        return Path(ref)


class ManifestProvider(Provider):
    """Playlists from local M3U/M3U8, PLS, JSON and CSV files."""

    platform = "manifest"

    def handles(self, ref: str) -> bool:
        """True for a local path or file:// URL ending in .m3u/.m3u8/.pls/.json/.csv."""
        path = _ref_path(ref)
        return path is not None and path.suffix.lower() in SUFFIX_FORMATS

    def _local_path(self, ref: str) -> Path:
        """Absolute normalized path of a ref (ProviderError when it is not a local file)."""
        path = _ref_path(ref)
        if path is None:
            raise ProviderError(
                f"the manifest provider reads local playlist files; {_short(str(ref))} is not a "
                "file path or file:// URL"
            )
        try:
            return Path(os.path.normpath(os.path.abspath(path)))
        except (OSError, ValueError) as exc:
            raise PlaylistFormatError(str(path), None, f"cannot resolve path: {exc}") from None

    def describe(self, ref: str) -> PlaylistRef:
        """Identify a playlist file: its absolute path and its name (read from the file)."""
        path = self._local_path(ref)
        content = self.fetch_playlist(str(path))
        return PlaylistRef(
            platform=self.platform, remote_id=str(path), name=content.name, ref=str(path)
        )

    def fetch_playlist(self, ref: str) -> PlaylistContent:
        """Read and parse a playlist file; PlaylistFormatError on any problem with it."""
        path = self._local_path(ref)
        fmt = detect_format(path)
        data = _read_playlist_bytes(path)
        utf16 = _utf16_kind(data)
        if utf16:
            raise PlaylistFormatError(
                str(path), 1, f"the file is UTF-16 ({utf16}); save the playlist as UTF-8"
            )
        return parse_manifest_text(decode_playlist_bytes(data), path=str(path), fmt=fmt)


def _read_playlist_bytes(path: Path) -> bytes:
    """Read a playlist file's bytes, refusing huge files and anything but a regular file.

    A FIFO would block the open until a writer appears (a sync job stuck `running`
    forever), so folders, FIFOs and devices are refused before they are opened.
    """
    if path.is_symlink():
        target = path.resolve()
        if target.suffix.lower() not in SUFFIX_FORMATS:
            # Never parse (and so never quote) a file that only poses as a playlist.
            raise PlaylistFormatError(
                str(path),
                None,
                f"is a symlink to {target}, which is not a playlist file "
                "(expected .m3u, .m3u8, .pls, .json or .csv)",
            )
    try:
        with open_regular(path) as handle:
            data = handle.read(MAX_PLAYLIST_BYTES + 1)
    except NotRegularFileError as exc:
        raise PlaylistFormatError(str(path), None, f"is {exc.kind}, not a playlist file") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise PlaylistFormatError(str(path), None, f"cannot read playlist file: {reason}") from None
    if len(data) > MAX_PLAYLIST_BYTES:
        raise PlaylistFormatError(
            str(path), None, f"playlist file is larger than {MAX_PLAYLIST_BYTES} bytes"
        )
    return data
