"""The format sniffer: mutagen's answer for every fixture, with or without its scoring."""

from __future__ import annotations

import shutil
from pathlib import Path

import mutagen
import pytest
from mutagen import id3

from catalogsync.transfer.sniff import identify
from tests.support.audio import mp3_body

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "audio"


@pytest.mark.parametrize(
    ("name", "ext"),
    [
        ("silence.mp3", "mp3"),
        ("silence.flac", "flac"),
        ("silence.ogg", "ogg"),
        ("silence.opus", "opus"),
        ("silence.m4a", "m4a"),
        ("silence.wav", "wav"),
        ("silence.aac", "aac"),
    ],
)
def test_a_part_name_gets_the_format_mutagen_finds_by_its_real_name(tmp_path, name, ext):
    part = tmp_path / "song.cs1.part"  # what the download stage sniffs: no extension to go on
    shutil.copyfile(FIXTURES / name, part)
    found = identify(part)
    assert found is not None and found.ext == ext
    assert type(found.parsed) is type(mutagen.File(FIXTURES / name))


def test_bare_frames_and_an_id3_tagged_mp3_take_the_direct_reader(tmp_path):
    bare = tmp_path / "bare.part"
    bare.write_bytes(mp3_body(20_000, seed=3))
    tagged = tmp_path / "tagged.part"
    tagged.write_bytes(mp3_body(20_000, seed=4))
    tag = id3.ID3()
    tag.add(id3.TIT2(encoding=3, text=["Old"]))
    tag.save(tagged)
    for path in (bare, tagged):
        found = identify(path)
        assert found is not None and (found.kind, found.ext) == ("MP3", "mp3")
        assert found.parsed.info.bitrate == 128000
    assert identify(tagged).parsed.tags["TIT2"].text == ["Old"]


@pytest.mark.parametrize(
    "head",
    [b"ID3\x04\x00\x00\x00\x00\x00\x10", b"fLaC", b"\xff\xfb\x90\x64"],
    ids=["id3-header", "flac-marker", "frame-sync"],
)
def test_a_known_header_over_bytes_that_are_not_audio_is_not_audio(tmp_path, head):
    path = tmp_path / "fake.part"
    path.write_bytes(head + b"<html>" + b"not audio at all " * 20)
    assert identify(path) is None


def test_an_empty_file_is_not_audio(tmp_path):
    path = tmp_path / "empty.part"
    path.write_bytes(b"")
    assert identify(path) is None


def test_aac_frames_behind_an_id3_tag_are_aac(tmp_path):
    path = tmp_path / "tagged-aac.part"
    shutil.copyfile(FIXTURES / "silence.aac", path)
    tag = id3.ID3()
    tag.add(id3.TIT2(encoding=3, text=["Old"]))
    tag.save(path)
    found = identify(path)
    assert found is not None and found.ext == "aac"


def test_flac_behind_an_id3_tag_is_flac(tmp_path):
    path = tmp_path / "tagged-flac.part"
    tag = id3.ID3()
    tag.add(id3.TIT2(encoding=3, text=["Old"]))
    tag.save(path)  # a file of the tag alone, then the FLAC stream after it
    path.write_bytes(path.read_bytes() + (FIXTURES / "silence.flac").read_bytes())
    found = identify(path)
    assert found is not None and found.ext == "flac"
