"""Stage types and job types: item kinds, stage sequences, lanes and names, in one place.

Adding a stage type: its ``StageDef`` here (and the job types that run it), one module
under ``ops/stages/`` registered in ``STAGES``, and its tests. The read models and the
TUI read stage order, item kinds and what a job is scoped by from here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from catalogsync.records import record

DOWNLOAD_LANE = "download"
GENERAL_LANE = "general"


class JobType(StrEnum):
    """The job types; a StrEnum, so the CLI's --help and shell completion list them."""

    CATALOG_SYNC = "catalog_sync"
    COLLECT_ONLY = "collect_only"
    SYNC_ONLY = "sync_only"
    SYNC_DOWNLOAD = "sync_download"
    DOWNLOAD_ONLY = "download_only"
    UPLOAD_ONLY = "upload_only"
    DOWNLOAD_UPLOAD = "download_upload"
    LIBRARY_VERIFY = "library_verify"


@record(frozen=True)
class StageDef:
    """One stage type: what its items are, what they are called, what scopes a job of it."""

    item_type: str  # job_items.item_type of its items
    unit: str  # what its items are called in progress text (`12 / 40 songs`)
    inputs: frozenset[str]  # what a job of it takes: "playlists", "sources", "backend"


STAGE_DEFS: dict[str, StageDef] = {
    "collect": StageDef("source_collect", "sources", frozenset({"sources"})),
    "sync": StageDef("playlist_sync", "playlists", frozenset({"playlists", "sources"})),
    "download": StageDef("song_download", "songs", frozenset({"playlists"})),
    "upload": StageDef("file_upload", "files", frozenset({"playlists", "backend"})),
    "verify": StageDef("library_verify", "libraries", frozenset()),
}
# The order stages are shown in (each job type runs its own sequence of them).
STAGE_ORDER = tuple(STAGE_DEFS)
DOWNLOAD_ITEM_TYPE = STAGE_DEFS["download"].item_type
# What a stage's items are called in progress text (`12 / 40 songs`).
STAGE_UNITS = {name: stage.unit for name, stage in STAGE_DEFS.items()}

JOB_STAGE_SEQUENCES: dict[str, list[str]] = {
    JobType.CATALOG_SYNC.value: ["collect", "sync", "download"],
    JobType.COLLECT_ONLY.value: ["collect"],
    JobType.SYNC_ONLY.value: ["sync"],
    JobType.SYNC_DOWNLOAD.value: ["sync", "download"],
    JobType.DOWNLOAD_ONLY.value: ["download"],
    JobType.UPLOAD_ONLY.value: ["upload"],
    JobType.DOWNLOAD_UPLOAD.value: ["download", "upload"],
    JobType.LIBRARY_VERIFY.value: ["verify"],  # records against files (catalogsync.library.verify)
}
JOB_TYPES = tuple(JOB_STAGE_SEQUENCES)
DOWNLOAD_LANE_JOB_TYPES = tuple(t for t, s in JOB_STAGE_SEQUENCES.items() if "download" in s)


def job_has_stage(job_type: str, stage_type: str) -> bool:
    return stage_type in JOB_STAGE_SEQUENCES.get(str(job_type), [])


def job_inputs(job_type: str) -> frozenset[str]:
    """What a job of this type can be scoped by or needs: "playlists", "sources", "backend"."""
    return frozenset().union(
        *(STAGE_DEFS[s].inputs for s in JOB_STAGE_SEQUENCES.get(str(job_type), []))
    )


def job_lane_type(job_type: str) -> str:
    """Download-class jobs share one serialized lane; the rest run in the general lane."""
    return DOWNLOAD_LANE if job_has_stage(job_type, "download") else GENERAL_LANE


def primary_stage_type(job_type: str) -> str | None:
    """The stage whose counters a task-center row shows: download > upload > sync > collect."""
    for stage_type in ("download", "upload", "sync", "collect", "verify"):
        if job_has_stage(job_type, stage_type):
            return stage_type
    return None


def display_name(job_type: str, playlist_scope: dict[str, Any] | None = None) -> str:
    playlist_ids = (playlist_scope or {}).get("playlist_ids")
    return scoped_display_name(job_type, isinstance(playlist_ids, list) and len(playlist_ids) > 0)


def scoped_display_name(job_type: str, is_scoped: bool) -> str:
    """The job's name in the task table; ``is_scoped``: it names its playlists."""
    mapping = {
        "catalog_sync": "Full Pipeline",
        "collect_only": "Collect",
        "sync_only": "Sync Selected Playlists" if is_scoped else "Sync",
        "sync_download": "Sync Then Download" if is_scoped else "Sync Then Download All",
        "download_only": "Download Selected Playlists" if is_scoped else "Download",
        "upload_only": "Upload",
        "download_upload": "Download Then Upload",
        "library_verify": "Verify Library",
    }
    return mapping.get(str(job_type), str(job_type))
