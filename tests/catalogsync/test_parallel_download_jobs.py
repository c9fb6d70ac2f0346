"""Two download jobs running at once (`download_lane_concurrency = 2`) that share a song."""

from __future__ import annotations

import hashlib
import json

from tests.catalogsync.pipeline_support import open_service
from tests.support.audio import mp3_body


def test_two_jobs_downloading_one_song_at_once_record_its_own_bytes(tmp_path, http_server):
    body = mp3_body(400_000, seed=41)
    # Paced, so both jobs are on the song at once: they shared its path and `.part`.
    url = http_server.route("/shared.mp3", body=body, rate_bps=200_000)
    service = open_service(tmp_path / "home")
    try:
        service.settings.library.write_tags = False
        service.settings.download_lane_concurrency = 2
        ids = []
        for name in ("One", "Two"):
            path = tmp_path / f"{name}.json"
            path.write_text(
                json.dumps(
                    {"name": name, "tracks": [{"url": url, "title": "Shared", "artist": "Band"}]}
                ),
                encoding="utf-8",
            )
            ids.extend(p.id for p in service.add_playlists([str(path)]))
        service.submit_job("sync_only")
        service.run_headless(until_idle=True)
        jobs = [service.submit_job("download_only", playlist_ids=[int(pid)]).id for pid in ids]
        service.run_headless(until_idle=True)
        for job in jobs:
            events = [e.message for e in service.job_detail(job).events]
            assert service.job_row(job).status == "completed", events
        assert len(http_server.requests()) == 1, "the song is fetched once"
        rows = service.catalog._fetchall("SELECT relative_path, sha256 FROM local_files")
        assert len(rows) == 1
        root = service.settings.library_root
        data = (root / rows[0][0]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == hashlib.sha256(body).hexdigest()
        assert service.catalog.library_invariant_violations() == []
        assert not list(root.rglob("*.part"))
        assert service.catalog._fetchall("SELECT * FROM download_claims") == []
    finally:
        service.close()
