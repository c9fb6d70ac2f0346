"""The worker loop: the one writer of item status, stage counters and file records."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from catalogsync.catalog.repository import CatalogRepository
from catalogsync.db import initialize_database
from catalogsync.errors import (
    CatalogsyncError,
    CatalogsyncSignal,
    StorageFullError,
    TransferError,
    TransferStopped,
)
from catalogsync.ops.context import JobContext, StopReason
from catalogsync.ops.jobdefs import JOB_STAGE_SEQUENCES, STAGE_DEFS, STAGE_ORDER
from catalogsync.ops.models import ItemStatus, JobItem
from catalogsync.ops.repository import OpsRepository
from catalogsync.ops.shared import SharedResources
from catalogsync.ops.stages import (
    STAGES,
    FileRecord,
    NewDownload,
    StageExecutor,
    Succeeded,
    executor_class,
)
from catalogsync.ops.workers import FailureKind, StageWorkers, classify


def test_every_stage_of_every_job_type_has_a_definition_and_one_executor() -> None:
    """Adding a stage type: jobdefs and one module; the two agree on its item kind."""
    for stages in JOB_STAGE_SEQUENCES.values():
        assert set(stages) <= set(STAGE_DEFS)
    assert set(STAGES) == set(STAGE_DEFS) == set(STAGE_ORDER)
    for name in STAGES:
        executor = executor_class(name)
        assert issubclass(executor, StageExecutor)
        assert executor.stage_type == name
        assert executor.item_type == STAGE_DEFS[name].item_type


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (TransferStopped("stopped"), FailureKind.STOPPED, None),
        (StorageFullError("no space"), FailureKind.STORAGE, None),
        (TransferError("reset", code="connection"), FailureKind.RETRY, "connection"),
        (TransferError("gone", code="http_404", permanent=True), FailureKind.FAILED, "http_404"),
        (CatalogsyncError("no backend"), FailureKind.FAILED, "error"),
        (sqlite3.DatabaseError("database disk image is malformed"), FailureKind.DATABASE, None),
        (KeyError("oops"), FailureKind.RETRY, "internal"),
    ],
)
def test_one_classifier_for_every_failure(exc: BaseException, kind: FailureKind, code: Any) -> None:
    failure = classify(exc, attempts=2)
    assert failure.kind == kind
    assert failure.code == code
    assert (failure.delay is not None) == (kind == FailureKind.RETRY)


def test_a_stop_is_a_signal_not_a_user_error() -> None:
    assert isinstance(TransferStopped("x"), CatalogsyncSignal)
    assert not isinstance(TransferStopped("x"), CatalogsyncError)


def test_stop_reasons_rank_a_cancel_above_a_pause() -> None:
    ctx = JobContext(1)
    ctx.stop(StopReason.PAUSE, "paused")
    ctx.stop("cancel", "canceled")  # a helper process sends the value
    ctx.stop(StopReason.PAUSE, "paused again")
    assert (ctx.reason, ctx.message) == (StopReason.CANCEL, "canceled")


class _Scripted(StageExecutor):
    """An executor whose outcome per item the test gives."""

    stage_type = "upload"
    item_type = "file_upload"
    outcomes: dict[str, Any] = {}

    def process_item(self, item: JobItem, worker_name: str) -> Any:
        outcome = self.outcomes[item.item_key]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def _stage(tmp_path: Path, keys: list[str]) -> tuple[OpsRepository, CatalogRepository, Any]:
    db_path = tmp_path / "catalogsync.db"
    initialize_database(db_path, tmp_path / "library").close()
    repository = OpsRepository(db_path)
    catalog = CatalogRepository(db_path, share_with=repository)
    job = repository.create_job("upload_only")
    stage_id = repository.create_stage(job_id=job, stage_type="upload", seq_no=1)
    for key in keys:
        repository.create_item(job_stage_id=stage_id, item_type="file_upload", item_key=key)
    return repository, catalog, (repository.get_job(job), repository.get_stage(stage_id))


def _workers(repository, catalog, job_stage, outcomes) -> StageWorkers:
    job, stage = job_stage
    executor = _Scripted(
        repository=repository,
        catalog=catalog,
        settings=None,
        job=job,
        stage=stage,
        ctx=JobContext(job.id),
        shared=SharedResources(),
    )
    executor.outcomes = outcomes
    return StageWorkers(executor, executor.ctx)


def _song(catalog: CatalogRepository, remote_id: str) -> int:
    conn = catalog._conn()
    cursor = conn.execute(
        "INSERT INTO songs (platform, remote_id, name) VALUES ('manifest', ?, 'Song')",
        (remote_id,),
    )
    conn.commit()
    return int(cursor.lastrowid or 0)


def test_file_records_and_the_success_are_written_together_or_not_at_all(tmp_path: Path) -> None:
    repository, catalog, job_stage = _stage(tmp_path, ["good", "clash"])
    backend = int(catalog.default_backend()["id"])
    first, second = _song(catalog, "1"), _song(catalog, "2")
    # Another song holds the path the second record names: that record is refused.
    catalog.reserve_path(backend, second, "Band/Held.mp3", exists_on_disk=lambda rel: False)
    outcomes = {
        "good": Succeeded(
            {"bytes": 5}, files=(FileRecord(first, backend, "Band/Good.mp3", 5, "mp3", None),)
        ),
        "clash": Succeeded(
            {"bytes": 5}, files=(FileRecord(first, backend, "Band/Held.mp3", 5, "mp3", None),)
        ),
    }
    workers = _workers(repository, catalog, job_stage, outcomes)
    workers.work("upload-1")
    items = {i.item_key: i for i in repository.list_stage_items(workers.stage_id)}
    assert items["good"].status == ItemStatus.SUCCEEDED
    assert items["clash"].status == ItemStatus.FAILED
    assert "reserved by song" in (items["clash"].last_error or "")
    rows = catalog._fetchall("SELECT relative_path FROM local_files")
    assert [r[0] for r in rows] == ["Band/Good.mp3"], "the refused record left nothing"
    stage = repository.get_stage(workers.stage_id)
    assert (stage.success_items, stage.failed_items) == (1, 1)


def test_a_download_whose_rename_fails_takes_its_record_back(tmp_path: Path) -> None:
    repository, catalog, job_stage = _stage(tmp_path, ["song"])
    backend = int(catalog.default_backend()["id"])
    song = _song(catalog, "1")
    rel = catalog.reserve_path(backend, song, "Band/Song.mp3", exists_on_disk=lambda r: False)
    seen: list[str] = []

    def place(file_id: int, shared: bool) -> None:
        seen.append("place")
        assert catalog._fetchall("SELECT id FROM local_files"), "recorded before the rename"
        raise StorageFullError("no space left while renaming")

    download = NewDownload(
        song_id=song,
        backend_id=backend,
        relative_path=rel,
        file_size_bytes=4,
        ext="mp3",
        sha256="ab" * 32,
        source_sha256="ab" * 32,
        exists=lambda r: False,
        place=place,
        abandon=lambda: seen.append("abandon"),
    )
    workers = _workers(repository, catalog, job_stage, {"song": Succeeded(download=download)})
    workers.work("upload-1")
    assert seen == ["place", "abandon"]
    assert catalog._fetchall("SELECT id FROM local_files") == [], "the record was taken back"
    [item] = repository.list_stage_items(workers.stage_id)
    assert item.status == ItemStatus.PENDING, "a full disk hands the item back"
    assert workers.ctx.reason == StopReason.STORAGE


def test_workers_refuse_repositories_on_separate_connections(tmp_path: Path) -> None:
    repository, _, job_stage = _stage(tmp_path, [])
    separate = CatalogRepository(repository.db_path)
    with pytest.raises(ValueError, match="share connections"):
        _workers(repository, separate, job_stage, {})


def test_writes_inside_a_transaction_roll_back_with_it(tmp_path: Path) -> None:
    repository, catalog, job_stage = _stage(tmp_path, ["x"])
    backend = int(catalog.default_backend()["id"])
    song = _song(catalog, "1")
    with pytest.raises(RuntimeError), repository.transaction():
        catalog.record_local_file(
            song_id=song, backend_id=backend, relative_path="A.mp3", file_size_bytes=1
        )
        repository.add_event(None, "test", "inside")
        raise RuntimeError("the settle failed half-way")
    assert catalog._fetchall("SELECT id FROM local_files") == []
    assert not [e for e in repository.list_events() if e["event_type"] == "test"]


def test_a_download_claim_is_held_while_its_item_runs_and_taken_over_after(tmp_path: Path) -> None:
    repository, catalog, (job, stage) = _stage(tmp_path, ["a", "b"])
    song = _song(catalog, "1")
    first = repository.claim_next_item(stage.id, "download-1")
    second = repository.claim_next_item(stage.id, "download-2")
    assert first is not None and second is not None
    assert catalog.claim_download(song, first.id)
    assert catalog.claim_download(song, first.id), "its own claim again"
    assert not catalog.claim_download(song, second.id), "held by a running item"
    assert catalog.holds_download(song, first.id) and not catalog.holds_download(song, second.id)
    repository.mark_item_succeeded(first.id)
    assert catalog.claim_download(song, second.id), "a finished item's claim is taken over"
    repository.release_item(second.id)
    catalog.release_download_claims(stage.id)
    assert catalog._fetchall("SELECT * FROM download_claims") == []
