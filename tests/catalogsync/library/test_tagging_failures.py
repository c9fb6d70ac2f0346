"""A disk that fills up while tags are written: the half-rewritten file is never recorded."""

from __future__ import annotations

import errno
import json
from unittest.mock import patch

import mutagen
import pytest
from mutagen.mp3 import MP3

from catalogsync.ops.models import CommandType
from tests.catalogsync.pipeline_support import open_service
from tests.support.audio import mp3_body


@pytest.mark.parametrize("wrapped", [False, True], ids=["oserror", "mutagen-wrapped"])
def test_disk_full_while_tagging_pauses_and_records_nothing(tmp_path, http_server, wrapped):
    body = mp3_body(120_000, seed=51)
    url = http_server.route("/tagged.mp3", body=body)
    playlist = tmp_path / "full.json"
    playlist.write_text(
        json.dumps({"name": "Full", "tracks": [{"url": url, "title": "Tagged", "artist": "Band"}]}),
        encoding="utf-8",
    )
    service = open_service(tmp_path / "home")
    try:
        service.add_playlists([str(playlist)])
        job = service.submit_job("sync_download").id

        def save_then_disk_full(self, *args, **kwargs):
            # mutagen moves the audio to make room for the tag: cut short by ENOSPC.
            with open(self.filename, "r+b") as fh:
                fh.truncate(4096)
            full = OSError(errno.ENOSPC, "No space left on device")
            if not wrapped:
                raise full
            try:
                raise full
            except OSError as err:  # what mutagen's convert_error does
                raise mutagen.MutagenError(err) from None

        with patch.object(MP3, "save", save_then_disk_full):
            service.run_headless(until_idle=True)
        root = service.settings.library_root
        assert service.catalog.list_library_files(service.catalog.default_backend()["id"]) == []
        row = service.job_row(job)
        assert row.status == "paused", [e.message for e in service.job_detail(job).events]
        assert "no space left" in row.pause_reason

        service.command(job, CommandType.RESUME)
        service.run_headless(until_idle=True)
        assert service.job_row(job).status == "completed"
        [record] = service.catalog.list_library_files(service.catalog.default_backend()["id"])
        assert (root / record["relative_path"]).stat().st_size > len(body), "tagged in full"
        assert service.catalog.library_invariant_violations() == []
        assert not list(root.rglob("*.ready")) and not list(root.rglob("*.part"))
    finally:
        service.close()


def test_a_tagger_that_fails_after_changing_the_file_records_nothing(tmp_path, http_server):
    body = mp3_body(120_000, seed=52)
    url = http_server.route("/broken.mp3", body=body)
    playlist = tmp_path / "broken.json"
    playlist.write_text(
        json.dumps(
            {"name": "Broken", "tracks": [{"url": url, "title": "Broken", "artist": "Band"}]}
        ),
        encoding="utf-8",
    )
    service = open_service(tmp_path / "home")
    try:
        service.settings.download.max_attempts = 1
        service.add_playlists([str(playlist)])
        job = service.submit_job("sync_download").id

        def save_half_then_fail(self, *args, **kwargs):
            with open(self.filename, "r+b") as fh:
                fh.truncate(4096)
            raise mutagen.MutagenError("cannot write the frame")

        with patch.object(MP3, "save", save_half_then_fail):
            service.run_headless(until_idle=True)
        assert service.catalog.list_library_files(service.catalog.default_backend()["id"]) == []
        failed = service.repository._fetchall(
            "SELECT last_error_code FROM job_items WHERE status = 'failed'"
        )
        assert [r[0] for r in failed] == ["tags_failed"]
        assert service.job_row(job).status == "failed", "its only song failed"
        root = service.settings.library_root
        assert [p for p in root.rglob("*") if p.is_file() and p.suffix != ".m3u8"] == []
    finally:
        service.close()
