"""A seeded catalogsync home for the TUI tests, built with the engine's real repositories."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.worker import WorkerCancelled, WorkerFailed

from catalogsync import clock
from catalogsync.ops.models import ItemStatus, JobStatus, StageStatus
from catalogsync.providers.base import Track
from catalogsync.service import Catalogsync
from tui.app import CatalogsyncApp

MB = 1024 * 1024
# 2024-05-01 12:00:00 UTC: every timestamp in the seeded home is relative to this.
FROZEN_AT = 1714564800.0
# Fixed sparkline samples (bytes/s) for the two active download workers.
SPEEDS_1 = [v * MB / 10 for v in (12, 18, 25, 31, 28, 34, 30, 22, 26, 33, 35, 29, 31, 32)]
SPEEDS_2 = [v * MB / 10 for v in (30, 27, 21, 16, 12, 15, 19, 24, 20, 18, 22, 26, 28, 28)]

PLAYLISTS = [
    # name, song count, wanted, synced minutes ago (None: never)
    ("Morning Commute", 12, True, 125),
    ("Late Night Jazz", 8, True, 45),
    ("Road Trip 2024", 0, True, None),
    ("Workout Mix", 20, False, 1440),
    ("Lo-fi Study Beats", 10, True, 10),
]


@dataclass
class Seeded:
    """Ids of what the seed created, so tests can name them."""

    service: Catalogsync
    playlists: list[int] = field(default_factory=list)
    completed: int = 0
    failed: int = 0
    paused: int = 0
    running: int = 0
    queued_1: int = 0
    queued_2: int = 0
    worker_ids: list[int] = field(default_factory=list)


def _at(minutes_ago: float) -> None:
    clock.freeze(FROZEN_AT - minutes_ago * 60)


def _tracks(prefix: str, count: int) -> list[Track]:
    return [
        Track(
            remote_id=f"{prefix}-{n}",
            name=f"{prefix.title()} Song {n}",
            singers=f"Artist {n % 4 + 1}",
            ext="mp3",
            file_size_bytes=(6 + n % 5) * MB,
        )
        for n in range(1, count + 1)
    ]


def _seed_playlists(service: Catalogsync, seeded: Seeded) -> None:
    catalog = service.catalog
    for index, (name, songs, wanted, synced_ago) in enumerate(PLAYLISTS, start=1):
        _at(3000)
        playlist_id, _ = catalog.upsert_playlist(
            platform="manual",
            remote_id=f"pl-{index}",
            name=name,
            ref=f"/srv/playlists/{name.lower().replace(' ', '-')}.m3u",
            pool_kind="manual_file",
            wanted=wanted,
        )
        seeded.playlists.append(playlist_id)
        if synced_ago is None:
            continue
        key = name.split()[0].lower()
        if index == 4:
            # Two syncs with different track lists give a drift of +2 / -1.
            _at(synced_ago + 60)
            catalog.sync_playlist_tracks(playlist_id, "manual", _tracks(key, songs - 1))
            shifted = _tracks(key, songs + 1)[1:]
            _at(synced_ago)
            catalog.sync_playlist_tracks(playlist_id, "manual", shifted)
        else:
            _at(synced_ago)
            catalog.sync_playlist_tracks(playlist_id, "manual", _tracks(key, songs))


def _seed_finished_jobs(service: Catalogsync, seeded: Seeded) -> None:
    ops = service.repository
    _at(240)
    seeded.completed = ops.create_job("catalog_sync", {}, requested_by="tui")
    for seq, (stage_type, total) in enumerate((("collect", 1), ("sync", 4), ("download", 18))):
        stage = ops.create_stage(seeded.completed, stage_type, seq + 1, StageStatus.COMPLETED)
        ops.create_items(
            stage,
            [
                {
                    "item_type": f"{stage_type}_item",
                    "item_key": f"{stage_type}:{n}",
                    "status": ItemStatus.SUCCEEDED,
                }
                for n in range(total)
            ],
        )
    ops.add_event(seeded.completed, "started", f"job {seeded.completed} started")
    _at(200)
    ops.set_job_status(seeded.completed, JobStatus.COMPLETED)
    ops.add_event(seeded.completed, "completed", f"job {seeded.completed} completed")

    _at(90)
    seeded.failed = ops.create_job(
        "sync_only", {}, playlist_scope={"playlist_ids": seeded.playlists[:3]}
    )
    stage = ops.create_stage(seeded.failed, "sync", 1, StageStatus.COMPLETED_WITH_ERRORS)
    ops.create_items(
        stage,
        [
            {
                "item_type": "playlist_sync",
                "item_key": "playlist:1",
                "playlist_id": seeded.playlists[0],
                "status": ItemStatus.SUCCEEDED,
            },
            {
                "item_type": "playlist_sync",
                "item_key": "playlist:2",
                "playlist_id": seeded.playlists[1],
                "status": ItemStatus.FAILED,
            },
            {
                "item_type": "playlist_sync",
                "item_key": "playlist:3",
                "playlist_id": seeded.playlists[2],
                "status": ItemStatus.FAILED,
            },
        ],
    )
    _at(89)
    with ops._connection() as conn:
        for key, code, error, attempts in (
            (
                "playlist:2",
                "http_404",
                "HTTP 404 from https://dj:s3cret@lists.example/late-night-jazz.m3u",
                1,
            ),
            ("playlist:3", "not_found", "/srv/playlists/road-trip-2024.m3u does not exist", 3),
        ):
            conn.execute(
                "UPDATE job_items SET last_error_code = ?, last_error = ?, attempts = ?, "
                "ended_at = ? WHERE job_stage_id = ? AND item_key = ?",
                (code, error, attempts, clock.now_text(), stage, key),
            )
    _at(88)
    ops.set_job_status(seeded.failed, JobStatus.FAILED, error="2 playlists failed to sync")
    ops.add_event(
        seeded.failed, "failed", f"job {seeded.failed} failed: 2 playlists failed", level="error"
    )

    _at(60)
    seeded.paused = ops.create_job(
        "sync_download", {}, playlist_scope={"playlist_ids": [seeded.playlists[3]]}
    )
    ops.create_stage(seeded.paused, "sync", 1, StageStatus.COMPLETED)
    stage = ops.create_stage(seeded.paused, "download", 2, StageStatus.PENDING)
    ops.create_items(
        stage,
        [
            {
                "item_type": "song_download",
                "item_key": f"song:p{n}",
                "status": ItemStatus.SUCCEEDED if n < 5 else ItemStatus.PENDING,
            }
            for n in range(20)
        ],
    )
    _at(30)
    ops.set_job_status(
        seeded.paused, JobStatus.PAUSED, pause_reason="disk full: 150 MB free, 200 MB reserved"
    )
    ops.add_event(
        seeded.paused,
        "paused_storage",
        f"job {seeded.paused} paused: disk full: 150 MB free, 200 MB reserved",
        level="error",
    )


def _seed_running_job(service: Catalogsync, seeded: Seeded) -> None:
    ops, catalog = service.repository, service.catalog
    scope = [seeded.playlists[0], seeded.playlists[4]]
    _at(20)
    seeded.running = ops.create_job(
        "download_only", {}, status=JobStatus.RUNNING, playlist_scope={"playlist_ids": scope}
    )
    stage = ops.create_stage(seeded.running, "download", 1, StageStatus.RUNNING)
    songs = catalog.songs_to_download(scope)
    library = catalog.default_backend()
    # Six songs of the first playlist are done and in the library.
    items = ops.create_items(
        stage,
        [
            {
                "item_type": "song_download",
                "item_key": f"song:{s['id']}",
                "song_id": s["id"],
                "playlist_id": s["playlist_id"],
                "status": ItemStatus.SUCCEEDED if n < 6 else ItemStatus.PENDING,
                "payload": {"display_text": f"{s['singers']} - {s['name']}"},
            }
            for n, s in enumerate(songs)
        ],
    )
    for song in songs[:6]:
        catalog.record_local_file(
            song_id=song["id"],
            backend_id=library["id"],
            relative_path=f"manual/{song['name']}.mp3",
            file_size_bytes=song["file_size_bytes"],
            ext="mp3",
        )
    ops.add_event(seeded.running, "started", f"job {seeded.running} started")
    # The two songs in flight belong to the Lo-fi playlist.
    lofi = [i for i, s in zip(items, songs, strict=True) if s["playlist_id"] == scope[1]]
    for worker, item_id, speeds, total in (
        ("download-1", lofi[0], SPEEDS_1, 20 * MB),
        ("download-2", lofi[1], SPEEDS_2, 8 * MB),
    ):
        _at(5)
        assert ops.claim_item(item_id, worker)
        for n, speed in enumerate(speeds, start=1):
            _at(5 - n * 0.25)
            done = min(total, int(total * n / (len(speeds) + 4)))
            worker_id = ops.update_worker_state(
                worker,
                job_id=seeded.running,
                downloaded_bytes=done,
                total_bytes=total,
                speed_bytes_per_sec=speed,
                progress_percent=round(done * 100 / total, 1),
            )
        seeded.worker_ids.append(worker_id)


def _seed_queued_jobs(service: Catalogsync, seeded: Seeded) -> None:
    ops = service.repository
    _at(15)
    seeded.queued_1 = ops.create_job(
        "sync_download", {}, playlist_scope={"playlist_ids": seeded.playlists[1:3]}
    )
    ops.ensure_job_stages(seeded.queued_1)
    _at(12)
    seeded.queued_2 = ops.create_job("download_only", {})
    ops.ensure_job_stages(seeded.queued_2)
    ops.add_event(seeded.queued_2, "submitted", f"job {seeded.queued_2} submitted by tui")


def seed_task_center(service: Catalogsync) -> Seeded:
    """Fill a fresh home: 5 playlists, and completed, failed, paused, running, 2 queued jobs."""
    seeded = Seeded(service)
    _seed_playlists(service, seeded)
    _seed_finished_jobs(service, seeded)
    _seed_running_job(service, seeded)
    _seed_queued_jobs(service, seeded)
    clock.freeze(FROZEN_AT)
    return seeded


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def seeded(home: Path) -> Iterator[Seeded]:
    service = Catalogsync.open(home=str(home))
    try:
        yield seed_task_center(service)
    finally:
        service.close()


@pytest.fixture
def seeded_service(seeded: Seeded) -> Catalogsync:
    return seeded.service


@pytest.fixture
def empty_service(home: Path) -> Iterator[Catalogsync]:
    clock.freeze(FROZEN_AT)
    service = Catalogsync.open(home=str(home))
    try:
        yield service
    finally:
        service.close()


def make_app(service: Catalogsync, **options: Any) -> CatalogsyncApp:
    """The app as tests drive it: no timer, no embedded runner; notifications recorded."""
    options.setdefault("embed_runner", False)
    options.setdefault("refresh_interval", None)
    app = CatalogsyncApp(service, **options)
    # Not TEXTUAL_ANIMATIONS: textual reads that once, when it is first imported.
    app.animation_level = "none"
    notified: list[tuple[str, str]] = []
    app.notified = notified  # type: ignore[attr-defined]
    original = app.notify

    def notify(message: str, **kwargs: Any) -> None:
        notified.append((kwargs.get("severity", "information"), str(message)))
        original(message, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    return app


async def drain_workers(app: CatalogsyncApp) -> None:
    """Wait for every worker, and for those they start in turn (a refresh replaced by a
    newer one counts as done); bounded."""
    for _ in range(20):
        pending = [w for w in app.workers if not w.is_finished]
        if not pending:
            return
        for worker in pending:
            with contextlib.suppress(WorkerCancelled, WorkerFailed):
                await worker.wait()


async def settle(pilot: Pilot, app: CatalogsyncApp) -> None:
    """Let actions, the messages screens post to the app, the engine calls they start and
    a fresh read land before asserting on the screen."""
    for _ in range(2):  # key -> action -> message to the app -> engine worker -> callback
        await pilot.pause()
        await drain_workers(app)
    await app.refresh_now()
    await pilot.pause()
