"""`catalogsync schedules ...`: the `[[schedules]]` of config.toml and when each runs next."""

from __future__ import annotations

import typer
from rich.table import Table

from catalogsync.cli_common import JsonOpt, cli, handled

schedules_app = typer.Typer(help="Scheduled jobs from config.toml.", no_args_is_help=True)


@schedules_app.command("list")
@handled
def schedules_list(as_json: JsonOpt = False) -> None:
    """Each schedule with its next run (local time) and what its last run did."""
    service, out = cli()._service(), cli().out
    rows = service.schedules()
    if as_json:
        cli()._print_json({"schedules": rows})
        return
    if not rows:
        out.print(f"no [[schedules]] in {service.settings.config_path}", markup=False)
        return
    table = Table("Name", "Cron", "Job", "Scope", "Next run", "Last run")
    for row in rows:
        last = "-"
        if row["last_result"]:
            job = f" (job {row['last_job_id']})" if row["last_job_id"] else ""
            last = f"{row['last_run_at']} {row['last_result']}{job}"
        table.add_row(
            row["name"], row["cron"], row["job_type"], row["scope"], row["next_run_local"], last
        )
    out.print(table)
