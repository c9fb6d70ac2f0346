"""`catalogsync service unit|install`: run the runner under systemd."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from catalogsync.cli_common import cli, handled
from catalogsync.errors import CatalogsyncError

if TYPE_CHECKING:
    from catalogsync.config import Settings

service_app = typer.Typer(help="Run the runner as a systemd service.", no_args_is_help=True)
UserOpt = Annotated[
    bool, typer.Option("--user", help="A user unit (systemctl --user) instead of a system one.")
]


def _settings() -> Settings:
    from catalogsync.config import load_settings

    state = cli()._state
    return load_settings(state.get("home"), state.get("db"), state.get("library"))


@service_app.command("unit")
@handled
def service_unit(user: UserOpt = False) -> None:
    """Print the systemd unit for this installation."""
    from catalogsync.systemd_unit import unit_text

    cli().out.print(unit_text(_settings(), user=user), markup=False, end="")


@service_app.command("install")
@handled
def service_install(
    user: UserOpt = False,
    path: Annotated[str | None, typer.Option("--path", help="Write the unit here instead.")] = None,
) -> None:
    """Write the unit where systemd looks, and say what to run next."""
    from catalogsync.systemd_unit import next_commands, unit_path, unit_text

    target = Path(path).expanduser() if path else unit_path(user=user)
    text = unit_text(_settings(), user=user)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(target)
    except PermissionError:
        raise CatalogsyncError(
            f"cannot write {target}: permission denied (a system unit needs root: "
            "run with sudo, or use --user)"
        ) from None
    out = cli().out
    out.print(f"wrote {target}", markup=False)
    out.print("next:", markup=False)
    for command in next_commands(user=user):
        out.print(f"  {command}", markup=False)
