"""`catalogsync demo --headless`: the whole pipeline against the loopback demo source."""

from __future__ import annotations

import functools
import json

from typer.testing import CliRunner

from catalogsync import cli
from catalogsync.providers import demo as demo_provider


def test_demo_headless_runs_every_demo_job_to_completion(tmp_path, monkeypatch):
    # Two songs per playlist and no bandwidth cap keep this test quick; the flow is the real one.
    quick = functools.partial(
        demo_provider.DemoServer, songs_per_playlist=2, bandwidth_bytes_per_sec=None
    )
    monkeypatch.setattr("catalogsync.demo.DemoServer", quick)
    home = tmp_path / "demo"
    result = CliRunner().invoke(cli.app, ["demo", "--headless", "--home", str(home)])
    cli._state.pop("service", None)
    assert result.exit_code == 0, result.output
    assert "library:" in result.stdout

    status = CliRunner().invoke(cli.app, ["--home", str(home), "jobs", "list", "--json"])
    cli._state.pop("service", None).close()
    rows = json.loads(status.stdout)["jobs"]
    assert {r["status"] for r in rows} == {"completed"}
    assert {r["display_name"] for r in rows} == {
        "Full Pipeline",
        "Download Selected Playlists",
        "Sync Selected Playlists",
    }
    songs = [p for p in (home / "library").rglob("*") if p.is_file() and p.suffix != ".m3u8"]
    assert sorted(p.name for p in (home / "library" / "Playlists").iterdir()) == [
        "Morning Coffee.m3u8",
        "Night Drive.m3u8",
        "Workout Mix.m3u8",
    ]
    # 4 playlists x 2 songs, one song shared by two playlists: 7 files, none partial.
    assert len(songs) == 7
    assert not [p for p in songs if p.name.endswith(".part")]


def test_a_demo_in_a_temporary_folder_says_where_its_files_stay(tmp_path, monkeypatch):
    quick = functools.partial(
        demo_provider.DemoServer, songs_per_playlist=1, bandwidth_bytes_per_sec=None
    )
    monkeypatch.setattr("catalogsync.demo.DemoServer", quick)
    made = tmp_path / "catalogsync-demo-x"
    monkeypatch.setattr("catalogsync.demo.tempfile.mkdtemp", lambda prefix: str(made))
    made.mkdir()
    result = CliRunner().invoke(cli.app, ["demo", "--headless"])
    cli._state.pop("service", None)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "stay in" in line]
    assert len(lines) == 1 and str(made) in lines[0] and f"rm -r {made}" in lines[0]
    assert (made / "library").is_dir(), "the library is left for a look"

    again = CliRunner().invoke(cli.app, ["demo", "--headless", "--home", str(tmp_path / "h")])
    cli._state.pop("service", None)
    assert again.exit_code == 0, again.output
    assert "stay in" not in again.stdout, "a folder the user named is theirs: nothing to say"
