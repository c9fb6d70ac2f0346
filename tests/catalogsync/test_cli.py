"""The command line: JSON contracts, one-line errors, exit codes, and no Textual import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from catalogsync import cli
from tests.catalogsync.pipeline_support import serve_songs, write_m3u
from tests.support.audio import mp3_body


@pytest.fixture
def run_cli(tmp_path):
    """Invoke the CLI in-process against a fresh --home; returns (exit code, stdout, stderr)."""
    home = tmp_path / "home"

    def invoke(*args: str):
        runner = CliRunner()
        try:
            result = runner.invoke(cli.app, ["--home", str(home), *args])
        finally:
            service = cli._state.pop("service", None)
            if service is not None:
                service.close()
        return result.exit_code, result.stdout, result.stderr

    invoke.home = home
    return invoke


def _playlist_file(tmp_path, name, url="http://127.0.0.1:9/a.mp3"):
    return str(write_m3u(tmp_path / f"{name}.m3u", [("A", "S", url)], name=name))


def test_importing_the_cli_loads_neither_textual_nor_tui():
    code = (
        "import sys, catalogsync.cli, catalogsync.service, catalogsync.ops.views\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'tui')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_init_creates_config_database_and_library(run_cli):
    code, out, _ = run_cli("init")
    assert code == 0
    home = run_cli.home
    assert (home / "config.toml").exists()
    assert (home / "catalogsync.db").exists()
    assert (home / "library").is_dir()
    assert str(home / "library") in out


def test_names_are_printed_as_they_are_never_as_emoji(run_cli, tmp_path):
    """rich turns `:fire:` into an emoji by default; a playlist's name is data."""
    code, out, _ = run_cli(
        "playlists", "add", _playlist_file(tmp_path, "A"), "--name", "Hot :fire:"
    )
    assert code == 0 and "Hot :fire:" in out
    code, out, _ = run_cli("playlists", "list")
    assert code == 0 and "Hot :fire:" in out


def test_playlist_scoped_sync_job_keeps_playlist_order(run_cli, tmp_path):
    code, out, _ = run_cli(
        "playlists", "add", _playlist_file(tmp_path, "A"), _playlist_file(tmp_path, "B"), "--json"
    )
    assert code == 0
    a, b = (p["id"] for p in json.loads(out)["playlists"])
    code, out, _ = run_cli(
        "jobs", "submit", "sync_only", "--playlist", str(b), "--playlist", str(a), "--json"
    )
    assert code == 0
    job = json.loads(out)["job"]
    assert job["job_type"] == "sync_only"
    assert job["status"] == "queued"
    assert job["playlist_scope"]["playlist_ids"] == [b, a]
    assert job["display_name"] == "Sync Selected Playlists"


def test_status_json_carries_the_dashboard_payload(run_cli):
    run_cli("jobs", "submit", "catalog_sync")
    code, out, _ = run_cli("status", "--json")
    assert code == 0
    payload = json.loads(out)
    for key in (
        "summary",
        "download_stats",
        "playlist_sources",
        "task_rows",
        "workers",
        "running_items",
        "recent_events",
    ):
        assert key in payload
    assert payload["summary"]["queued_download_jobs"] == 1
    assert payload["task_rows"][0]["queue_label"] == "queued #1"


def test_jobs_list_and_show_json(run_cli):
    run_cli("jobs", "submit", "download_only")
    code, out, _ = run_cli("jobs", "list", "--json")
    assert code == 0
    job_id = json.loads(out)["jobs"][0]["id"]
    code, out, _ = run_cli("jobs", "show", str(job_id), "--json")
    detail = json.loads(out)
    assert set(detail) == {
        "job",
        "stages",
        "workers",
        "playlist_progress",
        "events",
        "failed_items",
    }
    assert [s["stage_type"] for s in detail["stages"]] == ["download"]


def test_pause_resume_cancel_without_a_runner_apply_at_once(run_cli):
    run_cli("jobs", "submit", "download_only")
    assert run_cli("jobs", "pause", "1")[0] == 0
    assert json.loads(run_cli("jobs", "show", "1", "--json")[1])["job"]["status"] == "paused"
    assert run_cli("jobs", "resume", "1")[0] == 0
    assert json.loads(run_cli("jobs", "show", "1", "--json")[1])["job"]["status"] == "queued"
    code, out, _ = run_cli("jobs", "cancel", "1", "--json")
    assert code == 0
    assert json.loads(out)["job"]["status"] == "canceled"
    assert json.loads(out)["command"] == "cancel"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("jobs", "show", "42"), "error: job 42 does not exist"),
        (("jobs", "pause", "42"), "error: job 42 does not exist"),
        (("jobs", "submit", "sync_only", "--playlist", "9"), "error: no playlist with id 9"),
        (("jobs", "submit", "download_only", "--source", "nope"), "no source named 'nope'"),
        (("jobs", "submit", "upload_only"), "needs a target: add --backend NAME"),
        (("playlists", "wanted", "5"), "error: no playlist with id 5"),
        (("playlists", "add", "ftp://example.invalid/x"), "error: "),
    ],
)
def test_user_errors_are_one_line_and_exit_1(run_cli, args, message):
    code, out, err = run_cli(*args)
    assert code == 1
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err + out


def test_illegal_transition_is_refused_with_its_reason(run_cli):
    run_cli("jobs", "submit", "download_only")
    run_cli("jobs", "cancel", "1")
    code, _, err = run_cli("jobs", "pause", "1")
    assert code == 1
    assert err.strip() == (
        "error: cannot pause job 1: it is canceled; only queued or running jobs can be paused"
    )


def test_malformed_playlist_names_file_and_line_and_stores_nothing(run_cli, tmp_path):
    good = _playlist_file(tmp_path, "good")
    bad = tmp_path / "bad.m3u"
    bad.write_text("#EXTM3U\n#EXTINF:1,A - B\nhttp://127.0.0.1:9/a.mp3\n#EXTINF:zz,A - B\nx.mp3\n")
    code, _, err = run_cli("playlists", "add", good, str(bad))
    assert code == 1
    assert f"{bad}:4" in err
    code, out, _ = run_cli("playlists", "list", "--json")
    assert json.loads(out)["playlists"] == [], "nothing is stored when one ref is bad"


def test_a_broken_config_file_is_reported_with_its_path(run_cli):
    run_cli("init")
    (run_cli.home / "config.toml").write_text("[download]\nworkers = 'many'\n")
    code, _, err = run_cli("status")
    assert code == 1
    assert str(run_cli.home / "config.toml") in err and "workers" in err
    (run_cli.home / "config.toml").write_text("[download\n")
    code, _, err = run_cli("status")
    assert code == 1 and "config.toml:1: " in err


def test_usage_errors_exit_2(run_cli):
    assert run_cli("jobs", "pause")[0] == 2
    assert run_cli("jobs", "pause", "one")[0] == 2


def test_playlists_list_wanted_and_unwanted(run_cli, tmp_path):
    run_cli("playlists", "add", _playlist_file(tmp_path, "A"), "--not-wanted")
    rows = json.loads(run_cli("playlists", "list", "--json")[1])["playlists"]
    assert rows[0]["wanted"] is False
    assert rows[0]["hint"] == "0 songs, sync recommended"
    assert run_cli("playlists", "wanted", "1")[0] == 0
    assert json.loads(run_cli("playlists", "list", "--json")[1])["playlists"][0]["wanted"] is True
    run_cli("playlists", "unwanted", "1")
    assert json.loads(run_cli("playlists", "list", "--json")[1])["playlists"][0]["wanted"] is False


def test_submit_wait_embeds_a_runner_and_exits_0_when_completed(
    run_cli, tmp_path, http_server, v2_layout
):
    url = list(serve_songs(http_server, 1))[0]
    path = write_m3u(tmp_path / "w.m3u", [("A", "Waited", url)])
    run_cli("playlists", "add", str(path))
    code, out, _ = run_cli("jobs", "submit", "sync_download", "--wait", "--json")
    assert code == 0, out
    assert json.loads(out)["job"]["status"] == "completed"
    assert (run_cli.home / "library" / "manifest" / "A" / "Waited.mp3").exists()


def test_submit_wait_exits_3_when_some_items_failed(run_cli, tmp_path, http_server):
    good = http_server.route("/good.mp3", body=mp3_body(30_000, seed=1))
    gone = http_server.route("/gone.mp3", status=404)
    entries = [("A", "Good", good), ("A", "Gone", gone)]
    run_cli("playlists", "add", str(write_m3u(tmp_path / "g.m3u", entries)))
    code, out, err = run_cli("-q", "jobs", "submit", "sync_download", "--wait")
    assert (code, out) == (3, "")  # one song in, one failed: completed_with_errors
    # Exit 3 says why on stderr, even with -q: the count, the first error, the next command.
    (line,) = err.strip().splitlines()
    assert line.startswith("job 1 completed with errors: 1 failed, 1 / 2 done; first: Gone / A")
    assert ": HTTP 404 from http://127.0.0.1:" in line
    assert line.endswith("`catalogsync jobs show 1 --failed` lists them")


def test_submit_wait_exits_1_when_every_song_failed(run_cli, tmp_path, http_server):
    gone = http_server.route("/gone.mp3", status=404)
    run_cli("playlists", "add", str(write_m3u(tmp_path / "g.m3u", [("A", "Gone", gone)])))
    code, _, _ = run_cli("jobs", "submit", "sync_download", "--wait")
    assert code == 1  # nothing worked: the job failed


def test_backends_add_and_list(run_cli, tmp_path):
    code, out, _ = run_cli(
        "backends", "add", "nas", "--kind", "local", "--target", str(tmp_path / "share")
    )
    assert code == 0
    rows = json.loads(run_cli("backends", "list", "--json")[1])["backends"]
    assert [(r["name"], r["kind"]) for r in rows] == [("library", "local"), ("nas", "local")]
    code, _, err = run_cli("backends", "add", "nas", "--kind", "local", "--target", "/x")
    assert code == 1 and "already exists" in err
