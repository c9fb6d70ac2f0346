"""Tags written into a finished download before its final rename (mutagen).

Title, artist, album, albumartist, track, disc, date, lyrics and ``catalogsync_source``
(``platform:remote_id``: which song this file is, whatever its name) go into the
format's own tag: ID3v2.4 for MP3, WAV and AIFF (``TXXX:catalogsync_source``), Vorbis
comments for FLAC and Ogg Vorbis/Opus, iTunes atoms for MP4/M4A (freeform
``----:com.apple.iTunes:catalogsync_source``, as beets and Picard write theirs) and ASF
attributes for WMA. Values the file already has are kept unless ``[library]
overwrite_tags = true``; ``catalogsync_source`` is always ours. Cover art comes from the
provider's cover URL (at most ``MAX_COVER_BYTES``, ``COVER_TIMEOUT`` seconds) and only
a JPEG or PNG is embedded; a cover that cannot be had is a note, never a failed song.
"""

from __future__ import annotations

import base64
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalogsync.config import LibrarySettings

MAX_COVER_BYTES = 5 * 1024 * 1024
COVER_TIMEOUT = 5.0
SOURCE_KEY = "catalogsync_source"
MP4_SOURCE_KEY = f"----:com.apple.iTunes:{SOURCE_KEY}"
_COVER_CACHE_SIZE = 16
_CREDENTIALS = re.compile(r"(//[^/@:\s]*:)[^/@\s]*@")


@dataclass(frozen=True)
class TagOutcome:
    """What tagging did; ``note`` is an event text when something was left undone."""

    tagged: bool
    note: str | None = None


@dataclass(frozen=True)
class Cover:
    data: bytes
    mime: str  # image/jpeg or image/png


def tag_values(song: Mapping[str, Any]) -> dict[str, str]:
    """The text tags of a song row (empty values left out); keys are neutral names."""

    def number(key: str) -> str:
        value = song.get(key)
        try:
            n = int(value) if value is not None and not isinstance(value, bool) else 0
        except (TypeError, ValueError):
            n = 0
        return str(n) if n > 0 else ""

    artist = str(song.get("singers") or "").strip()
    values = {
        "title": str(song.get("name") or "").strip(),
        "artist": artist,
        "album": str(song.get("album") or "").strip(),
        "albumartist": str(song.get("albumartist") or "").strip() or artist,
        "track": number("track_number"),
        "disc": number("disc_number"),
        "date": number("year"),
        "lyrics": str(song.get("lyrics") or "").strip(),
        SOURCE_KEY: f"{song.get('platform')}:{song.get('remote_id')}",
    }
    return {k: v for k, v in values.items() if v}


def _mask(url: str) -> str:
    return _CREDENTIALS.sub(r"\1***@", url)


class _CoverCache:
    """The last few covers (or why they failed) by URL: an album's songs share one fetch."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, Cover | str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, url: str, fetch: Callable[[str], Cover | str]) -> Cover | str:
        with self._lock:
            if url in self._items:
                self._items.move_to_end(url)
                return self._items[url]
        found = fetch(url)
        with self._lock:
            self._items[url] = found
            while len(self._items) > _COVER_CACHE_SIZE:
                self._items.popitem(last=False)
        return found


_covers = _CoverCache()


def fetch_cover(url: str) -> Cover | str:
    """The image at ``url``, or a one-line reason why not (never raises)."""
    import httpx

    if not url.lower().startswith(("http://", "https://")):
        return f"cover URL {_mask(url)!r} is not http(s)"
    try:
        with (
            httpx.Client(timeout=COVER_TIMEOUT, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                return f"cover {_mask(url)}: HTTP {response.status_code}"
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_COVER_BYTES:
                return f"cover {_mask(url)} is larger than {MAX_COVER_BYTES // (1024 * 1024)} MB"
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_COVER_BYTES:
                    return (
                        f"cover {_mask(url)} is larger than {MAX_COVER_BYTES // (1024 * 1024)} MB"
                    )
    except httpx.HTTPError as exc:
        return f"cover {_mask(url)}: {type(exc).__name__}: {_mask(str(exc)) or 'failed'}"
    except (OSError, ValueError) as exc:
        return f"cover {_mask(url)}: {exc}"
    if data.startswith(b"\xff\xd8\xff"):
        return Cover(bytes(data), "image/jpeg")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return Cover(bytes(data), "image/png")
    return f"cover {_mask(url)} is not a JPEG or PNG image"


# -- per format -----------------------------------------------------------------------

_ID3_FRAMES = {
    "title": "TIT2", "artist": "TPE1", "album": "TALB", "albumartist": "TPE2",
    "track": "TRCK", "disc": "TPOS", "date": "TDRC",
}  # fmt: skip
_VORBIS_KEYS = {
    "title": "title", "artist": "artist", "album": "album", "albumartist": "albumartist",
    "track": "tracknumber", "disc": "discnumber", "date": "date", "lyrics": "lyrics",
    SOURCE_KEY: SOURCE_KEY,
}  # fmt: skip
_MP4_KEYS = {
    "title": "\xa9nam", "artist": "\xa9ART", "album": "\xa9alb", "albumartist": "aART",
    "date": "\xa9day", "lyrics": "\xa9lyr",
}  # fmt: skip
_ASF_KEYS = {
    "title": "Title", "artist": "Author", "album": "WM/AlbumTitle",
    "albumartist": "WM/AlbumArtist", "track": "WM/TrackNumber", "disc": "WM/PartOfSet",
    "date": "WM/Year", "lyrics": "WM/Lyrics", SOURCE_KEY: SOURCE_KEY,
}  # fmt: skip


def _tag_id3(audio: Any, values: dict[str, str], cover: Cover | None, overwrite: bool) -> None:
    from mutagen import id3

    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    for key, frame_id in _ID3_FRAMES.items():
        if key in values and (overwrite or not tags.getall(frame_id)):
            tags.setall(frame_id, [getattr(id3, frame_id)(encoding=3, text=[values[key]])])
    if "lyrics" in values and (overwrite or not tags.getall("USLT")):
        tags.setall("USLT", [id3.USLT(encoding=3, lang="und", desc="", text=values["lyrics"])])
    tags.setall(
        "TXXX:" + SOURCE_KEY, [id3.TXXX(encoding=3, desc=SOURCE_KEY, text=[values[SOURCE_KEY]])]
    )
    if cover is not None:
        tags.setall(
            "APIC", [id3.APIC(encoding=3, mime=cover.mime, type=3, desc="", data=cover.data)]
        )
    audio.save(v2_version=4)


def _has_picture_id3(audio: Any) -> bool:
    return audio.tags is not None and bool(audio.tags.getall("APIC"))


def _picture(cover: Cover) -> Any:
    from mutagen.flac import Picture

    picture = Picture()
    picture.type, picture.mime, picture.data = 3, cover.mime, cover.data
    return picture


def _tag_vorbis(audio: Any, values: dict[str, str], cover: Cover | None, overwrite: bool) -> None:
    from mutagen.flac import FLAC

    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    for key, name in _VORBIS_KEYS.items():
        if key in values and (overwrite or key == SOURCE_KEY or name not in tags):
            tags[name] = [values[key]]
    if cover is not None:
        if isinstance(audio, FLAC):
            audio.clear_pictures()
            audio.add_picture(_picture(cover))
        else:
            encoded = base64.b64encode(_picture(cover).write()).decode("ascii")
            tags["metadata_block_picture"] = [encoded]
    audio.save()


def _has_picture_vorbis(audio: Any) -> bool:
    from mutagen.flac import FLAC

    if isinstance(audio, FLAC):
        return bool(audio.pictures)
    return audio.tags is not None and "metadata_block_picture" in audio.tags


def _tag_mp4(audio: Any, values: dict[str, str], cover: Cover | None, overwrite: bool) -> None:
    from mutagen.mp4 import AtomDataType, MP4Cover, MP4FreeForm

    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    for key, atom in _MP4_KEYS.items():
        if key in values and (overwrite or atom not in tags):
            tags[atom] = [values[key]]
    for key, atom in (("track", "trkn"), ("disc", "disk")):
        if key in values and (overwrite or atom not in tags):
            tags[atom] = [(int(values[key]), 0)]
    tags[MP4_SOURCE_KEY] = [
        MP4FreeForm(values[SOURCE_KEY].encode("utf-8"), dataformat=AtomDataType.UTF8)
    ]
    if cover is not None:
        kind = MP4Cover.FORMAT_PNG if cover.mime == "image/png" else MP4Cover.FORMAT_JPEG
        tags["covr"] = [MP4Cover(cover.data, imageformat=kind)]
    audio.save()


def _has_picture_mp4(audio: Any) -> bool:
    return audio.tags is not None and "covr" in audio.tags


def _tag_asf(audio: Any, values: dict[str, str], cover: Cover | None, overwrite: bool) -> None:
    tags = audio.tags
    for key, name in _ASF_KEYS.items():
        if key in values and (overwrite or key == SOURCE_KEY or name not in tags):
            tags[name] = [values[key]]
    audio.save()


def _writer(audio: Any) -> tuple[Callable[..., None], Callable[[Any], bool]] | None:
    from mutagen.aiff import AIFF
    from mutagen.asf import ASF
    from mutagen.flac import FLAC
    from mutagen.mp3 import MP3
    from mutagen.mp4 import MP4
    from mutagen.oggflac import OggFLAC
    from mutagen.oggopus import OggOpus
    from mutagen.oggspeex import OggSpeex
    from mutagen.oggvorbis import OggVorbis
    from mutagen.wave import WAVE

    if isinstance(audio, MP3 | WAVE | AIFF):
        return _tag_id3, _has_picture_id3
    if isinstance(audio, FLAC | OggVorbis | OggOpus | OggFLAC | OggSpeex):
        return _tag_vorbis, _has_picture_vorbis
    if isinstance(audio, MP4):
        return _tag_mp4, _has_picture_mp4
    if isinstance(audio, ASF):
        return _tag_asf, lambda _audio: True  # WM/Picture is not written: no cover fetched
    return None


_EXT_CLASSES = {
    "mp3": ("mutagen.mp3", "MP3"), "flac": ("mutagen.flac", "FLAC"),
    "ogg": ("mutagen.oggvorbis", "OggVorbis"), "oga": ("mutagen.oggvorbis", "OggVorbis"),
    "opus": ("mutagen.oggopus", "OggOpus"), "m4a": ("mutagen.mp4", "MP4"),
    "mp4": ("mutagen.mp4", "MP4"), "m4b": ("mutagen.mp4", "MP4"), "wav": ("mutagen.wave", "WAVE"),
    "aif": ("mutagen.aiff", "AIFF"), "aiff": ("mutagen.aiff", "AIFF"), "wma": ("mutagen.asf", "ASF"),
}  # fmt: skip


def _open(path: Path, ext: str) -> Any:
    """The file as mutagen sees it: by its (detected) extension first, since a `.part`
    name gives mutagen's own guess nothing to go on for a bare MPEG stream."""
    import importlib

    import mutagen

    found = _EXT_CLASSES.get(ext.lower().lstrip("."))
    if found is not None:
        try:
            return getattr(importlib.import_module(found[0]), found[1])(str(path))
        except (mutagen.MutagenError, ValueError, EOFError):
            pass  # not what the extension says: let mutagen look at the content
    return mutagen.File(str(path))


def write_tags(
    path: Path,
    song: Mapping[str, Any],
    ext: str,
    library: LibrarySettings | None,
    *,
    parsed: Any = None,
) -> TagOutcome:
    """Tag ``path`` (a verified `.part`) in place; format problems never raise.

    ``parsed``: mutagen's object for these same bytes (the format sniffer's), so the file
    is not parsed a second time. With ``write_tags = false`` the file is not opened at
    all, so it stays byte-identical.
    """
    import mutagen

    settings = library or LibrarySettings()
    if not settings.write_tags:
        return TagOutcome(False)
    try:
        if parsed is not None and _writer(parsed) is not None:
            audio = parsed
            audio.filename = str(path)  # it was read under its `.part` name
        else:
            audio = _open(path, ext)
    except (mutagen.MutagenError, OSError, ValueError, EOFError) as exc:
        return TagOutcome(False, f"stored untagged, the file cannot be read for tags ({exc})")
    chosen = _writer(audio) if audio is not None else None
    if chosen is None:
        kind = type(audio).__name__ if audio is not None else (ext or "this format")
        return TagOutcome(False, f"stored untagged, {kind} files cannot be tagged")
    writer, has_picture = chosen
    note: str | None = None
    cover: Cover | None = None
    cover_url = str(song.get("cover_url") or "")
    if settings.cover_art and cover_url and (settings.overwrite_tags or not has_picture(audio)):
        found = _covers.get(cover_url, fetch_cover)
        if isinstance(found, Cover):
            cover = found
        else:
            note = f"tagged without cover art ({found})"
    try:
        writer(audio, tag_values(song), cover, settings.overwrite_tags)
    except (mutagen.MutagenError, OSError, ValueError, EOFError) as exc:
        io_error = _os_error_in(exc)
        if io_error is not None:
            # The disk failed mid-write (full, say): mutagen may have moved half the
            # audio to make room for the tag, so the file is not one to record.
            raise io_error from exc
        return TagOutcome(False, f"stored untagged, writing tags failed ({exc})")
    return TagOutcome(True, note)


def _os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` (mutagen re-raises one as a MutagenError), if any."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
