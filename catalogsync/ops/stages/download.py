"""The download stage: every wanted song in scope without a local file -> a library file."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from catalogsync.catalog.repository import CatalogRepository
from catalogsync.config import LibrarySettings
from catalogsync.errors import CatalogsyncError, TransferError, TransferStopped
from catalogsync.files import size_or_zero
from catalogsync.library.layout import song_relative_path
from catalogsync.library.tags import write_tags
from catalogsync.providers import registry
from catalogsync.providers.base import Provider, Track
from catalogsync.redact import mask_secrets
from catalogsync.transfer.durability import sha256_of
from catalogsync.transfer.growth import FileGrowthMonitor
from catalogsync.transfer.paths import ensure_space, partial_paths, safe_join, sanitize_ext
from catalogsync.transfer.sniff import require_audio
from catalogsync.transfer.storage import storage_guard

from ..jobdefs import STAGE_DEFS
from ..models import JobItem
from ..progress import WorkerProgress
from .base import NewDownload, Skipped, StageExecutor, Succeeded

if TYPE_CHECKING:
    from catalogsync.transfer.http import HttpDownloader

# Codes after which a provider may hand out a fresh URL (signed URLs expire).
EXPIRED_URL_CODES = ("http_401", "http_403", "http_404", "http_410")


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
    item_type = STAGE_DEFS["download"].item_type

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
            # Imported at the first song: the HTTP stack (http.client, ssl, email) costs
            # ~25 ms, which a stage with nothing to fetch need not pay.
            from catalogsync.transfer.http import HttpDownloader

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
        if self._claims_songs():
            # A settled item's claim is inert (it no longer runs); tidy them once per stage.
            self.catalog.release_download_claims(self.stage.id)
        with self._lock:
            downloaders, self._all_downloaders = self._all_downloaders, []
        for downloader in downloaders:
            downloader.close()

    def worker_count(self) -> int:
        return self.settings.download.workers if self.settings else 3

    def plan(self) -> None:
        ids = self._scope_playlist_ids(wanted_only=True)
        songs = self.catalog.songs_to_download(ids)
        self.repository.create_items(
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

    def _claims_songs(self) -> bool:
        """Only two download jobs at once can have two items on one song."""
        return self.shared.download_jobs_at_once > 1

    def on_claim(self, item: JobItem) -> None:
        """The cross-job download claim is taken with the item's claim, in its transaction."""
        if item.song_id is not None and self._claims_songs():
            self.catalog.claim_download(int(item.song_id), item.id)

    def process_item(self, item: JobItem, worker_name: str) -> Succeeded | Skipped:
        song = self.catalog.get_song(int(item.song_id or 0))
        if song is None:
            raise TransferError(
                f"song {item.song_id} no longer exists", code="gone", permanent=True
            )
        song_id = int(song["id"])
        if self._claims_songs() and not self.catalog.holds_download(song_id, item.id):
            while not self.catalog.claim_download(song_id, item.id):
                # Another job is fetching this song into its reserved path and `.part`:
                # wait for it (bounded by that download), then find its file below.
                if self.ctx.should_stop():
                    raise TransferStopped("transfer stopped")
                time.sleep(0.2)
        for existing in self.catalog.files_for_song(song_id):
            on_disk = Path(existing["target"]) / existing["relative_path"]
            if existing["in_library"] and on_disk.exists():
                if item.attempts > 1 and self._recorded_by_this_job(existing):
                    # An earlier try of this item put the file in place, and its process
                    # died before marking the item: it succeeded, it was not skipped.
                    return Succeeded(
                        {"path": existing["relative_path"], "bytes": existing["file_size_bytes"]}
                    )
                return Skipped("already in the library")
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
        target = _Target(self.catalog, int(backend["id"]), root, song_id)
        target.reserve(song_relative_path(song, ext, self._library_settings()))
        _unlink_quietly(target.ready)  # a tagged file a killed try left: never resumed
        try:
            progress.start(_song_text(song), already=size_or_zero(target.part))
            if opaque:
                saved, source_sha = self._opaque(provider, track, target.part, progress)
            else:
                saved, source_sha = self._http(provider, track, spec, target, progress)
            return self._finish(song, target, saved, source_sha, spec, opaque)
        except BaseException as exc:
            if getattr(exc, "permanent", False):
                # This song will not be written here: free the name and drop its bytes.
                _unlink_quietly(target.part)
                self.catalog.release_path(target.backend_id, target.song_id)
            else:
                self._keep_part(target, opaque)
            raise

    def _keep_part(self, target: _Target, opaque: bool) -> None:
        """A `.part` stays for a resume: remember which version of the file it holds,
        so the resume can ask for the rest of that version only."""
        if opaque or not target.part.exists():
            return
        validator = self._downloader().last_validator
        if validator:
            with contextlib.suppress(Exception):
                self.catalog.set_part_validator(target.backend_id, target.song_id, validator)

    def _library_settings(self) -> LibrarySettings | None:
        return self.settings.library if self.settings else None

    def _finish(
        self,
        song: dict[str, Any],
        target: _Target,
        saved: Path,
        source_sha: str,
        spec: Any,
        opaque: bool,
    ) -> Succeeded:
        """Check and tag a verified `.part`: only audio reaches the library.

        What to record comes back as a ``NewDownload``: the worker loop records it, and
        only then does ``place`` rename it to its final name.
        """
        where = spec.url if spec is not None else f"{song['platform']}:{song['remote_id']}"
        try:
            audio = require_audio(saved, where=mask_secrets(where))
        except TransferError:
            _unlink_quietly(saved)
            raise
        exists = target.recorded_exists
        library = self._library_settings()
        tagging = library is None or library.write_tags
        if self.catalog.has_same_content(target.backend_id, source_sha, target.song_id, exists):
            # The same bytes are in the library already (another song of another
            # playlist): the record shares that file, so there is nothing to tag.
            tagging = False
        if audio.ext != target.ext:
            target.reformat(audio.ext)
        if tagging:
            # Tagging changes the bytes, so the file is no longer a prefix a Range request
            # may extend: it leaves the `.part` name first; a crash from here starts over.
            with storage_guard(target.ready):
                os.replace(saved, target.ready)
            saved = target.ready
            try:
                with storage_guard(saved):
                    outcome = write_tags(saved, song, audio.ext, library, parsed=audio.parsed)
            except BaseException:
                _unlink_quietly(saved)  # maybe half rewritten: never recorded, fetched again
                raise
            if outcome.note:
                self.repository.add_event(
                    self.job.id, "tags", f"{_song_text(song)}: {outcome.note}"
                )
            # Hashed again: a tagger that failed half-way may have changed the file all
            # the same, and the record must hold its real bytes.
            digest = sha256_of(saved)
            if not outcome.tagged and digest != source_sha:
                _unlink_quietly(saved)
                raise TransferError(
                    f"{_song_text(song)}: tagging failed and changed the file all the same; "
                    "it is downloaded again",
                    code="tags_failed",
                )
        else:
            digest = source_sha
        size = saved.stat().st_size
        if os.path.lexists(target.dest()):
            # A file nobody recorded took the reserved name meanwhile (copied in by hand,
            # say): it is never replaced; the song takes the next free name instead.
            target.reformat(target.ext)

        def place(file_id: int, shared: bool) -> None:
            if shared:
                # Another song's file holds these bytes (recorded before or meanwhile).
                _unlink_quietly(saved)
                return
            dest = target.dest(fresh=True)
            with storage_guard(dest):
                os.replace(saved, dest)
            self.shared.flusher.add(file_id, dest)

        def abandon() -> None:
            self._keep_part(target, opaque)

        return Succeeded(
            download=NewDownload(
                song_id=target.song_id,
                backend_id=target.backend_id,
                relative_path=target.rel,
                file_size_bytes=size,
                ext=audio.ext,
                sha256=digest,
                source_sha256=source_sha,
                exists=exists,
                place=place,
                abandon=abandon,
            )
        )

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
                    on_validator=target.keep_validator,
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
        self._dest: tuple[str, Path] | None = None  # (rel, its checked path)

    @property
    def ext(self) -> str:
        return PurePosixPath(self.rel).suffix.lstrip(".")

    def _exists(self, rel: str) -> bool:
        # A plain look: ``reserve`` checked the name stays inside the root, and a numbered
        # twin only changes its last component.
        return os.path.lexists(os.path.join(self.root, rel))

    def recorded_exists(self, rel: str) -> bool:
        """Is a file recorded at ``rel`` on this backend on disk (a twin to share)?"""
        return (self.root / rel).is_file()

    def reserve(self, wanted: PurePosixPath) -> None:
        rel = wanted.as_posix()
        checked = safe_join(self.root, rel, root_resolved=True)  # raises before a reservation
        self.rel = self.catalog.reserve_path(
            self.backend_id, self.song_id, rel, exists_on_disk=self._exists
        )
        if self.rel == rel:
            self._dest = (rel, checked)
        self._place_part()

    def reformat(self, ext: str) -> None:
        """The bytes are another format than the name said: the name follows the bytes."""
        wanted = PurePosixPath(self.rel).with_suffix("." + ext).as_posix()
        self.rel = self.catalog.move_reservation(
            self.backend_id, self.song_id, wanted, exists_on_disk=self._exists
        )

    def _place_part(self) -> None:
        # `.ready`: the verified bytes while they are tagged and recorded, before the
        # final name. A runner's start removes both when no try will resume them.
        self.part, self.ready = partial_paths(self.dest(), self.song_id)

    def dest(self, *, fresh: bool = False) -> Path:
        """The final path, checked to stay inside the root (no symlinked folders).

        Checked once per name (it walks every folder); ``fresh`` checks again, as the
        rename into place does.
        """
        if fresh or self._dest is None or self._dest[0] != self.rel:
            self._dest = (self.rel, safe_join(self.root, self.rel, root_resolved=True))
        return self._dest[1]

    def keep_validator(self, validator: str) -> None:
        """Remember now which version of the file the `.part` is receiving: a process
        killed mid-body then resumes with If-Range too (a stop records it anyway)."""
        with contextlib.suppress(Exception):
            self.catalog.set_part_validator(self.backend_id, self.song_id, validator)

    def validator(self) -> str | None:
        """The ETag / Last-Modified of what the `.part` holds, when a try left one."""
        if not self.part.exists():
            return None
        return self.catalog.part_validator(self.backend_id, self.song_id)


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
