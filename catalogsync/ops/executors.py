"""Stage executors: collect, sync, download and upload.

Each executor plans its stage's items (``plan``) and processes one claimed item
(``process_item``), marking it succeeded or skipped itself. Failures are raised:
the runner's worker loop turns them into retries, failed items or a paused job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from catalogsync.catalog.repository import CatalogRepository
from catalogsync.config import LibrarySettings, PlatformPacing, Settings, SourceConfig
from catalogsync.errors import (
    CatalogsyncError,
    PlaylistFormatError,
    TransferError,
    TransferStopped,
)
from catalogsync.library.layout import song_relative_path
from catalogsync.library.tags import write_tags
from catalogsync.providers import registry
from catalogsync.providers.base import PlaylistRef, Provider, Track
from catalogsync.redact import mask_secrets
from catalogsync.transfer.durability import Flusher, sha256_of
from catalogsync.transfer.growth import FileGrowthMonitor
from catalogsync.transfer.http import HttpDownloader, storage_guard
from catalogsync.transfer.pacing import Pacer
from catalogsync.transfer.paths import ensure_space, safe_join, sanitize_ext
from catalogsync.transfer.ratelimit import TokenBucket
from catalogsync.transfer.sniff import require_audio

from .models import JobRun, JobStage
from .progress import WorkerProgress
from .repository import OpsRepository
from .unattended import cooldown_event

if TYPE_CHECKING:
    from .runner import JobContext

log = logging.getLogger("catalogsync.executors")
MANIFEST_SUFFIXES = (".m3u", ".m3u8", ".pls", ".json", ".csv")
# Codes after which a provider may hand out a fresh URL (signed URLs expire).
EXPIRED_URL_CODES = ("http_401", "http_403", "http_404", "http_410")


class SharedResources:
    """What every job of one runner shares: bandwidth limits and the flusher."""

    def __init__(
        self,
        download_limit: int = 0,
        upload_limit: int = 0,
        *,
        on_synced: Callable[[list[int]], None] | None = None,
        on_flush_error: Callable[[Path, OSError], None] | None = None,
        pacing: dict[str, PlatformPacing] | None = None,
    ) -> None:
        self.download_limiter = TokenBucket(download_limit or None)
        self.upload_limiter = TokenBucket(upload_limit or None)
        self.flusher = Flusher(on_synced or (lambda ids: None), on_error=on_flush_error)
        self.pacer = Pacer(pacing)  # per-platform pacing and shared cooldowns

    @classmethod
    def build(
        cls,
        settings: Settings | None,
        catalog: CatalogRepository | None = None,
        ops: OpsRepository | None = None,
    ) -> SharedResources:
        on_synced = catalog.mark_files_synced if catalog is not None else None

        def flush_failed(path: Path, exc: OSError) -> None:
            if ops is not None:
                ops.add_event(
                    None,
                    "flush_failed",
                    f"could not write {path} to disk: {exc.strerror or exc}; "
                    "it is checked again when the runner next starts",
                    level="error",
                )

        limits = (
            (settings.download.max_bytes_per_sec, settings.upload.max_bytes_per_sec)
            if settings is not None
            else (0, 0)
        )
        pacing = settings.unattended.platforms if settings is not None else None
        shared = cls(*limits, on_synced=on_synced, on_flush_error=flush_failed, pacing=pacing)
        shared.pacer.on_cooldown = cooldown_event(ops) if ops is not None else None
        return shared

    def close(self) -> None:
        """Flush every downloaded file to disk; stop the runner's rclone rcd, if one started."""
        self.flusher.close()
        # Only when an upload used rclone: importing the backends costs 0.1-0.3 s (httpx).
        rcd = sys.modules.get("catalogsync.transfer.backends.rcd")
        if rcd is not None:
            rcd.stop_daemons()


@dataclass(frozen=True)
class ItemDone:
    """What ``process_item`` returns for an item it finished without marking it.

    The runner then marks it succeeded with ``payload`` in the same transaction that
    claims the worker's next item: one write instead of two per item.
    """

    payload: dict[str, Any]


class StageExecutor:
    """Base: one stage of one job."""

    stage_type = ""
    item_type = ""

    def __init__(
        self,
        *,
        ops_repo: OpsRepository,
        catalog_repo: CatalogRepository,
        settings: Settings | None,
        job: JobRun,
        stage: JobStage,
        ctx: JobContext,
        shared: SharedResources,
    ) -> None:
        self.ops_repo = ops_repo
        self.catalog = catalog_repo
        self.settings = settings
        self.job = job
        self.stage = stage
        self.ctx = ctx
        self.shared = shared
        self._progress: dict[str, WorkerProgress] = {}
        # Items the runner just claimed (with RETURNING): no need to read them again.
        self.claimed: dict[int, Any] = {}

    def _worker_progress(self, worker_name: str) -> WorkerProgress:
        """One meter per worker for the stage, so its speed carries across items."""
        progress = self._progress.get(worker_name)
        if progress is None:
            progress = self._progress[worker_name] = WorkerProgress(
                self.ops_repo, worker_name, self.job.id
            )
        return progress

    def plan(self) -> None:
        """Create this stage's items (idempotent: item keys are unique per stage)."""

    def close(self) -> None:
        """Release what the stage held (connections); called once its workers are done."""

    def worker_count(self) -> int:
        return 1

    def max_attempts(self) -> int:
        return self.settings.download.max_attempts if self.settings else 3

    def process_item(
        self, item_id: int, worker_name: str, *, already_claimed: bool = False
    ) -> ItemDone | None:
        raise NotImplementedError

    def _claim(self, item_id: int, worker_name: str, already_claimed: bool) -> Any:
        if not already_claimed and not self.ops_repo.claim_item(item_id, worker_name):
            raise CatalogsyncError(f"item {item_id} is not pending")
        item = self.claimed.pop(item_id, None) if already_claimed else None
        if item is None:
            item = self.ops_repo.get_item(item_id)
        if item is None:
            raise CatalogsyncError(f"item {item_id} does not exist")
        return item

    def _scope_playlist_ids(self, *, wanted_only: bool) -> list[int]:
        if self.job.playlist_ids:
            return [int(p["id"]) for p in self.catalog.require_playlists(self.job.playlist_ids)]
        playlists = self.catalog.list_playlists(
            wanted_only=wanted_only, source_names=self.job.sources or None
        )
        return [int(p["id"]) for p in playlists]


# -- collect -----------------------------------------------------------------


class CollectStageExecutor(StageExecutor):
    """Sources -> playlists rows (upsert, never duplicates)."""

    stage_type = "collect"
    item_type = "source_collect"

    def _sources(self) -> list[SourceConfig]:
        if self.settings is None:
            return []
        if self.job.sources:
            return [self.settings.source(name) for name in self.job.sources]
        return list(self.settings.sources)

    def plan(self) -> None:
        sources = self._sources()
        if not sources:
            self.ops_repo.add_event(
                self.job.id,
                "collect_empty",
                "no [[sources]] in config.toml: collect has nothing to do "
                "(playlists added with `playlists add` are still synced)",
            )
            return
        self.ops_repo.create_items(
            self.stage.id,
            [
                {
                    "item_type": self.item_type,
                    "item_key": f"source:{s.name}",
                    "payload": {"source": asdict(s), "display_text": f"source {s.name}"},
                }
                for s in sources
            ],
        )

    def process_item(self, item_id: int, worker_name: str, *, already_claimed: bool = False) -> None:
        item = self._claim(item_id, worker_name, already_claimed)
        source = SourceConfig(**item.payload["source"])
        found, errors = collect_source(self.catalog, source)
        if errors:
            raise CatalogsyncError(
                f"source {source.name}: {len(errors)} of {found + len(errors)} playlists "
                f"could not be read; first: {errors[0]}"
            )
        self.ops_repo.mark_item_succeeded(item_id, {"playlists": found})


def collect_source(catalog: CatalogRepository, source: SourceConfig) -> tuple[int, list[str]]:
    """Upsert every playlist a source lists; returns (count found, one line per failure)."""
    found, errors = _source_playlists(source)
    pool_kind = "playlist_square" if source.kind == "playlist_square" else "manual_file"
    for playlist in found:
        catalog.upsert_playlist(
            platform=playlist.platform,
            remote_id=playlist.remote_id,
            name=playlist.name,
            ref=playlist.ref,
            pool_kind=pool_kind,
            source_name=source.name,
        )
    return len(found), errors


def _source_playlists(source: SourceConfig) -> tuple[list[PlaylistRef], list[str]]:
    """The playlists a source names, and a `file:line: reason` per entry that failed."""
    if source.kind == "playlist_square":
        provider = registry.get_provider(source.provider or "")
        return provider.list_playlists(source.options), []
    refs: list[tuple[str, str]] = []  # (ref, where it came from for error messages)
    if source.kind == "manual_file":
        list_path = Path(source.path or "")
        try:
            lines = list_path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogsyncError(f"{list_path}: cannot read source list: {exc}") from None
        for number, line in enumerate(lines, start=1):
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            if "://" not in entry and not Path(entry).is_absolute():
                entry = str((list_path.parent / entry).resolve())
            refs.append((entry, f"{list_path}:{number}"))
    else:
        folder = Path(source.path or "")
        if not folder.is_dir():
            raise CatalogsyncError(f"{folder}: source folder does not exist")
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
                refs.append((str(path.resolve()), str(path)))
    found: list[PlaylistRef] = []
    errors: list[str] = []
    for ref, where in refs:
        try:
            found.append(registry.provider_for_ref(ref).describe(ref))
        except CatalogsyncError as exc:
            errors.append(f"{where}: {exc}")
    return found, errors


# -- sync --------------------------------------------------------------------


class SyncStageExecutor(StageExecutor):
    """Each playlist in scope -> its tracks in songs / playlist_songs, with drift."""

    stage_type = "sync"
    item_type = "playlist_sync"

    def worker_count(self) -> int:
        return 2

    def max_attempts(self) -> int:
        return 2

    def plan(self) -> None:
        ids = self._scope_playlist_ids(wanted_only=False)
        playlists = {p["id"]: p for p in self.catalog.list_playlists(ids=ids)}
        self.ops_repo.create_items(
            self.stage.id,
            [
                {
                    "item_type": self.item_type,
                    "item_key": f"playlist:{pid}",
                    "playlist_id": pid,
                    "payload": {"display_text": playlists[pid]["name"]},
                }
                for pid in ids
                if pid in playlists
            ],
        )

    def process_item(self, item_id: int, worker_name: str, *, already_claimed: bool = False) -> None:
        item = self._claim(item_id, worker_name, already_claimed)
        playlist = self.catalog.get_playlist(int(item.playlist_id or 0))
        if playlist is None:
            raise CatalogsyncError(f"playlist {item.playlist_id} no longer exists")
        where = f"playlist {playlist['id']} ({playlist['name']})"
        try:
            provider = registry.get_provider(playlist["platform"])
            content = provider.fetch_playlist(playlist["ref"] or playlist["remote_id"])
        except PlaylistFormatError as exc:
            self.catalog.set_playlist_error(playlist["id"], str(exc))
            raise
        except CatalogsyncError as exc:
            self.catalog.set_playlist_error(playlist["id"], str(exc))
            raise CatalogsyncError(f"{where}: {exc}") from None
        result = self.catalog.sync_playlist_tracks(playlist["id"], playlist["platform"], content.tracks)
        self.ops_repo.mark_item_succeeded(
            item_id, {"songs": result.total, "added": result.added, "removed": result.removed}
        )


# -- download ----------------------------------------------------------------


def track_from_song(song: dict[str, Any]) -> Track:
    import json

    try:
        metadata = json.loads(song.get("metadata_json") or "{}")
    except ValueError:
        metadata = {}
    return Track(
        remote_id=str(song["remote_id"]),
        name=str(song["name"]),
        singers=str(song.get("singers") or ""),
        album=str(song.get("album") or ""),
        duration_seconds=song.get("duration_seconds"),
        ext=str(song.get("ext") or ""),
        file_size_bytes=song.get("file_size_bytes"),
        sha256=song.get("sha256"),
        download_url=song.get("download_url"),
        metadata=metadata if isinstance(metadata, dict) else {},
    )


class DownloadStageExecutor(StageExecutor):
    """Every wanted song in scope without a local file -> a file in the library."""

    stage_type = "download"
    item_type = "song_download"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._library: list[dict[str, Any]] | None = None
        self._downloaders = threading.local()
        self._all_downloaders: list[HttpDownloader] = []
        self._lock = threading.Lock()

    def _downloader(self) -> HttpDownloader:
        """This worker thread's downloader (it keeps its reader thread between songs)."""
        downloader = getattr(self._downloaders, "one", None)
        if downloader is None:
            # Not durable here: the runner's flusher fsyncs recorded files off this path.
            stall = self.settings.download.stall_seconds if self.settings else 90
            downloader = self._downloaders.one = HttpDownloader(
                limiter=self.shared.download_limiter,
                max_attempts=4,
                durable=False,
                stall_budget=float(stall),
            )
            with self._lock:
                self._all_downloaders.append(downloader)
        return downloader

    def close(self) -> None:
        with self._lock:
            downloaders, self._all_downloaders = self._all_downloaders, []
        for downloader in downloaders:
            downloader.close()

    def worker_count(self) -> int:
        return self.settings.download.workers if self.settings else 3

    def plan(self) -> None:
        ids = self._scope_playlist_ids(wanted_only=True)
        songs = self.catalog.songs_to_download(ids)
        self.ops_repo.create_items(
            self.stage.id,
            [
                {
                    "item_type": self.item_type,
                    "item_key": f"song:{song['id']}",
                    "song_id": song["id"],
                    "playlist_id": song["playlist_id"],
                    "payload": {
                        "display_text": _song_text(song),
                        "row": {"id": song["id"], "name": song["name"]},
                    },
                }
                for song in songs
            ],
        )

    def _reserve_bytes(self) -> int:
        return (self.settings.download.reserve_mb if self.settings else 200) * 1024 * 1024

    def _backends(self) -> list[dict[str, Any]]:
        """The local library backends, read once per stage run, roots resolved."""
        if self._library is None:
            self._library = [
                {**b, "root": Path(b["target"]).resolve()} for b in self.catalog.local_backends()
            ]
        return self._library

    def process_item(
        self, item_id: int, worker_name: str, *, already_claimed: bool = False
    ) -> ItemDone | None:
        item = self._claim(item_id, worker_name, already_claimed)
        song = self.catalog.get_song(int(item.song_id or 0))
        if song is None:
            raise TransferError(f"song {item.song_id} no longer exists", code="gone", permanent=True)
        while not self.catalog.claim_download(int(song["id"]), item_id):
            # Another job is fetching this song into its reserved path and `.part`: wait
            # for it (bounded by that download), then find its file below.
            if self.ctx.should_stop():
                raise TransferStopped("transfer stopped")
            time.sleep(0.2)
        try:
            return self._process_claimed(item_id, item, song, worker_name)
        finally:
            self.catalog.release_download(int(song["id"]), item_id)

    def _process_claimed(
        self, item_id: int, item: Any, song: dict[str, Any], worker_name: str
    ) -> ItemDone | None:
        for existing in self.catalog.files_for_song(song["id"]):
            on_disk = Path(existing["target"]) / existing["relative_path"]
            if existing["in_library"] and on_disk.exists():
                if item.attempts > 1 and self._recorded_by_this_job(existing):
                    # An earlier try of this item put the file in place, and its process
                    # died before marking the item: it succeeded, it was not skipped.
                    self.ops_repo.mark_item_succeeded(
                        item_id,
                        {"path": existing["relative_path"], "bytes": existing["file_size_bytes"]},
                    )
                else:
                    self.ops_repo.mark_item_skipped(item_id, "already in the library")
                return None
        provider = registry.get_provider(song["platform"])
        track = track_from_song(song)
        backends = self._backends()
        if not backends:
            raise CatalogsyncError("no local library backend; run `catalogsync init`")
        root = ensure_space(
            [b["root"] for b in backends], track.file_size_bytes, self._reserve_bytes()
        )
        backend = next(b for b in backends if b["root"] == root)
        progress = self._worker_progress(worker_name)
        opaque = provider.uses_opaque_download(track)
        spec = None if opaque else provider.resolve(track)
        ext = sanitize_ext(track.ext or (spec.ext if spec else "") or _url_ext(spec))
        if spec is not None and urlsplit(spec.url).scheme.lower() == "file":
            # A playlist line naming a local file: refuse what is not audio before a byte
            # of it is copied into the library (a line pointing at /etc/shadow, say).
            source = Path(unquote(urlsplit(spec.url).path))
            if source.is_file():
                ext = require_audio(source, where=str(source), source="file has").ext
        target = _Target(self.catalog, int(backend["id"]), root, int(song["id"]))
        target.reserve(song_relative_path(song, ext, self._library_settings()))
        _unlink_quietly(target.ready)  # a tagged file a killed try left: never resumed
        try:
            progress.start(_song_text(song), already=_size_or_zero(target.part))
            if opaque:
                saved, source_sha = self._opaque(provider, track, target.part, progress)
            else:
                saved, source_sha = self._http(provider, track, spec, target, progress)
            return self._finish(item, song, target, saved, source_sha, spec)
        except BaseException as exc:
            if getattr(exc, "permanent", False):
                # This song will not be written here: free the name and drop its bytes.
                _unlink_quietly(target.part)
                self.catalog.release_path(target.backend_id, target.song_id)
            elif not opaque and target.part.exists():
                # A `.part` stays for a resume: remember which version of the file it
                # holds, so the resume can ask for the rest of that version only.
                validator = self._downloader().last_validator
                if validator:
                    with contextlib.suppress(Exception):
                        self.catalog.set_part_validator(
                            target.backend_id, target.song_id, validator
                        )
            raise

    def _library_settings(self) -> LibrarySettings | None:
        return self.settings.library if self.settings else None

    def _finish(
        self,
        item: Any,
        song: dict[str, Any],
        target: _Target,
        saved: Path,
        source_sha: str,
        spec: Any,
    ) -> ItemDone:
        """Check, tag, record and rename a verified `.part`: only audio reaches the library.

        The record is written before the rename, so a finished file is never on disk
        unrecorded; if the rename then fails, the record goes again.
        """
        where = spec.url if spec is not None else f"{song['platform']}:{song['remote_id']}"
        try:
            audio = require_audio(saved, where=mask_secrets(where))
        except TransferError:
            _unlink_quietly(saved)
            raise
        shared = self.catalog.share_same_content(
            song_id=target.song_id,
            backend_id=target.backend_id,
            source_sha256=source_sha,
            exists=lambda rel: (target.root / rel).is_file(),
        )
        if shared is not None:
            # The same bytes are in the library already (another song of another
            # playlist): both songs are recorded on that one file, no ` (2)` copy.
            _unlink_quietly(saved)
            _file_id, rel, size = shared
            return ItemDone({"path": rel, "bytes": size, "shared": True})
        if audio.ext != target.ext:
            target.reformat(audio.ext)
        library = self._library_settings()
        if library is None or library.write_tags:
            # Tagging changes the bytes, so the file is no longer a prefix a Range request
            # may extend: it leaves the `.part` name first; a crash from here starts over.
            with storage_guard(target.ready):
                os.replace(saved, target.ready)
            saved = target.ready
        try:
            with storage_guard(saved):
                outcome = write_tags(saved, song, audio.ext, library)
        except BaseException:
            _unlink_quietly(saved)  # maybe half rewritten: never recorded, fetched again
            raise
        if outcome.note:
            self.ops_repo.add_event(self.job.id, "tags", f"{_song_text(song)}: {outcome.note}")
        size = saved.stat().st_size
        # Hashed again whenever tagging ran: a tagger that failed half-way may have
        # changed the file all the same, and the record must hold its real bytes.
        tagging = library is None or library.write_tags
        digest = sha256_of(saved) if tagging else source_sha
        if tagging and not outcome.tagged and digest != source_sha:
            _unlink_quietly(saved)
            raise TransferError(
                f"{_song_text(song)}: tagging failed and changed the file all the same; "
                "it is downloaded again",
                code="tags_failed",
            )
        if os.path.lexists(target.dest()):
            # A file nobody recorded took the reserved name meanwhile (copied in by hand,
            # say): it is never replaced; the song takes the next free name instead.
            target.reformat(target.ext)
        file_id, rel, size, twin = self.catalog.record_download(
            song_id=target.song_id,
            backend_id=target.backend_id,
            relative_path=target.rel,
            file_size_bytes=size,
            ext=audio.ext,
            sha256=digest,
            source_sha256=source_sha,
            exists=lambda rel: (target.root / rel).is_file(),
        )
        if twin:
            # Another worker recorded the same bytes while this one tagged them.
            _unlink_quietly(saved)
            return ItemDone({"path": rel, "bytes": size, "shared": True})
        try:
            dest = target.dest()
            with storage_guard(dest):
                os.replace(saved, dest)
        except BaseException:
            self.catalog.forget_local_file(file_id, with_sharers=True)
            raise
        self.shared.flusher.add(file_id, dest)
        return ItemDone({"path": target.rel, "bytes": size})

    def _recorded_by_this_job(self, existing: dict[str, Any]) -> bool:
        started = self.job.started_at
        return bool(started and existing.get("created_at") and existing["created_at"] >= started)

    def _http(
        self,
        provider: Provider,
        track: Track,
        spec: Any,
        target: _Target,
        progress: WorkerProgress,
    ) -> tuple[Path, str]:
        downloader = self._downloader()
        gate = self.shared.pacer.gate(provider.platform)

        def fetch(spec: Any) -> Any:
            with gate.slot(self.ctx.should_stop):
                return downloader.download(
                    spec,
                    target.dest(),
                    should_stop=self.ctx.should_stop,
                    on_progress=progress.on_bytes,
                    part=target.part,
                    keep_part=True,
                    gate=gate,
                    on_wait=progress.on_wait,
                    on_retry=progress.on_retry,
                    validator=target.validator(),
                )

        try:
            result = fetch(spec)
        except TransferError as exc:
            refresh = getattr(provider, "refresh", None)
            if exc.code not in EXPIRED_URL_CODES or refresh is None:
                raise
            # A signed URL may have expired between sync and download: resolve once more.
            result = fetch(refresh(track))
        return result.path, result.sha256

    def _opaque(
        self, provider: Provider, track: Track, part: Path, progress: WorkerProgress
    ) -> tuple[Path, str]:
        """The provider writes its own file (watched by its growth); it becomes our `.part`."""
        part.parent.mkdir(parents=True, exist_ok=True)
        with FileGrowthMonitor(part, track.file_size_bytes, progress.on_growth):
            saved = provider.download(
                track, part, should_stop=self.ctx.should_stop, on_progress=progress.on_bytes
            )
        if Path(saved) != part:
            Path(saved).replace(part)
        return part, sha256_of(part)


class _Target:
    """A song's reserved place in one library backend: its path, `.part` and final file.

    The path is reserved in SQLite before a byte is written (see
    ``CatalogRepository.reserve_path``); the `.part` carries the song id, so two songs
    never share partial bytes even when one of them gets renamed.
    """

    def __init__(self, catalog: CatalogRepository, backend_id: int, root: Path, song_id: int):
        self.catalog, self.backend_id, self.root, self.song_id = catalog, backend_id, root, song_id
        self.rel = ""
        self.part = self.ready = root

    @property
    def ext(self) -> str:
        return PurePosixPath(self.rel).suffix.lstrip(".")

    def _exists(self, rel: str) -> bool:
        return os.path.lexists(safe_join(self.root, rel, root_resolved=True))

    def reserve(self, wanted: PurePosixPath) -> None:
        self.rel = self.catalog.reserve_path(
            self.backend_id, self.song_id, wanted.as_posix(), exists_on_disk=self._exists
        )
        self._place_part()

    def reformat(self, ext: str) -> None:
        """The bytes are another format than the name said: the name follows the bytes."""
        wanted = PurePosixPath(self.rel).with_suffix("." + ext).as_posix()
        self.rel = self.catalog.move_reservation(
            self.backend_id, self.song_id, wanted, exists_on_disk=self._exists
        )

    def _place_part(self) -> None:
        dest = self.dest()
        stem = PurePosixPath(self.rel).stem
        self.part = dest.with_name(f"{stem}.cs{self.song_id}.part")
        # The verified bytes while they are tagged and recorded, before the final name.
        self.ready = dest.with_name(f"{stem}.cs{self.song_id}.ready")

    def dest(self) -> Path:
        return safe_join(self.root, self.rel, root_resolved=True)

    def validator(self) -> str | None:
        """The ETag / Last-Modified of what the `.part` holds, when a try left one."""
        if not self.part.exists():
            return None
        return self.catalog.part_validator(self.backend_id, self.song_id)


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _url_ext(spec: Any) -> str:
    if spec is None:
        return ""
    suffix = PurePosixPath(unquote(urlsplit(spec.url).path)).suffix
    return suffix.lstrip(".")


def _song_text(song: dict[str, Any]) -> str:
    singers = str(song.get("singers") or "").strip()
    return f"{song['name']} / {singers}" if singers else str(song["name"])


# -- upload ------------------------------------------------------------------


class UploadStageExecutor(StageExecutor):
    """Library files -> a second storage backend, verified, each recorded once copied."""

    stage_type = "upload"
    item_type = "file_upload"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._backend_row: dict[str, Any] | None = None
        self._backends: dict[str, Any] = {}

    def worker_count(self) -> int:
        return self.settings.upload.workers if self.settings else 2

    def max_attempts(self) -> int:
        return self.settings.upload.max_attempts if self.settings else 3

    def _target(self) -> dict[str, Any]:
        if self._backend_row is None:
            if not self.job.backend_name:
                raise CatalogsyncError(
                    f"job {self.job.id}: an upload needs a target: submit it with --backend NAME"
                )
            row = self.catalog.get_backend(self.job.backend_name)
            if row["is_default"]:
                raise CatalogsyncError(
                    f"job {self.job.id}: backend {row['name']!r} is the library itself; "
                    "upload to another backend"
                )
            self._backend_row = row
        return self._backend_row

    def plan(self) -> None:
        target = self._target()
        ids = self._scope_playlist_ids(wanted_only=True)
        # Songs sharing one file (same bytes) get one item: two workers copying one file
        # at once would write through one temp file on the target.
        files: dict[tuple[str, str], dict[str, Any]] = {}
        for f in self.catalog.files_to_upload(ids, int(target["id"])):
            key = (str(f["source_root"]), str(f["relative_path"]))
            files.setdefault(key, {**f, "song_ids": []})["song_ids"].append(int(f["song_id"]))
        self.ops_repo.create_items(
            self.stage.id,
            [
                {
                    "item_type": self.item_type,
                    "item_key": f"file:{f['id']}",
                    "song_id": f["song_id"],
                    "payload": {
                        "relative_path": f["relative_path"],
                        "source_root": f["source_root"],
                        "sha256": f["sha256"],
                        "song_ids": f["song_ids"],
                        "display_text": f["relative_path"],
                    },
                }
                for f in files.values()
            ],
        )

    def process_item(self, item_id: int, worker_name: str, *, already_claimed: bool = False) -> None:
        from catalogsync.transfer.backends import make_backend

        item = self._claim(item_id, worker_name, already_claimed)
        target = self._target()
        rel = str(item.payload["relative_path"])
        source = safe_join(Path(item.payload["source_root"]), rel)
        if not source.is_file():
            raise TransferError(
                f"{source}: the library file is missing; download the song again",
                code="missing_source",
                permanent=True,
            )
        size = source.stat().st_size
        local_sha = item.payload.get("sha256")
        backend = self._backends.get(worker_name)
        if backend is None:
            # One backend per worker: it keeps its connection and the folders it made.
            backend = self._backends[worker_name] = make_backend(
                target, limiter=self.shared.upload_limiter
            )
        progress = self._worker_progress(worker_name)
        remote = backend.stat(rel, checksum=backend.offers_checksum and bool(local_sha))
        same = remote is not None and remote.size == size and (
            not backend.offers_checksum or not remote.sha256 or not local_sha
            or remote.sha256 == local_sha
        )
        if not same:
            progress.start(rel)
            remote = backend.upload(
                source, rel, should_stop=self.ctx.should_stop, on_progress=progress.on_bytes
            )
        assert remote is not None  # stat found it the same, or upload returned it
        for song_id in item.payload.get("song_ids") or [int(item.song_id or 0)]:
            self.catalog.record_local_file(
                song_id=int(song_id),
                backend_id=int(target["id"]),
                relative_path=rel,
                file_size_bytes=remote.size,
                ext=source.suffix.lstrip("."),
                sha256=remote.sha256 or local_sha,
            )
        if same:
            self.ops_repo.mark_item_skipped(item_id, "already on the target with the same size")
        else:
            self.ops_repo.mark_item_succeeded(item_id, {"bytes": remote.size})

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()


EXECUTORS: dict[str, type[StageExecutor]] = {
    "collect": CollectStageExecutor,
    "sync": SyncStageExecutor,
    "download": DownloadStageExecutor,
    "upload": UploadStageExecutor,
}


from .verify_stage import VerifyStageExecutor  # noqa: E402  (it builds on StageExecutor)

EXECUTORS["verify"] = VerifyStageExecutor


def make_executor(stage_type: str, **kwargs: Any) -> StageExecutor:
    try:
        cls = EXECUTORS[stage_type]
    except KeyError:
        raise CatalogsyncError(f"unknown stage type {stage_type!r}") from None
    return cls(**kwargs)
