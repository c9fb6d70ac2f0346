"""`catalogsync library ...`: verify, reorganize and relocate the library on disk."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer

library_app = typer.Typer(
    help="Check the library against its records, move it to a new layout or folder.",
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
EXIT_PROBLEMS = 3  # verify found missing or mismatched files


def _guarded(func: Callable[..., Any]) -> Callable[..., Any]:
    """The main CLI's one-line error handling (imported late: cli.py imports this module)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _cli().handles_errors(func)(*args, **kwargs)

    return wrapper


def _cli() -> Any:
    """The running `catalogsync.cli` module: it holds the global options (--home ...).

    Under ``python -m catalogsync.cli`` that module is ``__main__``, and importing
    ``catalogsync.cli`` would give a second copy that never saw the options.
    """
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) == "catalogsync.cli":
        return main
    from catalogsync import cli

    return cli


def _refresh_playlists(service: Any) -> str | None:
    from catalogsync.errors import CatalogsyncError
    from catalogsync.library.playlists import refresh_playlist_files

    try:
        result = refresh_playlist_files(service.catalog, service.settings.library)
    except (CatalogsyncError, OSError) as exc:
        return f"playlist files not written: {exc}"
    return result.summary() if result.changed else None


def _no_running_jobs(service: Any, what: str) -> None:
    from catalogsync.errors import CatalogsyncError

    running = service.catalog.running_job_count()
    if running:
        raise CatalogsyncError(
            f"{running} job(s) are running; {what} moves files, so it waits until none is "
            "(pause them with `catalogsync jobs pause ID`, or wait)"
        )


@library_app.command("verify")
@_guarded
def verify(
    fix: Annotated[
        bool, typer.Option("--fix", help="Move mismatched files to the trash and download again.")
    ] = False,
    quick: Annotated[
        bool, typer.Option("--quick", help="Compare sizes only, not SHA-256 (faster).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Records against files: missing ones marked for download, mismatches reported."""
    from catalogsync.library.verify import verify_library

    cli = _cli()
    service = cli._service()
    report = verify_library(
        service.catalog, service.settings.library, fix=fix, check_hash=not quick
    )
    job = None
    if fix and report.needs_download:
        job = service.submit_job("download_only", requested_by="library verify")
    playlists = _refresh_playlists(service) if report.missing or report.moved_to_trash else None
    if as_json:
        cli._print_json({**report.as_dict(), "download_job": job.id if job else None})
    else:
        for entry in report.missing:
            cli.out.print(
                f"missing:    {entry['backend']}:{entry['path']} ({entry['song']})", markup=False
            )
        for entry in report.mismatched:
            cli.out.print(
                f"mismatched: {entry['backend']}:{entry['path']}: {entry['reason']}", markup=False
            )
        for rel in report.unrecorded:
            cli.out.print(f"unrecorded: {rel}", markup=False)
        cli.out.print(report.summary(), markup=False)
        if job:
            cli.out.print(f"job {job.id} queued to download them again", markup=False)
        elif report.missing:
            cli.out.print(
                "the next download fetches the missing songs "
                "(`catalogsync jobs submit download_only`)",
                markup=False,
            )
        if playlists:
            cli.out.print(playlists, markup=False)
    if report.missing or report.mismatched or report.unreachable:
        raise typer.Exit(EXIT_PROBLEMS)


@library_app.command("reorganize")
@_guarded
def reorganize(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the moves without making them.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Move recorded files to the current library template, without downloading again."""
    from catalogsync.library.reorganize import reorganize as run_reorganize

    cli = _cli()
    service = cli._service()
    if not dry_run:
        _no_running_jobs(service, "reorganize")
    report = run_reorganize(service.catalog, service.settings.library, dry_run=dry_run)
    playlists = _refresh_playlists(service) if report.moves and not dry_run else None
    if as_json:
        cli._print_json(report.as_dict())
        return
    for move in report.moves:
        cli.out.print(f"{move['from']} -> {move['to']}", markup=False)
    cli.out.print(report.summary(), markup=False)
    if playlists:
        cli.out.print(playlists, markup=False)


@library_app.command("relocate")
@_guarded
def relocate(
    new_root: Annotated[str, typer.Argument(help="The library's new folder.")],
    move: Annotated[
        bool,
        typer.Option("--move", help="Move the files there too (crash-safe copy, check, delete)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Point the library backend and config.toml at NEW; --move moves the files."""
    from catalogsync.errors import CatalogsyncError
    from catalogsync.library.relocate import relocate as run_relocate

    cli = _cli()
    if cli._state.get("library"):
        # Every open points the library backend at --library / CATALOGSYNC_LIBRARY, so
        # the next command would undo the relocation (and, after --move, miss every file).
        raise CatalogsyncError(
            "--library / CATALOGSYNC_LIBRARY is set for this command; unset it, then run "
            "`catalogsync library relocate NEW` (it records NEW in config.toml)"
        )
    service = cli._service(check_library=False)  # relocate is the cure for a mismatch
    _no_running_jobs(service, "relocate")
    report = run_relocate(service.catalog, service.settings.config_path, Path(new_root), move=move)
    service.settings.library_root = Path(report.new_root)
    playlists = _refresh_playlists(service)
    if as_json:
        cli._print_json(report.as_dict())
        return
    cli.out.print(report.summary(), markup=False)
    if playlists:
        cli.out.print(playlists, markup=False)
