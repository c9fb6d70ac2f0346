"""What a `catalogsync` start loads: the commands a script runs often stay light.

Not timings (bench/cli_latency.py prints those): which modules a whole process has
imported when it ends, and which click commands it built, so a change that puts a
heavy import back on the path of `status` fails here instead of only in a benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from catalogsync import cli

# Run `catalogsync.cli.main()` with argv[3:], then write the loaded modules of interest.
PROBE = """
import json, sys
out, watched, args = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
sys.argv = ["catalogsync", *args]
from catalogsync.cli import main
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in watched if m in sys.modules)
with open(out, "w") as fh:
    json.dump({"code": code, "loaded": loaded}, fh)
"""

# Nothing that reads the database needs these: the TUI, HTTP clients and TLS, audio
# tags, notifications, cron (no schedules configured), the runner and its download
# stack, the progress display of --wait.
NOT_FOR_READS = [
    "textual",
    "tui",
    "httpx",
    "httpcore",
    "ssl",
    "mutagen",
    "apprise",
    "cronsim",
    "zoneinfo",
    "socket",
    "catalogsync.ops.runner",
    "catalogsync.transfer.http",
    "catalogsync.nudge",
    "rich.progress",
    "rich._emoji_codes",  # the consoles print names as they are (emoji=False)
]
# An empty job's `jobs submit --wait` runs the embedded runner, but never the TUI, an
# HTTP client (the download stage loads ours at its first song; the runner checks the
# proxy variables only when one is set), audio tags or notifications;
# -q or piped, it draws no progress bar either.
NOT_FOR_AN_EMPTY_WAIT = [
    "textual",
    "tui",
    "httpx",
    "httpcore",
    "http.client",
    "ssl",
    "catalogsync.transfer.http",
    "catalogsync.transfer.wire",
    "mutagen",
    "apprise",
    "rich.progress",
]
# A stage's module is imported when a job reaches the stage: a sync-only job loads no
# download, collect, upload or verify stage (the download one brings the HTTP stack).
OTHER_STAGES = [
    "catalogsync.ops.stages.download",
    "catalogsync.ops.stages.collect",
    "catalogsync.ops.stages.upload",
    "catalogsync.ops.stages.verify",
]


def probe(tmp_path: Path, watched: list[str], *args: str) -> dict[str, object]:
    out = tmp_path / "probe.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), json.dumps(watched), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.exists(), done.stderr
    result: dict[str, object] = json.loads(out.read_text())
    assert result["code"] == 0, done.stderr
    return result


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    probe(tmp_path, [], "--home", str(home), "init")
    return home


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["jobs", "list"]])
def test_reading_commands_load_nothing_heavy(
    tmp_path: Path, home: Path, command: list[str]
) -> None:
    probe(tmp_path, [], "--home", str(home), "-q", "jobs", "submit", "catalog_sync")
    result = probe(tmp_path, NOT_FOR_READS, "--home", str(home), *command)
    assert result["loaded"] == []


def test_an_empty_job_s_wait_loads_no_tui_http_library_tags_or_notifications(
    tmp_path: Path, home: Path
) -> None:
    result = probe(
        tmp_path,
        NOT_FOR_AN_EMPTY_WAIT + ["catalogsync.ops.runner"],
        "--home",
        str(home),
        "-q",
        "jobs",
        "submit",
        "sync_download",
        "--wait",
    )
    # The probe itself works: the runner did load, and nothing else on the list.
    assert result["loaded"] == ["catalogsync.ops.runner"]


def test_a_sync_only_wait_loads_only_the_sync_stage(tmp_path: Path, home: Path) -> None:
    result = probe(
        tmp_path,
        OTHER_STAGES + ["catalogsync.ops.stages.sync"],
        "--home",
        str(home),
        "-q",
        "jobs",
        "submit",
        "sync_only",
        "--wait",
    )
    assert result["loaded"] == ["catalogsync.ops.stages.sync"]


# -- the click tree of one command ----------------------------------------------------


def names(app: object) -> list[str]:
    """The commands and groups of a typer app, as click names them."""
    return sorted(get_command(app).commands)  # type: ignore[arg-type, attr-defined]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["status"], ["status"]),
        (["--home", "/srv/x", "-q", "status", "--json"], ["status"]),
        (["--home=/srv/x", "jobs", "list"], ["jobs"]),
        # A root option's value is not the command, even when it reads like one.
        (["--home", "status", "--db", "tui", "-v", "jobs", "submit", "catalog_sync"], ["jobs"]),
        (["status", "--help"], ["status"]),
    ],
)
def test_one_command_builds_only_its_own_tree(args: list[str], expected: list[str]) -> None:
    assert names(cli.command_line(args)) == expected


@pytest.mark.parametrize(
    "args, group, expected",
    [
        (["jobs", "submit", "sync_only", "--wait"], "jobs", ["submit"]),
        (["--home", "x", "jobs", "list", "--json"], "jobs", ["list"]),
        (["playlists", "add", "a.m3u"], "playlists", ["add"]),
        # The group's own help, no command or an unknown one: the whole group.
        (["jobs", "--help"], "jobs", None),
        (["jobs"], "jobs", None),
        (["jobs", "submitt"], "jobs", None),
    ],
)
def test_in_a_group_only_the_named_command_is_built(
    args: list[str], group: str, expected: list[str] | None
) -> None:
    built = get_command(cli.command_line(args)).commands[group]  # type: ignore[attr-defined]
    whole = get_command(cli.app).commands[group]  # type: ignore[attr-defined]
    assert sorted(built.commands) == (expected or sorted(whole.commands))


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--help"],
        ["--help", "status"],
        ["-v"],
        ["stats"],
        ["--version"],
        ["--home", "x"],
    ],
)
def test_what_lists_or_suggests_commands_gets_them_all(args: list[str]) -> None:
    assert cli.command_line(args) is cli.app


def test_shell_completion_gets_every_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_CATALOGSYNC_COMPLETE", "complete_bash")
    assert cli.command_line(["status"]) is cli.app


def test_the_whole_app_is_left_as_it_was() -> None:
    before, jobs_before = names(cli.app), names(cli.jobs_app)
    cli.command_line(["jobs", "list"])
    assert names(cli.app) == before and len(before) > 10
    assert names(cli.jobs_app) == jobs_before and len(jobs_before) > 5


def test_value_options_are_the_root_options_that_take_a_value() -> None:
    group = get_command(cli.app)
    taking_value = {
        opt
        for param in group.params
        if param.param_type_name == "option" and not getattr(param, "is_flag", False)
        for opt in param.opts
        if opt.startswith("--")
    }
    assert taking_value == cli.VALUE_OPTIONS


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["status", "--json"],
        ["jobs", "list"],
        ["jobs", "show", "1", "--json"],
        ["jobs", "--help"],
        ["status", "--help"],
        ["version"],
        ["jobs", "show", "99"],
        ["jobs", "submit", "no_such_type"],
        ["jobs", "submit", "--help"],
        ["jobs", "submitt"],
        ["jobs"],
        ["playlists", "list", "--json"],
        ["-q", "--verbose", "status"],
    ],
)
def test_one_command_s_tree_answers_as_the_whole_app_does(tmp_path: Path, args: list[str]) -> None:
    home = tmp_path / "home"
    runner = CliRunner()

    def run(app: object) -> tuple[int, str, str]:
        try:
            result = runner.invoke(app, ["--home", str(home), *args])  # type: ignore[arg-type]
        finally:
            service = cli._state.pop("service", None)
            if service is not None:
                service.close()
        return result.exit_code, result.stdout, result.stderr

    run(cli.app)  # creates the home, so both runs below see the same one
    runner.invoke(cli.app, ["--home", str(home), "-q", "jobs", "submit", "catalog_sync"])
    service = cli._state.pop("service", None)
    if service is not None:
        service.close()
    whole = run(cli.app)
    pruned_app = cli.command_line(["--home", str(home), *args])
    assert pruned_app is not cli.app
    assert run(pruned_app) == whole


def test_the_entry_point_runs_the_command_with_the_collector_on_and_start_up_frozen() -> None:
    """`catalogsync` (and `python -m catalogsync`) import the CLI with the cyclic GC off,
    freeze what that made, and run the command (which may run for days) with it on."""
    code = (
        "import gc, json, catalogsync.cli\n"
        "catalogsync.cli.main = lambda: print(json.dumps("
        "[gc.isenabled(), gc.get_freeze_count()]))\n"
        "from catalogsync.__main__ import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    enabled, frozen = json.loads(done.stdout)
    assert enabled is True
    assert frozen > 10_000, "the objects of the start-up were frozen"


def test_python_m_catalogsync_runs_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "catalogsync", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.startswith("catalogsync ")
