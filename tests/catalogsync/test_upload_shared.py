"""A file two songs share (same bytes) is uploaded once, and both songs are recorded there."""

from __future__ import annotations

import json

from tests.catalogsync.pipeline_support import open_service
from tests.support.audio import mp3_body


def test_a_shared_library_file_is_uploaded_once_for_both_songs(tmp_path, http_server):
    body = mp3_body(300_000, seed=31)
    urls = [http_server.route(f"/twin{n}.mp3", body=body) for n in range(2)]
    playlist = tmp_path / "twins.json"
    playlist.write_text(
        json.dumps(
            {
                "name": "Twins",
                "tracks": [
                    {"url": u, "title": f"Take {n}", "artist": "Band"} for n, u in enumerate(urls)
                ],
            }
        ),
        encoding="utf-8",
    )
    service = open_service(tmp_path / "home")
    try:
        service.settings.library.write_tags = False
        service.settings.download.workers = 1
        service.add_playlists([str(playlist)])
        service.submit_job("sync_download")
        service.run_headless(until_idle=True)
        rows = service.catalog._fetchall("SELECT song_id, relative_path FROM local_files")
        assert len(rows) == 2 and len({r[1] for r in rows}) == 1, "the two songs share one file"

        share = tmp_path / "share"
        service.catalog.add_backend("nas", "local", str(share))
        # Paced, so two workers copying the same file would overlap in its temp file.
        service.settings.upload.workers = 2
        service.settings.upload.max_bytes_per_sec = 400_000
        job = service.submit_job("upload_only", backend="nas").id
        service.run_headless(until_idle=True)
        assert service.job_row(job).status == "completed", [
            e.message for e in service.job_detail(job).events
        ]
        stage = service.job_detail(job).stages[0]
        assert stage.total_items == 1, "one file, one upload"
        nas = int(service.catalog.get_backend("nas")["id"])
        on_nas = service.catalog._fetchall(
            "SELECT song_id, relative_path FROM local_files WHERE backend_id = ? ORDER BY song_id",
            (nas,),
        )
        assert [r[0] for r in on_nas] == sorted(r[0] for r in rows)
        assert (share / rows[0][1]).read_bytes() == body
        assert [p for p in share.rglob("*") if p.is_file()] == [share / rows[0][1]]
    finally:
        service.close()
