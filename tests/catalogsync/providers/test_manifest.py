"""Tests for the manifest provider (M3U/M3U8, PLS, JSON, CSV playlist files)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalogsync.errors import PlaylistFormatError, ProviderError
from catalogsync.providers.base import PlaylistContent, Provider
from catalogsync.providers.manifest import (
    ManifestProvider,
    detect_format,
    parse_manifest_text,
)

from .conformance import ProviderConformance

SHA = "ab" * 32

M3U = """#EXTM3U
#PLAYLIST:Road Trip
#EXTINF:215,Daft Punk - One More Time
songs/one more time.mp3
#EXTINF:-1,Just A Title
http://example.com/music/track%20two.FLAC?sig=1
"""
PLS = """[playlist]
File1=songs/a.mp3
Title1=Artist A - Song A
Length1=180
File2=http://example.com/b.ogg
Title2=Song B
Length2=-1
NumberOfEntries=2
Version=2
"""
JSON_DOC = {
    "name": "Json List",
    "tracks": [
        {"url": "http://example.com/a.mp3", "title": "A", "artist": "X", "album": "Al",
         "duration": 12.5, "size": 1234, "sha256": SHA, "id": "track-a"},
        {"path": "rel/b.flac", "title": "B"},
    ],
}  # fmt: skip
CSV = f"""URL,Title,Artist,Album,Duration,Size,SHA256,ID,Comment
http://example.com/a.mp3,A,X,Al,12.5,1234,{SHA},track-a,whatever
rel/b.flac,B,,,,,,,
"""


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    """Write a playlist file and return its path."""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def fetch(path: Path) -> PlaylistContent:
    """Fetch a playlist file with a fresh provider."""
    return ManifestProvider().fetch_playlist(str(path))


def url_id(url: str) -> str:
    """The default remote id of an entry URL."""
    return hashlib.sha1(url.encode()).hexdigest()[:16]


# --------------------------------------------------------------------- conformance


class _ManifestConformance(ProviderConformance):
    file_name = ""
    content = ""

    def make_provider(self) -> Provider:
        return ManifestProvider()

    def make_ref(self, tmp_path: Path) -> str:
        return str(write(tmp_path, self.file_name, self.content))


class TestM3UConformance(_ManifestConformance):
    file_name, content = "list.m3u", M3U


class TestPLSConformance(_ManifestConformance):
    file_name, content = "list.pls", PLS


class TestJSONConformance(_ManifestConformance):
    file_name, content = "list.json", json.dumps(JSON_DOC)


class TestCSVConformance(_ManifestConformance):
    file_name, content = "list.csv", CSV


class TestFileURLRefConformance(_ManifestConformance):
    file_name, content = "dir with space/list.M3U8", M3U

    def make_ref(self, tmp_path: Path) -> str:
        return Path(super().make_ref(tmp_path)).as_uri()


# --------------------------------------------------------------------- handles / describe


@pytest.mark.parametrize(
    "ref",
    ["/music/a.m3u", "rel/a.M3U8", "a.pls", "/x/a.JSON", "a.csv", "file:///music/a.m3u",
     "file://localhost/music/b.Pls", "~/lists/x.m3u", "Artist: Best Of.m3u"],
)  # fmt: skip
def test_handles_local_playlist_files(ref: str) -> None:
    assert ManifestProvider().handles(ref)


@pytest.mark.parametrize(
    "ref",
    ["", "a.txt", "/music/a", "http://example.com/a.m3u", "https://x/y.json",
     "file://otherhost/a.m3u", "ftp://x/a.pls", "spotify:playlist:abc", "a.m3u\x00"],
)  # fmt: skip
def test_does_not_handle_other_refs(ref: str) -> None:
    assert not ManifestProvider().handles(ref)


def test_describe_uses_absolute_normalized_path_and_playlist_name(tmp_path: Path) -> None:
    path = write(tmp_path, "sub/list.m3u", M3U)
    ref = str(tmp_path / "sub" / ".." / "sub" / "list.m3u")
    described = ManifestProvider().describe(ref)
    assert described.platform == "manifest"
    assert described.remote_id == str(path) == described.ref
    assert described.name == "Road Trip"
    assert ManifestProvider().describe(path.as_uri()).remote_id == str(path)


def test_describe_relative_ref_is_made_absolute(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path, "x.csv", "url\na.mp3\n")
    monkeypatch.chdir(tmp_path)
    described = ManifestProvider().describe("x.csv")
    assert described.remote_id == str(tmp_path / "x.csv")
    assert described.name == "x"


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.m3u", "m3u"), ("a.M3U8", "m3u"), ("a.pls", "pls"), ("a.Json", "json"), ("a.CSV", "csv"),
     ("file:///x/a.pls", "pls")],
)  # fmt: skip
def test_detect_format(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


def test_detect_format_rejects_unknown_suffix() -> None:
    with pytest.raises(PlaylistFormatError, match="unsupported playlist format"):
        detect_format("/x/list.txt")


def test_fetch_non_local_ref_is_provider_error() -> None:
    with pytest.raises(ProviderError, match="local playlist files"):
        ManifestProvider().fetch_playlist("https://example.com/list.m3u")


# --------------------------------------------------------------------- M3U


def test_m3u_tracks(tmp_path: Path) -> None:
    path = write(tmp_path, "list.m3u", M3U)
    content = fetch(path)
    assert content.name == "Road Trip"
    first, second = content.tracks
    local_url = (tmp_path / "songs" / "one more time.mp3").as_uri()
    assert first.download_url == local_url
    assert first.remote_id == url_id(local_url)
    assert (first.singers, first.name) == ("Daft Punk", "One More Time")
    assert first.duration_seconds == 215
    assert first.ext == "mp3"
    assert second.download_url == "http://example.com/music/track%20two.FLAC?sig=1"
    assert (second.singers, second.name, second.duration_seconds) == ("", "Just A Title", None)
    assert second.ext == "flac"


@pytest.mark.parametrize(
    ("extinf", "artist", "title", "duration"),
    [
        ("#EXTINF:12.75,A - B", "A", "B", 12.75),
        ("#EXTINF:-1,A - B - C", "A", "B - C", None),
        ("#EXTINF:0,No Separator-Here", "", "No Separator-Here", 0.0),
        ('#EXTINF:30 tvg-id="x",AC/DC - Thunder', "AC/DC", "Thunder", 30.0),
        ("#EXTINF:5", "", "fallback", 5.0),
        ("#extinf:7,lower - case", "lower", "case", 7.0),
    ],
)
def test_m3u_extinf_variants(extinf: str, artist: str, title: str, duration: float | None) -> None:
    content = parse_manifest_text(f"{extinf}\n/m/fallback.mp3\n", path="/p/l.m3u", fmt="m3u")
    (track,) = content.tracks
    assert (track.singers, track.name, track.duration_seconds) == (artist, title, duration)


def test_m3u_plain_without_header_comments_and_blank_lines(tmp_path: Path) -> None:
    text = "# my list\n\n/abs/One.MP3\n  \n#EXTGENRE:x\nfile:///abs/dir/Two%20Song.ogg\nthree\n"
    content = fetch(write(tmp_path, "plain.m3u", text))
    assert content.name == "plain"
    assert [t.download_url for t in content.tracks] == [
        "file:///abs/One.MP3",
        "file:///abs/dir/Two%20Song.ogg",
        (tmp_path / "three").as_uri(),
    ]
    assert [t.name for t in content.tracks] == ["One", "Two Song", "three"]
    assert [t.ext for t in content.tracks] == ["mp3", "ogg", ""]


def test_m3u_relative_paths_resolve_against_playlist_dir(tmp_path: Path) -> None:
    text = "../music/a.mp3\nsub/./b.mp3\nC D.mp3\n"
    content = fetch(write(tmp_path, "lists/x.m3u8", text))
    assert [t.download_url for t in content.tracks] == [
        (tmp_path / "music" / "a.mp3").as_uri(),
        (tmp_path / "lists" / "sub" / "b.mp3").as_uri(),
        (tmp_path / "lists" / "C D.mp3").as_uri(),
    ]


def test_m3u_extalb_and_extart() -> None:
    text = "#EXTALB:Album X\n#EXTART:Band\n#EXTINF:3,Song\n/a.mp3\n/b.mp3\n"
    a, b = parse_manifest_text(text, path="/l.m3u", fmt="m3u").tracks
    assert (a.album, a.singers, a.name) == ("Album X", "Band", "Song")
    assert (b.album, b.singers) == ("", "")


def test_m3u8_with_bom_and_crlf(tmp_path: Path) -> None:
    text = "#EXTM3U\r\n#PLAYLIST:Café\r\n#EXTINF:1,Björk - Jóga\r\n/m/jóga.mp3\r\n"
    content = fetch(write(tmp_path, "x.m3u8", b"\xef\xbb\xbf" + text.encode()))
    assert content.name == "Café"
    assert content.tracks[0].singers == "Björk"
    assert content.tracks[0].download_url == Path("/m/jóga.mp3").as_uri()


def test_m3u_latin1_and_cr_only(tmp_path: Path) -> None:
    text = "#EXTM3U\r#EXTINF:2,Motörhead - Ace\r/m/motörhead.mp3\r"
    content = fetch(write(tmp_path, "x.m3u", text.encode("latin-1")))
    (track,) = content.tracks
    assert (track.singers, track.name) == ("Motörhead", "Ace")
    assert track.download_url == Path("/m/motörhead.mp3").as_uri()


def test_duplicate_entries_are_kept_once() -> None:
    text = "/a.mp3\n/b.mp3\n/a.mp3\n"
    content = parse_manifest_text(text, path="/l.m3u", fmt="m3u")
    assert [t.name for t in content.tracks] == ["a", "b"]


def test_empty_playlists_are_valid(tmp_path: Path) -> None:
    for name, text in [("e.m3u", ""), ("e2.m3u", "#EXTM3U\n#PLAYLIST:Empty\n"), ("e.pls", ""),
                       ("e2.pls", "[playlist]\nNumberOfEntries=0\n"), ("e.json", "[]"),
                       ("e2.json", '{"name": "E", "tracks": []}'), ("e.csv", ""),
                       ("e2.csv", "url,title\n")]:  # fmt: skip
        assert fetch(write(tmp_path, name, text)).tracks == []


# --------------------------------------------------------------------- PLS


def test_pls_tracks(tmp_path: Path) -> None:
    content = fetch(write(tmp_path, "radio.pls", PLS))
    assert content.name == "radio"
    a, b = content.tracks
    assert a.download_url == (tmp_path / "songs" / "a.mp3").as_uri()
    assert (a.singers, a.name, a.duration_seconds, a.ext) == ("Artist A", "Song A", 180, "mp3")
    assert b.download_url == "http://example.com/b.ogg"
    assert (b.singers, b.name, b.duration_seconds) == ("", "Song B", None)


def test_pls_orders_by_number_and_ignores_key_case() -> None:
    text = "[Playlist]\nfile2=/b.mp3\nFILE1=/a.mp3\ntitle1=First\nX-Other=1\n"
    content = parse_manifest_text(text, path="/x/l.pls", fmt="pls")
    assert [t.name for t in content.tracks] == ["First", "b"]


# --------------------------------------------------------------------- JSON


def test_json_object_schema(tmp_path: Path) -> None:
    content = fetch(write(tmp_path, "list.json", json.dumps(JSON_DOC, indent=2)))
    assert content.name == "Json List"
    a, b = content.tracks
    assert a.remote_id == "track-a"
    assert (a.name, a.singers, a.album, a.duration_seconds) == ("A", "X", "Al", 12.5)
    assert (a.file_size_bytes, a.sha256, a.ext) == (1234, SHA, "mp3")
    assert a.download_url == "http://example.com/a.mp3"
    assert b.download_url == (tmp_path / "rel" / "b.flac").as_uri()
    assert b.remote_id == url_id(b.download_url)
    assert (b.file_size_bytes, b.sha256, b.ext) == (None, None, "flac")


def test_json_bare_list_and_bom(tmp_path: Path) -> None:
    doc = [{"url": "http://h/x.mp3"}, {"path": "/abs/y.opus", "title": "Why"}]
    content = fetch(write(tmp_path, "bare.json", b"\xef\xbb\xbf" + json.dumps(doc).encode()))
    assert content.name == "bare"
    assert [t.name for t in content.tracks] == ["x", "Why"]
    assert content.tracks[1].ext == "opus"


def test_json_sha256_is_lowercased() -> None:
    doc = {"tracks": [{"url": "http://h/x.mp3", "sha256": "AB" * 32}]}
    content = parse_manifest_text(json.dumps(doc), path="/l.json", fmt="json")
    assert content.tracks[0].sha256 == SHA


# --------------------------------------------------------------------- CSV


def test_csv_tracks(tmp_path: Path) -> None:
    content = fetch(write(tmp_path, "list.csv", CSV))
    assert content.name == "list"
    a, b = content.tracks
    assert (a.remote_id, a.name, a.singers, a.album) == ("track-a", "A", "X", "Al")
    assert (a.duration_seconds, a.file_size_bytes, a.sha256) == (12.5, 1234, SHA)
    assert b.download_url == (tmp_path / "rel" / "b.flac").as_uri()
    assert (b.name, b.duration_seconds, b.file_size_bytes) == ("B", None, None)


def test_csv_quoting_semicolons_and_path_column() -> None:
    text = 'Title;Path;Extra\n"Hello; World";/m/a.mp3;x\n"multi\nline";/m/b.mp3;\n'
    content = parse_manifest_text(text, path="/l.csv", fmt="csv")
    assert [t.name for t in content.tracks] == ["Hello; World", "multiline"]


def test_csv_error_line_after_multiline_field() -> None:
    text = 'url,title\n/m/a.mp3,"two\nlines"\n,missing\n'
    with pytest.raises(PlaylistFormatError) as info:
        parse_manifest_text(text, path="/l.csv", fmt="csv")
    assert info.value.line == 4


# --------------------------------------------------------------------- errors

MALFORMED = [
    ("m3u", "#EXTM3U\n#EXTINF:abc,A - B\n/a.mp3\n", 2, "#EXTINF duration 'abc' is not a number"),
    ("m3u", "#EXTINF:1,A\n\n#EXTINF:2,B\n/b.mp3\n", 1, "#EXTINF is not followed by an entry"),
    ("m3u", "/a.mp3\n#EXTINF:2,B\n", 2, "#EXTINF is not followed by an entry"),
    ("m3u", "#EXTINF:inf,x\n/a.mp3\n", 1, "is not a number"),
    ("m3u", "#EXTINF,x\n/a.mp3\n", 1, "malformed #EXTINF"),
    ("m3u", "/a.mp3\nftp://host/b.mp3\n", 2, "unsupported URL scheme 'ftp:'"),
    ("m3u", "/a.mp3\n\njavascript:alert(1)\n", 3, "unsupported URL scheme 'javascript:'"),
    ("m3u", "http:///nohost.mp3\n", 1, "has no host"),
    ("m3u", "file://server/share/a.mp3\n", 1, "names another host"),
    ("m3u", "C:\\Music\\a.mp3\n", 1, "Windows drive path"),
    ("m3u", "/a.mp3\n/b\x00.mp3\n", 2, "NUL byte"),
    ("pls", "[playlist]\nFile1=/a.mp3\nFileX=/b.mp3\n", 3, "bad entry number in key 'FileX'"),
    ("pls", "[playlist]\nFile=/a.mp3\n", 2, "bad entry number"),
    ("pls", "File1=/a.mp3\n", 1, "must start with [playlist]"),
    ("pls", "[playlist]\nFile1=/a.mp3\nLength1=long\n", 3, "Length1 'long' is not a number"),
    ("pls", "[playlist]\nFile1=/a.mp3\nTitle2=x\n", 3, "Title2 has no File2"),
    ("pls", "[playlist]\nFile1=/a.mp3\nFile1=/b.mp3\n", 3, "duplicate key 'File1'"),
    ("pls", "[playlist]\njunk\n", 2, "expected Key=value"),
    ("pls", "[playlist]\nNumberOfEntries=two\n", 2, "NumberOfEntries"),
    ("json", '{\n  "tracks": [\n    {"url": "/a.mp3"},\n  ]\n}\n', 4, "invalid JSON"),
    ("json", '{\n  "tracks": [\n    {"url": "/a.mp3"},\n  ]\n}\n', 4, "trailing comma before ']'"),
    ('json', '{"tracks": [],\n\n}', 3, "trailing comma before '}'"),
    ("json", '{"tracks": [\n  {"url": "/a.mp3"},\n  {"title": "no url"}\n]}', 3,
     'track 2 has no "url" or "path"'),
    ("json", '[\n {"url": "/a.mp3", "size": -1}\n]', 2, '"size" must be a non-negative integer'),
    ("json", '[\n {"url": "/a.mp3", "sha256": "xyz"}\n]', 2, "SHA-256"),
    ("json", '[\n {"url": "/a.mp3", "duration": "3:10"}\n]', 2, '"duration" must be a number'),
    ("json", '[\n "just a string"\n]', 2, "track 1 must be an object"),
    ("json", '\n\n{"name": "x"}', 3, '"tracks" list'),
    ("json", '{"name": "x",\n "tracks": 5}', 2, '"tracks" must be a list'),
    ("json", '{"name": 5, "tracks": []}', 1, '"name" must be a string'),
    ("json", "42", 1, "expected an object"),
    ("json", "", 1, "invalid JSON"),
    ("json", '[{"url": "/a.mp3"},\n {"url": "ftp://x/y.mp3"}]', 2, "unsupported URL scheme"),
    ("csv", "url,title\n/a.mp3,A\n\n,B\n", 4, 'row has no "url" or "path"'),
    ("csv", "/a.mp3,A\n/b.mp3,B\n", 1, 'CSV header must name a "url" or "path" column'),
    ("csv", "url,duration\n/a.mp3,abc\n", 2, "duration 'abc' is not a number"),
    ("csv", "url,size\n/a.mp3,1.5\n", 2, "size '1.5' is not a non-negative integer"),
    ("csv", "url\n/a.mp3\nmailto:x@y\n", 3, "unsupported URL scheme 'mailto:'"),
]  # fmt: skip


@pytest.mark.parametrize(("fmt", "text", "line", "reason"), MALFORMED)
def test_malformed_files_name_file_and_line(
    tmp_path: Path, fmt: str, text: str, line: int, reason: str
) -> None:
    path = write(tmp_path, f"bad.{fmt}", text)
    with pytest.raises(PlaylistFormatError) as info:
        fetch(path)
    err = info.value
    assert (err.path, err.line) == (str(path), line)
    assert str(err).startswith(f"{path}:{line}: ")
    assert reason in err.reason


def test_parse_text_errors_use_given_path() -> None:
    with pytest.raises(PlaylistFormatError, match=r"^virtual\.m3u:1: #EXTINF"):
        parse_manifest_text("#EXTINF:x,y\n/a\n", path="virtual.m3u", fmt="m3u")


def test_unknown_format_name() -> None:
    with pytest.raises(PlaylistFormatError, match="unsupported playlist format 'xspf'"):
        parse_manifest_text("", path="x.xspf", fmt="xspf")


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.m3u"
    with pytest.raises(PlaylistFormatError) as info:
        fetch(missing)
    assert info.value.line is None
    assert str(info.value) == f"{missing}: cannot read playlist file: No such file or directory"
    directory = tmp_path / "dir.pls"
    directory.mkdir()
    with pytest.raises(PlaylistFormatError) as info:
        fetch(directory)
    assert str(info.value) == f"{directory}: is a directory, not a playlist file"


def test_utf16_file_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "w.m3u", "#EXTM3U\n/a.mp3\n".encode("utf-16"))
    with pytest.raises(PlaylistFormatError, match="UTF-16"):
        fetch(path)


# --------------------------------------------------------------------- properties

FORMATS = ["m3u", "pls", "json", "csv"]
_PIECES = st.sampled_from(
    ["\n", "\r\n", "\r", "#EXTM3U", "#EXTINF:", "-1", "3.5", ",", " - ", "#PLAYLIST:", "[playlist]",
     "File1=", "Title1=", "Length1=", "NumberOfEntries=", "=", '{"tracks": [', '{"url": ', '"',
     "]", "}", "url,title,size,duration", "/abs/a.mp3", "rel/b.flac", "http://h/x.mp3",
     "http://[::1", "file://", "ftp://x", "javascript:", "C:\\", "%00", "\x00", "\ufeff", "é"]
)  # fmt: skip
TEXT = st.one_of(
    st.text(max_size=200), st.lists(st.one_of(_PIECES, st.text(max_size=5))).map("".join)
)
_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("fmt", FORMATS)
@_SETTINGS
@given(text=TEXT)
def test_any_text_parses_or_raises_format_error(fmt: str, text: str) -> None:
    try:
        result = parse_manifest_text(text, path=f"/tmp/prop/list.{fmt}", fmt=fmt)
    except PlaylistFormatError as exc:
        assert str(exc).startswith(f"/tmp/prop/list.{fmt}")
    else:
        assert isinstance(result, PlaylistContent)
        ids = [track.remote_id for track in result.tracks]
        assert len(ids) == len(set(ids)) and all(ids)


@pytest.mark.parametrize("fmt", FORMATS)
@_SETTINGS
@given(data=st.one_of(st.binary(max_size=300), TEXT.map(str.encode)))
def test_any_file_bytes_fetch_or_raise_format_error(tmp_path: Path, fmt: str, data: bytes) -> None:
    path = tmp_path / f"prop.{fmt}"
    path.write_bytes(data)
    try:
        result = ManifestProvider().fetch_playlist(str(path))
    except PlaylistFormatError as exc:
        assert exc.path == str(path)
    else:
        assert isinstance(result, PlaylistContent)


@pytest.mark.parametrize("fmt", FORMATS)
@_SETTINGS
@given(text=TEXT, encoding=st.sampled_from(["utf-8-sig", "latin-1"]))
def test_any_encoded_text_fetch_or_raise_format_error(
    tmp_path: Path, fmt: str, text: str, encoding: str
) -> None:
    path = tmp_path / f"enc.{fmt}"
    path.write_bytes(text.encode(encoding, errors="replace"))
    try:
        ManifestProvider().fetch_playlist(str(path))
    except PlaylistFormatError:
        pass
