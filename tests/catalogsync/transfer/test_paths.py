"""Library layout, hostile names, uniqueness and free-space checks."""

from __future__ import annotations

import os
import shutil
import unicodedata
from collections import namedtuple
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalogsync.errors import StorageFullError, StorageUnavailableError
from catalogsync.transfer import (
    UnsafePathError,
    ensure_space,
    library_relative_path,
    safe_join,
    sanitize_component,
    sanitize_ext,
    unique_path,
)

HOSTILE = [
    "../../x",
    "..",
    ".",
    "",
    "   ",
    "CON",
    "con.mp3",
    "LpT9",
    "aux.tar.gz",
    "nul ",
    "a/b\\c",
    "/etc/passwd",
    "C:\\Windows\\system32",
    "bell\x07tab\tnew\nline\x00nul\x7fdel\x85",
    "  ..hidden.. ",
    'what<>:"|?*now',
    "歌" * 300,
    "é" * 300,
    "🎵" * 100,
]
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)
}


def _is_reserved(name: str) -> bool:
    return name.split(".", 1)[0].rstrip(" ").upper() in WINDOWS_RESERVED


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_stay_inside_root(tmp_path: Path, name: str) -> None:
    root = tmp_path / "library"
    root.mkdir()
    rel = library_relative_path(name, name, name, "mp3")
    assert len(rel.parts) == 3
    for part in rel.parts:
        assert part not in ("", ".", "..")
        assert "/" not in part and "\\" not in part and "\x00" not in part
        assert len(part.encode("utf-8")) <= 180
        assert not _is_reserved(part)
        assert part == part.strip(" ")
        assert not part.startswith(".")
    target = safe_join(root, rel)
    assert target.is_relative_to(root.resolve())
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"x")
    assert target.resolve().is_relative_to(root.resolve())


def test_examples() -> None:
    assert sanitize_component("a/b\\c") == "a_b_c"
    assert sanitize_component("..") == "unknown"
    assert sanitize_component("", fallback="Unknown Artist") == "Unknown Artist"
    assert sanitize_component("CON") == "_CON"
    assert sanitize_component("con.mp3") == "_con.mp3"
    assert sanitize_component("Console") == "Console"
    assert sanitize_component("  .Song.  ") == "Song"
    assert sanitize_component("a\tb\x00c") == "a bc"
    decomposed = unicodedata.normalize("NFD", "Café")
    assert sanitize_component(decomposed) == "Café"
    assert library_relative_path("netease", "", "", "") == PurePosixPath(
        "netease/Unknown Artist/untitled.bin"
    )
    assert library_relative_path("qq", "A/B", "Title", ".MP3") == PurePosixPath("qq/A_B/Title.mp3")


def test_truncation_keeps_whole_characters() -> None:
    name = "é" * 300  # 2 bytes each
    out = sanitize_component(name, max_bytes=181)
    assert len(out.encode("utf-8")) == 180
    assert out == "é" * 90
    title = library_relative_path("p", "s", "歌" * 300, "flac").name
    assert len(title.encode("utf-8")) <= 180
    assert title.endswith(".flac")


@pytest.mark.parametrize(
    ("ext", "clean"),
    [
        ("mp3", "mp3"),
        (".FLAC", "flac"),
        ("m4a?x=1", "m4ax1"),
        ("", "bin"),
        ("../..", "bin"),
        ("verylongextension", "verylong"),
        ("é", "bin"),
    ],
)
def test_sanitize_ext(ext: str, clean: str) -> None:
    assert sanitize_ext(ext) == clean


@settings(max_examples=300, deadline=None)
@given(name=st.text(), max_bytes=st.integers(min_value=1, max_value=300))
def test_sanitize_component_property(name: str, max_bytes: int) -> None:
    out = sanitize_component(name, max_bytes=max_bytes)
    assert "/" not in out and "\\" not in out and "\x00" not in out
    assert out not in ("", ".", "..")
    assert len(out.encode("utf-8")) <= max_bytes
    assert unicodedata.is_normalized("NFC", out)
    assert not any(unicodedata.category(ch) == "Cc" for ch in out)
    assert not _is_reserved(out)


@settings(max_examples=300, deadline=None)
@given(name=st.text(alphabet=st.characters(max_codepoint=127)))
def test_the_ascii_fast_path_cleans_as_the_full_loop_does(name: str) -> None:
    """Printable ASCII skips the per-character loop; the name comes out the same."""
    from catalogsync.transfer import paths

    if paths._plain_ascii(name):
        assert paths._clean_ascii(name) == paths._clean_chars(name)


@settings(max_examples=100, deadline=None)
@given(singers=st.text(), title=st.text(), ext=st.text())
def test_library_path_property(
    tmp_path_factory: pytest.TempPathFactory, singers: str, title: str, ext: str
) -> None:
    rel = library_relative_path("platform", singers, title, ext)
    assert len(rel.parts) == 3
    root = tmp_path_factory.getbasetemp() / "prop-root"
    assert safe_join(root, rel).is_relative_to(root.resolve())
    assert safe_join(root.resolve(), rel, root_resolved=True) == safe_join(root, rel)


@pytest.mark.parametrize("root_resolved", [False, True])
def test_safe_join_rejects_escapes(tmp_path: Path, root_resolved: bool) -> None:
    root = tmp_path / "root"
    root.mkdir()
    root = root.resolve() if root_resolved else root
    for bad in ("../x", "a/../../x", "/etc/passwd", "..", "a\x00b"):
        with pytest.raises(UnsafePathError):
            safe_join(root, bad, root_resolved=root_resolved)
    assert issubclass(UnsafePathError, StorageUnavailableError)
    assert issubclass(UnsafePathError, ValueError)
    assert safe_join(root, "a/../b.mp3", root_resolved=root_resolved) == root.resolve() / "b.mp3"


@pytest.mark.parametrize("root_resolved", [False, True])
def test_safe_join_follows_symlinks(tmp_path: Path, root_resolved: bool) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "inner").mkdir()
    (root / "alias").symlink_to(root / "inner", target_is_directory=True)
    (root / "inner" / "file.mp3").write_bytes(b"x")
    (root / "inner" / "link.mp3").symlink_to(outside / "elsewhere.mp3")
    root = root.resolve() if root_resolved else root
    join = lambda rel: safe_join(root, rel, root_resolved=root_resolved)  # noqa: E731
    with pytest.raises(UnsafePathError):
        join("escape/song.mp3")
    with pytest.raises(UnsafePathError):
        join("inner/link.mp3")  # a file that is a symlink out of the root
    assert join("alias/song.mp3") == (root / "inner" / "song.mp3").resolve()
    assert join("inner/file.mp3") == root.resolve() / "inner" / "file.mp3"
    assert join("inner/new/deeper/song.mp3") == root.resolve() / "inner/new/deeper/song.mp3"


def test_unique_path_suffixes(tmp_path: Path) -> None:
    rel = PurePosixPath("p/s/Song.mp3")
    assert unique_path(tmp_path, rel) == rel
    (tmp_path / "p/s").mkdir(parents=True)
    (tmp_path / "p/s/Song.mp3").write_bytes(b"1")
    assert unique_path(tmp_path, rel) == PurePosixPath("p/s/Song (2).mp3")
    (tmp_path / "p/s/Song (2).mp3").write_bytes(b"2")
    taken = {"p/s/Song (3).mp3"}
    assert unique_path(tmp_path, rel, taken.__contains__) == PurePosixPath("p/s/Song (4).mp3")
    assert unique_path(tmp_path, "p/s/Other.mp3", lambda r: r == "p/s/Other.mp3") == PurePosixPath(
        "p/s/Other (2).mp3"
    )


def test_unique_path_counts_dangling_symlinks(tmp_path: Path) -> None:
    os.symlink(tmp_path / "missing", tmp_path / "x.mp3")
    assert unique_path(tmp_path, "x.mp3") == PurePosixPath("x (2).mp3")


_Usage = namedtuple("_Usage", "total used free")


def test_ensure_space_picks_first_root_with_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full, roomy = tmp_path / "full", tmp_path / "roomy"
    full.mkdir()
    roomy.mkdir()
    free = {str(full): 10 * 1024 * 1024, str(roomy): 500 * 1024 * 1024}
    monkeypatch.setattr(shutil, "disk_usage", lambda p: _Usage(0, 0, free[str(p)]))
    assert ensure_space([full, roomy], 20 * 1024 * 1024, 1024 * 1024) == roomy
    assert ensure_space([full, roomy], None, 1024 * 1024) == full
    with pytest.raises(StorageFullError) as err:
        ensure_space([full, roomy], 600 * 1024 * 1024, 1024 * 1024)
    assert "600.0 MB" in str(err.value)
    assert "reserve" in str(err.value)
    # a root that does not exist yet is measured on its nearest existing folder
    assert ensure_space([roomy / "not" / "yet"], 1, 0) == roomy / "not" / "yet"


def test_ensure_space_real_disk(tmp_path: Path) -> None:
    assert ensure_space([tmp_path], 1, 0) == tmp_path
    with pytest.raises(StorageFullError):
        ensure_space([tmp_path], 1 << 62, 0)


def test_ensure_space_unreachable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(path: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(shutil, "disk_usage", broken)
    with pytest.raises(StorageUnavailableError):
        ensure_space([tmp_path], 1, 0)
