"""The `[library]` table and the path template: fields, fallbacks, sanitising, bad templates."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalogsync.config import LibrarySettings, load_settings
from catalogsync.errors import ConfigError
from catalogsync.library.layout import playlists_folder, song_relative_path
from catalogsync.providers.manifest import parse_manifest_text
from catalogsync.transfer.paths import sanitize_component

DEFAULT = LibrarySettings()


def _song(**kw):
    base = {"platform": "manifest", "remote_id": "r1", "name": "Intro", "singers": "Band"}
    base.update(kw)
    return base


def test_default_template_is_albumartist_album_track_title():
    song = _song(album="First", albumartist="The Band", track_number=3, disc_number=1, year=2001)
    assert song_relative_path(song, "mp3", DEFAULT) == PurePosixPath("The Band/First/03 Intro.mp3")


def test_missing_values_never_render_as_none_zero_or_an_empty_folder():
    path = song_relative_path(_song(singers="", album=""), "flac", DEFAULT)
    assert path == PurePosixPath("Unknown Artist/Unknown Album/Intro.flac")
    # albumartist falls back to the artist (beets does the same)
    assert song_relative_path(_song(track_number=0), "mp3", DEFAULT).parts[0] == "Band"
    lib = LibrarySettings(template="{year}/{album} ({year})/{disc}-{track:02} - {title}")
    assert song_relative_path(_song(album="A", track_number=7), "mp3", lib) == PurePosixPath(
        "A/07 - Intro.mp3"
    )
    lib = LibrarySettings(template="{artist}/{title} [{year}]")
    assert song_relative_path(_song(), "mp3", lib) == PurePosixPath("Band/Intro.mp3")
    assert song_relative_path(_song(year=1999), "mp3", lib) == PurePosixPath(
        "Band/Intro [1999].mp3"
    )


def test_every_field_renders():
    lib = LibrarySettings(
        template="{platform}/{playlist}/{artist}-{albumartist}-{album}-{disc}-{track}-{year}-{id}-{title}"
    )
    song = _song(
        album="Al", albumartist="AA", track_number=2, disc_number=1, year=1990, playlist="Road Trip"
    )
    assert song_relative_path(song, "ogg", lib) == PurePosixPath(
        "manifest/Road Trip/Band-AA-Al-1-2-1990-r1-Intro.ogg"
    )


def test_values_are_sanitised_and_bounded():
    song = _song(singers="../../etc", album="a/b\\c", name="evil\u202egpj.mp3\u200b" + "x" * 400)
    path = song_relative_path(song, "mp3", DEFAULT)
    assert ".." not in path.parts and len(path.parts) == 3
    assert path.parts[1] == "a_b_c"
    assert "\u202e" not in str(path) and "\u200b" not in str(path)
    assert all(len(part.encode()) <= 180 for part in path.parts)
    assert path.suffix == ".mp3"


def test_sanitize_component_removes_bidi_and_zero_width_characters():
    assert sanitize_component("a\u202eb\u2066c\u200dd\ufeffe\u200bf") == "abcdef"


@pytest.mark.parametrize(
    ("template", "needle"),
    [
        ("{albumartist}/{nope}/{title}", "{nope}"),
        ("{title!r}", "{title!r}"),
        ("/abs/{title}", "relative"),
        ("{title", "expected '}'"),
        ("{track:zz} {title}", "{track:zz}"),
        ("", "empty"),
    ],
)
def test_a_bad_template_is_a_config_error_naming_the_field(tmp_path, template, needle):
    (tmp_path / "config.toml").write_text(f"[library]\ntemplate = {template!r}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(home=tmp_path)
    assert needle in str(caught.value) and "config.toml" in str(caught.value)


def test_library_table_is_parsed_and_old_top_level_library_still_works(tmp_path):
    (tmp_path / "config.toml").write_text(
        '[library]\nroot = "music"\ntemplate = "{artist}/{title}"\nplaylists = ""\n'
        "write_tags = false\ncover_art = false\ntrash_days = 7\n"
    )
    settings = load_settings(home=tmp_path)
    assert settings.library_root == tmp_path / "music"
    assert settings.library == LibrarySettings(
        template="{artist}/{title}", playlists="", write_tags=False, cover_art=False, trash_days=7
    )
    assert playlists_folder(settings.library) is None
    (tmp_path / "config.toml").write_text('library = "/srv/old"\n')
    settings = load_settings(home=tmp_path)
    assert str(settings.library_root) == "/srv/old" and settings.library == LibrarySettings()
    assert playlists_folder(settings.library) == PurePosixPath("Playlists")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("write_tags = 1", "write_tags must be true or false"),
        ('playlists = "../out"', "inside the library root"),
        ("trash_days = -1", "trash_days"),
        ("root = 42", "root must be a folder path"),
    ],
)
def test_bad_library_values_are_one_line_errors(tmp_path, body, needle):
    (tmp_path / "config.toml").write_text(f"[library]\n{body}\n")
    with pytest.raises(ConfigError, match=needle):
        load_settings(home=tmp_path)


def test_manifest_formats_carry_the_library_fields(tmp_path):
    json_text = (
        '{"name": "P", "tracks": [{"url": "http://h/a.mp3", "title": "T", "artist": "A",'
        ' "album": "Al", "albumartist": "AA", "track": "3/12", "disc": 2, "year": "1999-05-01",'
        ' "cover": "http://h/c.jpg"}]}'
    )
    track = parse_manifest_text(json_text, path=str(tmp_path / "p.json"), fmt="json").tracks[0]
    assert (
        track.album,
        track.albumartist,
        track.track_number,
        track.disc_number,
        track.year,
        track.cover_url,
    ) == ("Al", "AA", 3, 2, 1999, "http://h/c.jpg")
    csv_text = "url,title,track,disc,year,albumartist,cover\nhttp://h/a.mp3,T,4,,2001,AA,\n"
    track = parse_manifest_text(csv_text, path=str(tmp_path / "p.csv"), fmt="csv").tracks[0]
    assert (track.track_number, track.disc_number, track.year, track.albumartist) == (
        4,
        None,
        2001,
        "AA",
    )
    m3u = "#EXTM3U\n#EXTINF:10,A - T\n#EXTALB:Al\n#EXTART:AA\nhttp://h/a.mp3\n"
    track = parse_manifest_text(m3u, path=str(tmp_path / "p.m3u"), fmt="m3u").tracks[0]
    assert (track.singers, track.album) == ("A", "Al")


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("track", '"x"', '"track"'),
        ("year", '"May"', '"year"'),
        ("cover", '"ftp://h/c"', '"cover"'),
        ("disc", "true", '"disc"'),
    ],
)
def test_bad_library_fields_in_json_name_the_line_and_field(tmp_path, field, value, needle):
    from catalogsync.errors import PlaylistFormatError

    text = f'[\n{{"url": "http://h/a.mp3", "{field}": {value}}}\n]'
    with pytest.raises(PlaylistFormatError) as caught:
        parse_manifest_text(text, path=str(tmp_path / "p.json"), fmt="json")
    assert needle in str(caught.value) and ":2:" in str(caught.value)


_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)


@settings(max_examples=200, deadline=None)
@given(
    artist=_TEXT,
    album=_TEXT,
    title=_TEXT,
    track=st.one_of(st.none(), st.integers(-5, 10_000)),
    year=st.one_of(st.none(), st.integers(-5, 99_999)),
)
def test_any_values_give_a_safe_relative_path(artist, album, title, track, year):
    song = _song(singers=artist, album=album, name=title, track_number=track, year=year)
    path = song_relative_path(song, "mp3", DEFAULT)
    assert not path.is_absolute() and path.suffix == ".mp3" and len(path.parts) == 3
    for part in path.parts:
        assert part and part not in (".", "..") and "/" not in part and "\\" not in part
        assert len(part.encode()) <= 180
        assert not any(ch in part for ch in "\u202e\u200b\u2066\x00\n")
        assert "None" not in part or "None" in (artist + album + title)


def test_the_playlist_field_renders_the_same_for_a_download_and_a_reorganize(tmp_path, http_server):
    from tests.catalogsync.library.library_support import build_library, song_files, write_config

    home = tmp_path / "home"
    write_config(home, '[library]\ntemplate = "{playlist}/{title}"\n')
    service = build_library(home, http_server, 1)
    assert song_files(service.settings.library_root) == ["Mix/Song 0.mp3"]
    from catalogsync.library.reorganize import reorganize

    assert reorganize(service.catalog, service.settings.library).moves == []
    service.close()
