"""`catalogsync` command line: a typer app over the service facade.

The TUI is imported lazily inside the `tui` and `demo` commands, so scripts and
systemd units never load Textual.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from catalogsync import __version__
from catalogsync.cli_library import library_app
from catalogsync.cli_schedules import schedules_app
from catalogsync.cli_service import service_app
from catalogsync.errors import CatalogsyncError
from catalogsync.ops.models import CommandType
from catalogsync.redact import mask_secrets

app = typer.Typer(
    name="catalogsync",
    help="Keep a NAS music library in step with online playlists.",
    no_args_is_help=True,
    add_completion=False,
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

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
_state: dict[str, Any] = {}

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


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
            raise typer.Exit(130) from None
        except sqlite3.Error as exc:
            from catalogsync.db import database_error

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


def _service(*, check_library: bool = True):
    """The open service; ``check_library=False`` for `library relocate`, which mends the
    difference between the configured and the recorded library root."""
    from catalogsync.config import load_settings
    from catalogsync.service import Catalogsync

    service = _state.get("service")
    if service is None:
        settings = load_settings(_state.get("home"), _state.get("db"), _state.get("library"))
        service = Catalogsync(settings, check_library=check_library)
        _state["service"] = service
    return service


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str, ensure_ascii=False))


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
    db: Annotated[str | None, typer.Option("--db", envvar="CATALOGSYNC_DB",
                                           help="Database file.")] = None,
    library: Annotated[
        str | None, typer.Option("--library", envvar="CATALOGSYNC_LIBRARY", help="Library folder.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    """Keep a NAS music library in step with online playlists."""
    _state.update(home=home, db=db, library=library, verbose=verbose)
    from catalogsync.redact import MaskingFormatter

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))


@app.command()
@handles_errors
def version() -> None:
    """Print the version."""
    out.print(__version__)


@app.command()
@handles_errors
def init(
    library: Annotated[str | None, typer.Option("--library", help="Library folder.")] = None,
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
    out.print(f"config:   {settings.config_path}{note}")
    out.print(f"database: {settings.db_path}")
    out.print(f"library:  {settings.library_root}")


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
    setup_runner_logging(service.settings.unattended.log, log_file)
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

        options = [("--home", _state.get("home")), ("--db", _state.get("db")),
                   ("--library", _state.get("library"))]
        serve_web([arg for name, value in options if value for arg in (name, str(value))],
                  port=port, log_file=log_file, console=err)
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
        _print_json({"playlists": [a.__dict__ for a in added]})
        return
    for a in added:
        verb = "added" if a.created else "updated"
        out.print(f"{verb} playlist {a.id}: {a.name} ({a.platform})", markup=False)


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


@playlists_app.command("wanted")
@handles_errors
def playlists_wanted(ids: Annotated[list[int], typer.Argument(help="Playlist ids.")]) -> None:
    """Mark playlists wanted: their songs are downloaded."""
    count = _service().set_wanted(ids, True)
    out.print(f"{count} playlists marked wanted")


@playlists_app.command("unwanted")
@handles_errors
def playlists_unwanted(ids: Annotated[list[int], typer.Argument(help="Playlist ids.")]) -> None:
    """Unmark playlists: their songs are no longer downloaded (files are kept)."""
    count = _service().set_wanted(ids, False)
    out.print(f"{count} playlists unmarked")


@playlists_app.command("policy")
@handles_errors
def playlists_policy(
    playlist_id: int, policy: Annotated[str, typer.Argument(help="add or mirror.")]
) -> None:
    """add: files stay; mirror: files of tracks removed upstream go to the trash."""
    _service().catalog.set_sync_policy(playlist_id, policy)
    out.print(f"playlist {playlist_id}: sync policy {policy}", markup=False)


@playlists_app.command("plan")
@handles_errors
def playlists_plan(
    ids: Annotated[list[int] | None, typer.Argument(help="Playlist ids (default: wanted).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """What the next sync and download would do; changes nothing."""
    from catalogsync.cli_plan import plan_for, render_plan
    from catalogsync.config import load_settings

    plan = plan_for(load_settings(_state.get("home"), _state.get("db"), _state.get("library")),
                    list(ids or []))
    if as_json:
        _print_json(plan)
    else:
        render_plan(out, plan)


# -- jobs --------------------------------------------------------------------------


@jobs_app.command("submit")
@handles_errors
def jobs_submit(
    job_type: Annotated[str, typer.Argument(help="catalog_sync, sync_only, download_only, ...")],
    playlist: Annotated[
        list[int] | None, typer.Option("--playlist", "-p", help="Scope to a playlist (repeat).")
    ] = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Scope to a source (repeat).")
    ] = None,
    backend: Annotated[str | None, typer.Option("--backend", help="Upload target.")] = None,
    priority: Annotated[int, typer.Option("--priority", help="Lower runs first.")] = 100,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job to its end.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Queue a job."""
    service = _service()
    result = service.submit_job(
        job_type, playlist_ids=playlist, sources=source, backend=backend, priority=priority
    )
    job = result["job"]
    if as_json and not wait:
        _print_json(result)
        return
    if not as_json:
        out.print(f"job {job['id']} queued: {job['display_name']} ({job['queue_label']})",
                  markup=False)
    if wait:
        raise typer.Exit(_wait_for(service, job["id"], as_json))


def _wait_for(service: Any, job_id: int, as_json: bool) -> int:
    from catalogsync.follow import follow_jobs

    embedded = service.runner_holder() is None and service.start_runner_thread()
    console = err if as_json else out
    if not embedded and service.runner is None:
        holder = service.runner_holder()
        if holder:
            console.print(f"following the runner pid {holder['pid']} on {holder['host']}",
                          markup=False)
    try:
        statuses = follow_jobs(service, [job_id], console)
    finally:
        if embedded:
            service.stop_runner()
    if as_json:
        _print_json({"job": service.job_row(job_id)})
    return 0 if statuses[job_id] == "completed" else 1


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
        detail["failed_items"] = service.job_failed_items(job_id, limit=None)
    if as_json:
        _print_json(detail)
    else:
        render_job_detail(out, detail)


def _command(job_id: int, kind: CommandType, as_json: bool) -> None:
    service = _service()
    message = service.command(job_id, kind)
    if as_json:
        _print_json({"job": service.job_row(job_id), "command": kind.value, "message": message})
        return
    out.print(message, markup=False)


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
    kind: Annotated[str, typer.Option("--kind", help="local, webdav or rclone.")],
    target: Annotated[str, typer.Option("--target", help="Folder, URL or rclone remote:path.")],
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="KEY=VALUE (repeat).")
    ] = None,
) -> None:
    """Register a storage backend."""
    options: dict[str, str] = {}
    for pair in option or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CatalogsyncError(f"--option {key.strip() or pair!r}: expected KEY=VALUE")
        options[key.strip()] = value  # secrets are refused by the catalog, masked
    if kind == "local":
        target = str(Path(target).expanduser().resolve())
    backend_id = _service().catalog.add_backend(name, kind, target, options)
    out.print(f"backend {backend_id}: {name} ({kind}) -> {target}", markup=False)


@backends_app.command("list")
@handles_errors
def backends_list(as_json: JsonOpt = False) -> None:
    """Storage backends."""
    from catalogsync.redact import MASK, is_secret_name, mask_value

    rows = _service().catalog.list_backends()
    for row in rows:
        options = json.loads(row.pop("options_json") or "{}")
        # Rows stored before secrets were refused may still hold one: never print it.
        row["options"] = {k: MASK if is_secret_name(k) else v for k, v in options.items()}
        row["target"] = mask_value(row["target"])
    if as_json:
        _print_json({"backends": rows})
        return
    table = Table("ID", "Name", "Kind", "Target", "Default")
    for row in rows:
        table.add_row(str(row["id"]), row["name"], row["kind"], row["target"],
                      "yes" if row["is_default"] else "")
    out.print(table)


@backends_app.command("test")
@handles_errors
def backends_test(name: str) -> None:
    """Write, read back and delete a small probe file on a backend."""
    from catalogsync.transfer.backends import make_backend

    row = _service().catalog.get_backend(name)
    make_backend(row).probe()
    out.print(f"backend {name}: write, read back and delete OK ({row['kind']} {row['target']})",
              markup=False)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    finally:
        service = _state.pop("service", None)
        if service is not None:
            service.close()


if __name__ == "__main__":
    main()
