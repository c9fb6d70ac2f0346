"""`catalogsync` command line: a typer app over the service facade.

The TUI is imported lazily inside the `tui` and `demo` commands, so scripts and
systemd units never load Textual.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import replace
from enum import IntEnum, StrEnum
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from catalogsync import __version__
from catalogsync.cli_json import dump_json
from catalogsync.cli_library import library_app
from catalogsync.cli_schedules import schedules_app
from catalogsync.cli_service import service_app
from catalogsync.errors import CatalogsyncError
from catalogsync.ops.jobdefs import JobType
from catalogsync.ops.models import CommandType
from catalogsync.redact import mask_secrets

if TYPE_CHECKING:
    from catalogsync.service import Catalogsync


class ExitCode(IntEnum):
    """What `catalogsync` exits with (docs/catalogsync.md, "Exit codes")."""

    OK = 0
    ERROR = 1  # a user error, or a job that failed
    USAGE = 2  # a bad option or argument (click's own code)
    SOME_FAILED = 3  # the job finished, but some of its items failed
    STOPPED = 4  # the job was paused or canceled while we waited
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


# `jobs submit --wait`: the job's final status -> the exit code.
WAIT_EXIT_CODES = {
    "completed": ExitCode.OK,
    "completed_with_errors": ExitCode.SOME_FAILED,
    "failed": ExitCode.ERROR,
    "paused": ExitCode.STOPPED,
    "canceled": ExitCode.STOPPED,
}


class BackendKind(StrEnum):
    """Storage backend kinds (catalog.repository.BACKEND_KINDS; a test keeps them equal)."""

    LOCAL = "local"
    WEBDAV = "webdav"
    RCLONE = "rclone"


class SyncPolicy(StrEnum):
    """What a sync does with files of tracks removed upstream (catalog set_sync_policy)."""

    ADD = "add"  # the files stay
    MIRROR = "mirror"  # they go to the trash


EXTRAS_NOTE = (
    "Extras: pipx install 'catalogsync\\[musicdl]' adds musicdl's platform clients "
    "(musicdl >= 2.10; musicdl is PolyForm Noncommercial: personal, non-commercial use only)."
)

app = typer.Typer(
    name="catalogsync",
    help="Keep a NAS music library in step with online playlists.",
    epilog=EXTRAS_NOTE,
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
playlists_app = typer.Typer(help="List, add and flag playlists.", no_args_is_help=True)
jobs_app = typer.Typer(help="Submit, inspect and steer jobs.", no_args_is_help=True)
backends_app = typer.Typer(help="Storage backends files are uploaded to.", no_args_is_help=True)
app.add_typer(playlists_app, name="playlists")
app.add_typer(jobs_app, name="jobs")
app.add_typer(backends_app, name="backends")
app.add_typer(library_app, name="library")
app.add_typer(schedules_app, name="schedules")
app.add_typer(service_app, name="service")

# emoji=False: a name such as `Hot :fire:` is data, printed as it is (and rich's table
# of emoji codes, 11 M instructions, stays unloaded).
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
_state: dict[str, Any] = {}

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (docs/json.md) instead of text.")]


def _fail(message: str) -> None:
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(1)


def handles_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our own errors into one line on stderr and exit 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CatalogsyncError as exc:
            _verbose_traceback()
            _fail(mask_secrets(str(exc)))
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except sqlite3.Error as exc:
            from catalogsync.service import database_error

            _verbose_traceback()
            _fail(str(database_error(_db_path(), exc)))
        except OSError as exc:
            _verbose_traceback()
            _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))

    return wrapper


def _verbose_traceback() -> None:
    """With -v the full traceback goes to stderr before the one-line error."""
    if _state.get("verbose"):
        import traceback

        err.print(traceback.format_exc(), markup=False, end="")


def _db_path() -> Path:
    service = _state.get("service")
    if service is not None:
        return Path(service.settings.db_path)
    from catalogsync.config import resolve_paths

    return resolve_paths(_state.get("home"), _state.get("db"), _state.get("library"))[2]


def _service(*, check_library: bool = True) -> Catalogsync:
    """The open service; ``check_library=False`` for `library relocate`, which mends the
    difference between the configured and the recorded library root."""
    from catalogsync.config import load_settings
    from catalogsync.service import Catalogsync

    service: Catalogsync | None = _state.get("service")
    if service is None:
        settings = load_settings(_state.get("home"), _state.get("db"), _state.get("library"))
        service = Catalogsync(settings, check_library=check_library)
        _state["service"] = service
    return service


def _print_json(data: Any) -> None:
    """JSON on stdout (printed even with -q: it was asked for); timestamps ISO 8601 UTC."""
    sys.stdout.write(dump_json(data) + "\n")
    sys.stdout.flush()


def _say(message: str) -> None:
    """A plain informational line on stdout (silent with -q)."""
    out.print(message, markup=False)


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"catalogsync {__version__}\n")
        raise typer.Exit()


@app.callback()
def main_options(
    home: Annotated[
        str | None,
        typer.Option(
            "--home",
            envvar="CATALOGSYNC_HOME",
            help="One folder for config, database and library (default: platform dirs).",
        ),
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", envvar="CATALOGSYNC_DB", help="Database file.")
    ] = None,
    library: Annotated[
        str | None, typer.Option("--library", envvar="CATALOGSYNC_LIBRARY", help="Library folder.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print errors only (--json output still prints).")
    ] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colours (the NO_COLOR variable does the same).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Keep a NAS music library in step with online playlists."""
    if verbose and quiet:
        raise typer.BadParameter("--verbose and --quiet exclude each other", param_hint="-q")
    _state.update(home=home, db=db, library=library, verbose=verbose, quiet=quiet)
    if no_color:
        # The environment too, so the TUI (Textual honours NO_COLOR) follows the flag.
        os.environ["NO_COLOR"] = "1"
    out.no_color = err.no_color = bool(no_color or os.environ.get("NO_COLOR"))
    out.quiet = quiet
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    from catalogsync.redact import MaskingFormatter

    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))


@app.command()
@handles_errors
def version(as_json: JsonOpt = False) -> None:
    """Print the version."""
    if as_json:
        _print_json({"version": __version__})
    else:
        out.print(__version__)


@app.command()
@handles_errors
def init(
    library: Annotated[str | None, typer.Option("--library", help="Library folder.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create the config file, the database and the library folder."""
    from catalogsync.config import load_settings, save_library_root, write_default_config
    from catalogsync.service import Catalogsync

    library = library or _state.get("library")
    settings = load_settings(_state.get("home"), _state.get("db"), library)
    wrote = write_default_config(settings)
    # init is where the library is chosen: --library here is saved, not per process.
    saved = library is not None and save_library_root(settings, settings.library_root)
    settings = load_settings(_state.get("home"), _state.get("db"), library)
    Catalogsync(settings).close()
    note = "" if wrote else " (library saved)" if saved else " (kept)"
    if as_json:
        _print_json(
            {
                "home": {
                    "config_path": str(settings.config_path),
                    "config_written": wrote,
                    "library_saved": bool(saved),
                    "db_path": str(settings.db_path),
                    "library_root": str(settings.library_root),
                }
            }
        )
        return
    _say(f"config:   {settings.config_path}{note}")
    _say(f"database: {settings.db_path}")
    _say(f"library:  {settings.library_root}")


@app.command()
@handles_errors
def status(as_json: JsonOpt = False) -> None:
    """Summary counts, running jobs and workers."""
    from catalogsync.cli_render import render_status

    payload = _service().dashboard()
    if as_json:
        _print_json(payload)
    else:
        render_status(out, payload)


@app.command()
@handles_errors
def run(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit 0 once nothing is queued or running.")
    ] = False,
    log_file: Annotated[
        str | None, typer.Option("--log-file", help="Also log to this file ([log] file).")
    ] = None,
) -> None:
    """Run jobs headless (for systemd): holds the runner lease until SIGINT/SIGTERM."""
    from catalogsync.logs import setup_runner_logging

    service = _service()
    quiet = bool(_state.get("quiet"))
    setup_runner_logging(
        service.settings.unattended.log, log_file, level=logging.ERROR if quiet else logging.INFO
    )
    if not quiet:
        err.print(f"catalogsync runner on {service.settings.db_path}", markup=False)
    if not service.run_headless(until_idle=until_idle):
        # A worker is stuck in a call that never returns: leave without it. Its items
        # are recovered by the next runner, as after any unclean stop.
        err.print("runner stopped; a worker still blocked was left behind", markup=False)
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(0)


@app.command()
@handles_errors
def tui(
    web: Annotated[
        bool, typer.Option("--web", help="Serve the task center to a browser on 127.0.0.1.")
    ] = False,
    port: Annotated[int, typer.Option("--port", help="Port for --web.", min=1, max=65535)] = 8566,
    log_file: Annotated[
        Path | None,
        typer.Option("--log-file", help="Log file (default: HOME/logs/tui.log or the state dir)."),
    ] = None,
) -> None:
    """Open the task center (embeds a runner unless one already holds the lease)."""
    if web:
        from tui.web import serve_web

        options = [
            ("--home", _state.get("home")),
            ("--db", _state.get("db")),
            ("--library", _state.get("library")),
        ]
        serve_web(
            [arg for name, value in options if value for arg in (name, str(value))],
            port=port,
            log_file=log_file,
            console=err,
        )
        return
    from tui.app import run_tui

    run_tui(_service(), log_file=log_file)


@app.command()
@handles_errors
def demo(
    headless: Annotated[
        bool, typer.Option("--headless", help="Run the demo jobs to the end, printing progress.")
    ] = False,
    home: Annotated[
        str | None, typer.Option("--home", help="Demo home (default: a fresh temporary folder).")
    ] = None,
) -> None:
    """Built-in demo source: real transfers from a loopback server, no account needed."""
    from catalogsync.demo import run_demo

    raise typer.Exit(run_demo(home or _state.get("home"), headless=headless, console=out))


# -- playlists ------------------------------------------------------------------


@playlists_app.command("add")
@handles_errors
def playlists_add(
    refs: Annotated[list[str], typer.Argument(help="Playlist files or URLs.")],
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    wanted: Annotated[
        bool | None, typer.Option("--wanted/--not-wanted", help="Download its songs.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register playlists by file or URL."""
    added = _service().add_playlists(refs, name=name, wanted=wanted)
    if as_json:
        _print_json({"playlists": [vars(a) for a in added]})
        return
    for a in added:
        verb = "added" if a.created else "updated"
        _say(f"{verb} playlist {a.id}: {a.name} ({a.platform})")


@playlists_app.command("list")
@handles_errors
def playlists_list(as_json: JsonOpt = False) -> None:
    """Every playlist with song count, wanted flag, drift and hint."""
    from catalogsync.cli_render import render_playlists

    rows = _service().playlists()
    if as_json:
        _print_json({"playlists": rows})
    else:
        render_playlists(out, rows)


def _set_wanted(ids: list[int], wanted: bool, as_json: bool) -> None:
    service = _service()
    count = service.set_wanted(ids, wanted)
    if as_json:
        chosen = set(ids)
        _print_json(
            {"changed": count, "playlists": [r for r in service.playlists() if r.id in chosen]}
        )
    else:
        _say(f"{count} playlists {'marked wanted' if wanted else 'unmarked'}")


@playlists_app.command("wanted")
@handles_errors
def playlists_wanted(
    ids: Annotated[list[int], typer.Argument(help="Playlist ids.")], as_json: JsonOpt = False
) -> None:
    """Mark playlists wanted: their songs are downloaded."""
    _set_wanted(ids, True, as_json)


@playlists_app.command("unwanted")
@handles_errors
def playlists_unwanted(
    ids: Annotated[list[int], typer.Argument(help="Playlist ids.")], as_json: JsonOpt = False
) -> None:
    """Unmark playlists: their songs are no longer downloaded (files are kept)."""
    _set_wanted(ids, False, as_json)


@playlists_app.command("policy")
@handles_errors
def playlists_policy(
    playlist_id: int,
    policy: Annotated[SyncPolicy, typer.Argument(help="add or mirror.", show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """add: files stay; mirror: files of tracks removed upstream go to the trash."""
    service = _service()
    service.set_sync_policy(playlist_id, policy.value)
    if as_json:
        _print_json({"playlist": service.playlist(playlist_id), "policy": policy.value})
        return
    _say(f"playlist {playlist_id}: sync policy {policy.value}")


@playlists_app.command("plan")
@handles_errors
def playlists_plan(
    ids: Annotated[list[int] | None, typer.Argument(help="Playlist ids (default: wanted).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """What the next sync and download would do; changes nothing."""
    from catalogsync.cli_plan import render_plan
    from catalogsync.config import load_settings
    from catalogsync.service import read_only_plan

    plan = read_only_plan(
        load_settings(_state.get("home"), _state.get("db"), _state.get("library")), list(ids or [])
    )
    if as_json:
        _print_json(plan)
    else:
        render_plan(out, plan)


# -- jobs --------------------------------------------------------------------------


@jobs_app.command("submit")
@handles_errors
def jobs_submit(
    job_type: Annotated[JobType, typer.Argument(help="What to run.", show_default=False)],
    playlist: Annotated[
        list[int] | None, typer.Option("--playlist", "-p", help="Scope to a playlist (repeat).")
    ] = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Scope to a source (repeat).")
    ] = None,
    backend: Annotated[str | None, typer.Option("--backend", help="Upload target.")] = None,
    priority: Annotated[int, typer.Option("--priority", help="Lower runs first.")] = 100,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Follow the job to its end; exit 0 completed, 3 some items "
            "failed, 4 paused or canceled, 1 failed.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Queue a job."""
    service = _service()
    job = service.submit_job(
        job_type.value, playlist_ids=playlist, sources=source, backend=backend, priority=priority
    )
    if as_json and not wait:
        _print_json({"job": job})
        return
    if not as_json:
        _say(f"job {job.id} queued: {job.display_name} ({job.queue_label})")
    if wait:
        raise typer.Exit(_wait_for(service, job.id, as_json))


def _wait_for(service: Catalogsync, job_id: int, as_json: bool) -> int:
    from catalogsync.follow import follow_jobs

    embedded = service.runner_holder() is None and service.start_runner_thread()
    console = err if as_json else out
    if not embedded and service.runner is None:
        holder = service.runner_holder()
        if holder:
            console.print(f"following the runner pid {holder.pid} on {holder.host}", markup=False)
    try:
        statuses = follow_jobs(service, [job_id], console, quiet=bool(_state.get("quiet")))
    finally:
        if embedded:
            service.stop_runner()
    if as_json:
        _print_json({"job": service.job_row(job_id)})
    elif statuses[job_id] != "completed":
        # Exit 1, 3 or 4 comes with its reason on stderr, -q or not: a cron mail (or a
        # script's log) says why without a second command.
        err.print(_wait_outcome(service, job_id), markup=False)
    return int(WAIT_EXIT_CODES.get(statuses[job_id], ExitCode.ERROR))


def _wait_outcome(service: Catalogsync, job_id: int) -> str:
    """One line on how a waited-for job ended short of `completed`."""
    detail = service.job_detail(job_id)
    job = detail.job
    status = str(job.status)
    text = f"job {job_id} {status.replace('_', ' ')}"
    if status == "paused" and job.pause_reason:
        return f"{text}: {job.pause_reason}"
    if status == "canceled":
        return f"{text}: {job.done_items} / {job.total_items} done"
    failed = detail.failed_items
    if failed.total:
        first = failed.items[0] if failed.items else None
        why = f"; first: {first.song or first.playlist or 'item'}: {first.error}" if first else ""
        return (
            f"{text}: {failed.total} failed, {job.done_items} / {job.total_items} done{why}; "
            f"`catalogsync jobs show {job_id} --failed` lists them"
        )
    return f"{text}; `catalogsync jobs show {job_id}` says why"


@jobs_app.command("list")
@handles_errors
def jobs_list(as_json: JsonOpt = False) -> None:
    """The task-center rows: running, queued in order, paused, then recent."""
    from catalogsync.cli_render import render_jobs

    rows = _service().task_rows()
    if as_json:
        _print_json({"jobs": rows})
    else:
        render_jobs(out, rows)


@jobs_app.command("show")
@handles_errors
def jobs_show(
    job_id: int,
    failed: Annotated[
        bool, typer.Option("--failed", help="List every failed item (not only the first 20).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """A job's stages, workers (bytes, speed), failed items, playlist progress and events."""
    from catalogsync.cli_render import render_job_detail

    service = _service()
    detail = service.job_detail(job_id)
    if failed:
        detail = replace(detail, failed_items=service.job_failed_items(job_id, limit=None))
    if as_json:
        _print_json(detail)
    else:
        render_job_detail(out, detail)


def _command(job_id: int, kind: CommandType, as_json: bool) -> None:
    service = _service()
    result = service.command(job_id, kind)
    if as_json:
        _print_json(
            {"job": service.job_row(job_id), "command": result.command, "message": result.message}
        )
        return
    _say(result.message)


@jobs_app.command("pause")
@handles_errors
def jobs_pause(job_id: int, as_json: JsonOpt = False) -> None:
    """Pause a queued or running job (a running transfer stops at the next chunk)."""
    _command(job_id, CommandType.PAUSE, as_json)


@jobs_app.command("resume")
@handles_errors
def jobs_resume(job_id: int, as_json: JsonOpt = False) -> None:
    """Resume a paused job; it goes back to its place in the queue."""
    _command(job_id, CommandType.RESUME, as_json)


@jobs_app.command("cancel")
@handles_errors
def jobs_cancel(job_id: int, as_json: JsonOpt = False) -> None:
    """Cancel an unfinished job (partial files are kept for a later job)."""
    _command(job_id, CommandType.CANCEL, as_json)


@jobs_app.command("retry")
@handles_errors
def jobs_retry(job_id: int, as_json: JsonOpt = False) -> None:
    """Retry a finished or paused job's failed items."""
    _command(job_id, CommandType.RETRY, as_json)


# -- backends ------------------------------------------------------------------------


@backends_app.command("add")
@handles_errors
def backends_add(
    name: str,
    kind: Annotated[BackendKind, typer.Option("--kind", help="Where the files go.")],
    target: Annotated[str, typer.Option("--target", help="Folder, URL or rclone remote:path.")],
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="KEY=VALUE (repeat).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a storage backend."""
    options: dict[str, str] = {}
    for pair in option or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CatalogsyncError(f"--option {key.strip() or pair!r}: expected KEY=VALUE")
        options[key.strip()] = value  # secrets are refused by the catalog, masked
    if kind == BackendKind.LOCAL:
        target = str(Path(target).expanduser().resolve())
    service = _service()
    backend_id = service.add_backend(name, kind.value, target, options)
    if as_json:
        _print_json({"backend": service.backend(name)})
        return
    _say(f"backend {backend_id}: {name} ({kind.value}) -> {target}")


@backends_app.command("list")
@handles_errors
def backends_list(as_json: JsonOpt = False) -> None:
    """Storage backends."""
    from rich.table import Table

    rows = _service().backends()
    if as_json:
        _print_json({"backends": rows})
        return
    table = Table("ID", "Name", "Kind", "Target", "Default")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["name"],
            row["kind"],
            row["target"],
            "yes" if row["is_default"] else "",
        )
    out.print(table)


@backends_app.command("test")
@handles_errors
def backends_test(name: str, as_json: JsonOpt = False) -> None:
    """Write, read back and delete a small probe file on a backend."""
    row = _service().probe_backend(name)
    if as_json:
        _print_json({"backend": row, "probe": "ok"})
        return
    _say(f"backend {name}: write, read back and delete OK ({row['kind']} {row['target']})")


# Root options that take a value (a test keeps this equal to main_options).
VALUE_OPTIONS = frozenset({"--home", "--db", "--library"})


def command_line(args: list[str]) -> typer.Typer:
    """The app with only the command or group that ``args`` name, else the whole app.

    Typer builds the click tree of every command on each start (about 20 ms, a seventh of
    `catalogsync status`); one command's tree costs 3 ms. In a group (`jobs submit`) only
    the named command is built. The whole app stays for what lists or completes
    commands: no command word, an unknown one, `--help` before it, and shell completion.
    """
    if "_CATALOGSYNC_COMPLETE" in os.environ:
        return app
    word = None
    rest: list[str] = []
    takes_value = False
    for index, arg in enumerate(args):
        if takes_value:
            takes_value = False
        elif arg == "--help":
            return app
        elif arg.startswith("-"):
            takes_value = arg in VALUE_OPTIONS
        else:
            word, rest = arg, args[index + 1 :]
            break
    commands = _named(app.registered_commands, word)
    groups = [g for g in app.registered_groups if g.name == word]
    if word is None or len(commands) + len(groups) != 1:
        return app
    import copy

    pruned = copy.copy(app)
    pruned.registered_commands, pruned.registered_groups = commands, groups
    if groups:
        pruned.registered_groups = [_one_command_group(groups[0], rest)]
    return pruned


def _named(commands: list[typer.models.CommandInfo], word: str | None) -> list[Any]:
    return [
        c
        for c in commands
        if (c.name or typer.main.get_command_name(getattr(c.callback, "__name__", ""))) == word
    ]


def _one_command_group(group: typer.models.TyperInfo, args: list[str]) -> Any:
    """A group (`jobs`) with only the command its first argument names (`jobs submit`:
    typer builds one command's click objects, not seven); the whole group for its own
    `--help`, no command or an unknown one (groups take no options of their own)."""
    import copy

    sub = group.typer_instance
    if sub is None or sub.registered_groups or not args or args[0].startswith("-"):
        return group
    commands = _named(sub.registered_commands, args[0])
    if len(commands) != 1:
        return group
    pruned_sub = copy.copy(sub)
    pruned_sub.registered_commands = commands
    pruned = copy.copy(group)
    pruned.typer_instance = pruned_sub
    return pruned


def main() -> None:
    """Console-script entry point."""
    try:
        # A fixed program name: completion scripts and messages say `catalogsync` even
        # when run as `python -m catalogsync`.
        command_line(sys.argv[1:])(prog_name="catalogsync")
    finally:
        service = _state.pop("service", None)
        if service is not None:
            service.close()


if __name__ == "__main__":
    main()
