"""`library relocate NEW [--move]`: backend and config.toml re-pointed, files moved safely."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import tomllib

import pytest

from catalogsync.config import load_settings
from catalogsync.library.relocate import set_library_root
from catalogsync.service import Catalogsync
from tests.catalogsync.library.library_support import build_library, digests, run_cli, song_files


def test_relocate_with_move_moves_every_recorded_file_and_leaves_strays(tmp_path, http_server):
    home = tmp_path / "home"
    service = build_library(home, http_server, 3)
    old = service.settings.library_root
    service.close()
    before = digests(old)
    (old / "notes.txt").write_text("mine")
    new = tmp_path / "nas" / "music"
    code, out, err = run_cli(home, "library", "relocate", str(new), "--move")
    assert code == 0, err
    assert "4 files copied" in out and "4 old copies deleted" in out  # 3 songs + Mix.m3u8
    assert digests(new) == before and song_files(old) == []
    assert (old / "notes.txt").read_text() == "mine", "a file nobody recorded stays"
    assert (new / "Playlists" / "Mix.m3u8").is_file()
    assert load_settings(home=home).library_root == new
    service = Catalogsync.open(home=str(home))
    assert service.catalog.default_backend()["target"] == str(new)
    assert service.catalog.library_invariant_violations() == []
    service.close()
    code, out, _ = run_cli(home, "library", "verify")
    assert code == 0, out


def test_relocate_without_move_needs_the_files_there(tmp_path, http_server):
    home = tmp_path / "home"
    service = build_library(home, http_server, 2)
    old = service.settings.library_root
    service.close()
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(home, "library", "relocate", str(empty))
    assert code == 1 and "none of the" in err and len(err.strip().splitlines()) == 1
    moved = tmp_path / "moved"
    os.rename(old, moved)  # the user moved the disk
    code, out, err = run_cli(home, "library", "relocate", str(moved))
    assert code == 0, err
    assert "the library is now" in out
    code, out, _ = run_cli(home, "library", "verify")
    assert code == 0 and "2 files checked, 2 ok" in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {"library": {"root": "/x/y"}}),
        (
            'library = "/old"\n[download]\nworkers = 2\n',
            {"library": "/x/y", "download": {"workers": 2}},
        ),
        (
            '[library]\n# a comment\nroot = "/old"\ntemplate = "{title}"\n[upload]\nworkers = 1\n',
            {"library": {"root": "/x/y", "template": "{title}"}, "upload": {"workers": 1}},
        ),
        (
            '[library]\ntemplate = "{title}"\n\n[upload]\nworkers = 1\n',
            {"library": {"template": "{title}", "root": "/x/y"}, "upload": {"workers": 1}},
        ),
    ],
)
def test_set_library_root_keeps_the_rest_of_config_toml(tmp_path, text, expected):
    config = tmp_path / "config.toml"
    config.write_text(text)
    set_library_root(config, tmp_path.__class__("/x/y"))
    assert tomllib.loads(config.read_text()) == expected
    if "# a comment" in text:
        assert "# a comment" in config.read_text()


_KILLED_AFTER_COPIES = textwrap.dedent(
    """
    import os, signal, sys
    from catalogsync.library import relocate
    copies, kill_at = 0, int(sys.argv[2])
    real_copy = relocate._copy

    def copy_then_die(src, dst):
        global copies
        real_copy(src, dst)
        copies += 1
        if copies == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    relocate._copy = copy_then_die
    from catalogsync.cli import main
    home, new = sys.argv[1], sys.argv[3]
    sys.argv = ["catalogsync", "--home", home, "library", "relocate", new, "--move"]
    main()
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_relocate_move_killed_mid_copy_keeps_the_old_library_and_a_rerun_finishes(
    tmp_path, http_server
):
    home = tmp_path / "home"
    service = build_library(home, http_server, 4)
    old = service.settings.library_root
    service.close()
    before = digests(old)
    new = tmp_path / "new"
    script = tmp_path / "killed.py"
    script.write_text(_KILLED_AFTER_COPIES)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    result = subprocess.run(
        [sys.executable, str(script), str(home), "2", str(new)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    service = Catalogsync.open(home=str(home))
    assert service.catalog.default_backend()["target"] == str(old), "not switched yet"
    assert service.catalog.library_invariant_violations() == [], "the old library is whole"
    service.close()
    code, out, err = run_cli(home, "library", "relocate", str(new), "--move")
    assert code == 0, err
    assert "2 already there" in out
    assert digests(new) == before and song_files(old) == []


def test_relocate_refusals_are_one_line(tmp_path, http_server):
    home = tmp_path / "home"
    service = build_library(home, http_server, 1)
    old = service.settings.library_root
    service.close()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for target, needle in [
        (old, "already at"),
        (old / "sub", "contain one another"),
        (a_file, "is not a folder"),
    ]:
        code, _, err = run_cli(home, "library", "relocate", str(target), "--move")
        assert code == 1 and needle in err and len(err.strip().splitlines()) == 1, err
    clash = tmp_path / "clash"
    rel = song_files(old)[0]
    (clash / rel).parent.mkdir(parents=True)
    (clash / rel).write_bytes(b"another song")
    code, _, err = run_cli(home, "library", "relocate", str(clash), "--move")
    assert code == 1 and "exists and is another file" in err
    assert (clash / rel).read_bytes() == b"another song"
    assert load_settings(home=home).library_root == old, "nothing switched"


def test_relocate_refuses_while_the_library_option_overrides_config(
    tmp_path, http_server, monkeypatch
):
    home = tmp_path / "home"
    service = build_library(home, http_server, 1)
    old = service.settings.library_root
    service.close()
    monkeypatch.setenv("CATALOGSYNC_LIBRARY", str(old))
    code, _, err = run_cli(home, "library", "relocate", str(tmp_path / "new"), "--move")
    assert code == 1 and "CATALOGSYNC_LIBRARY is set" in err and len(err.strip().splitlines()) == 1
    assert song_files(old) and not (tmp_path / "new").exists()


def test_relocate_move_checks_each_copy_before_it_deletes_the_original(
    tmp_path, http_server, monkeypatch
):
    """A copy that came out short (a flaky share that reported no error) switches nothing."""
    import shutil

    from catalogsync.library import relocate as relocate_module

    home = tmp_path / "home"
    service = build_library(home, http_server, 2)
    old = service.settings.library_root
    service.close()
    before = digests(old)
    real_copyfile = shutil.copyfile

    def short_copy(src, dst, *args, **kwargs):
        real_copyfile(src, dst, *args, **kwargs)
        with open(dst, "r+b") as fh:
            fh.truncate(os.path.getsize(dst) // 2)
        return dst

    monkeypatch.setattr(relocate_module.shutil, "copyfile", short_copy)
    new = tmp_path / "nas" / "music"
    code, _, err = run_cli(home, "library", "relocate", str(new), "--move")
    assert code == 1 and "differs" in err and len(err.strip().splitlines()) == 1, err
    assert digests(old) == before, "every original is still there"
    assert load_settings(home=home).library_root == old, "nothing switched"
