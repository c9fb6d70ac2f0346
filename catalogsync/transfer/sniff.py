"""Is this file audio, and which format? mutagen parses it; our own words say what it is not.

Only audio is recorded in the library: a body that mutagen cannot read as one of the
formats below fails the song with ``not_audio`` and a hint of what it looks like
instead (an HTML error page, JSON, compressed data, nothing at all).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from catalogsync.errors import TransferError

# mutagen's class name -> the extension a media server expects for it.
_EXT_BY_KIND = {
    "MP3": "mp3",
    "EasyMP3": "mp3",
    "FLAC": "flac",
    "OggVorbis": "ogg",
    "OggOpus": "opus",
    "OggFLAC": "oga",
    "OggSpeex": "spx",
    "WAVE": "wav",
    "MP4": "m4a",
    "EasyMP4": "m4a",
    "AAC": "aac",
    "AC3": "ac3",
    "AIFF": "aiff",
    "ASF": "wma",
    "MonkeysAudio": "ape",
    "WavPack": "wv",
    "Musepack": "mpc",
    "TrueAudio": "tta",
    "OptimFROG": "ofr",
    "DSF": "dsf",
    "DSDIFF": "dff",
}
_HEAD_BYTES = 512


@dataclass(frozen=True)
class AudioFormat:
    """A detected audio format: mutagen's name for it and the file extension it gets.

    ``parsed`` is mutagen's object for the file, so a tagger need not parse it again.
    """

    kind: str
    ext: str
    parsed: Any = field(default=None, compare=False, repr=False)


# First bytes for which the format is plain, so its reader is called directly instead of
# mutagen's scoring of every format (a third of a sniff's CPU): an MPEG audio frame
# sync as mutagen's own score knows them, the FLAC marker, an AAC ADTS header; behind
# an ID3v2 tag, what follows the tag decides (FLAC and AAC files carry such tags too).
_MPEG_SYNCS = (b"\xff\xf2", b"\xff\xf3", b"\xff\xfa", b"\xff\xfb")


def identify(path: Path) -> AudioFormat | None:
    """The audio format of the file at ``path``, or None when it is not audio we know."""
    try:
        with open(path, "rb") as fh:
            found = _parse(fh)
    except OSError:
        raise
    except Exception:  # mutagen raises many kinds of error on bytes that are not audio
        return None
    if found is None:
        return None
    kind = type(found).__name__
    ext = _EXT_BY_KIND.get(kind)
    return AudioFormat(kind, ext, found) if ext else None


def _parse(fh: BinaryIO) -> Any:
    head = fh.read(10)
    start = head[:4]
    tagged = len(head) == 10 and head.startswith(b"ID3") and not any(b & 0x80 for b in head[6:])
    if tagged:
        size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
        fh.seek(10 + size + (10 if head[5] & 0x10 else 0))  # past the tag (and its footer)
        start = fh.read(4)
    fh.seek(0)
    if _is_adts(start):
        from mutagen.aac import AAC

        return AAC(fh)
    if start == b"fLaC":
        from mutagen.flac import FLAC

        return FLAC(fh)
    if tagged or start.startswith(_MPEG_SYNCS):
        from mutagen.mp3 import MP3

        return MP3(fh)
    import mutagen

    found = mutagen.File(fh)
    if found is None:
        # mutagen scores a bare MPEG stream (no ID3 tag) by its file name, and a `.part`
        # name gives it nothing: ask the MP3 reader itself, which has to find real
        # frames (random bytes fail with "can't sync").
        from mutagen.mp3 import MP3

        fh.seek(0)
        found = MP3(fh)
    return found


def _is_adts(head: bytes) -> bool:
    """An AAC ADTS frame header: 12 sync bits and layer 0 (MPEG audio frames have 1-3).

    mutagen finds ADTS only by a `.aac` name, which a `.part` never has."""
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0


def describe(head: bytes, size: int, *, source: str = "server sent") -> str:
    """What a body that is not audio looks like, for the `not_audio` message."""
    if size == 0:
        return f"{source} 0 bytes"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in text:
        return "looks like text/html"
    if text.startswith((b"<?xml", b"<")):
        return "looks like XML"
    if text.startswith((b"{", b"[")):
        return "looks like JSON"
    if head.startswith(b"\x1f\x8b"):
        return "looks like gzip-compressed data"
    if head.startswith(b"PK\x03\x04"):
        return "looks like a zip archive"
    if head.startswith(b"%PDF"):
        return "looks like a PDF document"
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8")):
        return "looks like an image"
    sample = head[:_HEAD_BYTES]
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in sample)
    if sample and printable / len(sample) > 0.95:
        return "looks like text"
    return f"not a known audio format (first bytes {head[:8].hex(' ')})"


def require_audio(path: Path, *, where: str, source: str = "server sent") -> AudioFormat:
    """The file's audio format, or ``TransferError(code="not_audio")`` saying what it is."""
    found = identify(path)
    if found is not None:
        return found
    with open(path, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
    size = path.stat().st_size
    raise TransferError(
        f"not_audio: {describe(head, size, source=source)} ({where})",
        code="not_audio",
        permanent=size > 0,
    )
