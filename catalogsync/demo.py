"""`catalogsync demo`: a full pipeline against the built-in loopback demo source."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.console import Console

from catalogsync.config import SourceConfig, load_settings, write_default_config
from catalogsync.providers.demo import DemoServer
from catalogsync.service import Catalogsync

DEMO_SOURCE = "demo"


def prepare_demo(home: str | None) -> tuple[Catalogsync, DemoServer, list[int]]:
    """Start the demo server, register its playlists as a source and queue demo jobs.

    Returns the open service, the running server and the ids of the queued jobs:
    a full pipeline (collect, sync, download) in the download lane, a second
    download job queued behind it, and a playlist sync in the general lane.
    """
    home_path = Path(home) if home else Path(tempfile.mkdtemp(prefix="catalogsync-demo-"))
    settings = load_settings(str(home_path))
    write_default_config(settings)
    manifests = settings.config_path.parent / "demo-playlists"
    if not any(s.name == DEMO_SOURCE for s in settings.sources):
        settings.sources.append(SourceConfig(DEMO_SOURCE, "directory", str(manifests)))
    server = DemoServer(root=manifests).start()
    service = Catalogsync(settings)
    try:
        # Register the playlists now so the picker is full from the first second. The
        # last one starts unwanted, so the full pipeline leaves it to the second job.
        paths = [str(p) for p in server.manifest_paths]
        added = service.add_playlists(paths[:-1], wanted=True)
        added += service.add_playlists(paths[-1:], wanted=False)
        jobs = [service.submit_job("catalog_sync", sources=[DEMO_SOURCE], requested_by="demo")]
        jobs.append(
            service.submit_job("download_only", playlist_ids=[added[-1].id], requested_by="demo")
        )
        jobs.append(
            service.submit_job(
                "sync_only", playlist_ids=[added[1].id, added[0].id], requested_by="demo"
            )
        )
    except BaseException:
        server.stop()
        service.close()
        raise
    return service, server, [j.id for j in jobs]


def run_demo(home: str | None, *, headless: bool, console: Console) -> int:
    """Run the demo; returns the exit code (0 when every demo job completed)."""
    service, server, job_ids = prepare_demo(home)
    try:
        console.print(f"demo home: {service.settings.config_path.parent}", markup=False)
        console.print(f"demo source: {server.base_url} (loopback, bandwidth-capped)", markup=False)
        if not headless:
            from tui.app import run_tui

            run_tui(service, demo=True)
            _say_where_it_stays(service, home, console)
            return 0
        from catalogsync.follow import follow_jobs

        if not service.start_runner_thread():
            holder = service.runner_holder()
            console.print(
                f"another runner (pid {holder.pid if holder else None}) holds this home; "
                "following it",
                markup=False,
            )
        statuses = follow_jobs(service, job_ids, console)
        service.stop_runner()
        stats = service.dashboard().download_stats
        console.print(
            f"library: {service.settings.library_root} - {stats.downloaded_songs} songs, "
            f"{stats.library_bytes / 1024 / 1024:.1f} MB",
            markup=False,
        )
        failed = {i: s for i, s in statuses.items() if s != "completed"}
        for job_id, status in failed.items():
            console.print(f"job {job_id} ended {status}", markup=False)
        _say_where_it_stays(service, home, console)
        return 1 if failed else 0
    finally:
        service.close()
        server.stop()


def _say_where_it_stays(service: Catalogsync, home: str | None, console: Console) -> None:
    """A demo in a fresh temporary folder leaves its files there, for a look: say so."""
    if home:
        return
    folder = service.settings.config_path.parent
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    console.print(
        f"the demo's files stay in {folder} ({size / 1024 / 1024:.0f} MB) for a look: "
        f"`rm -r {folder}` removes them; `--home DIR` reuses one folder",
        markup=False,
    )
