"""Tags read back with mutagen from real MP3, FLAC, Ogg, Opus, M4A and WAV files."""

from __future__ import annotations

import base64
import hashlib
import shutil
import struct
import zlib
from pathlib import Path

import mutagen
import pytest
from mutagen.flac import Picture

from catalogsync.config import LibrarySettings
from catalogsync.library import tags
from catalogsync.library.tags import MP4_SOURCE_KEY, write_tags
from tests.support.httpserver import Behaviour

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "audio"
SONG = {
    "platform": "manifest", "remote_id": "abc123", "name": "Intro", "singers": "Band",
    "album": "First Album", "albumartist": "The Band", "track_number": 3, "disc_number": 1,
    "year": 2001, "lyrics": "la la\nla",
}  # fmt: skip


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(autouse=True)
def _fresh_cover_cache(monkeypatch):
    monkeypatch.setattr(tags, "_covers", tags._CoverCache())


def _part(tmp_path: Path, name: str) -> Path:
    # The download stage tags the verified `.part`: the name says nothing of the format.
    target = tmp_path / f"{name}.part"
    shutil.copyfile(FIXTURES / name, target)
    return target


def _text(audio, key):
    value = audio.tags[key]
    return [str(v) for v in (value.text if hasattr(value, "text") else value)]


def test_mp3_gets_id3v24_frames_and_the_source_tag(tmp_path):
    path = _part(tmp_path, "silence.mp3")
    assert write_tags(path, SONG, "mp3", LibrarySettings()) == tags.TagOutcome(True)
    audio = mutagen.File(path)
    assert audio.tags.version[:2] == (2, 4)
    assert _text(audio, "TIT2") == ["Intro"] and _text(audio, "TPE1") == ["Band"]
    assert _text(audio, "TALB") == ["First Album"] and _text(audio, "TPE2") == ["The Band"]
    assert _text(audio, "TRCK") == ["3"] and _text(audio, "TPOS") == ["1"]
    assert _text(audio, "TDRC") == ["2001"]
    assert _text(audio, "TXXX:catalogsync_source") == ["manifest:abc123"]
    assert audio.tags.getall("USLT")[0].text == "la la\nla"


@pytest.mark.parametrize("name", ["silence.mp3", "silence.flac", "silence.m4a"])
def test_the_sniffers_parse_is_reused_under_the_files_new_name(tmp_path, name):
    """The download stage hands the sniffer's mutagen object on: the renamed file gets
    the same tags as a fresh parse would give, and the old name is not written."""
    from catalogsync.transfer.sniff import identify

    part = _part(tmp_path, name)
    found = identify(part)
    assert found is not None and found.parsed is not None
    ready = part.with_suffix(".ready")
    part.rename(ready)
    (tmp_path / "fresh").mkdir()
    fresh = _part(tmp_path / "fresh", name)
    assert write_tags(ready, SONG, found.ext, LibrarySettings(), parsed=found.parsed).tagged
    assert write_tags(fresh, SONG, found.ext, LibrarySettings()).tagged
    assert not part.exists()
    assert (
        hashlib.sha256(ready.read_bytes()).digest() == hashlib.sha256(fresh.read_bytes()).digest()
    )


@pytest.mark.parametrize("name", ["silence.flac", "silence.ogg", "silence.opus"])
def test_vorbis_comment_formats(tmp_path, name):
    path = _part(tmp_path, name)
    assert write_tags(path, SONG, name.rsplit(".", 1)[1], None).tagged
    audio = mutagen.File(path)
    assert audio.tags["title"] == ["Intro"] and audio.tags["artist"] == ["Band"]
    assert audio.tags["album"] == ["First Album"] and audio.tags["albumartist"] == ["The Band"]
    assert audio.tags["tracknumber"] == ["3"] and audio.tags["discnumber"] == ["1"]
    assert audio.tags["date"] == ["2001"]
    assert audio.tags["catalogsync_source"] == ["manifest:abc123"]
    assert audio.tags["encoder"]  # what the file already had is kept


def test_m4a_atoms_and_freeform_source(tmp_path):
    path = _part(tmp_path, "silence.m4a")
    assert write_tags(path, SONG, "m4a", None).tagged
    audio = mutagen.File(path)
    assert audio.tags["\xa9nam"] == ["Intro"] and audio.tags["aART"] == ["The Band"]
    assert audio.tags["trkn"] == [(3, 0)] and audio.tags["disk"] == [(1, 0)]
    assert audio.tags["\xa9day"] == ["2001"]
    assert bytes(audio.tags[MP4_SOURCE_KEY][0]) == b"manifest:abc123"


def test_wav_gets_an_id3_chunk(tmp_path):
    path = _part(tmp_path, "silence.wav")
    assert write_tags(path, SONG, "wav", None).tagged
    audio = mutagen.File(path)
    assert _text(audio, "TIT2") == ["Intro"]
    assert _text(audio, "TXXX:catalogsync_source") == ["manifest:abc123"]


def test_existing_tags_are_kept_unless_overwrite_tags(tmp_path):
    path = _part(tmp_path, "silence.flac")
    write_tags(path, {**SONG, "name": "Source Title"}, "flac", None)
    write_tags(path, SONG, "flac", LibrarySettings())
    assert mutagen.File(path).tags["title"] == ["Source Title"]
    write_tags(path, SONG, "flac", LibrarySettings(overwrite_tags=True))
    assert mutagen.File(path).tags["title"] == ["Intro"]


def test_write_tags_false_leaves_the_file_byte_identical(tmp_path):
    path = _part(tmp_path, "silence.mp3")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    assert write_tags(path, SONG, "mp3", LibrarySettings(write_tags=False)) == tags.TagOutcome(
        False
    )
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("name", ["silence.aac"])
def test_an_untaggable_format_is_a_note_not_an_error(tmp_path, name):
    path = _part(tmp_path, name)
    before = path.read_bytes()
    outcome = write_tags(path, SONG, "aac", None)
    assert not outcome.tagged and "stored untagged" in (outcome.note or "")
    assert path.read_bytes() == before


def test_not_audio_is_a_note(tmp_path):
    path = tmp_path / "x.part"
    path.write_bytes(b"<html>nope</html>")
    outcome = write_tags(path, SONG, "mp3", None)
    assert not outcome.tagged and outcome.note


@pytest.mark.parametrize("name", ["silence.mp3", "silence.flac", "silence.ogg", "silence.m4a"])
def test_cover_art_from_the_provider_is_embedded(tmp_path, http_server, name):
    png = _png()
    url = http_server.route("/cover.png", Behaviour(body=png, content_type="image/png"))
    path = _part(tmp_path, name)
    outcome = write_tags(path, {**SONG, "cover_url": url}, name.rsplit(".", 1)[1], None)
    assert outcome == tags.TagOutcome(True)
    audio = mutagen.File(path)
    if name.endswith(".mp3"):
        assert audio.tags.getall("APIC")[0].data == png
    elif name.endswith(".flac"):
        assert audio.pictures[0].data == png and audio.pictures[0].mime == "image/png"
    elif name.endswith(".ogg"):
        block = Picture(base64.b64decode(audio.tags["metadata_block_picture"][0]))
        assert block.data == png
    else:
        assert bytes(audio.tags["covr"][0]) == png


def test_one_fetch_per_cover_url(tmp_path, http_server):
    url = http_server.route("/c.png", Behaviour(body=_png(), content_type="image/png"))
    for n in range(3):
        path = _part(tmp_path, "silence.flac")
        path.rename(tmp_path / f"{n}.part")
        assert write_tags(tmp_path / f"{n}.part", {**SONG, "cover_url": url}, "flac", None).tagged
    assert len(http_server.requests("/c.png")) == 1


@pytest.mark.parametrize(
    ("behaviour", "needle"),
    [
        (Behaviour(status=404), "HTTP 404"),
        (Behaviour(body=b"<html></html>", content_type="text/html"), "not a JPEG or PNG"),
        (Behaviour(body=b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024 + 10)), "larger than 5 MB"),
    ],
)
def test_a_failed_cover_is_a_note_and_the_song_is_still_tagged(
    tmp_path, http_server, behaviour, needle
):
    url = http_server.route("/bad", behaviour)
    path = _part(tmp_path, "silence.mp3")
    outcome = write_tags(path, {**SONG, "cover_url": url}, "mp3", None)
    assert outcome.tagged and needle in (outcome.note or "")
    assert _text(mutagen.File(path), "TIT2") == ["Intro"]
    assert not mutagen.File(path).tags.getall("APIC")


def test_cover_art_off_fetches_nothing(tmp_path, http_server):
    url = http_server.route("/c.png", Behaviour(body=_png(), content_type="image/png"))
    path = _part(tmp_path, "silence.mp3")
    assert write_tags(
        path, {**SONG, "cover_url": url}, "mp3", LibrarySettings(cover_art=False)
    ).tagged
    assert http_server.requests("/c.png") == []


def test_an_unreachable_cover_is_a_note(tmp_path):
    path = _part(tmp_path, "silence.mp3")
    outcome = write_tags(path, {**SONG, "cover_url": "http://127.0.0.1:9/c.jpg"}, "mp3", None)
    assert outcome.tagged and "cover" in (outcome.note or "")


def test_a_file_mutagen_cannot_parse_is_a_note_and_left_as_it_was(tmp_path):
    path = tmp_path / "broken.part"
    data = b"fLaC" + b"\x00\x00\x00\x22" + b"\xff" * 20  # a FLAC header cut short
    path.write_bytes(data)
    outcome = write_tags(path, SONG, "flac", None)
    assert not outcome.tagged and "stored untagged" in (outcome.note or "")
    assert path.read_bytes() == data
