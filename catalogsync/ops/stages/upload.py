"""The upload stage: library files -> a second storage backend, verified, recorded once copied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from catalogsync.errors import CatalogsyncError, TransferError
from catalogsync.transfer.paths import safe_join

from ..jobdefs import STAGE_DEFS
from ..models import JobItem
from .base import FileRecord, Skipped, StageExecutor, Succeeded


class UploadStageExecutor(StageExecutor):
    """Library files -> a second storage backend, verified, each recorded once copied."""

    stage_type = "upload"
    item_type = STAGE_DEFS["upload"].item_type

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
        self.repository.create_items(
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

    def process_item(self, item: JobItem, worker_name: str) -> Succeeded | Skipped:
        from catalogsync.transfer.backends import make_backend

        target = self._target()
        rel = str(item.payload["relative_path"])
        source = safe_join(Path(item.payload["source_root"]), rel)
        if not source.is_file():
            raise TransferError(
                f"{source}: the library file is missing; download the song again",
                code="missing_source",
                permanent=True,
            )
        local_sha = item.payload.get("sha256")
        backend = self._backends.get(worker_name)
        if backend is None:
            # One backend per worker: it keeps its connection and the folders it made.
            backend = self._backends[worker_name] = make_backend(
                target, limiter=self.shared.upload_limiter
            )
        remote = backend.same_copy(source, rel, local_sha256=local_sha)
        same = remote is not None
        if remote is None:
            progress = self._worker_progress(worker_name)
            progress.start(rel)
            remote = backend.upload(
                source, rel, should_stop=self.ctx.should_stop, on_progress=progress.on_bytes
            )
        files = tuple(
            FileRecord(
                song_id=int(song_id),
                backend_id=int(target["id"]),
                relative_path=rel,
                file_size_bytes=remote.size,
                ext=source.suffix.lstrip("."),
                sha256=remote.sha256 or local_sha,
            )
            for song_id in item.payload.get("song_ids") or [int(item.song_id or 0)]
        )
        if same:
            return Skipped("already on the target with the same size", files=files)
        return Succeeded({"bytes": remote.size}, files=files)

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()
